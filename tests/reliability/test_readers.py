"""Readers in other processes: freshness (LMDB within 1 s) and 20 concurrent readers.

The writer runs in this process (the ingestion service in a thread); readers
are separate ``python`` processes polling the same LMDB store, as notebooks
and Voilà kernels do. Readers see a new append once their cached idea of the
latest version expires: ``qf.open_store(read_cache_seconds=0.2)`` by default
(ArcticDB's ``VersionMap.ReloadInterval``; 2 s in ArcticDB itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
from reliability_helpers import wait_for

from quantify.config import IngestConfig
from quantify.ingest.service import IngestService
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread

READER = r"""
import json, sys, time
import quantify as qf
uri, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
store = qf.open_store(uri)
polls = errors = 0
seen = []
deadline = time.time() + seconds
while time.time() < deadline:
    try:
        last = store.last_trades()
        if mode == "ticks" and "BTCUSDT" in last:
            store.ticks("BTCUSDT").tail(5)
        if "BTCUSDT" in last:
            seen.append((time.time(), last["BTCUSDT"][0]))
        polls += 1
    except Exception as exc:
        errors += 1
        print("reader error:", repr(exc), file=sys.stderr)
    time.sleep(0.05 if mode == "latency" else 0.1)
print(json.dumps({"polls": polls, "errors": errors, "seen": seen[-2000:] if mode == "latency" else []}))
"""


def _reader(uri: str, seconds: float, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", READER, uri, str(seconds), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _service(uri: str, replay: ReplayThread) -> IngestService:
    return IngestService(IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
                                      symbols=("BTCUSDT", "ETHUSDT"), alerts=False))


def test_lmdb_reader_in_another_process_sees_trades_within_a_second(lmdb_uri: str) -> None:
    lags = reader_lags(lmdb_uri)
    print(f"\nLMDB reader lag over {len(lags)} appends: median {np.median(lags) * 1000:.0f} ms, "
          f"p95 {np.quantile(lags, 0.95) * 1000:.0f} ms, max {lags.max() * 1000:.0f} ms")
    assert len(lags) >= 20
    assert np.quantile(lags, 0.95) < 1.0


def test_s3_reader_in_another_process_sees_trades_within_two_seconds(s3_uri: str) -> None:
    lags = reader_lags(s3_uri)
    print(f"\nS3 (moto) reader lag over {len(lags)} appends: median {np.median(lags) * 1000:.0f} ms, "
          f"p95 {np.quantile(lags, 0.95) * 1000:.0f} ms, max {lags.max() * 1000:.0f} ms")
    assert len(lags) >= 5
    assert np.quantile(lags, 0.95) < 2.0


def reader_lags(uri: str) -> np.ndarray:
    """Seconds from each append (writer in this process) to a reader process seeing it."""
    lmdb_uri = uri
    appended: list[tuple[float, int]] = []
    with ReplayThread(ReplayConfig(speed=20)) as replay:
        service = _service(lmdb_uri, replay)
        service.add_batch_listener(
            lambda frames: "BTCUSDT" in frames
            and appended.append((time.time(), int(frames["BTCUSDT"]["trade_id"].iloc[-1]))))
        service.start_in_thread()
        try:
            reader = _reader(lmdb_uri, 8, "latency")
            out, err = reader.communicate(timeout=120)
        finally:
            service.join(timeout=30)
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert result["errors"] == 0, err
    seen = np.array(result["seen"])
    lags = []
    for t_app, tid in appended:
        later = seen[(seen[:, 1] >= tid) & (seen[:, 0] >= t_app - 0.001)]
        if len(later) and seen[0, 0] < t_app:  # only appends the reader was already polling for
            lags.append(later[0, 0] - t_app)
    return np.array(lags)


def test_twenty_reader_processes_while_ingesting_at_full_speed(lmdb_uri: str) -> None:
    with ReplayThread(ReplayConfig(speed=0, loop=True)) as replay:
        service = _service(lmdb_uri, replay)
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.stats.stored > 0, 60)
            readers = [_reader(lmdb_uri, 4, "ticks" if i % 2 else "last") for i in range(20)]
            results = []
            for r in readers:
                out, err = r.communicate(timeout=180)
                assert r.returncode == 0, err[-2000:]
                results.append((json.loads(out), err))
            stored = service.stats.stored
        finally:
            service.join(timeout=60)
    errors = sum(r["errors"] for r, _ in results)
    polls = sum(r["polls"] for r, _ in results)
    print(f"\n20 readers: {polls} polls, {errors} errors, while {stored} trades were stored")
    assert errors == 0, [e for _, e in results if e][:3]
    assert all(r["polls"] > 0 for r, _ in results)
    assert service.status().to_dict()["store_errors"] == 0
