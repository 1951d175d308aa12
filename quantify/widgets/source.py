"""Where live widgets get their ticks: the writer's batches, or a tail of the store.

Two feeds of trades behave the same to a widget (``poll()`` returns the trades that
arrived since the previous call, per symbol):

- :class:`ServiceFeed` in the kernel that runs the ingestion service: the
  service's batch listener pushes each appended frame into the subscribed
  queues (no store read at all);
- :class:`StoreTail` in any other kernel or in Voilà: reads the trades after
  the last one it saw, by time, and drops those it already had by trade id.

Order books are followed the same two ways (:func:`book_feed_for`):
:class:`ServiceBookFeed` gets the quotes the writer appends (its
``book_batch`` call) and how long each book has been out of sync;
:class:`BookTail` reads the quotes after the last update id it saw, and the
continuity ledger after the last event. Both read the book's levels at a
moment from the store (:meth:`BookTail.levels`: ``Store.book``), which
rebuilds them from a checkpoint and the diffs after it.

The in-process service of a kernel is a named registry
(:func:`attach_service` / :func:`detach_service`), filled by the IPython
extension; :func:`feed_for` picks the feed for a store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from quantify.exceptions import QuantifyError, UnknownSymbol
from quantify.model.bars import merge_candles, resample
from quantify.model.book import BookLevels
from quantify.model.instrument import instrument_key
from quantify.store import Store, open_store

__all__ = [
    "BookTail",
    "BookUpdate",
    "Feed",
    "ServiceBookFeed",
    "ServiceFeed",
    "StoreTail",
    "attach_service",
    "book_feed_for",
    "detach_service",
    "feed_for",
    "recent_start",
    "resolve_store",
]

logger = logging.getLogger(__name__)

#: Columns the charts draw from.
BAR_COLUMNS = ["open", "high", "low", "close", "volume", "trades"]


class Feed(Protocol):
    """New ticks since the previous poll, per symbol."""

    store: Store

    def poll(self) -> dict[str, pd.DataFrame]: ...

    def close(self) -> None: ...


class _Hub:
    """The one batch listener a service gets; fans frames out to feeds."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._feeds: list[ServiceFeed] = []
        self._book_feeds: list[ServiceBookFeed] = []
        service.add_batch_listener(self)

    def __call__(self, frames: dict[str, pd.DataFrame]) -> None:
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            feed._push(frames)

    def book_batch(self, quotes: Mapping[str, pd.DataFrame], ledger: Mapping[str, pd.DataFrame],
                   stale_seconds: Mapping[str, float]) -> None:
        """The writer appended book frames (called on every flush, even without new rows)."""
        with self._lock:
            feeds = list(self._book_feeds)
        for feed in feeds:
            feed._push(quotes, ledger, stale_seconds)

    def subscribe(self, feed: ServiceFeed | ServiceBookFeed) -> None:
        with self._lock:
            if isinstance(feed, ServiceBookFeed):
                self._book_feeds.append(feed)
            else:
                self._feeds.append(feed)

    def unsubscribe(self, feed: ServiceFeed | ServiceBookFeed) -> None:
        with self._lock:
            for feeds in (self._feeds, self._book_feeds):
                if feed in feeds:
                    feeds.remove(feed)  # type: ignore[arg-type]


#: The ingestion service running in this kernel, by store URI (see attach_service).
_SERVICES: dict[str, _Hub] = {}
_SERVICES_LOCK = threading.Lock()


def attach_service(service: Any) -> None:
    """Register the ingestion service of this kernel so widgets are fed in-process.

    Called by the IPython extension when it starts a writer; idempotent.
    """
    key = str(service.store.uri)
    with _SERVICES_LOCK:
        hub = _SERVICES.get(key)
        if hub is None or hub.service is not service:
            _SERVICES[key] = _Hub(service)


def detach_service(service: Any) -> None:
    """Forget ``service``; feeds of it stop receiving (they fall silent, not fail)."""
    with _SERVICES_LOCK:
        for key, hub in list(_SERVICES.items()):
            if hub.service is service:
                del _SERVICES[key]


