"""Order books: depth events, snapshots, the local L2 book and a book at one moment.

Venue adapters turn their wire formats into these (Binance: ``depthUpdate``
diffs, ``bookTicker`` events, REST depth snapshots); the ingestion keeps an
:class:`OrderBook` per instrument with :class:`~quantify.model.booksync.BookSync`
(Binance's procedure), the store checkpoints it and rebuilds it at any moment,
the replay serves snapshots from its own, and widgets and analytics read a
:class:`BookLevels`.

Prices and quantities are float64, as for trades: Binance sends decimal
strings with at most 8 decimals, and the float of a decimal string is the
same number on every path, so a level is found by its price exactly.

Known range. A snapshot of ``limit`` levels knows each side only as deep as
its worst price: a bid below the lowest snapshot bid may exist and be
missing. The book keeps that bound (:attr:`OrderBook.bid_floor`,
:attr:`OrderBook.ask_ceiling`, ±inf when the snapshot held fewer levels than
asked, i.e. the whole side) and never reports a level beyond it as known:
diffs there are applied but :meth:`OrderBook.levels` leaves them out and
says so (``complete=False`` when fewer than ``depth`` known levels remain).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "BBO",
    "BookLevels",
    "BookTicker",
    "DepthDiff",
    "DepthSnapshot",
    "Level",
    "OrderBook",
    "same_bbo",
]

#: A price level: (price, quantity).
Level = tuple[float, float]
#: A best bid and offer: (bid, bid_qty, ask, ask_qty).
BBO = tuple[float, float, float, float]

_NAN = float("nan")
_INF = float("inf")


class DepthDiff(NamedTuple):
    """One depth-update event: the levels that changed between update ids ``first_id`` and ``last_id``.

    Quantities are absolute (the level's new quantity); 0 removes the level.
    ``prev_id`` is the previous event's ``last_id`` where the venue says it
    (Binance USD-M ``pu``), else -1. ``event_time`` is the exchange's event
    time in ms.
    """

    symbol: str
    first_id: int
    last_id: int
    prev_id: int
    event_time: int
    bids: list[Level]
    asks: list[Level]


class BookTicker(NamedTuple):
    """The venue's own best bid and offer at update id ``update_id`` (Binance ``bookTicker``).

    ``event_time`` is the exchange's time in ms, or -1 where the venue sends
    none (Binance spot).
    """

    symbol: str
    update_id: int
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    event_time: int


class DepthSnapshot(NamedTuple):
    """A full-depth snapshot (REST ``/api/v3/depth``, ``/fapi/v1/depth``) as of ``last_update_id``.

    ``limit`` is the number of levels asked per side (0: unknown); a side with
    fewer levels than ``limit`` is the whole side. ``symbol`` is empty where
    the answer does not name it (Binance's does not).
    """

    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    symbol: str = ""
    limit: int = 0


@dataclass(frozen=True)
class BookLevels:
    """An order book at one moment: the best ``n`` known levels of each side.

    Attributes
    ----------
    time : pandas.Timestamp or None
        Exchange time of the last update included (UTC), if known.
    update_id : int
        The last update id included.
    bids, asks : numpy.ndarray
        ``(n, 2)`` arrays of (price, qty), best first.
    stale : bool
        The book was out of sync at that moment (between a gap and its
        resync): these are the last levels known before the gap.
    complete : bool
        Every level asked for was known (the known range reached that deep, or
        the side has no more levels).
    """

    time: pd.Timestamp | None
    update_id: int
    bids: np.ndarray
    asks: np.ndarray
    stale: bool = False
    complete: bool = True

    @property
    def best_bid(self) -> float:
        return float(self.bids[0, 0]) if len(self.bids) else _NAN

    @property
    def best_ask(self) -> float:
        return float(self.asks[0, 0]) if len(self.asks) else _NAN

    @property
    def mid(self) -> float:
        """``(best bid + best ask) / 2``; NaN if a side is empty."""
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> float:
        """``best ask - best bid``; NaN if a side is empty."""
        return self.best_ask - self.best_bid

    @property
    def spread_bps(self) -> float:
        """The spread in basis points of the mid."""
        return self.spread / self.mid * 1e4

    @property
    def microprice(self) -> float:
        """Stoikov's weighted mid ``(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)``."""
        if not len(self.bids) or not len(self.asks):
            return _NAN
        b, bq = self.bids[0]
        a, aq = self.asks[0]
        return float((b * aq + a * bq) / (bq + aq))

    def to_frame(self) -> pd.DataFrame:
        """A ladder: one row per level (1 = best), ``bid_qty, bid_price, ask_price, ask_qty``."""
        n = max(len(self.bids), len(self.asks))

        def column(side: np.ndarray, j: int) -> np.ndarray:
            out = np.full(n, np.nan)
            out[: len(side)] = side[:, j]
            return out

        return pd.DataFrame(
            {"bid_qty": column(self.bids, 1), "bid_price": column(self.bids, 0),
             "ask_price": column(self.asks, 0), "ask_qty": column(self.asks, 1)},
            index=pd.RangeIndex(1, n + 1, name="level"),
        )

    def __repr__(self) -> str:
        state = " stale" if self.stale else ""
        return (f"BookLevels(update_id={self.update_id}, time={self.time}, {len(self.bids)} bids, "
                f"{len(self.asks)} asks, bbo {self.best_bid:g} / {self.best_ask:g}{state})")

    def _repr_html_(self) -> str:
        stale = ' <b style="color:#c0392b">STALE</b>' if self.stale else ""
        head = (f"<b>Book</b> at {self.time} (update {self.update_id}){stale}"
                f"{'' if self.complete else ' <i>(deeper levels unknown)</i>'}: "
                f"mid {self.mid:g}, spread {self.spread:g} ({self.spread_bps:.2f} bps)")
        return head + self.to_frame().head(20).to_html(na_rep="", float_format=lambda v: f"{v:g}")


class OrderBook:
    """A local L2 book: price -> quantity per side, with its known range.

    Build it from a snapshot (:meth:`from_snapshot`) or from stored levels
    (:meth:`from_levels`), then :meth:`apply` diffs in id order; deciding
    which diffs to apply is :class:`~quantify.model.booksync.BookSync`'s job.

    Each side is a dict (price -> quantity) with a heap of its prices, so a
    level changes in O(1) plus a heap push for a new price, and the best
    level is read in O(1) amortised (prices a diff removed leave the heap
    lazily, when they reach its top). Ordered levels (:meth:`side`,
    :meth:`levels`) are sorted on demand. This is what keeps applying a
    Binance diff (dozens of levels, most of them far from the touch) cheap.
    """

    __slots__ = ("_ask_heap", "_asks", "_bid_heap", "_bids", "ask_ceiling", "bid_floor", "symbol", "update_id")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        #: Bid prices negated (a max-heap) and ask prices; may hold prices no longer in the book.
        self._bid_heap: list[float] = []
        self._ask_heap: list[float] = []
        self.update_id = -1
        #: Bids below and asks above these prices are unknown (±inf: the whole side is known).
        self.bid_floor = -_INF
        self.ask_ceiling = _INF

    @classmethod
    def from_snapshot(cls, snap: DepthSnapshot, symbol: str = "") -> OrderBook:
        """The book of a snapshot; each side's known range ends at its worst price unless it was short."""
        book = cls(symbol or snap.symbol)
        book.reset(snap)
        return book

    @classmethod
    def from_levels(cls, bids: Iterable[Level], asks: Iterable[Level], update_id: int, *,
                    bid_floor: float = -_INF, ask_ceiling: float = _INF, symbol: str = "") -> OrderBook:
        """A book holding ``bids``/``asks`` (zero quantities skipped) with the given known range."""
        book = cls(symbol)
        book._fill(bids, asks)
        book.update_id = int(update_id)
        book.bid_floor, book.ask_ceiling = float(bid_floor), float(ask_ceiling)
        return book

    def _fill(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self._bids = {p: q for p, q in bids if q > 0}
        self._asks = {p: q for p, q in asks if q > 0}
        self._bid_heap = [-p for p in self._bids]
        self._ask_heap = list(self._asks)
        heapq.heapify(self._bid_heap)
        heapq.heapify(self._ask_heap)

    def reset(self, snap: DepthSnapshot) -> None:
        """Replace the whole book with ``snap`` (an overlay after a gap)."""
        self._fill(snap.bids, snap.asks)
        self.update_id = snap.last_update_id
        short = snap.limit > 0
        self.bid_floor = snap.bids[-1][0] if snap.bids and not (short and len(snap.bids) < snap.limit) else -_INF
        self.ask_ceiling = snap.asks[-1][0] if snap.asks and not (short and len(snap.asks) < snap.limit) else _INF

    def copy(self) -> OrderBook:
        book = OrderBook(self.symbol)
        book._bids, book._asks = dict(self._bids), dict(self._asks)
        book._bid_heap, book._ask_heap = list(self._bid_heap), list(self._ask_heap)
        book.update_id, book.bid_floor, book.ask_ceiling = self.update_id, self.bid_floor, self.ask_ceiling
        return book

    def apply(self, diff: DepthDiff) -> None:
        """Apply the levels of ``diff`` (absolute quantities; 0 removes) and move to its ``last_id``."""
        push = heapq.heappush
        side, heap = self._bids, self._bid_heap
        for p, q in diff.bids:
            if q > 0:
                if p not in side:
                    push(heap, -p)
                side[p] = q
            else:
                side.pop(p, None)
        side, heap = self._asks, self._ask_heap
        for p, q in diff.asks:
            if q > 0:
                if p not in side:
                    push(heap, p)
                side[p] = q
            else:
                side.pop(p, None)
        self.update_id = diff.last_id
        # prices removed since stay in the heaps until they reach the top: rebuild when they dominate
        if len(self._bid_heap) > 4 * len(self._bids) + 256:
            self._bid_heap = [-p for p in self._bids]
            heapq.heapify(self._bid_heap)
        if len(self._ask_heap) > 4 * len(self._asks) + 256:
            self._ask_heap = list(self._asks)
            heapq.heapify(self._ask_heap)

    def _top_bid(self) -> float | None:
        heap, side = self._bid_heap, self._bids
        while heap:
            p = -heap[0]
            if p in side:
                return p
            heapq.heappop(heap)
        return None

    def _top_ask(self) -> float | None:
        heap, side = self._ask_heap, self._asks
        while heap:
            p = heap[0]
            if p in side:
                return p
            heapq.heappop(heap)
        return None

    def best_bid(self) -> Level | None:
        """The best known bid, or None."""
        p = self._top_bid()
        if p is not None and p >= self.bid_floor:
            return p, self._bids[p]
        return None

    def best_ask(self) -> Level | None:
        """The best known ask, or None."""
        p = self._top_ask()
        if p is not None and p <= self.ask_ceiling:
            return p, self._asks[p]
        return None

    def bbo(self) -> BBO:
        """``(bid, bid_qty, ask, ask_qty)``; NaN for an empty side."""
        b = self._top_bid()
        a = self._top_ask()
        bid, bid_qty = (b, self._bids[b]) if b is not None and b >= self.bid_floor else (_NAN, _NAN)
        ask, ask_qty = (a, self._asks[a]) if a is not None and a <= self.ask_ceiling else (_NAN, _NAN)
        return bid, bid_qty, ask, ask_qty

    def has_hidden(self, is_bid: bool) -> bool:
        """Whether the side holds levels beyond its known range (touched by diffs since the snapshot)."""
        side = self._bids if is_bid else self._asks
        if not side:
            return False
        return min(side) < self.bid_floor if is_bid else max(side) > self.ask_ceiling

    @property
    def crossed(self) -> bool:
        """The best bid is at or above the best ask: a book that cannot be right."""
        b = self.best_bid()
        a = self.best_ask()
        return b is not None and a is not None and b[0] >= a[0]

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def side(self, is_bid: bool, depth: int | None = None) -> list[Level]:
        """The known levels of one side, best first (all of them when ``depth`` is None)."""
        if is_bid:
            floor, book = self.bid_floor, self._bids
            known = [p for p in book if p >= floor]
            prices = sorted(known, reverse=True) if depth is None else heapq.nlargest(depth, known)
        else:
            ceiling, book = self.ask_ceiling, self._asks
            known = [p for p in book if p <= ceiling]
            prices = sorted(known) if depth is None else heapq.nsmallest(depth, known)
        return [(p, book[p]) for p in prices]

    def levels(self, depth: int = 20, *, time: pd.Timestamp | None = None, stale: bool = False) -> BookLevels:
        """The best ``depth`` known levels of each side as :class:`BookLevels`."""
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth!r}")
        bids = self.side(True, depth)
        asks = self.side(False, depth)
        complete = ((len(bids) == depth or self.bid_floor == -_INF)
                    and (len(asks) == depth or self.ask_ceiling == _INF))
        return BookLevels(time, self.update_id, _array(bids), _array(asks), stale=stale, complete=complete)


def _array(levels: list[Level]) -> np.ndarray:
    return np.array(levels, dtype="float64").reshape(len(levels), 2)


def same_bbo(a: BBO, b: BBO) -> bool:
    """Whether two ``(bid, bid_qty, ask, ask_qty)`` agree exactly (NaN equal to NaN)."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))
