"""Recorded files of any venue read into frames keyed by instrument: spot and USD-M told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantify.ingest.load import load_files
from quantify.store import open_store
from quantify.venues.binance.recordings import detect_venue, sample_files
from quantify.venues.files import read_recorded

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(("name", "venue"), [
    ("mixed-2023-spot_btcusdt_20230405.trades.gz", "binance"),
    ("mixed-2023-usdm_btcusdt_20230405.trades.gz", "binance-usdm"),
    ("usdm-2024-btcusdt_20240808.trades.gz", "binance-usdm"),
    ("cryptofeed-BINANCE_FUTURES.ws.gz", "binance-usdm"),
    ("xrpeth_aggtrades_2019-10-11_13.json.gz", "binance"),
])
def test_the_market_of_a_recording_is_told_by_its_content(name, venue):
    assert detect_venue(DATA / name) == venue


def test_content_wins_over_a_misleading_name(tmp_path):
    spot = sample_files()[0]
    renamed = tmp_path / "usdm-looking-name.gz"
    renamed.write_bytes(spot.read_bytes())
    assert detect_venue(renamed) == "binance"


def test_csvs_by_header_and_columns(tmp_path):
    spot = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    spot.write_text("1,60000.1,0.5,30000.05,1723075200000,true,true\n")
    usdm = tmp_path / "BTCUSDT-trades-2024-08-09.csv"
    usdm.write_text("id,price,qty,quote_qty,time,is_buyer_maker\n1,60000.1,0.5,30000.05,1723075200000,true\n")
    assert detect_venue(spot) == "binance" and detect_venue(usdm) == "binance-usdm"
    assert list(read_recorded(usdm)[1]) == ["binance-usdm:BTCUSDT"]
    assert list(read_recorded(spot)[1]) == ["BTCUSDT"]


def test_load_puts_spot_and_usdm_recordings_under_their_instruments(lmdb_uri):
    store = open_store(lmdb_uri, create=True)
    usdm = DATA / "usdm-2024-btcusdt_20240808.trades.gz"
    result = load_files(store, [*sample_files(), usdm], progress=False)
    assert result.ok, result.summary()
    assert store.symbols() == ["BTCUSDT", "ETHUSDT", "binance-usdm:BTCUSDT"]
    assert len(store.ticks("binance-usdm:BTCUSDT")) == 3_000
    assert len(store.ticks("BTCUSDT")) == 19_904


def test_a_symbol_no_instrument_can_have_is_a_feed_error_naming_the_file(tmp_path):
    # Found by fuzzing: a recorded frame whose symbol is 40 characters long raised ValueError.
    from quantify.exceptions import FeedError

    bad = tmp_path / "bad.trades"
    bad.write_text('1723161600000000000 {"stream":"x@trade","data":{"e":"trade","E":2,"T":1,"s":"'
                   + "C" * 40 + '","t":7,"p":"1.0","q":"1.0","m":true,"M":true}}\n')
    with pytest.raises(FeedError, match="bad.trades.*is not a Binance symbol"):
        read_recorded(bad)
