"""One bar kernel serves every consumer: the replay's klines, the store's 1m aggregate, the
alert engine's bar closes and the widgets' live bars equal ``resample`` on the recording."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from quantify.alerts._eval import BarSeries
from quantify.analytics import resample
from quantify.venues.binance.recordings import read_trades, sample_files
from quantify.replay.rest import RestApi
from quantify.store import open_store
from quantify.store.candles import CandleAggregator
from quantify.widgets.source import BAR_COLUMNS, update_bars


@pytest.fixture(scope="module")
def ticks() -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in sample_files():
        for sym, frame in read_trades(path).items():
            parts.setdefault(sym, []).append(frame)
    return {s: pd.concat(fs).sort_values("trade_id", kind="stable") for s, fs in parts.items()}


@pytest.mark.parametrize("interval", ["1s", "1m"])
def test_replay_klines_equal_resample(sample_tape, ticks, interval) -> None:
    api = RestApi(sample_tape, clock=lambda: 1e6)
    for sym in ("BTCUSDT", "ETHUSDT"):
        want = resample(ticks[sym], interval)
        rows: list[list] = []
        start = int(want.index[0].value // 1_000_000)
        while True:  # page through 1000-bar pages
            res = api.handle("/api/v3/klines", f"symbol={sym}&interval={interval}&startTime={start}&limit=1000",
                             "127.0.0.1", sample_tape.n, sample_tape.last_time)
            page = orjson.loads(res.body)
            rows += page
            if len(page) < 1000:
                break
            start = page[-1][0] + 1
        got = pd.DataFrame(
            {"open": [float(r[1]) for r in rows], "high": [float(r[2]) for r in rows],
             "low": [float(r[3]) for r in rows], "close": [float(r[4]) for r in rows],
             "volume": [float(r[5]) for r in rows], "quote_volume": [float(r[7]) for r in rows],
             "trades": [int(r[8]) for r in rows], "taker_buy_volume": [float(r[9]) for r in rows],
             "taker_buy_quote_volume": [float(r[10]) for r in rows]},
            index=pd.to_datetime([r[0] for r in rows], unit="ms", utc=True).as_unit("ns"),
        )
        got = got.loc[want.index[0]:want.index[-1]]
        pd.testing.assert_frame_equal(got, want[list(got.columns)], check_exact=True)


def test_store_aggregate_alert_closes_and_widget_bars_equal_resample(tmp_path, ticks) -> None:
    store = open_store(f"lmdb://{tmp_path / 'store'}")
    agg = CandleAggregator(store, write_interval=0)
    agg.start(store)
    series = {s: BarSeries(int(pd.Timedelta("5s").value), 10_000) for s in ticks}
    live: dict[str, pd.DataFrame] = {}
    for sym, frame in ticks.items():
        for chunk in np.array_split(np.arange(len(frame)), 37):
            part = frame.iloc[chunk]
            store.append_ticks({sym: part})
            agg({sym: part})
            series[sym].update(np.asarray(part.index.asi8), part["price"].to_numpy(float),
                               part["trade_id"].to_numpy())
            prev = live.get(sym, pd.DataFrame(columns=BAR_COLUMNS))
            live[sym] = update_bars(prev, part, "15s", 100_000) if len(prev) else resample(part, "15s")[BAR_COLUMNS]
    agg.close()
    for sym, frame in ticks.items():
        pd.testing.assert_frame_equal(store.ohlcv(sym, "1m"), resample(frame, "1m"), check_exact=True,
                                      check_freq=False, check_names=False)
        want = resample(frame, "5s")["close"]
        s = series[sym]
        got = pd.Series(s.closes, index=pd.to_datetime(s.first + np.arange(len(s.closes)) * s.tf, utc=True))
        np.testing.assert_array_equal(got.to_numpy(), want.loc[got.index].to_numpy())
        want15 = resample(frame, "15s")[BAR_COLUMNS]
        np.testing.assert_array_equal(live[sym][["open", "high", "low", "close", "trades"]].to_numpy(float),
                                      want15[["open", "high", "low", "close", "trades"]].to_numpy(float))
