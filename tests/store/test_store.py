"""The store facade: URIs, reads by time, clear errors, one writer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import quantify as qf
from quantify.exceptions import InvalidStoreURI, InvalidTime, UnknownSymbol, WriterLocked
from quantify.store import WriterLock, open_store, parse_store_uri, parse_time
from quantify.venues.binance.recordings import read_trades, sample_files


@pytest.fixture
def btc() -> pd.DataFrame:
    return read_trades(sample_files()[0])["BTCUSDT"]


def test_append_and_read_by_time(lmdb_uri: str, btc: pd.DataFrame) -> None:
    store = qf.open_store(lmdb_uri, create=True)
    store.append_ticks({"BTCUSDT": btc.iloc[:4000]})
    store.append_ticks({"BTCUSDT": btc.iloc[4000:]})
    assert store.symbols() == ["BTCUSDT"]
    pd.testing.assert_frame_equal(store.ticks("btcusdt"), btc)
    window = store.ticks("BTCUSDT", start="2024-08-08 23:58", end="2024-08-08T23:59:00Z")
    expected = btc[(btc.index >= "2024-08-08 23:58") & (btc.index < "2024-08-08 23:59")]
    pd.testing.assert_frame_equal(window, expected)
    d = store.describe("BTCUSDT")
    assert d["rows"] == len(btc) and d["last_id"] == int(btc.trade_id.iloc[-1])
    assert store.last_trades()["BTCUSDT"][0] == int(btc.trade_id.iloc[-1])
    store.compact("BTCUSDT")
    pd.testing.assert_frame_equal(store.ticks("BTCUSDT"), btc)


def test_same_instance_per_uri(lmdb_uri: str) -> None:
    assert open_store(lmdb_uri, create=True)._arctic is open_store(lmdb_uri)._arctic


def test_bad_inputs_have_clear_errors(lmdb_uri: str, btc: pd.DataFrame) -> None:
    store = open_store(lmdb_uri, create=True)
    store.append_ticks({"BTCUSDT": btc.iloc[:10]})
    with pytest.raises(UnknownSymbol, match="no ticks for 'DOGEUSDT'.*BTCUSDT"):
        store.ticks("DOGEUSDT")
    with pytest.raises(ValueError, match="not a Binance symbol"):
        store.ticks("BTC/USDT")
    with pytest.raises(InvalidTime, match="cannot read 'yesterdayish'"):
        store.ticks("BTCUSDT", start="yesterdayish")
    with pytest.raises(ValueError, match="not after start"):
        store.ticks("BTCUSDT", start="2024-08-09", end="2024-08-08")


@pytest.mark.parametrize("uri, match", [
    ("ftp://x", "unsupported store URI"),
    ("lmdb://", "has no path"),
    ("s3://bucket-only", "must look like"),
    ("  ", "empty"),
])
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(InvalidStoreURI, match=match):
        parse_store_uri(uri)


def test_lmdb_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidStoreURI, match="is a file"):
        parse_store_uri(str(tmp_path / "f"))


def test_s3_credentials_are_not_shown() -> None:
    uri = parse_store_uri("s3://127.0.0.1:bucket?port=9000&access=KEY&secret=SECRET")
    assert "SECRET" not in str(uri) and "SECRET" in uri.arctic_uri


def test_times() -> None:
    now = pd.Timestamp("2024-08-09 00:00", tz="UTC")
    assert parse_time("-6h", now=now) == pd.Timestamp("2024-08-08 18:00", tz="UTC")
    assert parse_time("-15m", now=now) == pd.Timestamp("2024-08-08 23:45", tz="UTC")
    assert parse_time("now", now=now) == now
    assert parse_time("2024-08-08 23:55") == pd.Timestamp("2024-08-08 23:55", tz="UTC")
    assert parse_time(pd.Timestamp("2024-08-08 23:55", tz="Europe/Paris")).tzname() == "UTC"
    assert parse_time(1723161255342) == pd.Timestamp(1723161255342, unit="ms", tz="UTC")
    assert parse_time(None) is None
    for bad in ("soon", "-5 parsecs", True):
        with pytest.raises(InvalidTime):
            parse_time(bad)  # type: ignore[arg-type]


def test_one_writer_per_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with WriterLock(f"lmdb://{path}", path):
        with pytest.raises(WriterLocked, match=r"already has a writer: pid \d+"):
            WriterLock(f"lmdb://{path}", path).acquire()
    WriterLock(f"lmdb://{path}", path).acquire().release()
    with WriterLock("mem://x", None):
        with pytest.raises(WriterLocked):
            WriterLock("mem://x", None).acquire()
