"""The order books of a run: one :class:`~quantify.model.booksync.BookSync` per instrument, and its snapshots.

The receiver hands every depth diff, ``bookTicker`` and lost connection of a
book stream to the run's :class:`BookKeeper`; the keeper feeds the
instrument's ``BookSync`` (Binance's procedure, sans I/O) and, whenever the
sync asks for one, fetches a REST depth snapshot in the background:

- at most one request per instrument in flight, through the venue's REST
  client and so within its weight budget (``depth`` weighs 50 at 1,000
  levels on spot, 20 on USD-M);
- a snapshot older than the stream (the sync says so) is fetched again
  after a short, doubling pause; a failed request is retried the same way,
  capped at :data:`MAX_RETRY_DELAY`;
- the stream is never paused: events keep arriving and the sync buffers them.

What the syncs applied (quotes, diffs, checkpoints) and their ledger events
wait in the keeper until the writer takes them (:meth:`BookKeeper.take`);
an append that fails puts them back (:meth:`BookKeeper.restore`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.ingest.feeds import VenueFeed
from quantify.model.book import BookTicker, DepthDiff, OrderBook
from quantify.model.booksync import Applied, BookSync, LedgerEvent
from quantify.model.instrument import Instrument

__all__ = ["MAX_RETRY_DELAY", "BookBatch", "BookKeeper"]

logger = logging.getLogger(__name__)

#: Seconds between snapshot attempts of one instrument at most (the first retry waits 0.25 s).
MAX_RETRY_DELAY = 10.0
_FIRST_RETRY_DELAY = 0.25

#: What the writer takes per instrument: the events applied, the ledger events.
BookBatch = tuple[list[Applied], list[LedgerEvent]]

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class BookKeeper:
    """The run's order books (see the module docstring).

    Parameters
    ----------
    config : IngestConfig
        ``books`` (which instruments), ``book_snapshot_limit``, ``book_checkpoint_seconds``.
    feeds : dict of str to VenueFeed
        The run's venues (their REST clients fetch the snapshots).
    spawn : callable
        Starts a tracked task (the snapshot fetches).
    owns : callable
        True if this process writes instrument ``key``.
    """

    def __init__(self, config: IngestConfig, feeds: Mapping[str, VenueFeed], *, spawn: Spawn,
                 owns: Callable[[str], bool]) -> None:
        self.config = config
        self.feeds = feeds
        self._spawn = spawn
        self._owns = owns
        #: Instrument key -> its sync.
        self.syncs: dict[str, BookSync] = {}
        #: (venue, symbol) -> instrument key, for the instruments whose books this run keeps.
        self._keys: dict[tuple[str, str], str] = {}
        for text in config.books:
            inst = Instrument.parse(text)
            self._keys[(inst.venue, inst.symbol)] = inst.key
        self._applied: dict[str, list[Applied]] = {}
        self._fetching: set[str] = set()
        self.snapshot_errors = 0

    @property
    def keys(self) -> list[str]:
        """The instrument keys whose books this run keeps."""
        return list(self._keys.values())

    def _sync(self, feed: VenueFeed, symbol: str) -> tuple[str, BookSync] | None:
        key = self._keys.get((feed.name, symbol))
        if key is None or not self._owns(key):
            return None
        sync = self.syncs.get(key)
        if sync is None:
            sync = self.syncs[key] = BookSync(
                symbol, feed.venue.book_rule,
                checkpoint_every_ms=max(int(self.config.book_checkpoint_seconds * 1000), 1))
        return key, sync

    # -- events from the receiver ------------------------------------------------

    def on_diff(self, feed: VenueFeed, diff: DepthDiff, recv_ns: int) -> None:
        found = self._sync(feed, diff.symbol)
        if found is None:
            return
        key, sync = found
        applied = sync.on_diff(diff, recv_ns)
        if applied:
            self._applied.setdefault(key, []).extend(applied)
        if sync.wants_snapshot:
            self._request(feed, key, sync)

    def on_ticker(self, feed: VenueFeed, ticker: BookTicker, recv_ns: int) -> None:
        found = self._sync(feed, ticker.symbol)
        if found is None:
            return
        key, sync = found
        sync.on_ticker(ticker, recv_ns)
        if sync.wants_snapshot:
            self._request(feed, key, sync)

    def on_disconnect(self, feed: VenueFeed, url: str) -> None:
        """A book connection was lost: note it in the ledger of each instrument it carried."""
        now_ms = time.time_ns() // 1_000_000
        for symbol in streamed_symbols(url):
            found = self._sync(feed, symbol)
            if found is not None:
                found[1].on_disconnect(now_ms)

    def resume(self, key: str, book: OrderBook, time_ms: int) -> bool:
        """Carry ``key``'s book on from a stored one (a restarted writer); False if this run keeps no such book."""
        inst = Instrument.parse(key)
        feed = self.feeds.get(inst.venue)
        found = None if feed is None else self._sync(feed, inst.symbol)
        if found is None:
            return False
        found[1].resume(book, time_ms)
        return True

    def drop(self, key: str) -> None:
        """Forget the book of ``key`` (its ownership was lost); a new owner resyncs it."""
        self.syncs.pop(key, None)
        self._applied.pop(key, None)

    # -- snapshots ------------------------------------------------------------------

    def _request(self, feed: VenueFeed, key: str, sync: BookSync) -> None:
        if key not in self._fetching and feed.rest is not None:
            self._fetching.add(key)
            self._spawn(self._fetch(feed, key, sync))

    async def _fetch(self, feed: VenueFeed, key: str, sync: BookSync) -> None:
        rest = feed.rest
        assert rest is not None
        delay = _FIRST_RETRY_DELAY
        limit = self.config.book_snapshot_limit
        try:
            while sync.wants_snapshot and self.syncs.get(key) is sync:
                try:
                    snap = await rest.depth(sync.symbol, limit)
                except RestError as exc:
                    self.snapshot_errors += 1
                    logger.warning("%s: depth snapshot failed (%s); retrying in %.2f s", key, exc, delay)
                else:
                    applied = sync.on_snapshot(snap, time.time_ns())
                    if applied:
                        self._applied.setdefault(key, []).extend(applied)
                    if not sync.wants_snapshot:
                        return
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
        finally:
            self._fetching.discard(key)

    # -- the writer's side ------------------------------------------------------------

    def take(self) -> dict[str, BookBatch]:
        """Everything applied and logged since the last call, per instrument key."""
        out: dict[str, BookBatch] = {}
        applied, self._applied = self._applied, {}
        for key, sync in self.syncs.items():
            events = sync.take_events()
            rows = applied.pop(key, [])
            if rows or events:
                out[key] = (rows, events)
        for key, rows in applied.items():  # a book dropped meanwhile: nothing to write
            logger.debug("%s: %d book events dropped with its ownership", key, len(rows))
        return out

    def restore(self, batch: Mapping[str, BookBatch]) -> None:
        """Put back a batch the store refused (before what arrived since)."""
        for key, (rows, events) in batch.items():
            sync = self.syncs.get(key)
            if sync is None:
                continue
            self._applied[key] = rows + self._applied.get(key, [])
            sync.restore_events(events)

    def stale_seconds(self, now_ns: int) -> dict[str, float]:
        """How long each book has been out of sync at ``now_ns`` (0 when live)."""
        return {key: sync.stale_seconds_now(now_ns) for key, sync in self.syncs.items()}

    def status(self, now_ns: int) -> dict[str, dict[str, Any]]:
        """Each book's state, update id, seconds stale and continuity counters."""
        return {
            key: {"state": sync.state.value, "update_id": sync.book.update_id,
                  "stale_for": round(sync.stale_seconds_now(now_ns), 3), **sync.ledger.as_dict()}
            for key, sync in self.syncs.items()
        }


def streamed_symbols(url: str) -> list[str]:
    """The venue symbols of a combined-stream URL (``...?streams=btcusdt@depth@100ms/...`` -> ``BTCUSDT``)."""
    streams = parse_qs(urlsplit(url).query).get("streams", [""])[0]
    out: list[str] = []
    for name in streams.split("/"):
        symbol = name.split("@", 1)[0].upper()
        if symbol and symbol not in out:
            out.append(symbol)
    return out
