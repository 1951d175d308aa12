"""Writing: released trades -> tick frames -> ``Store.append_ticks`` -> batch listeners; books likewise.

Every ArcticDB call of a run goes to one writer thread, so receiving never
waits for storage. The :class:`Writer`:

- flushes every ``flush_interval`` or when a buffer has ``batch_size``
  trades ready (the receiver sets ``wake``), and once more on stop
  (:meth:`Writer.flush` with ``final=True``);
- appends only what the run's ownership lets it write *now*
  (:meth:`~quantify.ingest.ownership.Ownership.writable`); the rest waits;
- on a store error keeps every trade, enters ``DEGRADED`` and retries with
  a capped exponential backoff (giving up only at shutdown, leaving the
  trades in the journal);
- calls the batch listeners in the writer thread after each append;
- appends what the order books applied (``Store.append_book``: quotes,
  diffs, checkpoints, ledger) on every flush, and hands the quotes, the
  ledger and each book's seconds out of sync to the listeners that take
  them (``book_batch``), on every flush, so that a stale book is seen even
  when nothing arrives;
- appends the perpetual data the run received and polled (marks,
  liquidations, open interest, funding: ``Store.append_perp``, idempotent)
  on every flush, and hands the marks and liquidations just stored to the
  listeners that take them (``perp_batch``); the journal's segments are
  released only once those are stored too;
- compacts every ``compact_interval`` and publishes the status every
  ``status_interval``.

It also holds the writer's lifecycle state (:class:`WriterState`) and the
per-instrument counters the status reports (next id, last time, rows).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd

from quantify.config import IngestConfig
from quantify.exceptions import QuantifyError
from quantify.ingest.books import BookBatch
from quantify.ingest.listeners import BatchListener, listener_stats
from quantify.ingest.ownership import Ownership
from quantify.ingest.perps import PerpBatch, perp_frames
from quantify.ingest.receiver import Receiver
from quantify.ingest.stats import IngestStats
from quantify.model.book_frames import BookFrames, book_frames
from quantify.model.status import WriterState
from quantify.model.trades import Trade, trades_to_frame
from quantify.store import Store
from quantify.store.describe import describe_many

__all__ = ["Writer"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Backoff of a refused append: first delay, cap (seconds).
RETRY_INITIAL = 0.2
RETRY_MAX = 10.0


class Writer:
    """The writing side of a run (see the module docstring).

    Parameters
    ----------
    config : IngestConfig
        The run's settings (intervals).
    store : Store
        The store written.
    stats : IngestStats
        Counters shared with the rest of the service.
    receiver : Receiver
        Whose buffers are flushed, and whose journals are synced before and
        released after each append.
    ownership : Ownership
        Which instruments may be appended.
    stored_next : dict of str to int
        Next id to store per instrument key (shared with the receiver, whose
        new buffers start there); updated after every append.
    """

    def __init__(self, config: IngestConfig, store: Store, stats: IngestStats, receiver: Receiver,
                 ownership: Ownership, stored_next: dict[str, int]) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.receiver = receiver
        self.ownership = ownership
        self.state = WriterState.STARTING
        #: Next id to store per instrument key, and the time (ms) and rows stored this run.
        self.stored_next = stored_next
        self.last_time: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        #: Per key: (rows stored when resumed, ``rows[key]`` then).
        self.resumed_rows: dict[str, tuple[int, int]] = {}
        #: Per key: (first stored id, its time in ms).
        self.first: dict[str, tuple[int, int]] = {}
        #: Book events (quotes) stored this run, per instrument key.
        self.book_rows: dict[str, int] = {}
        self.listeners: list[BatchListener] = []
        self.listener_errors = 0
        #: Set to stop (the flush loop ends; a failing append then gives up at the cap).
        self.stop: asyncio.Event | None = None
        #: Set by the receiver when a batch is ready, or to stop.
        self.wake: asyncio.Event | None = None
        self._pending: dict[str, list[Trade]] = {}
        self._last_compact = time.monotonic()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quantify-writer")

    def set_state(self, state: WriterState) -> None:
        if state is not self.state:
            logger.debug("writer state %s -> %s", self.state.value, state.value)
            self.state = state

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def shutdown(self) -> None:
        """Stop the writer thread (after the run)."""
        self._executor.shutdown(wait=True)

    # -- resuming -----------------------------------------------------------------

    def _resume_at(self, described: Mapping[str, Mapping[str, Any]]) -> None:
        for key, d in described.items():
            if not d["rows"]:
                continue
            self.stored_next[key] = int(d["last_id"]) + 1
            self.last_time[key] = int(d["last_time"].value // 1_000_000)
            # what status reports without reading the store: rows found here plus rows appended from now on
            self.resumed_rows[key] = (int(d["rows"]), self.rows.get(key, 0))
            self.first[key] = (int(d["first_id"]), int(d["first_time"].value // 1_000_000))

    def stored_rows(self, key: str) -> int:
        """Rows of ``key`` in the store: found when it was resumed, plus appended since."""
        found, appended_then = self.resumed_rows.get(key, (0, 0))
        return found + self.rows.get(key, 0) - appended_then

    async def resume(self) -> None:
        """Resume every stored instrument at its last stored id (one batched read: :func:`describe_many`)."""
        self._resume_at(await self.call(lambda: describe_many(self.store, self.store.symbols())))

    async def resume_instruments(self, keys: Iterable[str]) -> None:
        """Resume ``keys`` (taken over from another worker) at their last stored ids."""
        keys = list(keys)

        def described() -> dict[str, dict[str, Any]]:
            for listener in self.listeners:  # another writer stored these meanwhile
                forget = getattr(listener, "forget", None)
                if forget is not None:
                    for key in keys:
                        forget(key)
            stored = set(self.store.symbols())
            return describe_many(self.store, [k for k in keys if k in stored])

        self._resume_at(await self.call(described))

    def forget(self, key: str) -> None:
        """Drop the trades of ``key`` waiting to be written (its ownership was lost)."""
        self._pending.pop(key, None)

    # -- listeners ------------------------------------------------------------------

    def add_listener(self, listener: BatchListener) -> None:
        self.listeners.append(listener)

    async def start_listeners(self) -> None:
        """Let each listener catch up on what was stored while it was not running."""
        for listener in self.listeners:
            for catch_up in self.ownership.listener_calls(listener, self.store):
                await self.call(catch_up)

    async def close_listeners(self) -> None:
        for listener in self.listeners:
            close = getattr(listener, "close", None)
            if close is not None:
                try:
                    await self.call(close)
                except Exception:  # closing is best effort; the data is stored
                    logger.exception("closing batch listener %r failed", listener)

    def listener_stats(self) -> dict[str, Any]:
        return listener_stats(self.listeners)

    def _notify(self, frames: Mapping[str, pd.DataFrame]) -> None:
        for listener in self.listeners:
            try:
                listener(frames)
            except Exception:  # a listener's bug must not stop ingestion
                self.listener_errors += 1
                logger.exception("batch listener %r failed", listener)

    def _append(self, trades: dict[str, list[Trade]]) -> None:
        # Building the frames here keeps the receive loop free of the work.
        frames = {key: trades_to_frame(batch) for key, batch in trades.items()}
        self.store.check_space()
        self.store.append_ticks(frames)
        self._notify(frames)

    # -- flushing -------------------------------------------------------------------

    async def flush_loop(self, publish: Callable[[], None]) -> None:
        """Flush, compact and ``publish()`` the status (in the writer thread) until stopped."""
        cfg = self.config
        next_status = 0.0
        assert self.stop is not None and self.wake is not None
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), cfg.flush_interval)
            self.wake.clear()
            await self.flush()
            now = time.monotonic()
            if now - self._last_compact >= cfg.compact_interval:
                self._last_compact = now
                await self._compact()
            if now >= next_status:
                next_status = now + cfg.status_interval
                self.stats.update_rate()
                try:
                    await self.call(publish)
                except QuantifyError as exc:
                    logger.debug("status not published: %s", exc)
                except Exception as exc:  # noqa: BLE001 - ArcticDB storage errors: counted, retried next time
                    self.stats.store_errors += 1
                    logger.debug("status not published: %s", exc)

    async def flush(self, *, final: bool = False) -> None:
        """Append every trade the buffers released, and every book update, that may be written now."""
        released = await self._flush_trades(final)
        if self.receiver.books is not None:
            await self._flush_books()
        perps_kept = True
        if self.receiver.perps is not None:
            stored, perps_kept = await self._flush_perps()
            released = released or stored
        # After the books and perpetual data too: their frames share the journal's
        # segments, which are kept while marks the store refused are waiting.
        if released and perps_kept:
            self.receiver.release_journals(self.stored_next)

    async def _flush_trades(self, final: bool) -> bool:
        """Append the released trades; True if something was stored (the journal may be released)."""
        self.receiver.flush_journals()
        received_at = time.monotonic()
        pending = self._pending
        for key, buf in self.receiver.buffers.items():
            ready = buf.take()
            if ready:
                pending.setdefault(key, []).extend(ready)
        writable = self.ownership.writable(pending)
        if not writable:
            return False
        delay = RETRY_INITIAL
        while True:
            try:
                await self.call(self._append, writable)
                break
            except Exception as exc:  # noqa: BLE001 - the store refused: keep everything, retry with backoff
                self.stats.store_errors += 1
                self.set_state(WriterState.DEGRADED)
                logger.warning("store append failed (%s); retrying in %.1f s", exc, delay)
                if not final and self.stop is not None and self.stop.is_set():
                    final = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                if final and delay >= RETRY_MAX:
                    logger.error("store still refuses writes at shutdown; %d trades remain in the journal",
                                 sum(len(t) for t in writable.values()))
                    return False
        if self.state is WriterState.DEGRADED:
            self.set_state(WriterState.RUNNING)
        for key in list(writable):
            pending.pop(key, None)
        for key, trades in writable.items():
            self.first.setdefault(key, (trades[0].trade_id, trades[0].time))
            self.stored_next[key] = trades[-1].trade_id + 1
            self.last_time[key] = trades[-1].time
            self.rows[key] = self.rows.get(key, 0) + len(trades)
            self.stats.stored += len(trades)
        self.stats.appends += 1
        self.stats.observe_latency(time.monotonic() - received_at)
        return True

    async def _flush_books(self) -> None:
        """Append what the books applied (quotes, diffs, checkpoints, ledger), then tell the listeners."""
        books = self.receiver.books
        assert books is not None
        taken = books.take()
        batch = self.ownership.writable(taken)
        if len(batch) < len(taken):
            books.restore({k: v for k, v in taken.items() if k not in batch})
        received_at = time.monotonic()
        frames: dict[str, BookFrames] = {}
        if batch:
            try:
                frames = await self.call(self._append_book, batch)
            except Exception as exc:  # noqa: BLE001 - the store refused: keep everything for the next flush
                self.stats.store_errors += 1
                self.set_state(WriterState.DEGRADED)
                logger.warning("store append of order books failed (%s); retrying", exc)
                books.restore(batch)
                return
            for key, (rows, _) in batch.items():
                self.book_rows[key] = self.book_rows.get(key, 0) + len(rows)
                self.stats.quotes_stored += len(rows)
            self.stats.observe_latency(time.monotonic() - received_at)
        listeners = [getattr(li, "book_batch", None) for li in self.listeners]
        if any(listeners):
            quotes = {k: f.quotes for k, f in frames.items()}
            ledger = {k: f.ledger for k, f in frames.items()}
            stale = books.stale_seconds(time.time_ns())
            await self.call(self._notify_books, [c for c in listeners if c is not None], quotes, ledger, stale)

    def _append_book(self, batch: Mapping[str, BookBatch]) -> dict[str, BookFrames]:
        frames = {key: book_frames(rows, events) for key, (rows, events) in batch.items()}
        self.store.append_book(frames)
        return frames

    def _notify_books(self, calls: list[Callable[..., Any]], quotes: Mapping[str, pd.DataFrame],
                      ledger: Mapping[str, pd.DataFrame], stale: Mapping[str, float]) -> None:
        for call in calls:
            try:
                call(quotes, ledger, stale)
            except Exception:  # a listener's bug must not stop ingestion
                self.listener_errors += 1
                logger.exception("book listener %r failed", call)

    async def _flush_perps(self) -> tuple[bool, bool]:
        """Append the perpetual data received and polled; ``(something stored, nothing refused)``."""
        perps = self.receiver.perps
        assert perps is not None
        taken = perps.take()
        batch: PerpBatch = {}
        for kind, by_key in taken.items():
            writable = self.ownership.writable(by_key)
            if writable:
                batch[kind] = writable
            if len(writable) < len(by_key):
                perps.restore({kind: {k: v for k, v in by_key.items() if k not in writable}})
        if not batch:
            return False, True
        received_at = time.monotonic()
        try:
            await self.call(self._append_perps, batch)
        except Exception as exc:  # noqa: BLE001 - the store refused: keep everything for the next flush
            self.stats.store_errors += 1
            self.set_state(WriterState.DEGRADED)
            logger.warning("store append of perpetual data failed (%s); retrying", exc)
            perps.restore(batch)
            return False, False
        if self.state is WriterState.DEGRADED:  # the trades' append, before, succeeded too
            self.set_state(WriterState.RUNNING)
        self.stats.observe_latency(time.monotonic() - received_at)
        return True, True

    def _append_perps(self, batch: PerpBatch) -> None:
        perps = self.receiver.perps
        assert perps is not None
        frames = perp_frames(batch)
        self.store.check_space()
        for kind, by_key in frames.items():
            added = self.store.append_perp(kind, by_key)
            perps.count_stored(kind, added)
            self.stats.perp_stored += sum(added.values())
        marks, liquidations = frames.get("mark", {}), frames.get("liquidations", {})
        if marks or liquidations:
            for listener in self.listeners:
                call = getattr(listener, "perp_batch", None)
                if call is None:
                    continue
                try:
                    call(marks, liquidations)
                except Exception:  # a listener's bug must not stop ingestion
                    self.listener_errors += 1
                    logger.exception("perpetual listener %r failed", call)

    async def _compact(self) -> None:
        jobs = [(key, self.store.compact) for key in list(self.stored_next)]
        jobs += [(key, self.store.compact_book) for key in list(self.book_rows)]
        if self.receiver.perps is not None:
            jobs += [(key, self.store.compact_perp) for key in self.receiver.perps.stored_keys()]
        for key, compact in jobs:
            try:
                if await self.call(compact, key):
                    self.stats.compactions += 1
            except Exception as exc:  # noqa: BLE001 - compaction is an optimisation: log and go on
                logger.warning("compaction of %s failed: %s", key, exc)