def attached_service(store: Store) -> Any | None:
    """The in-process ingestion service writing ``store``, if any."""
    with _SERVICES_LOCK:
        hub = _SERVICES.get(str(store.uri))
    return None if hub is None else hub.service


def resolve_store(store: Store | str | None) -> Store:
    """A :class:`Store` from a store, a URI, or ``None``.

    ``None`` means the store of this kernel's ingestion service if one runs,
    else the default store.
    """
    if isinstance(store, Store):
        return store
    if store is None:
        with _SERVICES_LOCK:
            hubs = list(_SERVICES.values())
        if len(hubs) == 1:
            return hubs[0].service.store  # type: ignore[no-any-return]
    return open_store(store)


class ServiceFeed:
    """Ticks pushed by the in-process ingestion service (its writer thread)."""

    def __init__(self, hub: _Hub, symbols: Iterable[str]) -> None:
        self.store: Store = hub.service.store
        self.symbols = set(symbols)
        self._hub = hub
        self._lock = threading.Lock()
        self._pending: dict[str, list[pd.DataFrame]] = {}
        hub.subscribe(self)

    def _push(self, frames: dict[str, pd.DataFrame]) -> None:
        with self._lock:
            for sym, frame in frames.items():
                if sym in self.symbols and len(frame):
                    self._pending.setdefault(sym, []).append(frame)

    def reset(self, symbols: Iterable[str], since: dict[str, int] | None = None) -> None:
        """Follow ``symbols`` from now on (pending trades of others are dropped)."""
        with self._lock:
            self.symbols = set(symbols)
            self._pending = {s: v for s, v in self._pending.items() if s in self.symbols}

    def poll(self) -> dict[str, pd.DataFrame]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return {s: pd.concat(v) if len(v) > 1 else v[0] for s, v in pending.items()}

    def close(self) -> None:
        self._hub.unsubscribe(self)


class StoreTail:
    """Ticks read from the store after the last trade seen (another process writes)."""

    def __init__(self, store: Store, symbols: Iterable[str]) -> None:
        self.store = store
        self.symbols: set[str] = set()
        self._last: dict[str, tuple[pd.Timestamp, int]] = {}
        self.reset(symbols)
        self.errors = 0

    def reset(self, symbols: Iterable[str], since: dict[str, tuple[pd.Timestamp, int]] | None = None) -> None:
        """Follow ``symbols``, starting after ``since[symbol]`` (time, trade id) or now."""
        self.symbols = set(symbols)
        self._last = {}
        for sym in self.symbols:
            if since and sym in since:
                self._last[sym] = since[sym]
                continue
            try:
                info = self.store.describe(sym)
            except UnknownSymbol:
                continue
            if info["last_time"] is not None:
                self._last[sym] = (info["last_time"], int(info["last_id"]))

    def poll(self) -> dict[str, pd.DataFrame]:
        out = {}
        for sym in self.symbols:
            last = self._last.get(sym)
            try:
                ticks = self.store.ticks(sym, start=None if last is None else last[0])
            except UnknownSymbol:
                continue
            except QuantifyError as exc:  # a read racing a compaction: next poll sees it
                self.errors += 1
                logger.debug("tail of %s failed: %s", sym, exc)
                continue
            if last is not None:
                ticks = ticks[ticks["trade_id"].to_numpy() > last[1]]
            if len(ticks):
                self._last[sym] = (ticks.index[-1], int(ticks["trade_id"].iloc[-1]))
                out[sym] = ticks
        return out

    def close(self) -> None:
        pass


def feed_for(store: Store, symbols: Iterable[str]) -> ServiceFeed | StoreTail:
    """The in-process feed if this kernel writes ``store``, else a store tail."""
    with _SERVICES_LOCK:
        hub = _SERVICES.get(str(store.uri))
    if hub is not None:
        return ServiceFeed(hub, symbols)
    return StoreTail(store, symbols)


