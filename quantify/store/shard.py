"""Per-symbol ownership leases: several writers on one shared (S3) store.

ArcticDB has no transactions, and two writers appending to one symbol is
last-writer-wins. On a shared store every symbol therefore has exactly one
owner, recorded in the store's ``_meta`` library:

``owner__<SYMBOL>``
    ``{symbol, owner, acquired_at}``: who owns the symbol.
``worker__<OWNER>``
    ``{owner, host, pid, command, started, renewed_at, expires_at, ttl}``:
    the owner's lease, renewed by the writer every ``ttl / 3`` seconds.

A symbol's lease expires when its owner's record does (or when the owner's
record is gone: a clean stop deletes it). Renewing one record per worker
keeps the cost of a renewal independent of the number of symbols; a renewal
also re-reads the owner records and gives up symbols another worker took.

Claiming is *write, then verify*: write the ``owner__`` records of the free
symbols, wait ``verify_delay`` seconds (longer than the reader's version
cache, :data:`quantify.store.store.DEFAULT_READ_CACHE_SECONDS`), read them
back, and keep only those that still name this worker. Of two workers
claiming the same symbol at nearly the same time the later write wins and
the earlier one backs off.

Residual race (documented, not closed): a worker that read a symbol as free,
then stalled for longer than ``verify_delay`` before writing its claim, can
overwrite a claim that another worker has already verified; both then
believe they own the symbol until the next renewal (``ttl / 3``) re-reads the
owner record and the loser stops. Until then both may append; the trade-id
continuity check makes the loser's appends of already stored ids visible as
duplicates, not silent corruption. Clocks of the workers' hosts are assumed
to agree to well within ``ttl``. Without a store with conditional writes,
that window cannot be closed.

A worker stops appending a symbol as soon as its own view of the lease is
older than ``ttl - verify_delay`` (renewals failing, e.g. while the store is
unreachable), before anyone else may take the symbol over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arcticdb.version_store.library import DataError, WritePayload
from arcticdb_ext.exceptions import ErrorCode

from quantify.exceptions import StoreError
from quantify.store._libraries import META
from quantify.store.lease import masked_command

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_VERIFY_DELAY",
    "LeaseClaim",
    "ShardLeases",
    "SymbolLease",
    "read_leases",
    "read_worker_leases",
]

logger = logging.getLogger(__name__)

#: Seconds a worker's ownership lasts without renewal.
DEFAULT_LEASE_TTL = 30.0
#: Seconds between writing a claim and reading it back.
DEFAULT_VERIFY_DELAY = 1.0

#: Owner records written per batch when claiming (the worker's lease is renewed between batches).
CLAIM_CHUNK = 50

OWNER_PREFIX = "owner__"
WORKER_PREFIX = "worker__"


@dataclass(frozen=True)
class SymbolLease:
    """Who owns one symbol, and until when.

    Attributes
    ----------
    symbol, owner : str
        The symbol and its owner's id (``host-pid-random``).
    host : str
    pid : int
    acquired_at, renewed_at, expires_at : float
        Unix times; ``expires_at`` is the owner's lease expiry (0 when the
        owner's record is gone).
    """

    symbol: str
    owner: str
    host: str = ""
    pid: int = 0
    acquired_at: float = 0.0
    renewed_at: float = 0.0
    expires_at: float = 0.0

    def alive(self, now: float | None = None) -> bool:
        """True while the lease has not expired."""
        return self.expires_at > (time.time() if now is None else now)

    def describe(self) -> str:
        """One line naming the owner, for refusals and ``status``."""
        return f"{self.owner} (pid {self.pid} on {self.host}, lease expires in " \
               f"{max(self.expires_at - time.time(), 0):.0f} s)"

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "symbol": self.symbol, "owner": self.owner, "host": self.host, "pid": self.pid,
            "alive": self.alive(now),
            "lease_age_s": round(now - self.renewed_at, 1) if self.renewed_at else None,
            "expires_in_s": round(self.expires_at - now, 1),
            "acquired_at": self.acquired_at,
        }


@dataclass(frozen=True)
class LeaseClaim:
    """Result of :meth:`ShardLeases.acquire`.

    Attributes
    ----------
    acquired : tuple of str
        Symbols this worker now owns (verified).
    refused : dict
        Symbols owned by another live worker, with that worker's lease.
    """

    acquired: tuple[str, ...] = ()
    refused: dict[str, SymbolLease] = field(default_factory=dict)

    def describe_refused(self) -> str:
        return "; ".join(f"{s} owned by {lease.describe()}" for s, lease in sorted(self.refused.items()))


def _new_owner_id(host: str, pid: int) -> str:
    return f"{host}-{pid}-{secrets.token_hex(3)}".replace("_", "-")


def _read_batch(lib: Any, names: list[str]) -> dict[str, Any]:
    """Read small pickled records; missing ones are left out.

    Raises
    ------
    StoreError
        If a record could not be read for another reason than being missing
        (a timeout on a loaded store): taking an unreadable owner record for a
        missing one would let a claim take a live worker's symbol.
    """
    out: dict[str, Any] = {}
    for attempt in range(3):  # a version pruned between listing and reading: read again
        failed: list[tuple[str, Any]] = []
        for name, item in zip(names, lib.read_batch(names) if names else [], strict=True):
            if isinstance(item, DataError):
                if item.error_code == ErrorCode.E_NO_SUCH_VERSION:
                    continue  # never written, or deleted by a clean stop
                failed.append((name, item))
                continue
            data = getattr(item, "data", None)
            if isinstance(data, dict):
                out[name] = data
        if not failed:
            return out
        names = [name for name, _ in failed]
        time.sleep(0.05 * (attempt + 1))
    name, item = failed[0]
    raise StoreError(f"cannot read the lease record {name}: {item.error_code.name}")


def read_leases(store: Store) -> list[SymbolLease]:
    """Every symbol lease recorded in ``store`` (live and expired), sorted by symbol."""
    lib = store.library(META)
    names = [n for n in lib.list_symbols() if n.startswith((OWNER_PREFIX, WORKER_PREFIX))]
    records = _read_batch(lib, sorted(names))
    workers = {r["owner"]: r for n, r in records.items() if n.startswith(WORKER_PREFIX)}
    leases = []
    for name, rec in records.items():
        if name.startswith(OWNER_PREFIX):
            leases.append(_lease(rec, workers.get(rec["owner"])))
    return sorted(leases, key=lambda lease: lease.symbol)


def read_worker_leases(store: Store) -> list[SymbolLease]:
    """The symbol leases as the workers' own records list them (``symbols``), sorted by symbol.

    One read per *worker* instead of one per symbol (:func:`read_leases`):
    what ``status`` uses. A worker's record lists what it held at its last
    renewal; a symbol listed by several (a takeover not yet renewed by the
    loser, or a dead worker's record) goes to the live one, else to the one
    whose lease expired last.
    """
    lib = store.library(META)
    names = sorted(n for n in lib.list_symbols() if n.startswith(WORKER_PREFIX))
    best: dict[str, SymbolLease] = {}
    now = time.time()
    for rec in _read_batch(lib, names).values():
        for symbol in rec.get("symbols", ()):
            lease = _lease({"symbol": symbol, "owner": rec["owner"]}, rec)
            held = best.get(symbol)
            if held is None or (lease.alive(now), lease.expires_at) > (held.alive(now), held.expires_at):
                best[symbol] = lease
    return [best[s] for s in sorted(best)]


def _lease(owner_rec: dict[str, Any], worker: dict[str, Any] | None) -> SymbolLease:
    worker = worker or {}
    return SymbolLease(
        symbol=owner_rec["symbol"], owner=owner_rec["owner"], host=worker.get("host", "?"),
        pid=int(worker.get("pid", 0)), acquired_at=float(owner_rec.get("acquired_at", 0.0)),
        renewed_at=float(worker.get("renewed_at", 0.0)), expires_at=float(worker.get("expires_at", 0.0)),
    )


class ShardLeases:
    """This worker's ownership of symbols in a shared store.

    Parameters
    ----------
    store : Store
        The shared store (its ``_meta`` library holds the records).
    ttl : float
        Seconds a lease lasts without renewal; renew every ``ttl / 3``.
    verify_delay : float
        Seconds between writing a claim and reading it back.

    Notes
    -----
    Not thread-safe: call it from one thread (the ingestion service calls it
    from its writer thread). See the module docstring for the protocol and
    its residual race.
    """

    def __init__(self, store: Store, *, ttl: float = DEFAULT_LEASE_TTL,
                 verify_delay: float = DEFAULT_VERIFY_DELAY) -> None:
        if not ttl > 0:
            raise ValueError(f"lease ttl must be positive seconds, got {ttl!r}")
        if not 0 <= verify_delay < ttl / 3:
            raise ValueError(f"verify_delay must be in [0, ttl/3), got {verify_delay!r} for ttl {ttl!r}")
        self.store = store
        self.ttl = float(ttl)
        self.verify_delay = float(verify_delay)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = _new_owner_id(self.host, self.pid)
        self.started = time.time()
        self.held: set[str] = set()
        #: Local deadline (monotonic) after which this worker no longer trusts its leases.
        self._valid_until = 0.0
        self._written_at = 0.0
        self._lib = store.library(META)

    @property
    def renew_interval(self) -> float:
        return self.ttl / 3

    @property
    def next_renewal_in(self) -> float:
        """Seconds until the lease is due for renewal (``renew_interval`` after it was last written)."""
        return max(0.0, self._written_at + self.renew_interval - time.monotonic())

    def _worker_record(self, now: float) -> dict[str, Any]:
        return {
            "owner": self.owner, "host": self.host, "pid": self.pid,
            "command": masked_command(), "started": self.started,
            "renewed_at": now, "expires_at": now + self.ttl, "ttl": self.ttl,
            "symbols": sorted(self.held),
        }

    def _write_worker(self) -> None:
        t0 = self._written_at = time.monotonic()
        self._lib.write_pickle(WORKER_PREFIX + self.owner, self._worker_record(time.time()),
                               prune_previous_versions=True)
        # Measured from before the write: others see a later expiry than we assume.
        self._valid_until = t0 + self.ttl - max(self.verify_delay, 0.1 * self.ttl)

    def holds(self, symbol: str) -> bool:
        """True if this worker owns ``symbol`` and its lease is fresh enough to write."""
        return symbol in self.held and time.monotonic() < self._valid_until

    def leases(self, symbols: Iterable[str] | None = None) -> dict[str, SymbolLease]:
        """Current leases of ``symbols`` (all when ``None``), by symbol."""
        if symbols is None:
            return {lease.symbol: lease for lease in read_leases(self.store)}
        syms = sorted(set(symbols))
        owners = _read_batch(self._lib, [OWNER_PREFIX + s for s in syms])
        workers = _read_batch(self._lib, sorted({WORKER_PREFIX + r["owner"] for r in owners.values()}))
        by_owner = {r["owner"]: r for r in workers.values()}
        return {r["symbol"]: _lease(r, by_owner.get(r["owner"])) for r in owners.values()}

    def acquire(self, symbols: Iterable[str], *, takeover_only: bool = False) -> LeaseClaim:
        """Claim the free ``symbols``: write, wait ``verify_delay``, read back.

        Parameters
        ----------
        symbols : iterable of str
            Symbols wanted. Free means: no owner record, an owner whose lease
            expired, or this worker.
        takeover_only : bool
            Claim only symbols whose previous owner's lease *expired* (a dead
            worker), not symbols nobody ever owned (standby workers).

        Returns
        -------
        LeaseClaim
            The symbols now owned, and those refused with their owner.
        """
        wanted = [s for s in dict.fromkeys(symbols) if s not in self.held]
        if not wanted:
            return LeaseClaim()
        now = time.time()
        current = self.leases(wanted)
        refused = {s: lease for s, lease in current.items()
                   if lease.owner != self.owner and lease.alive(now)}
        free = [s for s in wanted if s not in refused and (not takeover_only or s in current)]
        if not free:
            return LeaseClaim((), refused)
        # Our own lease first, so nobody reads our claims as orphaned; and renewed between
        # chunks, so that a slow store (many claims, each a write) never lets it lapse meanwhile.
        self._write_worker()
        clashed: list[str] = []
        for i in range(0, len(free), CLAIM_CHUNK):
            chunk = free[i:i + CLAIM_CHUNK]
            if i and time.monotonic() - self._written_at > self.renew_interval / 2:
                self._write_worker()
            written = self._lib.write_pickle_batch(
                [WritePayload(OWNER_PREFIX + s, {"symbol": s, "owner": self.owner, "acquired_at": now})
                 for s in chunk],
                prune_previous_versions=True,
            )
            # A rival writing the same owner record at the same moment makes ArcticDB refuse one of the
            # two writes (E_NON_INCREASING_INDEX_VERSION): that claim is the rival's, not an error.
            clashed += [s for s, item in zip(chunk, written, strict=True) if isinstance(item, DataError)]
        if time.monotonic() - self._written_at > self.verify_delay:
            self._write_worker()
        for s in clashed:
            logger.info("%s: claimed at the same time as another worker; leaving it to the rival", s)
        free = [s for s in free if s not in clashed]
        if not free:
            return LeaseClaim((), refused)
        time.sleep(self.verify_delay)
        after = self.leases(free)
        acquired = []
        for s in free:
            lease = after.get(s)
            if lease is not None and lease.owner == self.owner:
                acquired.append(s)
            elif lease is not None:
                refused[s] = lease
                logger.info("%s: claimed at the same time as %s, which won", s, lease.owner)
        self.held.update(acquired)
        if acquired:
            self._write_worker()  # records the symbols held, for status
            taken = {s: current[s].owner for s in acquired if s in current and current[s].owner != self.owner}
            for s, old in taken.items():
                logger.info("%s: took over from %s, whose lease expired", s, old)
        return LeaseClaim(tuple(acquired), refused)

    def renew(self) -> list[str]:
        """Extend this worker's lease; return the symbols it lost to another worker.

        Raises
        ------
        StoreError
            If the store cannot be written (the lease then runs out locally:
            :meth:`holds` turns false before anyone may take the symbols).
        """
        if not self.held:
            return []
        try:
            # The lease first: reading every owner record back takes long on a slow store
            # with hundreds of symbols, and must not delay the renewal itself.
            self._write_worker()
            owners = _read_batch(self._lib, [OWNER_PREFIX + s for s in sorted(self.held)])
            lost = [s for s in sorted(self.held)
                    if owners.get(OWNER_PREFIX + s, {}).get("owner") != self.owner]
            for s in lost:
                self.held.discard(s)
                logger.error("%s: lease lost to %s; no longer writing it", s,
                             owners.get(OWNER_PREFIX + s, {}).get("owner", "nobody"))
            if lost:
                self._write_worker()  # no longer lists them
        except Exception as exc:  # ArcticDB storage errors have several unrelated types
            raise StoreError(
                f"lease renewal on {self.store.uri} failed: {self.store.uri.redact(str(exc))}"
            ) from exc
        return lost

    def release(self) -> None:
        """Give up every symbol (a clean stop): delete our records."""
        try:
            owners = _read_batch(self._lib, [OWNER_PREFIX + s for s in sorted(self.held)])
            for name, rec in owners.items():
                if rec.get("owner") == self.owner:
                    self._lib.delete(name)
            self._lib.delete(WORKER_PREFIX + self.owner)
        except Exception as exc:  # noqa: BLE001 - best effort: the leases expire anyway
            logger.warning("releasing leases on %s failed (they expire in %.0f s): %s",
                           self.store.uri, self.ttl, self.store.uri.redact(str(exc)))
        self.held.clear()
        self._valid_until = 0.0
