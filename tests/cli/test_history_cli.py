"""``quantify load``, ``backfill`` and ``export`` end to end (exit codes, messages, output)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pandas as pd
import pytest
import websockets

from quantify.cli import main
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import WriterLock, open_store
from quantify.venues.binance.recordings import sample_files

SAMPLE = [str(p) for p in sample_files()]


def test_load_twice_then_export_to_stdout(lmdb_uri: str, capsysbinary) -> None:
    assert main(["load", *SAMPLE, "--store", lmdb_uri]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "34,419 added" in out and "BTCUSDT: 19,904 read, 19,904 added" in out
    assert main(["load", *SAMPLE, "--store", lmdb_uri]) == 0
    assert "0 added" in capsysbinary.readouterr().out.decode()
    assert main(["export", "BTCUSDT", "--store", lmdb_uri, "-o", "-",
                 "--start", "2024-08-09", "--end", "2024-08-09 00:01"]) == 0
    csv = capsysbinary.readouterr().out
    frame = pd.read_csv(io.BytesIO(csv))
    assert list(frame.columns[:4]) == ["time", "price", "qty", "trade_id"]
    times = pd.to_datetime(frame.time, utc=True)
    assert times.min() >= pd.Timestamp("2024-08-09", tz="UTC")
    assert times.max() < pd.Timestamp("2024-08-09 00:01", tz="UTC")
    assert len(frame) == len(open_store(lmdb_uri).ticks("BTCUSDT", "2024-08-09", "2024-08-09 00:01"))


def test_load_exit_code_1_when_a_file_is_skipped(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    bad.write_text("1,2.0,3.0,6.0,1723161255342,True,True\n2,oops,3.0,6.0,1723161255343,True,True\n")
    code = main(["load", SAMPLE[0], str(bad), "--store", "mem://cli-load-bad"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"skipped {bad}" in err and "line 2" in err


def test_load_says_a_writer_is_running(lmdb_uri: str, capsys) -> None:
    store = open_store(lmdb_uri, create=True)
    with WriterLock(store.uri.uri, store.uri.path):
        assert main(["load", SAMPLE[0], "--store", lmdb_uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already has a writer" in err[0]


def test_export_file_refuses_overwrite_unless_forced(lmdb_uri: str, tmp_path: Path, capsys) -> None:
    main(["load", *SAMPLE, "--store", lmdb_uri])
    out = tmp_path / "eth.parquet"
    assert main(["export", "ETHUSDT", "--kind", "ohlcv", "--timeframe", "1m",
                 "--store", lmdb_uri, "-o", str(out)]) == 0
    bars = pd.read_parquet(out)
    assert len(bars) == 12 and int(bars.trades.sum()) == 14_515
    capsys.readouterr()
    assert main(["export", "ETHUSDT", "--store", lmdb_uri, "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", "ETHUSDT", "--store", lmdb_uri, "-o", str(out), "--force"]) == 0
    assert len(pd.read_parquet(out)) == 14_515
    assert main(["export", "NOPE", "--store", lmdb_uri, "-o", str(tmp_path / "n.csv")]) == 2


async def _drain(url: str, count: int) -> None:
    async with websockets.connect(url, max_queue=None, close_timeout=2) as ws:
        for _ in range(count):
            await ws.recv()


def test_backfill_command(lmdb_uri: str, capsys) -> None:
    with ReplayThread(ReplayConfig(speed=0)) as replay:
        asyncio.run(asyncio.wait_for(_drain(replay.ws_url + "/ws/ethusdt@trade", 14_515), 60))
        args = ["backfill", "ETHUSDT", "--start", "2024-08-08 23:50", "--end", "2024-08-09 00:04",
                "--store", lmdb_uri, "--rest-url", replay.rest_url]
        assert main(args) == 0
        assert "complete" in capsys.readouterr().out
        assert main([*args[:-4], "--end", "2024-08-09 02:00", *args[-4:]]) == 1  # past the clock
        assert "incomplete" in capsys.readouterr().out
    ticks = open_store(lmdb_uri).ticks("ETHUSDT")
    assert ticks.trade_id.is_unique and len(ticks) == 14_515


@pytest.mark.parametrize("argv", [
    ["backfill", "BTCUSDT", "--start", "yesterday-ish", "--end", "now", "--store", "mem://x"],
    ["backfill", "BTCUSDT", "--start=-1h", "--end=-2h", "--store", "mem://x"],
])
def test_backfill_usage_errors(argv, capsys) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err