def update_bars(bars: pd.DataFrame, ticks: pd.DataFrame, timeframe: str, limit: int) -> pd.DataFrame:
    """``bars`` extended by ``ticks``, bounded to ``limit`` rows.

    The ticks' candles come from the bar kernel; the last bar of ``bars`` (the
    open one) and the ticks' bars are merged by :func:`merge_candles`, so the
    volumes stay exact and empty bars between them are Binance's flat bars:
    the result equals ``resample`` over all the ticks behind it.
    """
    if not len(ticks):
        return bars
    new = resample(ticks, timeframe, fill=True)[BAR_COLUMNS]
    if len(bars) and len(new):
        new = new[new.index >= bars.index[-1]]
        if len(new):
            new = merge_candles(pd.concat([bars.iloc[-1:], new]), timeframe)[BAR_COLUMNS]
            bars = bars.iloc[:-1]
    out = pd.concat([bars, new]) if len(bars) else new
    return out.tail(limit)


# -- order books ------------------------------------------------------------


class BookUpdate(NamedTuple):
    """What a book feed saw since its previous poll.

    ``quotes`` are the new rows of the store's quotes frame (best bid and
    offer after each applied depth event), ``ledger`` the new continuity
    events; ``stale_seconds`` is how long the book has been out of sync now
    (0 while live), where the writer says so, else None (a store tail knows
    it from the ledger only).
    """

    quotes: pd.DataFrame
    ledger: pd.DataFrame
    stale_seconds: float | None


def recent_start(store: Store, symbol: str, window: pd.Timedelta) -> pd.Timestamp | None:
    """``window`` before the last stored trade of ``symbol`` (the exchange's clock, as quotes), or None.

    Lets a reader of the last minutes of quotes skip the rest of the day;
    None (read from the start) when the store holds no trades of ``symbol``.
    """
    try:
        last = store.describe(symbol)["last_time"]
    except (UnknownSymbol, QuantifyError):
        return None
    return None if last is None else last - window


class BookTail:
    """One instrument's book read from the store: quotes after the last update id seen, new ledger events.

    Parameters
    ----------
    store : Store
    symbol : str
        Anything ``Instrument.parse`` reads.
    """

    def __init__(self, store: Store, symbol: str) -> None:
        self.store = store
        self.symbol = instrument_key(symbol)
        self.errors = 0
        self._last_time: pd.Timestamp | None = None
        self._last_id = -1
        self._ledger_time: pd.Timestamp | None = None
        self._ledger_seen = 0

    def has_book(self) -> bool:
        """Whether the store holds a book of this instrument."""
        try:
            return bool(self.store.has_book(self.symbol))
        except QuantifyError as exc:
            self.errors += 1
            logger.debug("has_book(%s) failed: %s", self.symbol, exc)
            return False

    def history(self, window: pd.Timedelta) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The last ``window`` of quotes (by exchange time) and the whole ledger; follows from there."""
        if not self.has_book():
            return pd.DataFrame(), pd.DataFrame()
        start = recent_start(self.store, self.symbol, window)
        quotes = self.store.quotes(self.symbol, start=start)
        if start is not None and not len(quotes):  # the book stopped before the trades did
            quotes = self.store.quotes(self.symbol)
        if len(quotes):
            quotes = quotes[quotes.index >= quotes.index[-1] - window]
            self._last_time, self._last_id = quotes.index[-1], int(quotes["update_id"].iloc[-1])
        ledger = self.store.book_ledger(self.symbol)
        self._note_ledger(ledger)
        return quotes, ledger

    def _note_ledger(self, ledger: pd.DataFrame) -> None:
        if len(ledger):
            last = ledger.index[-1]
            if last != self._ledger_time:
                self._ledger_time, self._ledger_seen = last, 0
            self._ledger_seen = int((ledger.index == last).sum())

    def _new_ledger(self, ledger: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``ledger`` (read from the last time seen on) not seen yet."""
        if len(ledger) and self._ledger_time is not None:
            # times are not unique: the first rows at the last time seen were had already
            at_last = np.flatnonzero(ledger.index == self._ledger_time)
            keep = np.ones(len(ledger), dtype=bool)
            keep[at_last[: self._ledger_seen]] = False
            self._note_ledger(ledger)
            return ledger[keep]
        self._note_ledger(ledger)
        return ledger

    def poll(self) -> BookUpdate:
        """Quotes with an update id after the last one seen, and ledger rows not seen yet."""
        quotes = ledger = pd.DataFrame()
        try:
            if self._last_time is None and not self.has_book():
                return BookUpdate(quotes, ledger, None)
            quotes = self.store.quotes(self.symbol, start=self._last_time)
            if len(quotes):
                quotes = quotes[quotes["update_id"].to_numpy() > self._last_id]
            if len(quotes):
                self._last_time, self._last_id = quotes.index[-1], int(quotes["update_id"].iloc[-1])
            ledger = self._new_ledger(self.store.book_ledger(self.symbol, start=self._ledger_time))
        except UnknownSymbol:
            pass
        except QuantifyError as exc:  # a read racing a compaction: the next poll sees it
            self.errors += 1
            logger.debug("book tail of %s failed: %s", self.symbol, exc)
        return BookUpdate(quotes, ledger, None)

    def levels(self, at: pd.Timestamp | None, depth: int) -> BookLevels | None:
        """The book at ``at`` (default: its last quote), ``depth`` levels a side (``Store.book``)."""
        at = at if at is not None else self._last_time
        if at is None:
            return None
        try:
            return self.store.book(self.symbol, at, depth=depth)  # type: ignore[no-any-return]
        except (UnknownSymbol, KeyError):
            return None
        except QuantifyError as exc:
            self.errors += 1
            logger.debug("book of %s at %s failed: %s", self.symbol, at, exc)
            return None

    def close(self) -> None:
        pass


