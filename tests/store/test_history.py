"""Bulk load (merge by trade id), klines, and export against fresh stores."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantify.exceptions import FeedError, WriterLocked
from quantify.ingest.load import load_files, read_history_file
from quantify.store import WriterLock, open_store
from quantify.store.export import export
from quantify.store.merge import klines, merge_ticks
from quantify.venues.binance.recordings import read_trades, sample_files

BTC_FIRST, BTC_LAST = 3735683259, 3735703162


@pytest.fixture(scope="module")
def sample_ticks() -> dict[str, pd.DataFrame]:
    out: dict[str, list[pd.DataFrame]] = {}
    for path in sample_files():
        for sym, df in read_trades(path).items():
            out.setdefault(sym, []).append(df)
    return {s: pd.concat(v).sort_values("trade_id") for s, v in out.items()}


def _assert_clean(store, sym: str) -> pd.DataFrame:
    t = store.ticks(sym)
    assert t["trade_id"].is_unique
    assert t.index.is_monotonic_increasing
    key = pd.DataFrame({"t": t.index.asi8, "id": t["trade_id"].to_numpy()})
    assert key.sort_values(["t", "id"]).index.equals(key.index)  # sorted by (time, id)
    return t


def test_loading_the_sample_twice_stores_each_trade_once(lmdb_uri: str) -> None:
    store = open_store(lmdb_uri, create=True)
    first = load_files(store, sample_files(), progress=False)
    second = load_files(store, sample_files(), progress=False)
    assert first.ok and second.ok
    assert first.added == 19_904 + 14_515 and second.added == 0
    btc = _assert_clean(store, "BTCUSDT")
    assert len(btc) == 19_904
    assert (btc.trade_id.iloc[0], btc.trade_id.iloc[-1]) == (BTC_FIRST, BTC_LAST)
    assert (np.diff(btc.trade_id.to_numpy()) == 1).all()
    assert len(_assert_clean(store, "ETHUSDT")) == 14_515


def test_out_of_order_files_merge_to_the_same_data(sample_ticks, lmdb_uri: str) -> None:
    store = open_store(lmdb_uri, create=True)
    btc = [p for p in sample_files() if "btcusdt" in p.name]
    res = load_files(store, list(reversed(btc)), progress=False)  # 08-09 first, then 08-08
    assert res.ok and res.added == 19_904
    got = _assert_clean(store, "BTCUSDT")
    pd.testing.assert_frame_equal(got, sample_ticks["BTCUSDT"], check_freq=False)


def test_overlap_with_the_live_stream_and_gaps_add_nothing_twice(sample_ticks) -> None:
    store = open_store("mem://history-overlap")
    full = sample_ticks["BTCUSDT"]
    # "live" rows: the second half with a hole in the middle of it
    live = pd.concat([full.iloc[10_000:12_000], full.iloc[13_000:]])
    store.append_ticks({"BTCUSDT": live})
    # an overlapping chunk (older than the stored start, reaching into it)
    r1 = merge_ticks(store, "BTCUSDT", full.iloc[5_000:11_000])
    assert (r1.added, r1.merged, r1.duplicates) == (5_000, 5_000, 1_000)
    # the whole day: fills the head and the hole, appends nothing, duplicates nothing
    r2 = merge_ticks(store, "BTCUSDT", full.sample(frac=1.0, random_state=1))  # shuffled
    assert r2.added == 5_000 + 1_000 and r2.appended == 0
    got = _assert_clean(store, "BTCUSDT")
    pd.testing.assert_frame_equal(got, full, check_freq=False)
    assert merge_ticks(store, "BTCUSDT", full).added == 0


def test_rows_after_the_last_trade_are_appended(sample_ticks) -> None:
    store = open_store("mem://history-append")
    full = sample_ticks["ETHUSDT"]
    merge_ticks(store, "ETHUSDT", full.iloc[:7_000])
    r = merge_ticks(store, "ETHUSDT", full.iloc[6_000:])
    assert (r.appended, r.merged, r.duplicates) == (len(full) - 7_000, 0, 1_000)
    pd.testing.assert_frame_equal(_assert_clean(store, "ETHUSDT"), full, check_freq=False)


def _vision_csv(ticks: pd.DataFrame, *, us: bool = False) -> str:
    t = ticks.index.asi8 // (1_000 if us else 1_000_000)
    lines = [
        f"{i},{p:.8f},{q:.8f},{p * q:.8f},{tt},{m},True"
        for i, p, q, tt, m in zip(ticks.trade_id, ticks.price, ticks.qty, t, ticks.is_buyer_maker)
    ]
    return "\n".join(lines) + "\n"


def _with_checksum(path: Path, digest: str | None = None) -> Path:
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    Path(str(path) + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


def test_binance_vision_zip_with_checksum(sample_ticks, tmp_path: Path) -> None:
    btc = sample_ticks["BTCUSDT"]
    inner = "BTCUSDT-trades-2024-08-08.csv"
    zpath = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(inner, _vision_csv(btc.iloc[:8_000]))
    _with_checksum(zpath)
    us = tmp_path / "BTCUSDT-trades-2025-01-01.csv.gz"  # µs timestamps, gzipped
    us.write_bytes(gzip.compress(_vision_csv(btc.iloc[7_000:], us=True).encode()))
    store = open_store("mem://history-zip")
    res = load_files(store, [us, zpath], progress=False)
    assert res.ok, res.summary()
    assert res.files[1].checksum_verified and not res.files[0].checksum_verified
    got = _assert_clean(store, "BTCUSDT")
    assert len(got) == len(btc)
    np.testing.assert_array_equal(got.trade_id, btc.trade_id)
    np.testing.assert_array_equal(got.index.asi8, btc.index.asi8)
    np.testing.assert_array_equal(got.price, btc.price)


def test_bad_files_are_skipped_and_named(sample_ticks, tmp_path: Path) -> None:
    btc = sample_ticks["BTCUSDT"]
    good = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    good.write_text(_vision_csv(btc.iloc[:100]))
    corrupt = _with_checksum(tmp_path / "BTCUSDT-trades-2024-08-09.csv", "0" * 64)
    corrupt.write_text(_vision_csv(btc.iloc[100:200]))
    bad_line = tmp_path / "ETHUSDT-trades-2024-08-08.csv"
    bad_line.write_text("1,2.0,3.0,6.0,1723161255342,True,True\n2,2.0,x,6.0,1723161255343,True,True\n")
    agg = tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv"
    agg.write_text("100,61837.63,0.1,3735683259,3735683261,1723161255342,True,True\n")
    missing = tmp_path / "nope.csv"
    store = open_store("mem://history-bad")
    res = load_files(store, [good, corrupt, bad_line, agg, missing], progress=False)
    assert not res.ok
    assert [f.ok for f in res.files] == [True, False, False, False, False]
    errors = [f.error for f in res.skipped]
    assert "does not match" in errors[0] and str(corrupt) in errors[0]
    assert str(bad_line) in errors[1] and "line 2" in errors[1]
    assert "aggTrades" in errors[2] and str(agg) in errors[2]
    assert str(missing) in errors[3]
    assert len(store.ticks("BTCUSDT")) == 100


def _zip_header_changed(path: Path, changes: dict[int, bytes]) -> None:
    """Overwrite bytes of the central directory entry of ``path``'s one member (offset: bytes)."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    for field, value in changes.items():
        data[entry + field:entry + field + len(value)] = value
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("changes, match", [
    ({8: b"\x01"}, "encrypted"),  # general purpose flags
    ({10: b"\x63"}, "compression method is not supported"),  # method 99
    ({10: b"\x0c"}, "Invalid data stream"),  # bzip2 claimed over deflate data
    ({16: b"\0\0\0\0"}, "Bad CRC-32"),
    ({42: b"\x05\0\0\0"}, "Bad magic number"),  # local header offset
    ({9: b"\x08", 46: b"\xff"}, "can't decode"),  # name flagged UTF-8, and not UTF-8
])
def test_damaged_zip_is_a_feed_error(tmp_path: Path, changes: dict[int, bytes], match: str) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: zipfile's own errors escaped ``quantify load``."""
    zpath = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-trades-2024-08-08.csv", "1,2.0,3.0,6.0,1723161255342,True,True\n" * 100)
    _zip_header_changed(zpath, changes)
    with pytest.raises(FeedError, match=f"{zpath.name}: cannot unzip: .*{match}"):
        read_history_file(zpath)
    res = load_files(open_store("mem://history-damaged-zip"), [zpath], progress=False)
    assert not res.ok and str(zpath) in res.files[0].error


