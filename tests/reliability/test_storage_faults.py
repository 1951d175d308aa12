"""Storage faults: a full disk under an LMDB store; the S3 server goes away and comes back.

The LMDB store sits on its own small tmpfs (mounting needs root, as the
tests here have; otherwise the test is skipped and says why). A ballast
file fills the disk to the last byte mid-stream, then is deleted.

The writer reaches the S3 server (moto, a subprocess) through a TCP proxy
subprocess; killing the proxy makes the endpoint reset and refuse
connections, restarting it on the same port brings the store back with its
data (moto keeps buckets in memory only, so moto itself cannot be
restarted; a SIGSTOPped moto makes ArcticDB's requests hang without error
for minutes; moto's in-process ``ThreadedMotoServer`` deadlocks with
ArcticDB in the same process). (File
permissions cannot make a store unwritable here: the tests run as root.)

While the store is down the writer keeps every received trade, retries with
backoff and reports ``degraded``; once it is back it catches up and nothing
is lost.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import TcpProxy, wait_for

from quantify.config import IngestConfig
from quantify.ingest.service import IngestService
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store

BTC = ("BTCUSDT", 3735683259, 3735703162)
ETH = ("ETHUSDT", 1520538925, 1520553439)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 160 MB tmpfs of its own, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until the disk is full; bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as fh:
        block = b"\0" * (1 << 20)
        try:
            while True:
                n += fh.write(block)
        except OSError:
            pass
        try:  # the last, partial megabyte
            while True:
                n += fh.write(b"\0" * 4096)
        except OSError:
            pass
    return n


def test_lmdb_disk_full_degrades_then_catches_up_losing_nothing(small_disk: Path) -> None:
    uri = f"lmdb://{small_disk}/store"
    with ReplayThread(ReplayConfig(speed=40)) as replay:
        service = IngestService(IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
                                             alerts=False))
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.stats.stored > 2000, 60)
            ballast = small_disk / "ballast"
            filled = _fill(ballast)
            assert os.statvfs(small_disk).f_bavail == 0
            t_full = time.monotonic()
            assert wait_for(lambda: service.status().to_dict()["state"] == "degraded", 30), service.status().to_dict()
            time.sleep(2)
            down = service.status().to_dict()
            assert down["trades_received"] > down["trades_stored"]  # held, not dropped
            degraded_s = time.monotonic() - t_full
            ballast.unlink()
            assert wait_for(lambda: service.state.value == "running"
                            and service.stored_next.get("BTCUSDT", 0) > BTC[2]
                            and service.stored_next.get("ETHUSDT", 0) > ETH[2], 120), service.status().to_dict()
            final = service.status().to_dict()
        finally:
            service.join(30)
    store = open_store(uri)
    for sym, first, last in (BTC, ETH):
        ids = store.ticks(sym)["trade_id"].to_numpy()
        assert ids[0] == first and ids[-1] == last and len(ids) == last - first + 1, sym
        assert (np.diff(ids) == 1).all(), f"{sym}: a gap or a duplicate"
    print(f"\nlmdb disk full: {filled / 2**20:.0f} MB ballast filled the disk; degraded "
          f"{degraded_s:.1f} s with {down['trades_received'] - down['trades_stored']:,} trades held; "
          f"journal write failures {final['journal_errors']:,}, store errors {final['store_errors']}; "
          f"stored {BTC[2] - BTC[1] + 1 + ETH[2] - ETH[1] + 1:,} trades, lost 0, duplicates 0")


@pytest.mark.slow  # ~75 s: ArcticDB retries a refused S3 request for ~25-50 s before it fails
def test_s3_outage_degrades_then_catches_up_losing_nothing(moto_server, s3_uri: str) -> None:
    proxy = TcpProxy(moto_server.port)
    proxy.start()
    s3_uri = s3_uri.replace(f"port={moto_server.port}", f"port={proxy.port}")
    with ReplayThread(ReplayConfig(speed=25)) as replay:
        service = IngestService(IngestConfig(
            store=s3_uri, ws_url=replay.ws_url, rest_url=replay.rest_url, backoff_initial=0.2,
            backoff_min=0.2, backoff_max=1.0, alerts=False, lease_ttl=60))
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.stats.stored > 1000, 60)
            proxy.kill()  # the store goes away: connections reset, then refused
            t_down = time.monotonic()
            try:
                assert wait_for(lambda: service.status().to_dict()["state"] == "degraded", 120), service.status().to_dict()
                degraded_after = time.monotonic() - t_down
                time.sleep(3)
                down = service.status().to_dict()
                # received trades are held (not dropped) while the store refuses them
                assert down["trades_received"] > down["trades_stored"]
            finally:
                proxy.start()
            t_up = time.monotonic()
            assert wait_for(lambda: service.state.value == "running"
                            and service.stored_next.get("BTCUSDT", 0) > BTC[2]
                            and service.stored_next.get("ETHUSDT", 0) > ETH[2], 180), service.status().to_dict()
            recovered_after = time.monotonic() - t_up
        finally:
            service.join(timeout=30)
    store = open_store(s3_uri)
    for sym, first, last in (BTC, ETH):
        assert store.ticks(sym)["trade_id"].tolist() == list(range(first, last + 1)), sym
    print(f"\nS3 outage: degraded {degraded_after:.1f} s after the store stopped answering; "
          f"{down['store_errors']} failed appends retried; caught up {recovered_after:.1f} s "
          f"after it came back; trades lost 0, duplicates 0")
    assert down["store_errors"] >= 1
    proxy.kill()
