"""Instruments in the store: spot and perpetual BTCUSDT side by side; older stores read as they are."""

from __future__ import annotations

import arcticdb as adb
import pandas as pd
import pytest

from quantify.exceptions import UnknownSymbol
from quantify.model import Instrument
from quantify.store import open_store
from quantify.store.merge import merge_ticks
from quantify.venues.binance.recordings import read_trades, sample_files

SPOT, PERP = "BTCUSDT", "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def spot_ticks() -> pd.DataFrame:
    frames = [read_trades(p)["BTCUSDT"] for p in sample_files() if "btcusdt" in p.name]
    return pd.concat(frames).sort_values("trade_id")


@pytest.fixture(scope="module")
def perp_ticks(request) -> pd.DataFrame:
    path = request.config.rootpath / "tests" / "data" / "usdm-2024-btcusdt_20240808.trades.gz"
    return read_trades(path)["BTCUSDT"]


def test_spot_and_perpetual_live_side_by_side(lmdb_uri, spot_ticks, perp_ticks):
    store = open_store(lmdb_uri, create=True)
    assert merge_ticks(store, SPOT, spot_ticks).added == 19_904
    assert merge_ticks(store, PERP, perp_ticks).added == len(perp_ticks) == 3_000
    assert store.symbols() == [SPOT, PERP]
    assert store.instruments() == [Instrument.parse(SPOT), Instrument.parse(PERP)]
    spot, perp = store.ticks(SPOT), store.ticks(Instrument.parse(PERP))
    assert len(spot) == 19_904 and len(perp) == 3_000
    assert spot["trade_id"].tolist() == spot_ticks["trade_id"].tolist()
    assert perp["trade_id"].tolist() == perp_ticks["trade_id"].tolist()
    # one spelling per instrument, whatever the case or the explicit default venue
    pd.testing.assert_frame_equal(store.ticks("binance:btcusdt"), spot)
    pd.testing.assert_frame_equal(store.ticks("BINANCE-USDM:btcusdt"), perp)
    assert store.has_ticks(PERP) and not store.has_ticks("binance-usdm:ETHUSDT")
    assert store.last_trade(PERP)[0] == int(perp_ticks["trade_id"].iloc[-1])
    assert store.ohlcv(PERP, "1m")["trades"].sum() == int(perp_ticks["is_market"].sum())
    assert store.ohlcv(SPOT, "1m")["trades"].sum() == 19_904


def test_an_unknown_instrument_is_named(lmdb_uri, spot_ticks):
    store = open_store(lmdb_uri, create=True)
    merge_ticks(store, SPOT, spot_ticks)
    with pytest.raises(UnknownSymbol, match="binance-usdm:BTCUSDT.*instruments: BTCUSDT"):
        store.ticks(PERP)
    with pytest.raises(ValueError, match="unknown venue 'kraken'"):
        store.ticks("kraken:XBTUSD")


def test_a_store_of_an_earlier_release_reads_as_it_is(tmp_path, spot_ticks):
    # Earlier releases wrote library "ticks", one ArcticDB symbol per Binance spot pair.
    path = tmp_path / "old"
    path.mkdir()
    arctic = adb.Arctic(f"lmdb://{path}")
    lib = arctic.get_library("ticks", create_if_missing=True)
    cols = ["price", "qty", "trade_id", "is_buyer_maker", "first_id", "last_id", "is_market"]
    lib.write("BTCUSDT", spot_ticks[cols].iloc[:5_000])
    del lib, arctic
    store = open_store(f"lmdb://{path}")
    assert store.symbols() == ["BTCUSDT"]
    assert store.instruments() == [Instrument("binance", Instrument.parse("BTCUSDT").market, "BTCUSDT")]
    assert len(store.ticks("binance:BTCUSDT")) == 5_000
    assert store.ohlcv("BTCUSDT", "1m")["trades"].sum() == 5_000


def test_alert_rules_and_widgets_take_the_same_instrument_text(lmdb_uri, spot_ticks, perp_ticks):
    from quantify import alerts
    from quantify.widgets import LiveChart

    store = open_store(lmdb_uri, create=True)
    merge_ticks(store, SPOT, spot_ticks)
    merge_ticks(store, PERP, perp_ticks)
    rule = alerts.zscore("btcusdt", "Binance-USDM:btcusdt", 2.5, timeframe="1m", window=20)
    assert rule.symbols == (SPOT, PERP)
    rid = store.alerts.add(rule)
    assert store.alerts.get(rid).symbols == (SPOT, PERP)
    with pytest.raises(ValueError, match="symbols: 'kraken:XBTUSD': unknown venue"):
        alerts.price_above("kraken:XBTUSD", 1.0)
    chart = LiveChart([SPOT, "binance-usdm:btcusdt"], store=store, timeframe="1m", autostart=False)
    try:
        assert chart.symbols == [SPOT, PERP]
    finally:
        chart.close()
