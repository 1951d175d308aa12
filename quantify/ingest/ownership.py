"""Which instruments this process may write: the LMDB writer lock, or S3 leases.

A store has one writer (ArcticDB has no transactions): on LMDB and ``mem://``
stores one process holds the whole-store lock (:class:`quantify.store.WriterLock`);
on shared (S3) stores each worker owns instruments through expiring, renewed
leases (:class:`quantify.store.shard.ShardLeases`). The ingestion service
talks to either through one protocol, :class:`Ownership`, chosen once by
:func:`ownership_for`:

- :meth:`Ownership.acquire` before streaming (raises :class:`WriterLocked`
  if nothing can be written);
- :attr:`Ownership.owned` and :meth:`Ownership.owns`: what to stream and buffer;
- :meth:`Ownership.writable`: what may be appended *now* (a lease whose
  renewals fail stops being writable before anyone may take it over);
- :meth:`Ownership.maintain`: the renewal loop (renew, drop lost instruments,
  take over expired ones); the lock's returns at once. It runs from right
  after :meth:`Ownership.acquire`, renewing only (``claim=False``) while the
  service starts up (reading the store for hundreds of instruments on S3 can
  take longer than a lease lasts), then claiming too;
- :meth:`Ownership.release` on stop, and :meth:`Ownership.status_fields`
  for the ``WriterStatus``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.store import Store, WriterLock
from quantify.store.lease import WriterInfo
from quantify.store.shard import ShardLeases

__all__ = ["LeaseOwnership", "LockOwnership", "Ownership", "ownership_for"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Called with an instrument key lost to another worker / with keys taken over from dead ones.
OnLost = Callable[[str], None]
OnAcquired = Callable[[list[str]], Awaitable[None]]


class Ownership(Protocol):
    """This process's right to write instruments of a store (see the module docstring)."""

    #: Who writes (pid, host, command), for the status record.
    info: WriterInfo

    @property
    def status_name(self) -> str:
        """The name of this writer's status record in the store (``status``, ``status__<owner>``)."""
        ...

    async def acquire(self) -> None:
        """Take ownership before streaming; raise :class:`WriterLocked` if nothing is granted."""
        ...

    @property
    def owned(self) -> tuple[str, ...]:
        """The instrument keys this process writes, in the configuration's order."""
        ...

    def owns(self, key: str) -> bool:
        """True if frames of ``key`` are to be buffered (it is owned)."""
        ...

    def writable(self, pending: Mapping[str, T]) -> dict[str, T]:
        """The part of ``pending`` that may be appended now."""
        ...

    def listener_calls(self, listener: Any, store: Store) -> list[Callable[[], Any]]:
        """What to call (in the writer thread) so ``listener`` catches up before streaming."""
        ...

    async def maintain(self, on_lost: OnLost, on_acquired: OnAcquired, *, claim: bool = True,
                       until: asyncio.Event | None = None) -> None:
        """Keep ownership until cancelled (or ``until`` is set); report instruments lost or taken over.

        ``claim=False`` only renews: no instrument is claimed or taken over.
        """
        ...

    async def release(self) -> None:
        """Give everything up (a clean stop)."""
        ...

    def status_fields(self) -> dict[str, Any]:
        """``WriterStatus`` fields of this kind of ownership (none for the lock)."""
        ...


def _start_call(listener: Any, store: Store) -> list[Callable[[], Any]]:
    start = getattr(listener, "start", None)
    return [functools.partial(start, store)] if start is not None else []


class LockOwnership:
    """The whole-store writer lock of an LMDB or ``mem://`` store: every instrument, or none."""

    def __init__(self, store: Store, config: IngestConfig) -> None:
        self._lock = WriterLock(str(store.uri), store.uri.path)
        self.info = self._lock.info
        self._keys = config.symbols

    @property
    def status_name(self) -> str:
        return "status"

    async def acquire(self) -> None:
        self._lock.acquire()

    @property
    def owned(self) -> tuple[str, ...]:
        return self._keys

    def owns(self, key: str) -> bool:
        return True

    def writable(self, pending: Mapping[str, T]) -> dict[str, T]:
        return dict(pending)

    def listener_calls(self, listener: Any, store: Store) -> list[Callable[[], Any]]:
        # Listeners catch up on what was stored while they were not running
        # (e.g. trades appended just before a kill -9).
        return _start_call(listener, store)

    async def maintain(self, on_lost: OnLost, on_acquired: OnAcquired, *, claim: bool = True,
                       until: asyncio.Event | None = None) -> None:
        return  # the OS holds the lock until the process ends: nothing to renew

    async def release(self) -> None:
        self._lock.release()

    def status_fields(self) -> dict[str, Any]:
        return {}