class ServiceBookFeed(BookTail):
    """One instrument's book fed by the in-process writer (its ``book_batch`` calls).

    History and levels are read from the store as :class:`BookTail` does;
    new quotes and ledger events come from the writer without a store read,
    with the writer's word on how long the book has been out of sync.
    """

    def __init__(self, hub: _Hub, symbol: str) -> None:
        super().__init__(hub.service.store, symbol)
        self._hub = hub
        self._lock = threading.Lock()
        self._quotes: list[pd.DataFrame] = []
        self._ledger: list[pd.DataFrame] = []
        self._stale: float | None = None
        hub.subscribe(self)

    def _push(self, quotes: Mapping[str, pd.DataFrame], ledger: Mapping[str, pd.DataFrame],
              stale_seconds: Mapping[str, float]) -> None:
        with self._lock:
            q = quotes.get(self.symbol)
            if q is not None and len(q):
                self._quotes.append(q)
            e = ledger.get(self.symbol)
            if e is not None and len(e):
                self._ledger.append(e)
            if self.symbol in stale_seconds:
                self._stale = float(stale_seconds[self.symbol])

    def poll(self) -> BookUpdate:
        with self._lock:
            qs, self._quotes = self._quotes, []
            es, self._ledger = self._ledger, []
            stale = self._stale
        quotes = pd.concat(qs) if len(qs) > 1 else (qs[0] if qs else pd.DataFrame())
        if len(quotes):
            quotes = quotes[quotes["update_id"].to_numpy() > self._last_id]
        if len(quotes):
            self._last_time, self._last_id = quotes.index[-1], int(quotes["update_id"].iloc[-1])
        ledger = pd.concat(es) if len(es) > 1 else (es[0] if es else pd.DataFrame())
        return BookUpdate(quotes, ledger, stale)

    def close(self) -> None:
        self._hub.unsubscribe(self)


def book_feed_for(store: Store, symbol: str) -> BookTail:
    """The in-process book feed if this kernel writes ``store``, else a store tail."""
    with _SERVICES_LOCK:
        hub = _SERVICES.get(str(store.uri))
    if hub is not None:
        return ServiceBookFeed(hub, symbol)
    return BookTail(store, symbol)
