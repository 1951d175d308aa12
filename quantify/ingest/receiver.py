"""Receiving: connections -> journal -> the venue's parser -> per-instrument buffers.

Each venue of the run (:class:`~quantify.ingest.feeds.VenueFeed`) has its
own connections on its own stream URLs. A connection:

- receives with picows (:mod:`quantify.ingest._picows`, frames parsed in
  Cython; the default) or websockets (``IngestConfig.ws_client``), both
  reconnecting with websockets' capped, jittered backoff and giving
  up an attempt after :data:`CONNECT_TIMEOUT` seconds; every frame goes to
  the one handler of :meth:`Receiver.frame_handler`, every attempt's
  outcome goes to the run's :class:`~quantify.ingest.endpoints.Endpoints`
  (``connecting``, ``connected``, ``unreachable``: the first failure logs
  one warning naming the host, the error and what to do);
- receives frames undecoded and appends each, as received, to the venue's
  raw journal before anything else (a killed process's successor replays it:
  :meth:`Receiver.recover_journal`);
- hands the frame to the venue's sans-I/O parser and a trade to its
  instrument's :class:`~quantify.ingest.buffer.SymbolBuffer`, waking the
  writer when a buffer has ``batch_size`` trades ready; a depth diff or a
  ``bookTicker`` goes to the run's :class:`~quantify.ingest.books.BookKeeper`
  (and a lost book connection is noted in its ledger), a mark price or a
  liquidation (with its receive time) to the run's
  :class:`~quantify.ingest.perps.PerpKeeper`;
- waits out a refused handshake's ``Retry-After`` (HTTP 429/418: too many
  connections from this IP, Binance's 300 per 5 minutes) before its next
  attempt, which websockets alone would take as fatal;
- reconnects at once on ``serverShutdown`` and is rotated before Binance's
  24 h limit, with an overlap (duplicates are dropped by id);
- counts a frame the client refused as too big (``max_frame_bytes``) as a
  malformed frame of its parser and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.client import backoff, process_exception
from websockets.frames import CloseCode

from quantify.config import IngestConfig
from quantify.ingest._picows import Closable, picows_connection
from quantify.ingest.books import BookKeeper
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.endpoints import Endpoints
from quantify.ingest.feeds import VenueFeed, venue_stream_urls
from quantify.ingest.journal import Journal, JournalSet, journal_dir
from quantify.ingest.perps import PerpKeeper
from quantify.ingest.stats import IngestStats
from quantify.model.book import BookTicker, DepthDiff
from quantify.model.instrument import Instrument
from quantify.model.perp import Liquidation, MarkPrice
from quantify.model.trades import ServerShutdown, Trade

__all__ = ["Receiver"]

logger = logging.getLogger(__name__)

#: Seconds a connection attempt (TCP, TLS, WebSocket handshake) may take before it counts as failed.
CONNECT_TIMEOUT = 4.0

#: Handshake answers that mean "too many connections from this IP: come back later".
_RATE_LIMITED = (429, 418)


def refused_status(exc: Exception) -> int | None:
    """The HTTP status of either client's refused upgrade: websockets' ``InvalidStatus``
    (``response.status_code``) or picows' ``WSInvalidStatusError`` (``response.status``)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return None if status is None else int(status)


def retry_after(exc: Exception) -> float | None:
    """Seconds to wait before reconnecting after a rate-limited handshake (429/418), else None."""
    if refused_status(exc) not in _RATE_LIMITED:
        return None
    try:
        return max(1.0, float(exc.response.headers.get("Retry-After", "")))  # type: ignore[attr-defined]
    except (ValueError, TypeError, AttributeError):
        return 60.0


