"""``quantify.status()``: what a store holds and what its writer is doing.

The one place that decides whether a writer is alive and merges its
published counters with the store's own description of each instrument
(trades, and a perpetual's stored mark, funding, open-interest and
liquidation rows: ``InstrumentStatus.perp_rows``);
``quantify status``, ``%quantify status``, the ``StatusBar`` widget and the
demo render the :class:`~quantify.model.status.StoreStatus` it returns.

A writer is alive when
- LMDB: the process named in the store's writer lock runs
  (:func:`quantify.store.lease.writer_alive`);
- ``mem://``: its heartbeat is younger than :data:`HEARTBEAT_STALE_SECONDS`;
- a sharded (S3) store: per worker, it holds a live lease, or its heartbeat
  is fresh and it has not reported ``stopped``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from quantify.model.status import InstrumentStatus, StoreStatus, WriterState, WriterStatus
from quantify.store.describe import describe_many, perp_keys
from quantify.store.lease import writer_alive
from quantify.store.perp import ROW_COUNT_NAMES
from quantify.store.shard import read_worker_leases
from quantify.store.store import Store, open_store

__all__ = ["HEARTBEAT_STALE_SECONDS", "status", "writer_status"]

#: A writer whose last heartbeat is older than this is reported as not alive.
HEARTBEAT_STALE_SECONDS = 10.0
#: Workers of a sharded store silent for longer than this are not listed.
FORGET_WORKER_SECONDS = 86_400.0


def _resolve(store: Store | str | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def writer_status(store: Store | str | None = None) -> WriterStatus | None:
    """The status the single writer of ``store`` last published, or ``None``.

    Cheap (one read): for widgets that refresh every second. ``alive`` is
    left ``None``; :func:`status` decides it.
    """
    published = _resolve(store).read_status()
    return None if published is None else WriterStatus.from_dict(published)


def _instrument(key: str, described: dict[str, Any], counted: InstrumentStatus | None,
                **extra: Any) -> InstrumentStatus:
    c = counted or InstrumentStatus(key)
    perp_rows = {kind: int(described.get(name) or 0) for kind, name in ROW_COUNT_NAMES.items()}
    return dataclasses.replace(
        c, instrument=key, rows=int(described["rows"]), first_time=described["first_time"],
        last_time=described["last_time"], first_id=described["first_id"], last_id=described["last_id"],
        perp_rows={kind: n for kind, n in perp_rows.items() if n}, **extra,
    )


_EMPTY = {"rows": 0, "first_time": None, "last_time": None, "first_id": None, "last_id": None}


def status(store: Store | str | None = None) -> StoreStatus:
    """Gather the status of ``store``: its writer(s) and every stored instrument.

    Parameters
    ----------
    store : Store, str or None
        A store, or a store URI (``None``: the default store, see
        :func:`quantify.open_store`).

    Returns
    -------
    StoreStatus
        ``summary()`` is what ``quantify status`` prints, ``to_dict()`` its
        ``--json`` document.

    Raises
    ------
    InvalidStoreURI, StoreError
        If the store cannot be opened.
    """
    st = _resolve(store)
    if st.uri.scheme in ("s3", "s3s"):
        return _shared(st)
    now = time.time()
    writer = writer_status(st)
    if writer is not None:
        if st.uri.path is not None:
            alive = writer_alive(st.uri.path)
        else:
            age = writer.heartbeat_age(now)
            alive = age is not None and age < HEARTBEAT_STALE_SECONDS
        writer = dataclasses.replace(writer, alive=alive)
    counted = writer.instruments if writer is not None else {}
    described = describe_many(st, st.symbols())
    instruments = tuple(_instrument(key, d, counted.get(key)) for key, d in described.items())
    return StoreStatus(store=str(st.uri), writers=() if writer is None else (writer,),
                       instruments=instruments, sharded=False, checked=now)


def _shared(st: Store) -> StoreStatus:
    """A sharded (S3) store: every worker, and each instrument's owner and lease age.

    Read per worker, not per instrument, so that it stays fast at hundreds of
    instruments on S3: the workers' lease records
    (:func:`~quantify.store.shard.read_worker_leases`) and published statuses,
    which carry each owned instrument's rows and first/last trade. Only the
    instruments no live worker reports (unowned, or a perpetual, whose stored
    rows the worker does not publish) are read from the store, in batches
    (:func:`~quantify.store.describe.describe_many`).
    """
    now = time.time()
    leases = {lease.symbol: lease for lease in read_worker_leases(st)}
    published = {owner: WriterStatus.from_dict(d) for owner, d in st.worker_statuses().items()}
    workers = []
    fresh: set[str] = set()
    for owner, w in published.items():
        held = tuple(s for s, lease in leases.items() if lease.owner == owner and lease.alive(now))
        age = w.heartbeat_age(now)
        alive = bool(held) or (age is not None and age < HEARTBEAT_STALE_SECONDS
                               and w.state is not WriterState.STOPPED)
        if age is not None and age < HEARTBEAT_STALE_SECONDS:
            fresh.add(owner)
        if not alive and (age is None or age > FORGET_WORKER_SECONDS):
            continue  # long-gone workers are not worth a line
        workers.append(dataclasses.replace(w, owner=w.owner or owner, owned=held, alive=alive))
    stored = set(st.symbols())
    perps = perp_keys(st)
    reported: dict[str, dict[str, Any]] = {}
    for key in stored - perps:
        lease = leases.get(key)
        if lease is None or not lease.alive(now) or lease.owner not in fresh:
            continue
        c = published[lease.owner].instruments.get(key)
        if c is not None and c.rows and c.first_id is not None and c.last_id is not None:
            reported[key] = {"rows": c.rows, "first_time": c.first_time, "last_time": c.last_time,
                             "first_id": c.first_id, "last_id": c.last_id}
    described_all = {**reported, **describe_many(st, sorted(stored - set(reported)))}
    instruments = []
    for key in sorted(stored | set(leases)):
        lease = leases.get(key)
        counted = published[lease.owner].instruments.get(key) if lease and lease.owner in published else None
        described = described_all.get(key, _EMPTY)
        if lease is None:
            instruments.append(_instrument(key, described, counted, owner=None, lease_alive=False,
                                           lease_age_s=None, lease_expires_in_s=None))
            continue
        d = lease.as_dict(now)
        instruments.append(_instrument(key, described, counted, owner=lease.owner, lease_alive=lease.alive(now),
                                       lease_age_s=d["lease_age_s"], lease_expires_in_s=d["expires_in_s"]))
    return StoreStatus(store=str(st.uri), writers=tuple(workers), instruments=tuple(instruments),
                       sharded=True, checked=now)
