"""Readers for every recorded format, checked against facts about the captures."""

from __future__ import annotations

import decimal
import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from quantify.exceptions import FeedError
from quantify.venues.binance.recordings import (
    detect_format,
    read_csv_trades,
    read_frames,
    read_trades,
    sample_files,
)


def test_bundled_sample_is_complete() -> None:
    trades: dict[str, list] = {}
    for path in sample_files():
        for sym, df in read_trades(path).items():
            trades.setdefault(sym, []).append(df)
    btc = sorted(int(i) for df in trades["BTCUSDT"] for i in df.trade_id)
    eth = sorted(int(i) for df in trades["ETHUSDT"] for i in df.trade_id)
    # Facts of the capture (see quantify/data/README.md).
    assert len(btc) == 19_904 and btc[0] == 3735683259 and btc[-1] == 3735703162
    assert btc == list(range(btc[0], btc[-1] + 1))
    assert len(eth) == 14_515 and eth == list(range(eth[0], eth[-1] + 1))


def test_ns_stream_format(data_dir: Path) -> None:
    path = data_dir / "usdm-2024-btcusdt_20240808.trades.gz"
    assert detect_format(path) == "stream"
    ns, frame = next(read_frames(path))
    assert 1.7e18 < ns < 1.8e18 and frame.startswith("{")
    df = read_trades(path)["BTCUSDT"]
    assert len(df) == 3000 and df.is_market.all()


def test_us_stream_format_and_insurance_fund(data_dir: Path) -> None:
    path = data_dir / "mixed-2023-usdm_btcusdt_20230405.trades.gz"
    ns, _ = next(read_frames(path))
    assert 1.6e18 < ns < 1.7e18  # µs in the file, ns out
    df = read_trades(path)["BTCUSDT"]
    assert (~df.is_market).sum() == 1


def test_cryptofeed_session(data_dir: Path) -> None:
    path = data_dir / "cryptofeed-BINANCE_FUTURES.ws.gz"
    assert detect_format(path) == "cryptofeed"
    frames = list(read_frames(path))
    assert 1.6e18 < frames[0][0] < 1.7e18 and len(frames) == 158
    trades = read_trades(path)
    assert set(trades) >= {"CTKUSDT", "SUSHIUSDT"}
    ctk = trades["CTKUSDT"]
    assert ctk.trade_id.is_monotonic_increasing and (ctk.last_id >= ctk.first_id).all()


def test_rest_json_aggregate_trades(data_dir: Path) -> None:
    path = data_dir / "xrpeth_aggtrades_2019-10-11_13.json.gz"
    assert detect_format(path) == "rest-json"
    df = read_trades(path)["XRPETH"]
    assert len(df) == 12_477 and df.trade_id.iloc[0] == 13519807 and df.trade_id.iloc[-1] == 13532283


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_binance_vision_csvs(tmp_path: Path) -> None:
    spot_ms = _write(tmp_path / "BTCUSDT-trades-2024-08-08.csv",
                     "3735683259,61837.63000000,0.02000000,1236.7526,1723161255342,True,True\n"
                     "3735683260,61837.63000000,0.04800000,2968.2062,1723161255617,True,True\n")
    spot_us = _write(tmp_path / "BTCUSDT-trades-2025-01-01.csv",
                     "4000000000,93000.1,0.5,46500.05,1735689600000123,False,True\n")
    agg = _write(tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv",
                 "100,61837.63,0.1,3735683259,3735683261,1723161255342,True,True\n")
    futures = _write(tmp_path / "BTCUSDT-trades-2024-08-08-um.csv",
                     "id,price,qty,quote_qty,time,is_buyer_maker\n5266583935,61800.30,0.006,370.8,1723161256322,false\n")
    a = read_csv_trades(spot_ms)
    assert list(a.trade_id) == [3735683259, 3735683260] and a.is_buyer_maker.all()
    assert a.index[0].value == 1723161255342 * 1_000_000
    b = read_csv_trades(spot_us)
    assert b.index[0].value == 1735689600000123 * 1000 and not b.is_buyer_maker.iloc[0]
    c = read_csv_trades(agg)
    assert (c.first_id.iloc[0], c.last_id.iloc[0]) == (3735683259, 3735683261)
    d = read_csv_trades(futures)
    assert d.trade_id.iloc[0] == 5266583935 and d.qty.iloc[0] == 0.006
    assert list(read_trades(spot_ms)) == ["BTCUSDT"]


def test_prices_and_quantities_are_exact_in_1e8_units() -> None:
    path = sample_files()[0]
    df = read_trades(path)["BTCUSDT"]
    qtys = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            qtys.append(decimal.Decimal(orjson.loads(line.split(" ", 1)[1])["data"]["q"]))
    exact = sum(qtys)
    units = (df.qty * 1e8).round().astype("int64").sum()
    assert decimal.Decimal(int(units)) / decimal.Decimal(10**8) == exact


