"""Per-symbol ownership leases (quantify.store.shard) on an in-memory store."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from quantify.store import open_store
from quantify.store.shard import ShardLeases, read_leases

_n = itertools.count()


@pytest.fixture
def store():
    return open_store(f"mem://shard{next(_n)}")


def test_claim_refuse_expire_and_take_over(store) -> None:
    a = ShardLeases(store, ttl=1.5, verify_delay=0.05)
    b = ShardLeases(store, ttl=1.5, verify_delay=0.05)
    assert a.acquire(["BTCUSDT", "ETHUSDT"]).acquired == ("BTCUSDT", "ETHUSDT")
    claim = b.acquire(["BTCUSDT", "SOLUSDT"])
    assert claim.acquired == ("SOLUSDT",)
    assert set(claim.refused) == {"BTCUSDT"} and claim.refused["BTCUSDT"].owner == a.owner
    assert "BTCUSDT owned by " + a.owner in claim.describe_refused()
    # a standby never takes a symbol nobody owned
    assert b.acquire(["XRPUSDT"], takeover_only=True).acquired == ()
    # a stops renewing (dies): after the ttl b takes BTCUSDT over
    assert b.acquire(["BTCUSDT"], takeover_only=True).acquired == ()
    assert a.holds("BTCUSDT")
    time.sleep(1.6)
    assert not a.holds("BTCUSDT"), "a stale lease must stop its holder writing before it expires"
    assert b.acquire(["BTCUSDT"], takeover_only=True).acquired == ("BTCUSDT",)
    # a comes back: its renewal reports the loss and it keeps what nobody took
    assert a.renew() == ["BTCUSDT"]
    assert a.held == {"ETHUSDT"} and a.holds("ETHUSDT")
    owners = {lease.symbol: lease.owner for lease in read_leases(store)}
    assert owners == {"BTCUSDT": b.owner, "ETHUSDT": a.owner, "SOLUSDT": b.owner}


def test_release_frees_symbols_at_once(store) -> None:
    a = ShardLeases(store, ttl=30, verify_delay=0.05)
    b = ShardLeases(store, ttl=30, verify_delay=0.05)
    a.acquire(["BTCUSDT"])
    assert b.acquire(["BTCUSDT"]).acquired == ()
    a.release()
    assert read_leases(store) == []
    assert b.acquire(["BTCUSDT"]).acquired == ("BTCUSDT",)


def test_simultaneous_claims_have_one_winner(store) -> None:
    """Write-then-verify: of claims written within the verify delay, exactly one survives."""
    for round_ in range(5):
        sym = f"SYM{round_}USDT"
        workers = [ShardLeases(store, ttl=30, verify_delay=0.3) for _ in range(4)]
        results: dict[int, tuple[str, ...]] = {}
        barrier = threading.Barrier(len(workers))

        def claim(i: int, workers=workers, results=results, barrier=barrier, sym=sym) -> None:
            barrier.wait()
            results[i] = workers[i].acquire([sym]).acquired

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(workers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, acquired in results.items() if acquired == (sym,)]
        assert len(winners) == 1, results
        owner = {lease.symbol: lease.owner for lease in read_leases(store)}[sym]
        assert owner == workers[winners[0]].owner


def test_bad_arguments(store) -> None:
    with pytest.raises(ValueError, match="ttl"):
        ShardLeases(store, ttl=0)
    with pytest.raises(ValueError, match="verify_delay"):
        ShardLeases(store, ttl=3, verify_delay=2)


def test_worker_records_say_who_holds_what_as_the_owner_records_do(store) -> None:
    """``read_worker_leases`` (one read per worker, for status) agrees with ``read_leases`` (one per symbol)."""
    from quantify.store.shard import read_worker_leases

    a = ShardLeases(store, ttl=1.5, verify_delay=0.05)
    b = ShardLeases(store, ttl=30, verify_delay=0.05)
    a.acquire(["BTCUSDT", "ETHUSDT"])
    b.acquire(["SOLUSDT"])

    def owners(leases) -> dict[str, tuple[str, bool]]:
        return {lease.symbol: (lease.owner, lease.alive()) for lease in leases}

    assert owners(read_worker_leases(store)) == owners(read_leases(store)) == {
        "BTCUSDT": (a.owner, True), "ETHUSDT": (a.owner, True), "SOLUSDT": (b.owner, True)}
    time.sleep(1.6)  # a dies; b takes BTCUSDT over: a's stale record still lists it
    assert b.acquire(["BTCUSDT"], takeover_only=True).acquired == ("BTCUSDT",)
    assert owners(read_worker_leases(store)) == owners(read_leases(store)) == {
        "BTCUSDT": (b.owner, True), "ETHUSDT": (a.owner, False), "SOLUSDT": (b.owner, True)}
