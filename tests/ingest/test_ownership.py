"""Ownership of a store's instruments (the LMDB/mem writer lock) and the streaming tuning.

The S3 leases (:class:`LeaseOwnership`) are exercised end to end against
moto in ``tests/reliability/test_shared_store.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.ingest.ownership import LockOwnership, ownership_for
from quantify.ingest.tuning import GC_YOUNG_THRESHOLD, gil_switch_interval, tuned_gc
from quantify.store import open_store


def test_lock_ownership_owns_everything_once_per_store(tmp_path) -> None:
    uri = f"lmdb://{tmp_path}/store"
    cfg = IngestConfig(store=uri, symbols=["BTCUSDT", "binance-usdm:ETHUSDT"])
    store = open_store(uri, create=True)
    first, second = ownership_for(store, cfg), ownership_for(store, cfg)
    assert isinstance(first, LockOwnership)
    asyncio.run(first.acquire())
    try:
        with pytest.raises(WriterLocked, match="already has a writer"):
            asyncio.run(second.acquire())
        assert first.owned == ("BTCUSDT", "binance-usdm:ETHUSDT")
        assert first.owns("BTCUSDT")
        assert first.writable({"BTCUSDT": [1], "X": [2]}) == {"BTCUSDT": [1], "X": [2]}
        assert first.status_fields() == {}
        assert first.status_name == "status"
        asyncio.run(first.maintain(lambda key: None, lambda keys: asyncio.sleep(0)))  # nothing to renew
    finally:
        asyncio.run(first.release())
    asyncio.run(second.acquire())
    asyncio.run(second.release())


def test_lock_ownership_starts_listeners_with_the_store() -> None:
    cfg = IngestConfig(store="mem://ownership", symbols=["BTCUSDT"])
    store = open_store(cfg.store, create=True)
    started = []

    class Listener:
        def __call__(self, frames: object) -> None: ...
        def start(self, s: object) -> None:
            started.append(s)

    calls = ownership_for(store, cfg).listener_calls(Listener(), store)
    for call in calls:
        call()
    assert started == [store]
    assert ownership_for(store, cfg).listener_calls(lambda frames: None, store) == []


def test_tuning_is_restored() -> None:
    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    with gil_switch_interval(0.0005), tuned_gc(True):
        assert sys.getswitchinterval() == 0.0005
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert sys.getswitchinterval() == interval
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0
    with gil_switch_interval(None), tuned_gc(False):
        assert sys.getswitchinterval() == interval and gc.get_threshold() == threshold


def test_lease_ownership_renews_while_the_service_starts_up_and_stops_when_told() -> None:
    """``maintain(claim=False, until=...)`` keeps the leases fresh past their ttl, claims nothing, and returns."""
    from quantify.ingest.ownership import LeaseOwnership
    from quantify.store.shard import ShardLeases

    uri = "mem://lease-start-up"
    store = open_store(uri, create=True)
    rival = ShardLeases(store, ttl=60, verify_delay=0)
    rival.acquire(["ETHUSDT"])
    own = LeaseOwnership(store, IngestConfig(store=uri, symbols=["BTCUSDT", "ETHUSDT"], lease_ttl=0.6))

    async def start_up() -> tuple[bool, bool]:
        await own.acquire()
        assert own.leases is not None
        renewed_from = own.leases._written_at
        rival.release()  # ETHUSDT is free now, but no claim is made while starting up
        started = asyncio.Event()
        keepalive = asyncio.ensure_future(own.maintain(lambda key: None, lambda keys: asyncio.sleep(0),
                                                       claim=False, until=started))
        for _ in range(200):  # bounded: until the lease was renewed three times over its ttl
            await asyncio.sleep(0.05)
            if own.leases._written_at > renewed_from + 1.2:
                break
        fresh = own.leases.holds("BTCUSDT")
        started.set()
        await asyncio.wait_for(keepalive, 10)
        return fresh, "ETHUSDT" in own.leases.held

    try:
        assert asyncio.run(start_up()) == (True, False)
    finally:
        asyncio.run(own.release())
