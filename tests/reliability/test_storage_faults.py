"""Storage faults: the S3 server goes away mid-stream and comes back.

The writer reaches the S3 server (moto, a subprocess) through a TCP proxy
subprocess; killing the proxy makes the endpoint reset and refuse
connections, restarting it on the same port brings the store back with its
data (moto keeps buckets in memory only, so moto itself cannot be
restarted; a SIGSTOPped moto makes ArcticDB's requests hang without error
for minutes; moto's in-process ``ThreadedMotoServer`` deadlocks with
ArcticDB in the same process). (An LMDB
store cannot be made unwritable here: the tests run as root, for whom file
permissions do not apply, and an LMDB file already open stays writable.)

While the store is down the writer keeps every received trade, retries with
backoff and reports ``degraded``; once it is back it catches up and nothing
is lost.
"""

from __future__ import annotations

import time

import pytest
from reliability_helpers import TcpProxy, wait_for

from quantify.config import IngestConfig
from quantify.feed.replay import ReplayConfig, ReplayThread
from quantify.ingest.service import IngestService
from quantify.store import open_store

BTC = ("BTCUSDT", 3735683259, 3735703162)
ETH = ("ETHUSDT", 1520538925, 1520553439)


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
                assert wait_for(lambda: service.status()["state"] == "degraded", 120), service.status()
                degraded_after = time.monotonic() - t_down
                time.sleep(3)
                down = service.status()
                # received trades are held (not dropped) while the store refuses them
                assert down["trades_received"] > down["trades_stored"]
            finally:
                proxy.start()
            t_up = time.monotonic()
            assert wait_for(lambda: service.state.value == "running"
                            and service.stored_next.get("BTCUSDT", 0) > BTC[2]
                            and service.stored_next.get("ETHUSDT", 0) > ETH[2], 180), service.status()
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
