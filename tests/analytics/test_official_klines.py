"""Candles equal Binance's own klines: the recorded USD-M session of ``qf.datasets.kline_session()``."""

from __future__ import annotations

import pandas as pd
import pytest

import quantify as qf
from quantify.datasets import KlineSession, kline_session

FIELDS = ["open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
          "taker_buy_quote_volume"]


@pytest.fixture(scope="module")
def session() -> KlineSession:
    return kline_session()


def test_session_holds_trades_and_kline_pushes(session: KlineSession) -> None:
    assert sorted(session.ticks) == [f"binance-usdm:{s}" for s in ("AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT")]
    assert sum(len(t) for t in session.ticks.values()) == 91
    k = session.klines
    assert len(k) == 67 and set(k["symbol"]) == set(session.ticks)
    assert k["closed"].sum() == 4  # one final push per symbol, for the 22:25 bar
    assert (k["first_id"] > 0).all() and (k["last_id"] >= k["first_id"]).all()
    assert str(k["open_time"].dt.tz) == "UTC" and k["trades"].dtype == "int64"
    first = k.iloc[0]  # CTKUSDT's first push, as Binance sent it
    assert (first["first_id"], first["last_id"], first["trades"], first["volume"]) == (23961275, 23961322, 48, 3917.0)


def test_every_rebuildable_push_equals_the_candle_of_its_trades(session: KlineSession) -> None:
    compared = 0
    for push in session.klines.itertuples():
        t = session.ticks[push.symbol]
        # rebuildable: its bar opened inside the capture and it ends on an aggregate trade's boundary
        if push.first_id not in set(t["first_id"]) or push.last_id not in set(t["last_id"]):
            continue
        covered = t[(t["first_id"] >= push.first_id) & (t["last_id"] <= push.last_id)]
        bar = qf.resample(covered, "1m").loc[push.open_time]
        assert {f: bar[f] for f in FIELDS} == {f: getattr(push, f) for f in FIELDS}, push
        compared += 1
    assert compared == 15


def test_closed_bars_grow_by_the_candle_of_the_trades_in_between(session: KlineSession) -> None:
    k = session.klines
    for symbol, pushes in k[k["open_time"] == pd.Timestamp("2021-07-22 22:25", tz="UTC")].groupby("symbol"):
        t = session.ticks[symbol]
        first = pushes[pushes["last_id"].isin(t["last_id"])].iloc[0]
        final = pushes[pushes["closed"]].iloc[0]
        between = qf.resample(t[(t["first_id"] > first.last_id) & (t["last_id"] <= final.last_id)], "1m").iloc[0]
        assert between["close"] == final["close"]
        for f in ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume"):
            assert between[f] == pytest.approx(final[f] - first[f], rel=1e-12, abs=1e-9), (symbol, f)
