"""The ingestion service: exchange trades into ArcticDB, nothing lost, nothing twice.

One asyncio loop runs everything but the ArcticDB calls, which go to one
writer thread so receiving never waits for storage::

    connections ──frames──▶ journal (raw, append-only, one per venue)
         │
         └──parse──▶ SymbolBuffer per instrument ──contiguous runs──▶ flusher ──▶ ArcticDB
                          │ gaps                                      (writer thread)
                          ▼
                      backfill (the venue's REST, by id)

- Instruments of several venues stream at once (``BTCUSDT`` is Binance spot,
  ``binance-usdm:BTCUSDT`` the USD-M perpetual): each venue of the run
  (:class:`~quantify.ingest.feeds.VenueFeed`) has its own connections on its
  own stream URLs, its own parser, journal, REST client and gap filler;
  buffers, the journal's bookkeeping and the store are keyed by instrument
  (``inst.key``; for spot, the plain symbol as before).

- Connections use websockets' own reconnect loop (capped, jittered backoff),
  reconnect at once on ``serverShutdown`` and are rotated before Binance's
  24 h limit with an overlap; duplicates are dropped by id.
- Shared (S3) stores take per-symbol ownership leases instead of the
  whole-store lock (:mod:`quantify.store.shard`): symbols another live worker
  owns are skipped (named in a warning) and taken over once that worker's
  lease expires; a worker granted none of its symbols refuses to start.
- On start the service takes the store's writer lock, replays the journal
  left by a killed predecessor, and resumes each symbol at its last stored
  id: the first live trade then reveals the downtime as a gap, which REST
  backfill fills.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import pandas as pd
import websockets
from websockets.asyncio.client import connect
from websockets.client import backoff
from websockets.frames import CloseCode

from quantify.config import IngestConfig
from quantify.exceptions import QuantifyError, RestError, WriterLocked
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.feeds import (
    ParserTotals,
    RestTotals,
    VenueFeed,
    by_venue,
    stream_urls,
    venue_stream_urls,
)
from quantify.ingest.gaps import GapFiller
from quantify.ingest.journal import Journal, JournalSet, journal_dir
from quantify.ingest.listeners import BatchListener, listener_stats
from quantify.ingest.stats import IngestStats
from quantify.model.instrument import Instrument
from quantify.model.status import InstrumentStatus, WriterState, WriterStatus
from quantify.model.trades import ServerShutdown, Trade, trades_to_frame
from quantify.store import Store, WriterLock, open_store
from quantify.store.shard import ShardLeases
from quantify.venues import venue as venue_named

__all__ = ["IngestService", "stream_urls"]

logger = logging.getLogger(__name__)

#: Allocations between collections of the youngest generation while streaming
#: (CPython's default is 700); see ``IngestConfig.tune_gc``.
GC_YOUNG_THRESHOLD = 100_000


class IngestService:
    """Stream trades of ``config.symbols`` into the store until stopped.

    Parameters
    ----------
    config : IngestConfig
        What to stream, from where, into which store.
    listeners : iterable of BatchListener, optional
        Called after every append (see :meth:`add_batch_listener`); the entry
        points pass :func:`quantify.ingest.listeners.standard_listeners`
        (continuous candles, alerts). None by default: the service stores ticks only.
    rest_transport : httpx.AsyncBaseTransport, optional
        Replaces the network for REST backfill (tests).
    """

    def __init__(self, config: IngestConfig, *, listeners: Iterable[BatchListener] = (),
                 rest_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.store: Store = open_store(config.store)
        self.stats = IngestStats()
        self.state = WriterState.STARTING
        #: Venue name -> that venue's parser, buffers, journal, REST client (see ``VenueFeed``).
        self.feeds: dict[str, VenueFeed] = {}
        for name in by_venue(config.instruments + tuple(Instrument.parse(s) for s in config.standby)):
            v = venue_named(name)
            v.check_kind(config.stream)
            self.feeds[name] = VenueFeed(v, v.parser(config.max_frame_bytes))
        #: Malformed-frame counts of every venue's parser.
        self.parser = ParserTotals(self.feeds)
        #: Instrument key -> buffer (``BTCUSDT``, ``binance-usdm:BTCUSDT``).
        self.buffers: dict[str, SymbolBuffer] = {}
        self.stored_next: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.last_time: dict[str, int] = {}
        self._rest_transport = rest_transport
        self._lock = WriterLock(str(self.store.uri), self.store.uri.path)
        #: Per-symbol ownership on a shared (S3) store; ``None`` for LMDB and mem.
        self.leases: ShardLeases | None = None
        #: Symbols asked for but owned by another live worker: {symbol: owner}.
        self.skipped: dict[str, str] = {}
        self.lease_errors = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quantify-writer")
        # Lease renewals must not queue behind slow appends: their own thread.
        self._lease_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quantify-lease")
        self._stop: asyncio.Event | None = None
        #: The collector's thresholds before streaming (restored on stop), if tuned.
        self._gc_threshold: tuple[int, int, int] | None = None
        #: Set when a symbol has ``batch_size`` trades ready, or to stop: the flusher wakes.
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending_frames: dict[str, list[Trade]] = {}
        self._last_compact = time.monotonic()
        self._journal: JournalSet | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._listeners: list[BatchListener] = []
        self.listener_errors = 0
        #: Requests and rate limits of every venue's REST client.
        self._rest = RestTotals(self.feeds)
        self.sharded = self.store.uri.scheme in ("s3", "s3s")
        for listener in listeners:
            self.add_batch_listener(listener)

    def add_batch_listener(self, listener: BatchListener) -> None:
        """Call ``listener(frames)`` after every append, in the writer thread.

        ``frames`` maps each symbol to the tick frame just stored (id order,
        no duplicate, each trade exactly once across calls). Listeners
        maintain derived data (continuous candles) and evaluate alert rules;
        they run in the writer thread, so the store's write methods are safe
        to call from them. An exception is logged and counted, never fatal.

        If the listener has a ``start(store)`` method, it is called once in
        the writer thread after journal recovery and before streaming, so it
        can catch up on trades stored while it was not running.
        """
        self._listeners.append(listener)

    def _notify(self, frames: Mapping[str, pd.DataFrame]) -> None:
        for listener in self._listeners:
            try:
                listener(frames)
            except Exception:  # a listener's bug must not stop ingestion
                self.listener_errors += 1
                logger.exception("batch listener %r failed", listener)

    def _append(self, trades: dict[str, list[Trade]]) -> None:
        # Building the frames here keeps the receive loop free of the work.
        frames = {sym: trades_to_frame(batch) for sym, batch in trades.items()}
        self.store.check_space()
        self.store.append_ticks(frames)
        self._notify(frames)

    # -- lifecycle --------------------------------------------------------

    def _set_state(self, state: WriterState) -> None:
        if state is not self.state:
            logger.debug("writer state %s -> %s", self.state.value, state.value)
            self.state = state

    async def run(self) -> None:
        """Run until :meth:`stop` is called or ``config.duration`` elapses."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        if self.sharded:
            await self._acquire_leases()
        else:
            self._lock.acquire()
        switch = self.config.switch_interval
        previous_switch = sys.getswitchinterval()
        if switch is not None:
            sys.setswitchinterval(switch)
        try:
            await self._run()
        finally:
            if switch is not None and sys.getswitchinterval() == switch:
                sys.setswitchinterval(previous_switch)
            if self._gc_threshold is not None:
                gc.unfreeze()
                gc.set_threshold(*self._gc_threshold)
            if self.leases is not None:
                await self._in_lease(self.leases.release)
                self._lease_executor.shutdown(wait=True)
            else:
                self._lock.release()
            self._executor.shutdown(wait=True)

    @property
    def owned(self) -> tuple[str, ...]:
        """The symbols this worker writes (all of ``config.symbols`` unless sharded)."""
        if self.leases is None:
            return self.config.symbols
        return tuple(s for s in self.config.symbols + self.config.standby if s in self.leases.held)

    async def _acquire_leases(self) -> None:
        cfg = self.config
        ttl = cfg.lease_ttl
        self.leases = ShardLeases(self.store, ttl=ttl, verify_delay=min(1.0, ttl / 10))
        claim = await self._in_lease(self.leases.acquire, cfg.symbols)
        self.skipped = {s: lease.owner for s, lease in claim.refused.items()}
        if not claim.acquired and not cfg.standby:
            raise WriterLocked(
                f"every symbol asked for on {self.store.uri} is owned by a live worker: "
                f"{claim.describe_refused()}. Ask for other symbols, or wait until the owner "
                f"stops (its lease expires {ttl:.0f} s after it dies)."
            )
        if claim.refused:
            logger.warning("skipping %s: %s; they are taken over if that lease expires",
                           ",".join(sorted(claim.refused)), claim.describe_refused())

    async def _run(self) -> None:
        cfg = self.config
        last = await self._in_writer(self.store.last_trades)
        for sym, (tid, ts) in last.items():
            self.stored_next[sym] = tid + 1
            self.last_time[sym] = int(ts.value // 1_000_000)
        if cfg.journal and journal_dir(self.store.uri.path) is not None:
            for name, feed in self.feeds.items():
                feed.journal = Journal(journal_dir(self.store.uri.path, name))  # type: ignore[arg-type]
            self._journal = JournalSet({n: f.journal for n, f in self.feeds.items() if f.journal})
            await self._recover_journal()
            for feed in self.feeds.values():
                if feed.journal is not None:
                    feed.journal.start()
        for listener in self._listeners:
            start = getattr(listener, "start", None)
            catch_up = getattr(listener, "catch_up", None)
            if self.leases is not None and catch_up is not None:
                # Sharded: catch up only on the symbols this worker owns;
                # the others are their owners' to write.
                for sym in self.owned:
                    if self.store.library("ticks").has_symbol(sym):
                        await self._in_writer(catch_up, sym)
            elif start is not None:
                # Listeners catch up on what was stored while they were not
                # running (e.g. trades appended just before a kill -9).
                await self._in_writer(start, self.store)
        if cfg.tune_gc:
            self._gc_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *self._gc_threshold[1:])
        self._set_state(WriterState.RUNNING)
        logger.info("streaming %s (%s) into %s", ",".join(cfg.symbols), cfg.stream, self.store.uri)
        async with contextlib.AsyncExitStack() as rests:
            for name, feed in self.feeds.items():
                feed.rest = await rests.enter_async_context(
                    feed.venue.rest(cfg.rest_base(name), transport=self._rest_transport))
                try:
                    feed.start_ms = await feed.rest.server_time()
                except (RestError, KeyError, TypeError, ValueError) as exc:
                    logger.warning("%s: no exchange time (%s): new symbols start at their first trade seen",
                                   name, exc)
            owned = self.owned
            for key in owned:
                self._buffer(key)
            for venue, url in venue_stream_urls(cfg, owned) if owned else []:
                self._spawn(self._connection(self.feeds[venue.name], url))
            for feed in self.feeds.values():
                assert feed.rest is not None
                self._spawn(GapFiller(feed.buffers, feed.rest, self.stats, cfg, venue=feed.venue).run())
            if self.leases is not None:
                self._spawn(self._lease_loop())
            flusher = self._spawn(self._flush_loop())
            stop = self._stop
            assert stop is not None
            try:
                if cfg.duration is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), cfg.duration)
                else:
                    await stop.wait()
            finally:
                self._set_state(WriterState.STOPPING)
                self._request_stop()
                for task in list(self._tasks):
                    if task is not flusher:
                        task.cancel()
                # The flusher is not cancelled: an append already handed to the
                # writer thread must finish and be accounted for, or the final
                # flush would append the same trades twice.
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await self._flush(final=True)
                for listener in self._listeners:
                    close = getattr(listener, "close", None)
                    if close is not None:
                        try:
                            await self._in_writer(close)
                        except Exception:  # closing is best effort; the data is stored
                            logger.exception("closing batch listener %r failed", listener)
                for feed in self.feeds.values():
                    if feed.journal is not None:
                        feed.journal.close(feed.last_seen(), self.stored_next)
                self._set_state(WriterState.STOPPED)
                with contextlib.suppress(Exception):  # the store may still be unreachable
                    await self._in_writer(self._write_status)
        logger.info("stopped; %d trades stored this run", self.stats.stored)

    def stop(self) -> None:
        """Ask the service to stop (thread-safe); it flushes everything received."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._request_stop)

    def _request_stop(self) -> None:
        assert self._stop is not None and self._wake is not None
        self._stop.set()
        self._wake.set()

    def start_in_thread(self, *, ready_timeout: float = 30.0) -> None:
        """Run the service in a daemon thread with its own event loop.

        Returns once the service is running (or raises what stopped it).
        """
        started = threading.Event()

        def target() -> None:
            async def main() -> None:
                task = asyncio.ensure_future(self.run())
                while self.state in (WriterState.STARTING, WriterState.RECOVERING) and not task.done():
                    await asyncio.sleep(0.02)
                if task.done():
                    await task  # an error (WriterLocked) is recorded before `started` is set
                started.set()
                await task

            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced to the caller of start/join
                self._thread_error = exc
                logger.error("ingestion stopped with an error: %s", exc)
            finally:
                started.set()

        self._thread = threading.Thread(target=target, name="quantify-ingest", daemon=True)
        self._thread.start()
        started.wait(ready_timeout)
        if self._thread_error is not None:
            raise self._thread_error

    def join(self, timeout: float | None = None) -> None:
        """Stop a service started with :meth:`start_in_thread` and wait for it."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- helpers ----------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("ingestion task failed: %r", task.exception(), exc_info=task.exception())
            if self._stop is not None:
                self._request_stop()

    async def _in_writer(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    async def _in_lease(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._lease_executor, functools.partial(fn, *args, **kwargs))

    def _buffer(self, key: str) -> SymbolBuffer:
        """The buffer of instrument ``key`` (created, and registered with its venue, if new)."""
        buf = self.buffers.get(key)
        if buf is None:
            inst = Instrument.parse(key)
            feed = self.feeds.get(inst.venue)
            if feed is None:
                raise ValueError(f"{key}: its venue {inst.venue!r} is not streamed by this run")
            buf = self.buffers[key] = SymbolBuffer(inst.symbol, self.stored_next.get(key), start_ms=feed.start_ms)
            feed.buffers[inst.symbol] = buf
            feed.keys[inst.symbol] = key
        return buf

    def _new_buffer(self, feed: VenueFeed, symbol: str) -> SymbolBuffer | None:
        key = feed.key(symbol)
        # Sharded: a symbol this worker does not own (any more) is not buffered.
        if self.leases is not None and key not in self.leases.held:
            return None
        return self._buffer(key)

    def _drop_buffer(self, key: str) -> None:
        self.buffers.pop(key, None)
        inst = Instrument.parse(key)
        feed = self.feeds.get(inst.venue)
        if feed is not None:
            feed.buffers.pop(inst.symbol, None)

    def _write_status(self) -> None:
        name = "status" if self.leases is None else f"status__{self.leases.owner}"
        self.store.check_space()
        self.store.write_status(self.status(), name=name)

    # -- ownership (shared stores) ------------------------------------------

    async def _lease_loop(self) -> None:
        """Renew this worker's lease; take over symbols whose owner's lease expired."""
        leases = self.leases
        assert leases is not None
        cfg = self.config
        while True:
            await asyncio.sleep(leases.renew_interval)
            try:
                lost = await self._in_lease(leases.renew)
                for sym in lost:
                    self._drop_buffer(sym)
                    self._pending_frames.pop(sym, None)
                wanted = [s for s in cfg.symbols if s not in leases.held]
                standby = [s for s in cfg.standby if s not in leases.held and s not in cfg.symbols]
                acquired: list[str] = []
                if wanted:
                    claim = await self._in_lease(leases.acquire, wanted)
                    acquired += claim.acquired
                    self.skipped = {s: lease.owner for s, lease in claim.refused.items()}
                if standby:
                    acquired += (await self._in_lease(leases.acquire, standby, takeover_only=True)).acquired
            except Exception as exc:  # the store is unreachable: the lease runs out locally
                self.lease_errors += 1
                logger.warning("lease renewal failed (%s); retrying in %.1f s", exc, leases.renew_interval)
                continue
            if acquired:
                await self._take_over(acquired)

    async def _take_over(self, symbols: list[str]) -> None:
        """Start writing ``symbols``: resume at the last stored id, backfill the rest."""
        def last_of() -> dict[str, tuple[int, pd.Timestamp]]:
            ticks = self.store.library("ticks")
            out = {}
            for sym in symbols:
                if ticks.has_symbol(sym):
                    tail = self.store._retry(sym, lambda s=sym: ticks.tail(s, 1).data)
                    if len(tail):
                        out[sym] = (int(tail["trade_id"].iloc[-1]), tail.index[-1])
            return out

        last = await self._in_writer(last_of)
        for sym in symbols:
            if sym in last:
                tid, ts = last[sym]
                self.stored_next[sym] = tid + 1
                self.last_time[sym] = int(ts.value // 1_000_000)
            self._drop_buffer(sym)
            self._buffer(sym)
        logger.info("now writing %s (resuming at the last stored ids)", ",".join(symbols))
        for venue, url in venue_stream_urls(self.config, symbols):
            self._spawn(self._connection(self.feeds[venue.name], url))

    async def _recover_journal(self) -> None:
        """Store the trades of the segments a killed predecessor left, each venue with its parser."""
        leftover = 0
        before = sum(len(b.ready) for b in self.buffers.values())
        for feed in self.feeds.values():
            journal = feed.journal
            if journal is None or not journal.leftover():
                continue
            self._set_state(WriterState.RECOVERING)
            leftover += len(journal.leftover())
            parse = feed.parser.parse
            for frame in journal.replay_leftover():
                event = parse(frame)
                if type(event) is Trade:
                    self._buffer(feed.key(event.symbol)).add(event)
        if not leftover:
            return
        recovered = sum(len(b.ready) for b in self.buffers.values()) - before
        self.stats.journal_recovered += recovered
        logger.info("journal: %d trades recovered from %d segment(s)", recovered, leftover)
        await self._flush()

    # -- receiving --------------------------------------------------------

    async def _connection(self, feed: VenueFeed, url: str, *, replacement: bool = False) -> None:
        cfg = self.config
        delays = functools.partial(
            backoff, initial_delay=cfg.backoff_initial, min_delay=cfg.backoff_min, max_delay=cfg.backoff_max
        )
        parse = feed.parser.parse
        buffers = feed.buffers  # by the venue's symbol, as its frames carry it
        stats = self.stats
        time_ns = time.time_ns
        journal_write = feed.journal.write if feed.journal is not None else None
        batch_size = cfg.batch_size
        wake = self._wake
        assert wake is not None
        first = not replacement
        async for ws in connect(url, max_size=cfg.max_frame_bytes, compression=None, max_queue=4096,
                                reconnect_delays=delays, open_timeout=10, close_timeout=2):
            if not first:
                stats.reconnects += 1
                logger.info("reconnected to %s", url.split("?")[0])
            first = False
            rotation = asyncio.ensure_future(self._retire_after(ws, feed, url, cfg.connection_max_age))
            retiring = False
            recv = ws.recv
            try:
                while True:
                    # Undecoded: orjson reads UTF-8 bytes itself, and the
                    # journal stores them as they came.
                    frame = await recv(decode=False)
                    if journal_write is not None:
                        journal_write(frame, time_ns())
                    stats.frames += 1
                    event = parse(frame)
                    if type(event) is Trade:
                        stats.trades += 1
                        buf = buffers.get(event.symbol) or self._new_buffer(feed, event.symbol)
                        if buf is not None:
                            buf.add(event)
                            if len(buf.ready) >= batch_size:
                                wake.set()
                    elif type(event) is ServerShutdown:
                        stats.server_shutdowns += 1
                        logger.info("serverShutdown from %s: switching connection", url.split("?")[0])
                        rotation.cancel()
                        rotation = asyncio.ensure_future(self._retire_after(ws, feed, url, 0.0))
            except websockets.ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    # websockets refused the frame (max_size) before the parser saw it; count it there
                    feed.parser.reject_oversized(exc.sent.reason)
            finally:
                retiring = rotation.done() and not rotation.cancelled() and bool(rotation.result())
                rotation.cancel()
            if retiring:
                return

    async def _retire_after(self, ws: Any, feed: VenueFeed, url: str, age: float) -> bool:
        """After ``age`` s, open a replacement connection, overlap, then close ``ws``."""
        overlap = self.config.rotation_overlap if age > 0 else min(self.config.rotation_overlap, 2.0)
        await asyncio.sleep(max(age - overlap, 0.0))
        self.stats.rotations += 1
        self._spawn(self._connection(feed, url, replacement=True))
        await asyncio.sleep(overlap)
        await ws.close()
        return True

    # -- storing ----------------------------------------------------------

    async def _flush_loop(self) -> None:
        cfg = self.config
        next_status = 0.0
        assert self._stop is not None and self._wake is not None
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), cfg.flush_interval)
            self._wake.clear()
            await self._flush()
            now = time.monotonic()
            if now - self._last_compact >= cfg.compact_interval:
                self._last_compact = now
                await self._compact()
            if now >= next_status:
                next_status = now + cfg.status_interval
                self.stats.update_rate()
                try:
                    await self._in_writer(self._write_status)
                except QuantifyError as exc:
                    logger.debug("status not published: %s", exc)
                except Exception as exc:  # ArcticDB storage errors: counted, retried next time
                    self.stats.store_errors += 1
                    logger.debug("status not published: %s", exc)

    async def _flush(self, *, final: bool = False) -> None:
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.flush(feed.last_seen)
        received_at = time.monotonic()
        pending = self._pending_frames
        for sym, buf in self.buffers.items():
            ready = buf.take()
            if ready:
                pending.setdefault(sym, []).extend(ready)
        if self.leases is not None:
            # Never write a symbol whose lease is not fresh (renewals failing):
            # its trades wait here until the lease is renewed or lost.
            writable = {s: t for s, t in pending.items() if self.leases.holds(s)}
        else:
            writable = dict(pending)
        if not writable:
            return
        delay = 0.2
        while True:
            try:
                await self._in_writer(self._append, writable)
                break
            except Exception as exc:  # the store refused: keep everything, retry with backoff
                self.stats.store_errors += 1
                self._set_state(WriterState.DEGRADED)
                logger.warning("store append failed (%s); retrying in %.1f s", exc, delay)
                if not final and self._stop is not None and self._stop.is_set():
                    final = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                if final and delay >= 10.0:
                    logger.error("store still refuses writes at shutdown; %d trades remain in the journal",
                                 sum(len(t) for t in writable.values()))
                    return
        if self.state is WriterState.DEGRADED:
            self._set_state(WriterState.RUNNING)
        for sym in list(writable):
            pending.pop(sym, None)
        for sym, trades in writable.items():
            self.stored_next[sym] = trades[-1].trade_id + 1
            self.last_time[sym] = trades[-1].time
            self.rows[sym] = self.rows.get(sym, 0) + len(trades)
            self.stats.stored += len(trades)
        self.stats.appends += 1
        self.stats.store_latency.append(time.monotonic() - received_at)
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.release(self.stored_next, all_leftover=True)

    async def _compact(self) -> None:
        for sym in list(self.stored_next):
            try:
                if await self._in_writer(self.store.compact, sym):
                    self.stats.compactions += 1
            except Exception as exc:  # compaction is an optimisation: log and go on
                logger.warning("compaction of %s failed: %s", sym, exc)

    # -- reporting --------------------------------------------------------

    def status(self) -> WriterStatus:
        """Everything this service reports about itself (what it publishes every second)."""
        instruments = {}
        for sym, buf in sorted(self.buffers.items()):
            last_ms = self.last_time.get(sym)
            instruments[sym] = InstrumentStatus(
                instrument=sym,
                rows_this_run=self.rows.get(sym, 0),
                last_id=self.stored_next[sym] - 1 if sym in self.stored_next else None,
                last_time=None if last_ms is None else pd.Timestamp(last_ms, unit="ms", tz="UTC"),
                gaps_found=buf.gaps_found,
                gaps_filled=buf.gaps_filled,
                gaps_open=len(buf.gaps),
                gaps_unfilled=buf.gaps_unfilled,
                trades_lost=buf.trades_lost,
                duplicates_dropped=buf.duplicates,
                pending=buf.pending,
            )
        s = self.stats
        rest = getattr(self, "_rest", None)
        info = self._lock.info
        degraded = None
        if self.state is WriterState.DEGRADED:
            degraded = f"the store refuses writes ({s.store_errors} failed appends); trades wait in memory"
        owned = self.owned
        per_connection = max(self.config.streams_per_connection, 1)
        return WriterStatus(
            state=self.state,
            writer=info.describe(),
            pid=info.pid,
            host=info.host,
            heartbeat=time.time(),
            started=s.started,
            store=str(self.store.uri),
            stream=self.config.stream,
            ws_url=self._ws_url(),
            connections=-(-len(owned) // per_connection) if self.state is WriterState.RUNNING else 0,
            ticks_per_second=round(s.ticks_per_second, 1),
            store_latency_ms=s.latency_ms(),
            frames=s.frames,
            trades_received=s.trades,
            trades_stored=s.stored,
            malformed_frames=self.parser.malformed_total,
            malformed_by_reason=dict(self.parser.malformed),
            reconnects=s.reconnects,
            server_shutdowns=s.server_shutdowns,
            rotations=s.rotations,
            journal_recovered=s.journal_recovered,
            journal_errors=self._journal.errors if self._journal is not None else 0,
            backfilled=s.backfilled,
            rest_requests=getattr(rest, "requests", 0),
            rest_rate_limited=getattr(rest, "rate_limited", 0),
            rest_errors=s.rest_errors,
            store_errors=s.store_errors,
            listener_errors=self.listener_errors,
            appends=s.appends,
            compactions=s.compactions,
            degraded_reason=degraded,
            instruments=instruments,
            listeners=self._listener_stats(),
            **self._lease_status(),
        )

    def _ws_url(self) -> str:
        """The WebSocket base URL streamed from (the first venue's, if they differ)."""
        for name, feed in self.feeds.items():
            return self.config.ws_base(name) or feed.venue.ws_url
        return self.config.ws_url or ""

    def _lease_status(self) -> dict[str, Any]:
        if self.leases is None:
            return {}
        return {
            "owner": self.leases.owner,
            "lease_ttl": self.leases.ttl,
            "owned": tuple(sorted(self.leases.held)),
            "skipped": dict(sorted(self.skipped.items())),
            "lease_errors": self.lease_errors,
        }

    def _listener_stats(self) -> dict[str, Any]:
        return listener_stats(self._listeners)