@pytest.mark.parametrize("content", ["", "hello world\n", "12 34\n"])
def test_unrecognised_files_raise_feed_error(tmp_path: Path, content: str) -> None:
    path = _write(tmp_path / "x.txt", content)
    with pytest.raises(FeedError):
        read_trades(path)


def test_missing_file_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="cannot read"):
        detect_format(tmp_path / "nope.gz")


def test_csv_with_ragged_rows_is_a_feed_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: locating the bad line raised KeyError."""
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_bytes(
        b'17231612553430000,0 {"stream":"btcusdt@trade","data":{"e":"trade","161255617,"m":true,"M":tru[}}\n'
        b'1723161255343000000 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255619,"s":"BTCUSDT",'
        b'"t":373568320 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255619,"s":"BTCUSDT",'
        b'"t":3735683260,"p":"61837.63000000","q":"0.04800000","T":1723161255617,"m":true,"M":tru[}}\n'
        b'1723161255343000000 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255619,"s":"BTCUSDT",'
        b'"t":3735683261,"p":"61837.63000000","q":"0.00009000","T":1723161255617,"m":true,"M":true}}\n'
    )
    with pytest.raises(FeedError, match="BTCUSDT-trades-2024-08-08.csv: not a Binance CSV"):
        read_trades(path)


def test_damaged_gzip_is_a_feed_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: a gzip header over garbage raised BadGzipFile."""
    path = tmp_path / "spot-2024-btcusdt_20240808.trades.gz"
    path.write_bytes(b"\x1f\x8b" + b"not a deflate stream" * 10)
    with pytest.raises(FeedError, match="cannot read"):
        read_trades(path)
    truncated = tmp_path / "spot-2024-ethusdt_20240808.trades.gz"
    lines = b"".join(b'%d {"stream":"btcusdt@trade","data":{"t":%d}}\n' % (1723161255343000000 + i * 7919, i * 31)
                     for i in range(5000))
    truncated.write_bytes(gzip.compress(lines)[:2000])
    with pytest.raises(FeedError, match="cannot read"):
        list(read_frames(truncated))


@pytest.mark.parametrize("stamp", ["1e999:", "-1e400:", "nan:", "inf:"])
def test_cryptofeed_line_without_a_finite_receive_time_is_skipped(tmp_path: Path, stamp: str) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: ``1e758789136:`` raised OverflowError."""
    frame = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255619,"s":"BTCUSDT",'
             '"t":3735683261,"p":"61837.63","q":"0.00009","T":1723161255617,"m":true,"M":true}}')
    path = tmp_path / "btcusdt.ws"
    path.write_text(f"1723161255.5: {frame}\n{stamp} {frame}\n")
    assert [ns for ns, _ in read_frames(path)] == [1723161255_500000000]


@pytest.mark.parametrize("row, match", [
    ("3735683261,61837.63,0.00009,5.5653867,17231612556157,True,True", "line 2: time 17231612556157"),
    ("3735683261,61837.63,0.00009,5.5653867,9300000000000000,True,True", "line 2: time 9300000000000000"),
    ("3735683261,61837.63,0.00009,5.5653867,-1,True,True", "line 2: time -1"),
    ("-3735683261,61837.63,0.00009,5.5653867,1723161255617,True,True", "line 2: trade id -3735683261"),
])
def test_csv_time_or_id_out_of_range_is_a_feed_error(tmp_path: Path, row: str, match: str) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: a time past 2262 wrapped around to 1931."""
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text(f"3735683260,61837.63,0.048,2968.20624,1723161255617,True,True\n{row}\n")
    with pytest.raises(FeedError, match=f"BTCUSDT-trades-2024-08-08.csv: {match} is out of range"):
        read_csv_trades(path)


def test_compression_is_read_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: a plain CSV named .zip raised BadZipFile."""
    row = "3735683260,61837.63,0.048,2968.20624,1723161255617,True,True\n"
    plain = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    plain.write_text(row + "3735683261,61837.63,x,1,1723161255617,True,True\n")
    with pytest.raises(FeedError, match="line 2"):
        read_csv_trades(plain)
    packed = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    packed.write_bytes(gzip.compress(row.encode()))
    assert read_csv_trades(packed)["trade_id"].tolist() == [3735683260]


def test_csv_exponent_beyond_int32_is_a_feed_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/fuzz_recordings.py: pandas.to_numeric, which located the bad line,
    crashed the process (SIGSEGV, pandas 2.3) on such an exponent. A child process holds it."""
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text("379,6100,0.02,1,1723161255617,True,True\n"
                    "380,6100,0.02,1,1723161e2551255617,True,True\n")
    code = ("import sys; from quantify.venues.binance.recordings import read_csv_trades\n"
            "try:\n    read_csv_trades(sys.argv[1])\nexcept Exception as exc:\n    print(repr(exc))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FeedError" in done.stdout and "line 2" in done.stdout, done.stdout