#: Starts a task the service tracks (cancelled on stop, its failure stops the service).
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class Receiver:
    """The receiving side of a run: connections, journals, buffers (see the module docstring).

    Parameters
    ----------
    config : IngestConfig
        The run's settings (frame size, backoff, rotation, batch size).
    feeds : dict of str to VenueFeed
        The run's venues, by name.
    stats : IngestStats
        Counters shared with the rest of the service.
    stored_next : dict of str to int
        Next id expected per instrument key (the writer keeps it; new buffers start there).
    owns : callable
        True if a newly seen instrument key is to be buffered (this process owns it).
    spawn : callable
        Starts a tracked task (connections, and their replacements on rotation).
    endpoints : Endpoints, optional
        Where each connection's attempts are reported (a new board by default).
    """

    def __init__(self, config: IngestConfig, feeds: dict[str, VenueFeed], stats: IngestStats,
                 stored_next: Mapping[str, int], *, owns: Callable[[str], bool], spawn: Spawn,
                 endpoints: Endpoints | None = None) -> None:
        self.config = config
        self.endpoints = endpoints if endpoints is not None else Endpoints()
        self.feeds = feeds
        self.stats = stats
        self._stored_next = stored_next
        self._owns = owns
        self._spawn = spawn
        #: Instrument key -> buffer (``BTCUSDT``, ``binance-usdm:BTCUSDT``).
        self.buffers: dict[str, SymbolBuffer] = {}
        #: The run's journals (LMDB stores with ``config.journal``), once opened.
        self.journals: JournalSet | None = None
        #: Set when a buffer has ``batch_size`` trades ready (the writer waits on it).
        self.wake: asyncio.Event | None = None
        #: The run's order books (``config.books``), if any.
        self.books: BookKeeper | None = BookKeeper(config, feeds, spawn=spawn, owns=owns) if config.books \
            else None
        #: The run's perpetual data (``config.perps``), if any.
        self.perps: PerpKeeper | None = PerpKeeper(config, owns=owns) if config.perps else None

    # -- buffers --------------------------------------------------------------

    def buffer(self, key: str) -> SymbolBuffer:
        """The buffer of instrument ``key`` (created, and registered with its venue, if new)."""
        buf = self.buffers.get(key)
        if buf is None:
            inst = Instrument.parse(key)
            feed = self.feeds.get(inst.venue)
            if feed is None:
                raise ValueError(f"{key}: its venue {inst.venue!r} is not streamed by this run")
            buf = self.buffers[key] = SymbolBuffer(inst.symbol, self._stored_next.get(key),
                                                   start_ms=feed.start_ms)
            feed.buffers[inst.symbol] = buf
            feed.keys[inst.symbol] = key
        return buf

    def _new_buffer(self, feed: VenueFeed, symbol: str) -> SymbolBuffer | None:
        key = feed.key(symbol)
        # An instrument this process does not own (any more) is not buffered.
        if not self._owns(key):
            return None
        return self.buffer(key)

    def drop(self, key: str) -> None:
        """Forget the buffer of ``key`` (its ownership was lost, or it restarts)."""
        self.buffers.pop(key, None)
        inst = Instrument.parse(key)
        feed = self.feeds.get(inst.venue)
        if feed is not None:
            feed.buffers.pop(inst.symbol, None)

    # -- journals ---------------------------------------------------------------

    def open_journals(self, store_path: Path | None) -> bool:
        """Open each venue's journal in the store at ``store_path``; False if it has none."""
        if journal_dir(store_path) is None:
            return False
        for name, feed in self.feeds.items():
            feed.journal = Journal(journal_dir(store_path, name))  # type: ignore[arg-type]
        self.journals = JournalSet({n: f.journal for n, f in self.feeds.items() if f.journal})
        return True

    def recover_journal(self, on_leftover: Callable[[], None]) -> int:
        """Buffer the trades of the segments a killed predecessor left, each venue with its parser.

        Depth diffs go to the run's books: a book resumed from the store
        (:meth:`BookKeeper.resume`) applies those that continue it, so what
        the predecessor received but had not stored is stored now.
        Marks and liquidations go to the run's perpetual data (with their
        recorded receive times); those at or before the last stored ones
        (:meth:`PerpKeeper.resume`) are dropped there.

        Calls ``on_leftover()`` before the first leftover segment is read
        (the service enters ``RECOVERING``). Returns the number of leftover
        segments; the trades recovered are counted in ``stats.journal_recovered``.
        """
        leftover = perp_recovered = perp_unkept = 0
        before = sum(len(b.ready) for b in self.buffers.values())
        for feed in self.feeds.values():
            journal = feed.journal
            if journal is None or not journal.leftover():
                continue
            on_leftover()
            leftover += len(journal.leftover())
            parse = feed.parser.parse
            books, perps = self.books, self.perps
            for recv_ns, frame in journal.replay_leftover_timed():
                event = parse(frame)
                if type(event) is Trade:
                    self.buffer(feed.key(event.symbol)).add(event)
                elif books is not None and type(event) is DepthDiff:
                    books.on_diff(feed, event, 0)  # continues a book resumed from the store
                elif books is not None and type(event) is BookTicker:
                    books.on_ticker(feed, event, 0)
                elif type(event) is MarkPrice:
                    if perps is None:
                        perp_unkept += 1
                    else:
                        perp_recovered += perps.on_mark(feed, event._replace(recv_ns=recv_ns))
                elif type(event) is Liquidation:
                    if perps is None:
                        perp_unkept += 1
                    else:
                        perp_recovered += perps.on_liquidation(feed, event._replace(recv_ns=recv_ns))
        if leftover:
            recovered = sum(len(b.ready) for b in self.buffers.values()) - before
            self.stats.journal_recovered += recovered
            self.stats.perp_recovered += perp_recovered
            logger.info("journal: %d trades%s recovered from %d segment(s)", recovered,
                        f" and {perp_recovered} marks and liquidations" if self.perps is not None else "",
                        leftover)
        if perp_unkept:
            logger.warning("journal: %d marks and liquidations of a previous run not stored: this run keeps no "
                           "perpetual data (quantify ingest --perp, $QUANTIFY_PERPS)", perp_unkept)
        return leftover

    def start_journals(self) -> None:
        """Start each journal's first segment (after recovery)."""
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.start()

    def flush_journals(self) -> None:
        """Hand what the journals hold to the OS (before every append)."""
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.flush(feed.last_seen)

    def release_journals(self, stored_next: dict[str, int]) -> None:
        """Delete the journal segments whose trades are all stored."""
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.release(stored_next, all_leftover=True)

    def close_journals(self, stored_next: dict[str, int]) -> None:
        """Close each journal, deleting the segments whose trades are all stored.

        While perpetual data the store refused waits, every segment is kept:
        the next writer stores it from them.
        """
        keep = self.perps is not None and self.perps.pending > 0
        for feed in self.feeds.values():
            if feed.journal is not None:
                feed.journal.close(feed.last_seen(), stored_next, release=not keep)

    @property
    def journal_errors(self) -> int:
        return self.journals.errors if self.journals is not None else 0

    # -- connections ------------------------------------------------------------

    def connect(self, keys: Iterable[str]) -> None:
        """Open the connections streaming instruments ``keys`` (as tracked tasks)."""
        keys = list(keys)
        if not keys:
            return
        for venue, url in venue_stream_urls(self.config, keys):
            self.endpoints.connecting(venue.name, "websocket", url)  # known before its task first runs
            self._spawn(self._connection(self.feeds[venue.name], url))

    def frame_handler(self, feed: VenueFeed, on_shutdown: Callable[[], None]) -> Callable[[bytes], None]:
        """The per-frame work of a connection of ``feed``, whatever client received the frame.

        The returned ``handle(frame)`` appends the undecoded frame to the
        venue's journal (first, as received), parses it, hands the event to
        its buffer, book or perpetual keeper, counts it, and calls
        ``on_shutdown()`` on a ``serverShutdown``. Both receive paths call it
        (websockets' ``recv`` loop, picows' frame callback).
        """
        parse = feed.parser.parse
        buffers = feed.buffers  # by the venue's symbol, as its frames carry it
        stats = self.stats
        time_ns = time.time_ns
        journal_write = feed.journal.write if feed.journal is not None else None
        batch_size = self.config.batch_size
        wake = self.wake
        assert wake is not None
        books, perps = self.books, self.perps
        new_buffer = self._new_buffer

        def handle(frame: bytes) -> None:
            now = time_ns()
            if journal_write is not None:
                journal_write(frame, now)
            stats.frames += 1
            event = parse(frame)
            if type(event) is Trade:
                stats.trades += 1
                buf = buffers.get(event.symbol) or new_buffer(feed, event.symbol)
                if buf is not None:
                    buf.received += 1
                    buf.add(event)
                    if len(buf.ready) >= batch_size:
                        wake.set()
            elif type(event) is DepthDiff:
                stats.depth_diffs += 1
                if books is not None:
                    books.on_diff(feed, event, now)
            elif type(event) is BookTicker:
                stats.book_tickers += 1
                if books is not None:
                    books.on_ticker(feed, event, now)
            elif type(event) is MarkPrice:
                stats.marks += 1
                if perps is not None:
                    perps.on_mark(feed, event._replace(recv_ns=now))
            elif type(event) is Liquidation:
                stats.liquidations += 1
                if perps is not None:
                    perps.on_liquidation(feed, event._replace(recv_ns=now))
            elif type(event) is ServerShutdown:
                stats.server_shutdowns += 1
                on_shutdown()

        return handle

    async def _connection(self, feed: VenueFeed, url: str, *, replacement: bool = False) -> None:
        if not replacement:  # a rotation's replacement: the URL stays connected meanwhile
            self.endpoints.connecting(feed.name, "websocket", url)
        link = _Link(self, feed, url, first=not replacement)
        handle = self.frame_handler(feed, link.shutdown)
        if self.config.ws_client == "picows":
            await picows_connection(url, handle, link, max_frame_bytes=self.config.max_frame_bytes,
                                    connect_timeout=CONNECT_TIMEOUT, delays=link.delays)
        else:
            await self._websockets_connection(url, handle, link)

    async def _websockets_connection(self, url: str, handle: Callable[[bytes], None], link: _Link) -> None:
        """Receive on ``url`` with websockets' reconnect loop until the connection is retired."""
        async for ws in connect(url, max_size=self.config.max_frame_bytes, compression=None, max_queue=4096,
                                reconnect_delays=link.delays, open_timeout=CONNECT_TIMEOUT, close_timeout=2,
                                process_exception=link.failed):
            link.opened(ws)
            recv = ws.recv
            try:
                while True:
                    # Undecoded: orjson reads UTF-8 bytes itself, and the
                    # journal stores them as they came.
                    handle(await recv(decode=False))
            except websockets.ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    link.oversized(exc.sent.reason)
            finally:
                retiring = link.finish()
            if retiring:
                return
            link.reconnecting()

    async def _retire_after(self, ws: Closable, feed: VenueFeed, url: str, age: float) -> bool:
        """After ``age`` s, open a replacement connection, overlap, then close ``ws``."""
        overlap = self.config.rotation_overlap if age > 0 else min(self.config.rotation_overlap, 2.0)
        await asyncio.sleep(max(age - overlap, 0.0))
        self.stats.rotations += 1
        self._spawn(self._connection(feed, url, replacement=True))
        await asyncio.sleep(overlap)
        await ws.close()
        return True


