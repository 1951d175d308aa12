"""The ingestion service: exchange trades into ArcticDB, nothing lost, nothing twice.

One asyncio loop runs everything but the ArcticDB calls, which go to one
writer thread so receiving never waits for storage::

    connections ──frames──▶ journal (raw, append-only, one per venue)
         │
         └──parse──▶ SymbolBuffer per instrument ──contiguous runs──▶ writer ──▶ ArcticDB
                          │ gaps                                     (its thread)
                          ▼
                      backfill (the venue's REST, by id)

:class:`IngestService` composes parts of one responsibility each:

- :class:`~quantify.ingest.receiver.Receiver`: connections (reconnects,
  rotation, ``serverShutdown``), the journals and their recovery, the
  per-instrument buffers;
- :class:`~quantify.ingest.writer.Writer`: the flush loop, appends with
  backoff, batch listeners, compaction, the lifecycle state;
- :class:`~quantify.ingest.ownership.Ownership`: what this process may write,
  the LMDB writer lock or S3 leases (with takeover), chosen once;
- :mod:`quantify.ingest.tuning`: GC and GIL settings while streaming;
- with ``config.metrics_port``, :class:`~quantify.ingest.metrics.MetricsServer`:
  Prometheus metrics and health checks, a view of :meth:`IngestService.status`
  taken on the loop (:meth:`IngestService.snapshot`);
- per venue of the run (:class:`~quantify.ingest.feeds.VenueFeed`) its
  parser, journal, REST client and :class:`~quantify.ingest.gaps.GapFiller`;
- with ``config.perps``, the perpetuals' marks and liquidations (streamed,
  journaled, kept by :class:`~quantify.ingest.perps.PerpKeeper`) and their
  open interest and funding settlements (polled by
  :class:`~quantify.ingest.perps.PerpPoller` through ``Venue.perp_rest``).

On start the service takes ownership, replays the journal left by a killed
predecessor, and resumes each instrument at its last stored id: the first
live trade then reveals the downtime as a gap, which REST backfill fills.
A perpetual resumes at its last stored mark and liquidation: the journal's
older ones are dropped, so a replayed journal stores nothing twice.

Before it streams, it asks each venue's REST API, once and without retries,
which symbols it lists (``exchangeInfo``) and its clock: a symbol the venue
does not list is refused (``ValueError`` naming the closest listed ones); an
API that cannot be reached is reported (one warning naming the host, the
error and what to do; ``endpoints`` in the status) and streaming starts
anyway, retrying in the background. A stop request is honoured at any
moment of this, as of streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any

import httpx
import pandas as pd

from quantify.config import IngestConfig
from quantify.exceptions import RestError, WriterLocked
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.endpoints import Endpoints
from quantify.ingest.feeds import ParserTotals, RestTotals, VenueFeed, by_venue, stream_urls
from quantify.ingest.gaps import GapFiller
from quantify.ingest.listeners import BatchListener
from quantify.ingest.metrics import HEALTH_TIMEOUT, MetricsServer, call_on_loop
from quantify.ingest.ownership import ownership_for
from quantify.ingest.perps import PerpPoller
from quantify.ingest.receiver import Receiver
from quantify.ingest.stats import IngestStats
from quantify.ingest.symbols import check_listed_on, raise_first
from quantify.ingest.tuning import gil_switch_interval, tuned_gc
from quantify.ingest.writer import Writer
from quantify.model.book_status import BookStatus
from quantify.model.instrument import Instrument
from quantify.model.status import InstrumentStatus, WriterState, WriterStatus
from quantify.store import Store, open_store
from quantify.venues import venue as venue_named

__all__ = ["CHECK_TIMEOUT", "IngestService", "stream_urls"]

logger = logging.getLogger(__name__)

#: Seconds the start-up check of a venue (its symbol list, its clock) waits for an answer.
CHECK_TIMEOUT = 4.5


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
        self.store: Store = open_store(config.store, create=True)
        self.stats = IngestStats()
        #: Venue name -> that venue's parser, buffers, journal, REST client (see ``VenueFeed``).
        self.feeds: dict[str, VenueFeed] = {}
        for name in by_venue(config.instruments + tuple(Instrument.parse(s) for s in config.standby)):
            v = venue_named(name)
            v.check_kind(config.stream)
            self.feeds[name] = VenueFeed(v, v.parser(config.max_frame_bytes))
        for text in config.books:
            venue_named(Instrument.parse(text).venue).check_depth_limit(config.book_snapshot_limit)
        #: Malformed-frame counts of every venue's parser.
        self.parser = ParserTotals(self.feeds)
        self._rest = RestTotals(self.feeds)
        self._rest_transport = rest_transport
        self._ownership = ownership_for(self.store, config)
        #: Next id to store per instrument key (the writer advances it; new buffers start there).
        self.stored_next: dict[str, int] = {}
        #: Whether each connection and REST API is reached (``status().endpoints``).
        self.endpoints = Endpoints()
        self._receiver = Receiver(config, self.feeds, self.stats, self.stored_next,
                                  owns=self._ownership.owns, spawn=self._spawn, endpoints=self.endpoints)
        self._writer = Writer(config, self.store, self.stats, self._receiver, self._ownership, self.stored_next)
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        #: Set once streaming starts: the start-up lease renewals (see :meth:`run`) stop then.
        self._started = asyncio.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        #: The server of ``config.metrics_port`` while :meth:`run` runs (its ``url``, ``port``), else ``None``.
        self.metrics: MetricsServer | None = None
        for listener in listeners:
            self.add_batch_listener(listener)

    # -- what the parts count ---------------------------------------------------

    @property
    def state(self) -> WriterState:
        """Where the service is in its lifecycle."""
        return self._writer.state

    @property
    def buffers(self) -> dict[str, SymbolBuffer]:
        """Instrument key -> buffer (``BTCUSDT``, ``binance-usdm:BTCUSDT``)."""
        return self._receiver.buffers

    @property
    def rows(self) -> dict[str, int]:
        """Rows stored this run, per instrument key."""
        return self._writer.rows

    @property
    def last_time(self) -> dict[str, int]:
        """Time (ms) of the last stored trade, per instrument key."""
        return self._writer.last_time

    @property
    def listener_errors(self) -> int:
        """Batch listener calls that raised."""
        return self._writer.listener_errors

    @property
    def owned(self) -> tuple[str, ...]:
        """The instruments this process writes (all of ``config.symbols`` unless sharded)."""
        return self._ownership.owned

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
        self._writer.add_listener(listener)

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` is called or ``config.duration`` elapses."""
        self._loop = asyncio.get_running_loop()
        self._stop = self._writer.stop = asyncio.Event()
        self._wake = self._writer.wake = self._receiver.wake = asyncio.Event()
        if self._stop_requested:  # stop() came before the loop ran
            self._request_stop()
        self.metrics = self._metrics_server()
        try:
            await self._ownership.acquire()
            # Renew from now on: starting up (the store read for every instrument) may outlast a lease.
            self._started = asyncio.Event()
            keepalive = asyncio.ensure_future(
                self._ownership.maintain(self._lost, self._take_over, claim=False, until=self._started))
            try:
                with gil_switch_interval(self.config.switch_interval):
                    await self._run()
            finally:
                self._started.set()
                await asyncio.gather(keepalive, return_exceptions=True)
                await self._ownership.release()
                self._writer.shutdown()
        finally:
            if self.metrics is not None:
                await asyncio.to_thread(self.metrics.stop)
                self.metrics = None

    async def _run(self) -> None:
        cfg = self.config
        writer, receiver = self._writer, self._receiver
        async with contextlib.AsyncExitStack() as rests:
            self._open_rest(rests)
            # Asked while the store is read and the journal recovered: an
            # unreachable exchange is reported within seconds of start.
            check = asyncio.ensure_future(self._check_venues())
            rests.push_async_callback(self._cancel, check)
            await writer.resume()
            await self._resume_books()
            await self._resume_perps()
            if cfg.journal and receiver.open_journals(self.store.uri.path):
                if receiver.recover_journal(lambda: writer.set_state(WriterState.RECOVERING)):
                    await writer.flush()
                receiver.start_journals()
            await writer.start_listeners()
            with tuned_gc(cfg.tune_gc):
                flusher: asyncio.Task[Any] | None = None
                try:
                    if await self._unless_stopped(check):
                        writer.set_state(WriterState.RUNNING)
                        logger.info("streaming %s (%s) into %s", ",".join(cfg.symbols), cfg.stream, self.store.uri)
                        if receiver.perps is not None and receiver.perps.keys:
                            logger.info("with the perpetual data of %s", ",".join(receiver.perps.keys))
                        owned = self.owned
                        for key in owned:
                            receiver.buffer(key)
                        receiver.connect(owned)
                        for feed in self.feeds.values():
                            assert feed.rest is not None
                            self._spawn(GapFiller(feed.buffers, feed.rest, self.stats, cfg, venue=feed.venue).run())
                            if receiver.perps is not None and feed.perp_rest is not None:
                                self._spawn(PerpPoller(receiver.perps, feed, cfg).run())
                        self._started.set()  # the start-up renewals stop; this loop claims too
                        self._spawn(self._ownership.maintain(self._lost, self._take_over))
                        flusher = self._spawn(writer.flush_loop(self._write_status))
                        await self._until_stopped()
                finally:
                    writer.set_state(WriterState.STOPPING)
                    self._request_stop()
                    for task in list(self._tasks):
                        if task is not flusher:
                            task.cancel()
                    # The flusher is not cancelled: an append already handed to the
                    # writer thread must finish and be accounted for, or the final
                    # flush would append the same trades twice.
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                    await writer.flush(final=True)
                    await writer.close_listeners()
                    receiver.close_journals(self.stored_next)
                    writer.set_state(WriterState.STOPPED)
                    with contextlib.suppress(Exception):  # the store may still be unreachable
                        await writer.call(self._write_status)
        logger.info("stopped; %d trades stored this run", self.stats.stored)

    async def _resume_books(self) -> None:
        """Carry each owned book on from the store (its journal may continue it; the stream then resyncs)."""
        books = self._receiver.books
        if books is None:
            return

        def stored() -> dict[str, Any]:
            out = {}
            for key in books.keys:
                if self._ownership.owns(key) and self.store.has_book(key):
                    try:
                        sb = self.store.stored_book(key)
                    except ValueError:  # no checkpoint yet
                        continue
                    if not sb.stale:
                        out[key] = sb
            return out

        for key, sb in (await self._writer.call(stored)).items():
            if books.resume(key, sb.book, int(sb.time.value // 1_000_000)):
                logger.info("%s: order book resumed at update %d", key, sb.book.update_id)

    async def _resume_perps(self) -> None:
        """Carry each owned perpetual on from the store: its journal's marks at or before the stored ones are dropped."""
        perps = self._receiver.perps
        if perps is None:
            return
        if perps.ignored:
            logger.info("no perpetual data for %s (spot): ignored", ", ".join(perps.ignored))
        keys = [k for k in perps.keys if self._ownership.owns(k)]

        def stored() -> dict[str, dict[str, int]]:
            def ms(ts: pd.Timestamp | None) -> int:
                return -1 if ts is None else int(ts.value // 1_000_000)

            return {key: {"mark_ms": ms(self.store.last_perp_time("mark", key)),
                          "liquidation_ms": ms(self.store.last_perp_time("liquidations", key)),
                          "funding_ms": ms(self.store.last_funding_time(key))} for key in keys}

        for key, last in (await self._writer.call(stored)).items():
            perps.resume(key, **last)

    @staticmethod
    async def _cancel(task: asyncio.Future[Any]) -> None:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _open_rest(self, stack: contextlib.AsyncExitStack) -> None:
        """Each venue's REST client (closed with ``stack``), reporting to :attr:`endpoints`."""
        for name, feed in self.feeds.items():
            base = self.config.rest_base(name) or feed.venue.rest_url
            feed.rest = feed.venue.rest(base, transport=self._rest_transport,
                                        observer=self.endpoints.observer(name, base))
            stack.push_async_callback(feed.rest.aclose)
            perps = self._receiver.perps
            if perps is not None and perps.keys_of(name):
                feed.perp_rest = feed.venue.perp_rest(base, transport=self._rest_transport,
                                                      observer=self.endpoints.observer(name, base))
                stack.push_async_callback(feed.perp_rest.aclose)

    async def _check_venues(self) -> None:
        """Every venue at once: are the run's symbols listed (else ``ValueError``), what is its clock."""
        raise_first(await asyncio.gather(*(self._check_venue(feed) for feed in self.feeds.values()),
                                         return_exceptions=True))

    async def _check_venue(self, feed: VenueFeed) -> None:
        rest, name = feed.rest, feed.name
        assert rest is not None
        base = self.config.rest_base(name) or feed.venue.rest_url
        wanted = [i for i in self.config.instruments + tuple(Instrument.parse(s) for s in self.config.standby)
                  if i.venue == name]
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):  # a host that accepts and never answers
                checked = await check_listed_on(rest, name, wanted)
        except TimeoutError:
            self.endpoints.failed(name, "rest", base, f"no answer within {CHECK_TIMEOUT:g} s")
            logger.warning("%s: %s not checked against the exchange's list (no answer); going on", name,
                           ", ".join(str(i) for i in wanted))
            return
        reached = self.endpoints.state(name, "rest", base)
        if not checked and reached is not None and not reached.reached:
            return  # the clock would not answer either; the stream retries
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                feed.start_ms = await rest.server_time(retries=0)
        except (TimeoutError, RestError, KeyError, TypeError, ValueError) as exc:
            logger.warning("%s: no exchange time (%s): new symbols start at their first trade seen",
                           name, exc or "no answer")

    async def _unless_stopped(self, task: asyncio.Future[None]) -> bool:
        """Wait for ``task`` unless a stop comes first (then cancel it and return False)."""
        stop = self._stop
        assert stop is not None
        waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        pending: set[asyncio.Future[Any]] = {task, waiter}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            return False
        task.result()  # what the work raised
        return not stop.is_set()

    async def _until_stopped(self) -> None:
        stop = self._stop
        assert stop is not None
        if self.config.duration is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.duration)
        else:
            await stop.wait()

    def _lost(self, key: str) -> None:
        """Ownership of ``key`` went to another worker: stop buffering and writing it."""
        self._receiver.drop(key)
        self._writer.forget(key)
        if self._receiver.books is not None:
            self._receiver.books.drop(key)
        if self._receiver.perps is not None:
            self._receiver.perps.drop(key)

    async def _take_over(self, keys: list[str]) -> None:
        """Start writing ``keys``: resume at the last stored id, backfill the rest."""
        await self._writer.resume_instruments(keys)
        for key in keys:
            self._receiver.drop(key)
            self._receiver.buffer(key)
        logger.info("now writing %s (resuming at the last stored ids)", ",".join(keys))
        self._receiver.connect(keys)

    def stop(self) -> None:
        """Ask the service to stop (thread-safe, at any moment); it flushes everything received."""
        self._stop_requested = True
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
                # running, or stopped: by an error (an unknown symbol) or a stop request during start-up
                while self.state not in (WriterState.RUNNING, WriterState.DEGRADED) and not task.done():
                    await asyncio.sleep(0.02)
                if task.done():
                    await task  # an error (WriterLocked) is recorded before `started` is set
                started.set()
                await task

            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller of start/join
                self._thread_error = exc
                if isinstance(exc, WriterLocked):  # an answer for the caller (a kernel then reads), not a failure
                    logger.info("not ingesting: %s", exc)
                else:
                    logger.error("ingestion stopped with an error: %s", exc)
            finally:
                started.set()

        self._thread = threading.Thread(target=target, name="quantify-ingest", daemon=True)
        self._thread.start()
        started.wait(ready_timeout)
        if self._thread_error is not None:
            raise self._thread_error

    def is_alive(self) -> bool:
        """True while a service started with :meth:`start_in_thread` runs."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Stop a service started with :meth:`start_in_thread` and wait for it."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
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

    # -- reporting --------------------------------------------------------------

    def _metrics_server(self) -> MetricsServer | None:
        """The started metrics server of ``config.metrics_port`` (``None``: not asked for)."""
        cfg = self.config
        if cfg.metrics_port is None:
            return None
        server = MetricsServer(cfg.metrics_host, cfg.metrics_port, read_status=self.snapshot,
                               alive=lambda: self.responsive(HEALTH_TIMEOUT), token=cfg.metrics_token)
        server.start()
        return server

    def snapshot(self, timeout: float = 2.0) -> WriterStatus:
        """:meth:`status`, safe from any thread: taken on the service loop, which changes the counters.

        Called from another thread while the service runs, the status is taken
        by the loop between two of its steps, so that no counter or dict is
        read half-updated. If the loop does not answer within ``timeout`` s
        (it is stopping), the status is read directly.
        """
        try:
            return call_on_loop(self._loop, self.status, timeout)
        except TimeoutError:
            return self.status()

    def responsive(self, timeout: float) -> bool:
        """True while the service loop runs and answers within ``timeout`` s (``/healthz``)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        try:
            call_on_loop(loop, lambda: None, timeout)
        except TimeoutError:
            return False
        return True

    def _write_status(self) -> None:
        """Publish the status (in the writer thread; the status itself is taken on the loop)."""
        self.store.check_space()
        self.store.write_status(self.snapshot(), name=self._ownership.status_name)

    def status(self) -> WriterStatus:
        """Everything this service reports about itself (what it publishes every second).

        Reads the counters the service loop changes: call it on the loop, or
        when the service is not running; other threads call :meth:`snapshot`.
        """
        writer = self._writer
        instruments = {}
        for key, buf in sorted(self.buffers.items()):
            last_ms = writer.last_time.get(key)
            first = writer.first.get(key)
            instruments[key] = InstrumentStatus(
                instrument=key,
                rows=writer.stored_rows(key),
                rows_this_run=writer.rows.get(key, 0),
                first_id=None if first is None else first[0],
                first_time=None if first is None else pd.Timestamp(first[1], unit="ms", tz="UTC"),
                last_id=self.stored_next[key] - 1 if key in self.stored_next else None,
                last_time=None if last_ms is None else pd.Timestamp(last_ms, unit="ms", tz="UTC"),
                gaps_found=buf.gaps_found,
                gaps_filled=buf.gaps_filled,
                gaps_open=len(buf.gaps),
                gaps_unfilled=buf.gaps_unfilled,
                trades_lost=buf.trades_lost,
                duplicates_dropped=buf.duplicates,
                pending=buf.pending,
                trades_received=buf.received,
            )
        s = self.stats
        info = self._ownership.info
        degraded = None
        if self.state is WriterState.DEGRADED:
            degraded = f"the store refuses writes ({s.store_errors} failed appends); trades wait in memory"
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
            connections=-(-len(self.owned) // per_connection) if self.state is WriterState.RUNNING else 0,
            ticks_per_second=round(s.ticks_per_second, 1),
            store_latency_ms=s.latency_ms(),
            store_latency_histogram=s.latency_histogram(),
            frames=s.frames,
            trades_received=s.trades,
            trades_stored=s.stored,
            malformed_frames=self.parser.malformed_total,
            malformed_by_reason=dict(self.parser.malformed),
            reconnects=s.reconnects,
            server_shutdowns=s.server_shutdowns,
            rotations=s.rotations,
            journal_recovered=s.journal_recovered,
            journal_errors=self._receiver.journal_errors,
            backfilled=s.backfilled,
            rest_requests=self._rest.requests,
            rest_rate_limited=self._rest.rate_limited,
            rest_errors=s.rest_errors,
            store_errors=s.store_errors,
            listener_errors=writer.listener_errors,
            appends=s.appends,
            compactions=s.compactions,
            degraded_reason=degraded,
            instruments=instruments,
            listeners=writer.listener_stats(),
            endpoints=self.endpoints.snapshot(),
            books=self._book_status(),
            perps={} if self._receiver.perps is None else self._receiver.perps.status(),
            **self._ownership.status_fields(),
        )

    def _book_status(self) -> dict[str, BookStatus]:
        books = self._receiver.books
        if books is None:
            return {}
        rows = self._writer.book_rows
        return {key: BookStatus.from_dict({**d, "quotes_stored": rows.get(key, 0)}, key)
                for key, d in sorted(books.status(time.time_ns()).items())}

    def _ws_url(self) -> str:
        """The WebSocket base URL streamed from (the first venue's, if they differ)."""
        for name, feed in self.feeds.items():
            return self.config.ws_base(name) or feed.venue.ws_url
        return self.config.ws_url or ""
