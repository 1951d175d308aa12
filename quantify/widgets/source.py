"""Where live widgets get their ticks: the writer's batches, or a tail of the store.

Two feeds behave the same to a widget (``poll()`` returns the trades that
arrived since the previous call, per symbol):

- :class:`ServiceFeed` in the kernel that runs the ingestion service: the
  service's batch listener pushes each appended frame into the subscribed
  queues (no store read at all);
- :class:`StoreTail` in any other kernel or in Voilà: reads the trades after
  the last one it saw, by time, and drops those it already had by trade id.

The in-process service of a kernel is a named registry
(:func:`attach_service` / :func:`detach_service`), filled by the IPython
extension; :func:`feed_for` picks the feed for a store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol

import pandas as pd

from quantify.exceptions import QuantifyError, UnknownSymbol
from quantify.model.bars import merge_candles, resample
from quantify.model.timeframes import timeframe_to_offset
from quantify.store import Store, open_store

__all__ = [
    "Feed",
    "ServiceFeed",
    "StoreTail",
    "attach_service",
    "detach_service",
    "feed_for",
    "read_bars",
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
        service.add_batch_listener(self)

    def __call__(self, frames: dict[str, pd.DataFrame]) -> None:
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            feed._push(frames)

    def subscribe(self, feed: ServiceFeed) -> None:
        with self._lock:
            self._feeds.append(feed)

    def unsubscribe(self, feed: ServiceFeed) -> None:
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)


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


def read_bars(store: Store, symbol: str, timeframe: str, bars: int) -> pd.DataFrame:
    """The last ``bars`` candles of ``symbol`` (empty frame if it has no ticks yet).

    Candles follow Binance's kline rules (:func:`quantify.analytics.resample`).
    """
    step = timeframe_to_offset(timeframe)
    try:
        last = store.describe(symbol)["last_time"]
    except UnknownSymbol:
        return pd.DataFrame(columns=BAR_COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="time"))
    if last is None:
        return pd.DataFrame(columns=BAR_COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="time"))
    start = last.floor(step) - step * (bars - 1)
    ohlcv = getattr(store, "ohlcv", None)
    if ohlcv is not None:
        frame = ohlcv(symbol, timeframe, start=start)
    else:
        frame = resample(store.ticks(symbol, start=start), timeframe)
    return frame[BAR_COLUMNS].tail(bars)


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
