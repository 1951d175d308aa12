"""A shared S3 store (moto on loopback): ingest, read, status, sharded workers, takeover.

The recording's facts (see tests/ingest/test_service.py): BTCUSDT 19,904
trades, ids 3735683259..3735703162; ETHUSDT 14,515, ids 1520538925..1520553439.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from reliability_helpers import S3_ACCESS, S3_SECRET, wait_for

from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store

BTC = ("BTCUSDT", 19_904, 3735683259, 3735703162)
ETH = ("ETHUSDT", 14_515, 1520538925, 1520553439)


def ids(uri: str, symbol: str) -> list[int]:
    store = open_store(uri, create=True)
    if symbol not in store.symbols():
        return []
    return store.ticks(symbol)["trade_id"].tolist()


def last_id(uri: str, symbol: str) -> int:
    return open_store(uri, create=True).last_trades().get(symbol, (0,))[0]


def assert_exact(uri: str, *symbols: tuple[str, int, int, int]) -> None:
    for symbol, count, first, last in symbols:
        got = ids(uri, symbol)
        assert got == list(range(first, last + 1)), (
            f"{symbol}: {len(got)} trades stored ({len(set(got))} distinct), expected {count}")


def ingest(uri: str, replay: ReplayThread, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quantify", "-v", "ingest", "--store", uri, "--ws-url", replay.ws_url,
         "--rest-url", replay.rest_url, *args],
        stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


def status_json(uri: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", uri, "--json"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stdout + proc.stderr


def stop(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]


def leases(uri: str) -> dict[str, str]:
    from quantify.store.shard import read_leases

    return {lease.symbol: lease.owner for lease in read_leases(open_store(uri, create=True)) if lease.alive()}


def test_sharded_workers_status_refusal_takeover_and_no_secret(s3_uri: str, tmp_path: Path) -> None:
    """Worker A owns BTCUSDT; B asks for ETHUSDT,BTCUSDT and gets ETHUSDT; C (BTCUSDT only) refuses.

    A is killed; after its lease expires B takes BTCUSDT over and fills the hole
    over REST: BTCUSDT's ids are then complete. ``quantify status`` shows owners
    and lease ages; the S3 secret appears in no output.
    """
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    # speed 10: the 11-minute recording lasts 66 s, so A is still streaming when it is
    # killed after the checks below, which take some 30 s on a loaded 2-core machine
    with ReplayThread(ReplayConfig(speed=10, seed=1)) as replay:
        a = ingest(s3_uri, replay, log_a, "--symbols", "BTCUSDT", "--lease-ttl", "6")
        b = None
        try:
            assert wait_for(lambda: "BTCUSDT" in leases(s3_uri), 60, 0.3), log_a.read_text()[-3000:]
            b = ingest(s3_uri, replay, log_b, "--symbols", "ETHUSDT,BTCUSDT", "--lease-ttl", "6")
            assert wait_for(lambda: "ETHUSDT" in leases(s3_uri), 60, 0.3), log_b.read_text()[-3000:]
            assert wait_for(lambda: "skipping BTCUSDT" in log_b.read_text(), 10), log_b.read_text()
            # a worker asking only for owned symbols refuses with one clear line
            c = subprocess.run(
                [sys.executable, "-m", "quantify", "ingest", "--store", s3_uri, "--symbols", "BTCUSDT",
                 "--ws-url", replay.ws_url, "--rest-url", replay.rest_url, "--duration", "5"],
                check=False, capture_output=True, text=True, timeout=120)
            assert c.returncode == 2, c.stdout + c.stderr
            assert "BTCUSDT owned by" in c.stderr and "Traceback" not in c.stderr
            status, text = status_json(s3_uri)
            assert status["sharded"] and status["writer_alive"]
            owners = {s["symbol"]: s for s in status["symbols"]}
            assert owners["BTCUSDT"]["owner"] != owners["ETHUSDT"]["owner"]
            assert 0 <= owners["BTCUSDT"]["lease_age_s"] < 6
            assert len([w for w in status["workers"] if w["alive"]]) == 2
            human = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", s3_uri],
                                   check=False, capture_output=True, text=True, timeout=120)
            assert owners["BTCUSDT"]["owner"] in human.stdout and "lease age" in human.stdout
            a.send_signal(signal.SIGKILL)
            a.wait(10)
            killed_at = last_id(s3_uri, "BTCUSDT")
            assert wait_for(lambda: last_id(s3_uri, "BTCUSDT") == BTC[3]
                            and last_id(s3_uri, "ETHUSDT") == ETH[3], 180, 0.5), log_b.read_text()[-3000:]
            after, text_after = status_json(s3_uri)
        finally:
            if a.poll() is None:
                a.kill()
            if b is not None:
                stop(b, log_b)
    assert killed_at < BTC[3], "A was killed after the replay ended; the takeover was not exercised"
    assert_exact(s3_uri, BTC)
    eth = ids(s3_uri, "ETHUSDT")  # B joined late: ETHUSDT starts where B started
    assert eth == list(range(eth[0], ETH[3] + 1))
    (alive,) = [w for w in after["workers"] if w["alive"]]
    assert alive["owned"] == ["BTCUSDT", "ETHUSDT"]
    assert "took over" in log_b.read_text()
    # a clean stop releases the leases at once
    assert leases(s3_uri) == {}
    record = open_store(s3_uri).worker_statuses()
    outputs = (log_a.read_text(), log_b.read_text(), c.stdout + c.stderr, text, text_after,
               human.stdout + human.stderr, json.dumps(record, default=str))
    for out in outputs:
        assert S3_SECRET not in out and S3_ACCESS not in out
