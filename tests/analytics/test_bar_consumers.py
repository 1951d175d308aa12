"""One bar kernel serves every consumer: the replay's klines, the store's 1m aggregate, the
alert engine's bar closes and the widgets' live bars equal ``resample`` on the recording."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import orjson
import pandas as pd
import pytest

from quantify.alerts._eval import BarSeries
from quantify.analytics import resample
from quantify.model.bars import bar_bounds, bars_of_units, limbs_to_ints, merge_candles
from quantify.replay.rest import RestApi
from quantify.store import open_store
from quantify.store.candles import CandleAggregator
from quantify.venues.binance.recordings import read_trades, sample_files
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
    store = open_store(f"lmdb://{tmp_path / 'store'}", create=True)
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
        # bit for bit, volumes included: the open bar is merged exactly (merge_candles)
        pd.testing.assert_frame_equal(live[sym], want15, check_exact=True, check_freq=False,
                                      check_names=False)


def test_bars_of_units_is_the_kernel_resample_uses(ticks) -> None:
    """Exact-unit bars, formatted back to floats, are resample's figures; empty bars give -1 rows."""
    frame = ticks["BTCUSDT"]
    ts = np.asarray(frame.index.asi8)
    step = int(pd.Timedelta("1m").value)
    bounds, bar_ids = bar_bounds(ts, step)
    pu = [int(Decimal(repr(x)) * 100) for x in frame["price"]]  # BTCUSDT: 2 price decimals
    qu = [int(Decimal(repr(x)) * 100_000) for x in frame["qty"]]  # and 5 qty decimals
    # an empty bar in the middle: its rows are -1, its sums zero
    cut = len(bounds) // 2
    bounds = np.insert(bounds, cut, bounds[cut])
    bars = bars_of_units(bounds, np.array(pu), np.array(qu), frame["is_buyer_maker"].to_numpy())
    assert bars.open_row[cut] == -1 and bars.trades[cut] == 0 and bars.volume[cut] == 0
    keep = np.arange(len(bounds) - 1) != cut
    want = resample(frame, "1m", fill=False)
    assert (bar_ids * step == want.index.asi8).all()
    price = frame["price"].to_numpy()
    np.testing.assert_array_equal(price[bars.high_row[keep]], want["high"].to_numpy())
    np.testing.assert_array_equal(price[bars.low_row[keep]], want["low"].to_numpy())
    np.testing.assert_array_equal(bars.trades[keep], want["trades"].to_numpy())
    np.testing.assert_array_equal(bars.volume[keep] / 1e5, want["volume"].to_numpy())
    quote = [q / 10**7 for q in limbs_to_ints(bars.quote_volume[keep])]
    np.testing.assert_array_equal(quote, want["quote_volume"].to_numpy())
    with pytest.raises(ValueError, match="non-decreasing"):
        bar_bounds(ts[::-1], step)
    with pytest.raises(ValueError, match="2\\*\\*52"):
        bars_of_units(np.array([0, 1]), np.array([1 << 52]), np.array([1]), np.array([True]))


def test_alert_closes_survive_silences_and_time_dips() -> None:
    rng = np.random.default_rng(3)
    tf = int(pd.Timedelta("1s").value)
    gaps = rng.exponential(2e8, 4000).astype(np.int64)
    gaps[1500] += 50 * tf  # longer than keep: history restarts
    t = 1_700_000_000 * 10**9 + np.cumsum(gaps)
    p = rng.uniform(100, 101, len(t))
    series = BarSeries(tf, 20)
    for part in np.array_split(np.arange(len(t)), 97):
        series.update(t[part], p[part], part)
    want = resample(pd.DataFrame({"price": p, "qty": 1.0, "is_buyer_maker": False},
                                 index=pd.to_datetime(t, utc=True)), "1s")["close"]
    got = want.index.asi8 >= series.first
    got &= want.index.asi8 <= series.last_closed
    np.testing.assert_array_equal(series.closes, want[got].to_numpy())
    # a trade stamped before the one ahead of it (id order) counts in that one's bar
    dip = BarSeries(10, 5)
    dip.update(np.array([1, 5, 12, 11, 25]), np.array([1.0, 2, 3, 4, 5]), np.arange(5))
    dip.update(np.array([24, 31]), np.array([6.0, 7]), np.arange(5, 7))
    assert (dip.first, dip.closes, dip.trig_t, dip.cur) == (0, [2.0, 4.0, 6.0], [12, 25, 31], 30)


def test_widget_bars_carry_on_across_quiet_bars(ticks) -> None:
    """Ticks of one bar after quiet ones (no trade between it and the open bar) extend the bars
    with flat bars, as ``resample`` does: a widget's frame usually holds one bar's ticks, and 1s
    bars kept failing ("candles spaced 2s do not nest into 1s") after a second without trades."""
    frame = ticks["ETHUSDT"].iloc[:3000]
    seconds = frame.index.floor("1s")
    assert (np.diff(seconds.unique().asi8) > 10**9).sum() >= 3  # quiet seconds in this stretch
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    live = resample(frame.iloc[:starts[1]], "1s")[BAR_COLUMNS]
    for a, b in zip(starts[1:], [*starts[2:], len(frame)]):
        live = update_bars(live, frame.iloc[a:b], "1s", 100_000)  # one bar's ticks per frame
    pd.testing.assert_frame_equal(live, resample(frame, "1s")[BAR_COLUMNS], check_exact=True, check_freq=False,
                                  check_names=False)


def test_candles_that_do_not_nest_are_still_refused(ticks) -> None:
    minute = resample(ticks["BTCUSDT"], "1m")
    with pytest.raises(ValueError, match="do not nest into '90s'"):
        merge_candles(minute, "90s")
    shifted = minute.iloc[::2].copy()
    shifted.index = shifted.index + pd.Timedelta("30s")  # two minutes apart, off the minute grid
    with pytest.raises(ValueError, match="do not nest"):
        merge_candles(shifted, "1m")