class _Link:
    """What both receive paths share about one connection URL: its board, rotation and counters.

    Created by :meth:`Receiver._connection`; the client's loop reports to it:
    :meth:`failed` for each failed attempt, :meth:`opened` when a connection
    is up, :meth:`oversized` for a frame refused as too big, :meth:`finish`
    when the connection is gone (True: it was retired, the loop ends),
    :meth:`reconnecting` before the next attempt.
    """

    def __init__(self, receiver: Receiver, feed: VenueFeed, url: str, *, first: bool) -> None:
        self._receiver = receiver
        self._feed = feed
        self.url = url
        self._first = first
        self._conn: Closable | None = None
        self._rotation: asyncio.Future[bool] | None = None
        self._book_url = receiver.books is not None and "@depth" in url
        self._wait_first = 0.0  # a rate-limited attempt's Retry-After, for the next delay

    def failed(self, exc: Exception, decide: Callable[[Exception], Exception | None] = process_exception,
               ) -> Exception | None:
        """Report a failed attempt; ``None`` if it is worth retrying (websockets decides by default).

        A rate-limited handshake is retried after its ``Retry-After`` (the next of :meth:`delays`).
        """
        self._receiver.endpoints.failed(self._feed.name, "websocket", self.url, exc)
        wait = retry_after(exc)
        if wait is not None:
            logger.warning("%s refused the connection (HTTP %d, too many connections): retrying in %.0f s",
                           self.url.split("?")[0], refused_status(exc), wait)
            self._wait_first = wait
            return None
        return decide(exc)

    def delays(self) -> Generator[float]:
        """The reconnection delays of one outage: websockets' capped, jittered backoff, on the config,
        each at least the ``Retry-After`` of a rate-limited attempt just before it."""
        cfg = self._receiver.config
        for delay in backoff(initial_delay=cfg.backoff_initial, min_delay=cfg.backoff_min,
                             max_delay=cfg.backoff_max):
            wait, self._wait_first = self._wait_first, 0.0
            yield max(delay, wait)

    def opened(self, conn: Closable) -> None:
        """A connection is up: report it, count a reconnect, schedule its rotation."""
        receiver = self._receiver
        receiver.endpoints.connected(self._feed.name, "websocket", self.url)
        if not self._first:
            receiver.stats.reconnects += 1
            logger.info("reconnected to %s", self.url.split("?")[0])
        self._first = False
        self._conn = conn
        self._retire(receiver.config.connection_max_age)

    def _retire(self, age: float) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
        assert self._conn is not None
        self._rotation = asyncio.ensure_future(self._receiver._retire_after(self._conn, self._feed, self.url, age))

    def shutdown(self) -> None:
        """The venue announced a disconnect (``serverShutdown``): switch connection now."""
        logger.info("serverShutdown from %s: switching connection", self.url.split("?")[0])
        if self._conn is not None:
            self._retire(0.0)

    def oversized(self, reason: str) -> None:
        """The client refused a frame above ``max_frame_bytes``: counted where the parser counts its rejects."""
        self._feed.parser.reject_oversized(reason)

    def finish(self) -> bool:
        """The connection is gone: True if its rotation retired it (its replacement runs)."""
        rotation, self._rotation, self._conn = self._rotation, None, None
        if rotation is None:
            return False
        retiring = rotation.done() and not rotation.cancelled() and bool(rotation.result())
        rotation.cancel()
        return retiring

    def reconnecting(self) -> None:
        """The connection dropped: the book of a book URL notes it, the board shows ``connecting``."""
        books = self._receiver.books
        if self._book_url and books is not None:
            books.on_disconnect(self._feed, self.url)
        self._receiver.endpoints.connecting(self._feed.name, "websocket", self.url)
