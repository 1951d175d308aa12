"""Receiving: connections -> journal -> the venue's parser -> per-instrument buffers.

Each venue of the run (:class:`~quantify.ingest.feeds.VenueFeed`) has its
own connections on its own stream URLs. A connection:

- uses websockets' own reconnect loop (capped, jittered backoff), giving
  up an attempt after :data:`CONNECT_TIMEOUT` seconds; every attempt's
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
- counts a frame websockets refused as too big (``max_frame_bytes``) as a
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
from websockets.exceptions import InvalidStatus
from websockets.frames import CloseCode

from quantify.config import IngestConfig
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


def retry_after(exc: Exception) -> float | None:
    """Seconds to wait before reconnecting after a rate-limited handshake (429/418), else None."""
    if not isinstance(exc, InvalidStatus) or exc.response.status_code not in _RATE_LIMITED:
        return None
    try:
        return max(1.0, float(exc.response.headers.get("Retry-After", "")))
    except ValueError:
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

    async def _connection(self, feed: VenueFeed, url: str, *, replacement: bool = False) -> None:
        cfg = self.config
        wait_first: list[float] = []  # a rate-limited handshake's Retry-After, for the next delay

        def delays() -> Generator[float, None, None]:
            for delay in backoff(initial_delay=cfg.backoff_initial, min_delay=cfg.backoff_min,
                                 max_delay=cfg.backoff_max):
                yield max(delay, wait_first.pop()) if wait_first else delay

        parse = feed.parser.parse
        buffers = feed.buffers  # by the venue's symbol, as its frames carry it
        stats = self.stats
        time_ns = time.time_ns
        journal_write = feed.journal.write if feed.journal is not None else None
        batch_size = cfg.batch_size
        wake = self.wake
        assert wake is not None
        first = not replacement
        board, venue = self.endpoints, feed.name
        books, perps = self.books, self.perps
        book_url = books is not None and "@depth" in url
        if not replacement:  # a rotation's replacement: the URL stays connected meanwhile
            board.connecting(venue, "websocket", url)

        def failed(exc: Exception) -> Exception | None:
            board.failed(venue, "websocket", url, exc)
            wait = retry_after(exc)
            if wait is not None:
                logger.warning("%s refused the connection (HTTP %d, too many connections): retrying in %.0f s",
                               url.split("?")[0], exc.response.status_code, wait)  # type: ignore[attr-defined]
                wait_first[:] = [wait]
                return None
            return process_exception(exc)  # websockets decides what is worth retrying

        async for ws in connect(url, max_size=cfg.max_frame_bytes, compression=None, max_queue=4096,
                                reconnect_delays=delays, open_timeout=CONNECT_TIMEOUT, close_timeout=2,
                                process_exception=failed):
            board.connected(venue, "websocket", url)
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
                    now = time_ns()
                    if journal_write is not None:
                        journal_write(frame, now)
                    stats.frames += 1
                    event = parse(frame)
                    if type(event) is Trade:
                        stats.trades += 1
                        buf = buffers.get(event.symbol) or self._new_buffer(feed, event.symbol)
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
            if book_url and books is not None:
                books.on_disconnect(feed, url)
            board.connecting(venue, "websocket", url)

    async def _retire_after(self, ws: Any, feed: VenueFeed, url: str, age: float) -> bool:
        """After ``age`` s, open a replacement connection, overlap, then close ``ws``."""
        overlap = self.config.rotation_overlap if age > 0 else min(self.config.rotation_overlap, 2.0)
        await asyncio.sleep(max(age - overlap, 0.0))
        self.stats.rotations += 1
        self._spawn(self._connection(feed, url, replacement=True))
        await asyncio.sleep(overlap)
        await ws.close()
        return True