def test_zip_member_without_a_name_is_a_feed_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: ZipInfo.is_dir() raised IndexError on ''."""
    zpath = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(zipfile.ZipInfo(""), "1,2.0,3.0,6.0,1723161255342,True,True\n")
    with pytest.raises(FeedError, match="has no usable name"):
        read_history_file(zpath)


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    zpath = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-trades-2024-08-08.csv", b"0" * (64 << 20))  # 64 MiB in ~64 KiB
    with pytest.raises(FeedError, match="zip bomb"):
        read_history_file(zpath)


def test_journal_segments_load(tmp_path: Path) -> None:
    lines = gzip.decompress(sample_files()[0].read_bytes()).splitlines(keepends=True)
    seg = tmp_path / "journal-000001.log"
    seg.write_bytes(b"".join(lines[:500]))
    store = open_store("mem://history-journal")
    res = load_files(store, [seg, sample_files()[0]], progress=False)
    assert res.ok and res.files[0].added["BTCUSDT"] > 0
    assert store.ticks("BTCUSDT")["trade_id"].is_unique


def test_klines_csv(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-08-08.csv"
    path.write_text(
        "1723161240000,61837.63,61850.00,61800.00,61840.00,2.5,1723161299999,154600.0,42,1.5,92760.0,0\n"
        "1723161300000,61840.00,61840.00,61840.00,61840.00,0,1723161359999,0,0,0,0,0\n"
    )
    store = open_store("mem://history-klines")
    assert load_files(store, [path, path], progress=False).ok
    k = klines(store, "BTCUSDT", "1m")
    assert len(k) == 2 and k.trades.tolist() == [42, 0]
    assert k.vwap.iloc[0] == pytest.approx(154600.0 / 2.5) and k.vwap.iloc[1] == 61840.0
    assert k.index[0] == pd.Timestamp("2024-08-08 23:54", tz="UTC")


def test_load_refuses_while_a_writer_runs(lmdb_uri: str) -> None:
    store = open_store(lmdb_uri, create=True)
    with WriterLock(store.uri.uri, store.uri.path), pytest.raises(WriterLocked, match="writer"):
        load_files(store, sample_files()[:1], progress=False)
    assert load_files(store, sample_files()[:1], progress=False).ok


# -- export ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded():
    store = open_store("mem://history-export")
    load_files(store, sample_files(), progress=False)
    return store


def test_export_ticks_csv_is_inclusive_exclusive(loaded, tmp_path: Path) -> None:
    ticks = loaded.ticks("BTCUSDT")
    start, end = ticks.index[100], ticks.index[5_000]
    out = tmp_path / "btc.csv"
    n = export(loaded, "BTCUSDT", out, start=start, end=end)
    back = pd.read_csv(out, index_col="time")
    back.index = pd.to_datetime(back.index, utc=True)
    expected = ticks[(ticks.index >= start) & (ticks.index < end)]
    assert n == len(back) == len(expected)
    assert back.index[0] == start and back.index[-1] < end
    np.testing.assert_array_equal(back.trade_id, expected.trade_id)
    np.testing.assert_array_equal(back.price, expected.price)


def test_export_parquet_round_trips(loaded, tmp_path: Path) -> None:
    out = tmp_path / "eth.parquet"
    export(loaded, "ETHUSDT", out)
    pd.testing.assert_frame_equal(pd.read_parquet(out), loaded.ticks("ETHUSDT"), check_freq=False)


def test_export_ohlcv_matches_store_ohlcv(loaded) -> None:
    buf = io.BytesIO()
    n = export(loaded, "BTCUSDT", buf, kind="ohlcv", timeframe="5m", format="parquet")
    got = pd.read_parquet(io.BytesIO(buf.getvalue()))
    ref = loaded.ohlcv("BTCUSDT", "5m")
    assert n == len(ref) > 0
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())


def test_export_refuses_to_overwrite(loaded, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="exists"):
        export(loaded, "BTCUSDT", out)
    assert out.read_text() == "keep me"
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "target.csv")  # dangling: must not create the target
    with pytest.raises(FileExistsError):
        export(loaded, "BTCUSDT", link)
    assert not (tmp_path / "target.csv").exists()
    export(loaded, "BTCUSDT", out, overwrite=True, end="2024-08-08 23:55")
    assert out.read_text().startswith("time,price,qty,trade_id")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_export_rejects_bad_arguments(loaded, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        export(loaded, "BTCUSDT", io.BytesIO(), kind="bars")
    with pytest.raises(ValueError, match="format"):
        export(loaded, "BTCUSDT", io.BytesIO(), format="xlsx")
    with pytest.raises(ValueError, match="not after"):
        export(loaded, "BTCUSDT", io.BytesIO(), start="2024-08-09", end="2024-08-08")