class LeaseOwnership:
    """Per-instrument leases on a shared (S3) store, with takeover of expired ones.

    Instruments another live worker owns are skipped (named in a warning) and
    taken over once that worker's lease expires; standby instruments
    (``config.standby``) are only ever taken over. Lease calls run in their
    own thread, so renewals never queue behind slow appends.
    """

    def __init__(self, store: Store, config: IngestConfig) -> None:
        ttl = config.lease_ttl
        self._store = store
        self._config = config
        self._ttl = ttl
        #: The leases, from :meth:`acquire` on (their records live in the store).
        self.leases: ShardLeases | None = None
        self.info = WriterInfo()
        #: Instruments asked for but owned by another live worker: {key: owner}.
        self.skipped: dict[str, str] = {}
        #: Renewals that failed (the store was unreachable).
        self.errors = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quantify-lease")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args, **kwargs))

    @property
    def status_name(self) -> str:
        return "status" if self.leases is None else f"status__{self.leases.owner}"

    def _held(self) -> set[str]:
        return set() if self.leases is None else self.leases.held

    async def acquire(self) -> None:
        cfg = self._config
        self.leases = ShardLeases(self._store, ttl=self._ttl, verify_delay=min(1.0, self._ttl / 10))
        claim = await self._call(self.leases.acquire, cfg.symbols)
        self.skipped = {s: lease.owner for s, lease in claim.refused.items()}
        if not claim.acquired and not cfg.standby:
            raise WriterLocked(
                f"every symbol asked for on {self._store.uri} is owned by a live worker: "
                f"{claim.describe_refused()}. Ask for other symbols, or wait until the owner "
                f"stops (its lease expires {self._ttl:.0f} s after it dies)."
            )
        if claim.refused:
            logger.warning("skipping %s: %s; they are taken over if that lease expires",
                           ",".join(sorted(claim.refused)), claim.describe_refused())

    @property
    def owned(self) -> tuple[str, ...]:
        if self.leases is None:  # not acquired yet: what is asked for
            return self._config.symbols
        held = self.leases.held
        return tuple(s for s in self._config.symbols + self._config.standby if s in held)

    def owns(self, key: str) -> bool:
        return key in self._held()

    def writable(self, pending: Mapping[str, T]) -> dict[str, T]:
        # Never write an instrument whose lease is not fresh (renewals failing):
        # its trades wait until the lease is renewed or lost.
        leases = self.leases
        if leases is None:
            return {}
        return {s: t for s, t in pending.items() if leases.holds(s)}

    def listener_calls(self, listener: Any, store: Store) -> list[Callable[[], Any]]:
        catch_up = getattr(listener, "catch_up", None)
        if catch_up is None:
            return _start_call(listener, store)
        # Catch up only on the instruments this worker owns; the others are
        # their owners' to write. Those with no ticks yet need no catch-up at all.
        stored = set(store.symbols())
        calls: list[Callable[[], Any]] = [functools.partial(catch_up, key) for key in self.owned if key in stored]
        empty = getattr(listener, "known_empty", None)
        if empty is not None:
            calls += [functools.partial(empty, key) for key in self.owned if key not in stored]
        return calls

    async def maintain(self, on_lost: OnLost, on_acquired: OnAcquired, *, claim: bool = True,
                       until: asyncio.Event | None = None) -> None:
        leases = self.leases
        if leases is None:
            raise RuntimeError("LeaseOwnership.maintain before acquire")
        cfg = self._config
        failed = False
        while True:
            # Due from the last renewal, not from the end of the last round: claims of many
            # standby instruments on a slow store take long and must not push the renewal back.
            wait = leases.next_renewal_in if leases.held and not failed else leases.renew_interval
            failed = False
            if until is None:
                await asyncio.sleep(wait)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), wait)
                if until.is_set():
                    return
            try:
                lost = await self._call(leases.renew)
                for key in lost:
                    on_lost(key)
                if not claim:
                    continue
                wanted = [s for s in cfg.symbols if s not in leases.held]
                standby = [s for s in cfg.standby if s not in leases.held and s not in cfg.symbols]
                acquired: list[str] = []
                if wanted:
                    got = await self._call(leases.acquire, wanted)
                    acquired += got.acquired
                    self.skipped = {s: lease.owner for s, lease in got.refused.items()}
                if standby:
                    acquired += (await self._call(leases.acquire, standby, takeover_only=True)).acquired
            except Exception as exc:  # noqa: BLE001 - the store is unreachable: the lease runs out locally
                self.errors += 1
                failed = True
                logger.warning("lease renewal failed (%s); retrying in %.1f s", exc, leases.renew_interval)
                continue
            if acquired:
                await on_acquired(acquired)

    async def release(self) -> None:
        if self.leases is not None:
            await self._call(self.leases.release)
        self._executor.shutdown(wait=True)

    def status_fields(self) -> dict[str, Any]:
        if self.leases is None:
            return {}
        return {
            "owner": self.leases.owner,
            "lease_ttl": self.leases.ttl,
            "owned": tuple(sorted(self.leases.held)),
            "skipped": dict(sorted(self.skipped.items())),
            "lease_errors": self.errors,
        }


def ownership_for(store: Store, config: IngestConfig) -> Ownership:
    """Leases on a shared (S3) store, the writer lock on any other."""
    if store.uri.scheme in ("s3", "s3s"):
        return LeaseOwnership(store, config)
    return LockOwnership(store, config)
