"""The ingestion service end to end, against the replay server on loopback.

The recording's facts: BTCUSDT 19,904 trades, ids 3735683259..3735703162 with
no gap; ETHUSDT 14,515 trades, ids 1520538925..1520553439.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import last_trades, stored_ids, wait_for

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService, stream_urls
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store

BTC = (19_904, 3735683259, 3735703162)
ETH = (14_515, 1520538925, 1520553439)




def assert_exact(uri: str) -> None:
    for symbol, (count, first, last) in (("BTCUSDT", BTC), ("ETHUSDT", ETH)):
        ids = stored_ids(uri, symbol)
        assert len(ids) == count, f"{symbol}: {len(ids)} trades stored, expected {count}"
        assert ids == list(range(first, last + 1)), f"{symbol}: ids not contiguous"


def complete(uri: str) -> bool:
    last = last_trades(uri)
    return last.get("BTCUSDT", (0,))[0] == BTC[2] and last.get("ETHUSDT", (0,))[0] == ETH[2]


def config(uri: str, replay: ReplayThread, **kw: object) -> IngestConfig:
    return IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
                        backoff_initial=0.2, backoff_min=0.2, backoff_max=1.0, **kw)


def ingest_replay(uri: str, replay_cfg: ReplayConfig, timeout: float = 120, **kw: object) -> IngestService:
    """Ingest a replay into ``uri`` until every recorded trade is stored; return the stopped service."""
    with ReplayThread(replay_cfg) as replay:
        cfg = config(uri, replay, **kw)
        service = IngestService(cfg, listeners=standard_listeners(open_store(uri, create=True), cfg))
        service.start_in_thread()
        try:
            assert wait_for(lambda: complete(uri), timeout)
        finally:
            service.join(timeout=10)
    assert_exact(uri)
    return service


def test_stream_urls_split_connections() -> None:
    cfg = IngestConfig(symbols=[f"S{i}USDT" for i in range(450)], streams_per_connection=200)
    urls = stream_urls(cfg)
    assert len(urls) == 3
    assert urls[0].startswith("wss://stream.binance.com:9443/stream?streams=s0usdt@trade/s1usdt@trade")
    assert urls[2].count("@trade") == 50


def test_full_speed_replay_stores_every_trade_once(lmdb_uri: str, ws_client: str) -> None:
    service = ingest_replay(lmdb_uri, ReplayConfig(speed=0), 60, ws_client=ws_client)
    status = service.status()
    assert status.state == "stopped" and status.trades_stored == BTC[0] + ETH[0]


def test_drops_and_corrupt_frames_lose_nothing(lmdb_uri: str, ws_client: str) -> None:
    service = ingest_replay(lmdb_uri, ReplayConfig(speed=40, drop_every=2.0, corrupt_fraction=0.05, seed=7),
                            ws_client=ws_client)
    status = service.status()
    print(f"\nfaults: reconnects={status.reconnects} malformed={status.malformed_frames} "
          f"backfilled={status.backfilled} (trades lost 0, duplicates 0)")
    assert status.reconnects >= 2
    assert status.malformed_frames > 100
    assert status.backfilled >= status.malformed_frames * 0.5


def test_server_shutdown_switches_connection(lmdb_uri: str, ws_client: str) -> None:
    service = ingest_replay(lmdb_uri, ReplayConfig(speed=40, shutdown_after=3.0, shutdown_grace=1.0),
                            rotation_overlap=0.5, ws_client=ws_client)
    assert service.status().server_shutdowns >= 1


def test_connection_rotation_overlap_drops_duplicates(lmdb_uri: str, ws_client: str) -> None:
    service = ingest_replay(lmdb_uri, ReplayConfig(speed=40), connection_max_age=3.0,
                            rotation_overlap=1.0, ws_client=ws_client)
    status = service.status()
    assert status.rotations >= 2
    assert sum(s.duplicates_dropped for s in status.instruments.values()) > 0


def test_second_writer_refuses(lmdb_uri: str) -> None:
    with ReplayThread(ReplayConfig(speed=1)) as replay:
        first = IngestService(config(lmdb_uri, replay))
        first.start_in_thread()
        try:
            second = IngestService(config(lmdb_uri, replay))
            with pytest.raises(WriterLocked, match=rf"already has a writer: pid {os.getpid()}"):
                second.start_in_thread()
            proc = subprocess.run(
                [sys.executable, "-m", "quantify", "ingest", "--store", lmdb_uri,
                 "--ws-url", replay.ws_url, "--rest-url", replay.rest_url, "--duration", "5"],
                capture_output=True, text=True, timeout=60,
            )
            assert proc.returncode == 2
            assert "already has a writer" in proc.stderr and "Traceback" not in proc.stderr
        finally:
            first.join(timeout=10)


def _ingest_process(uri: str, replay: ReplayThread, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quantify", "ingest", "--store", uri,
         "--ws-url", replay.ws_url, "--rest-url", replay.rest_url],
        stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


def test_sigkill_twice_loses_nothing(lmdb_uri: str, tmp_path: Path) -> None:
    """kill -9 the writer twice mid-replay; journal + REST backfill make it whole."""
    log = tmp_path / "ingest.log"
    with ReplayThread(ReplayConfig(speed=40, drop_every=3.0, corrupt_fraction=0.05, seed=3)) as replay:
        proc = _ingest_process(lmdb_uri, replay, log)
        try:
            for _ in range(2):
                assert wait_for(lambda: len(stored_ids(lmdb_uri, "BTCUSDT")) > 0, 60)
                time.sleep(2.5)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                time.sleep(0.5)
                proc = _ingest_process(lmdb_uri, replay, log)
            assert wait_for(lambda: complete(lmdb_uri), 120), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert_exact(lmdb_uri)


def test_writer_evaluates_alerts_once_through_the_real_stream(lmdb_uri: str) -> None:
    from quantify.alerts import price_below
    from quantify.venues.binance.recordings import read_trades, sample_files

    btc = read_trades(sample_files()[0])["BTCUSDT"]
    level = 61_700.0
    expected = int(btc.trade_id[btc.price <= level].iloc[0])  # first trade at or below the level
    store = open_store(lmdb_uri, create=True)
    store.alerts.add(price_below("BTCUSDT", level, severity="high", cooldown="1h"), check_symbols=False)
    service = ingest_replay(lmdb_uri, ReplayConfig(speed=0), 60)
    history = store.alerts.history()
    assert len(history) == 1
    assert int(history["trade_id"].iloc[0]) == expected
    assert service.status().listeners["alerts_fired"] == 1
