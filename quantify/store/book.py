"""Order books in the store: quotes, diffs, checkpoints and the continuity ledger.

Four libraries, one ArcticDB symbol per instrument key in each (the frames
of :mod:`quantify.model.book_frames`, indexed by the exchange time of the
depth event, UTC, ns):

``quotes``
    The best bid and offer after each applied depth event.
``book_diffs``
    The diffs applied, one row per level (``side`` 0 for an event without levels).
``book_checkpoints``
    The top levels at the first event after every snapshot overlay and every
    few seconds, with each side's known range (``bound``).
``book_ledger``
    Continuity events: gaps, resyncs, crossed books, mismatches, disconnects.

Appends are idempotent (:meth:`BookStore.append`): rows whose update id is at
or below the last one a library holds for the instrument are dropped, so a
restarted writer that re-applies its journal, or a file loaded twice, never
stores a row twice. Each library keeps its own last id, so an append cut
short between libraries is completed by the next one.

A book at one moment (:meth:`BookStore.book`) is the nearest checkpoint at
or before it plus the diffs after that checkpoint; every discontinuity
(snapshot overlay, resync, range refresh) carries a checkpoint, so the diffs
after the nearest one always continue it. The grid of
:func:`quantify.store.book_grid.book_snapshots` walks the same rows forward
once and agrees with :meth:`BookStore.book` at every grid point.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import arcticdb as adb
import numpy as np
import pandas as pd
from arcticdb.version_store.library import WritePayload
from arcticdb_ext.version_store import DataError

from quantify.exceptions import StoreError, UnknownSymbol
from quantify.model.book import BookLevels, DepthDiff, OrderBook
from quantify.model.book_frames import (
    CHECKPOINT_COLUMNS,
    DIFF_COLUMNS,
    LEDGER_COLUMNS,
    QUOTE_COLUMNS,
    BookFrames,
    book_from_checkpoint,
)
from quantify.model.booksync import FINDS_SYNC, LOSES_SYNC
from quantify.model.instrument import InstrumentLike, instrument_key
from quantify.model.times import TimeLike, parse_time
from quantify.store._libraries import BOOK_CHECKPOINTS, BOOK_DIFFS, BOOK_LEDGER, QUOTES
from quantify.store.merge import date_range

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["OPENS_STALE", "BookStore", "StoredBook", "diff_events", "stale_at"]

#: Ledger kinds after which the book is out of sync until one of ``FINDS_SYNC`` (the model's tables).
OPENS_STALE: Final = LOSES_SYNC
_CLOSES_STALE: Final = FINDS_SYNC
#: The first window searched back from a time for its nearest checkpoint; widened 8 times a try.
_FIRST_WINDOW: Final = pd.Timedelta(minutes=1)

_LIBRARIES: Final = (BOOK_DIFFS, BOOK_CHECKPOINTS, BOOK_LEDGER, QUOTES)  # quotes last: see append


def diff_events(frame: pd.DataFrame, symbol: str = "") -> Iterator[tuple[int, DepthDiff]]:
    """The depth events of a stored diffs frame, in stored order: ``(time ns, DepthDiff)``.

    Rows of one event (one ``update_id``) are consecutive; a ``side`` 0 row is
    an event without levels.
    """
    if frame.empty:
        return
    u = frame["update_id"].to_numpy()
    first = frame["first_update_id"].to_numpy()
    prev = frame["prev_update_id"].to_numpy()
    side = frame["side"].to_numpy()
    price = frame["price"].to_numpy()
    qty = frame["qty"].to_numpy()
    times = frame.index.asi8
    starts = np.concatenate([[0], np.flatnonzero(np.diff(u)) + 1, [len(u)]])
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        s = side[a:b]
        p = price[a:b].tolist()
        q = qty[a:b].tolist()
        bids = [(p[i], q[i]) for i in np.flatnonzero(s > 0).tolist()]
        asks = [(p[i], q[i]) for i in np.flatnonzero(s < 0).tolist()]
        t = int(times[a])
        yield t, DepthDiff(symbol, int(first[a]), int(u[a]), int(prev[a]), t // 1_000_000, bids, asks)


def stale_at(ledger: pd.DataFrame, times_ns: np.ndarray) -> np.ndarray:
    """Whether the book was out of sync at each time: after a gap, crossed book or mismatch, before its resync.

    ``ledger`` is a stored ledger frame (in stored order); ``times_ns`` ns since the epoch.
    """
    times_ns = np.asarray(times_ns, dtype="int64")
    if ledger.empty:
        return np.zeros(len(times_ns), dtype=bool)
    kinds = ledger["kind"].to_numpy()
    state = np.empty(len(kinds), dtype=bool)
    stale = False
    for i, kind in enumerate(kinds.tolist()):
        if kind in OPENS_STALE:
            stale = True
        elif kind in _CLOSES_STALE:
            stale = False
        state[i] = stale
    idx = np.searchsorted(ledger.index.asi8, times_ns, side="right") - 1
    return np.where(idx >= 0, state[np.maximum(idx, 0)], False)


def _empty(columns: tuple[str, ...], dtypes: Mapping[str, str]) -> pd.DataFrame:
    index = pd.DatetimeIndex(np.empty(0, "M8[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame({c: np.empty(0, dtypes.get(c, "float64")) for c in columns}, index=index)


class StoredBook(NamedTuple):
    """A stored book at one moment, whole: what a writer or a load carries on from."""

    #: Every known level, with the known range (``bid_floor``/``ask_ceiling``) and ``update_id``.
    book: OrderBook
    #: Exchange time of the last event included.
    time: pd.Timestamp
    #: Out of sync at that moment (between a gap and its resync, per the ledger).
    stale: bool


_LEDGER_DTYPES: Final = {"kind": "object", "expected_id": "int64", "got_id": "int64", "detail": "object"}


class BookStore:
    """The order-book libraries of a :class:`~quantify.store.Store` (its ``quotes``, ``book*`` verbs).

    The single writer appends (:meth:`append`); anyone reads. For appends,
    the last stored update id of each library and instrument is cached after
    the first look, which is right because a store has one writer; reads
    always look at the store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        #: (library, key) -> (last update id, last time ns) stored; ledger: (-1, last time ns).
        self._last: dict[tuple[str, str], tuple[int, int]] = {}

    def _lib(self, name: str) -> Any:
        return self._store.library(name)

    # -- writes ----------------------------------------------------------------

    def last_stored(self, name: str, key: str, *, cached: bool = False) -> tuple[int, int]:
        """``(update id, time ns)`` of the last row of library ``name`` for ``key``; (-1, -1) if none.

        ``cached``: trust what this process last appended or read (the writer's appends); reads
        look at the store, which another process may be writing.
        """
        last_seen = self._last.get((name, key)) if cached else None
        if last_seen is not None:
            return last_seen
        lib = self._lib(name)
        last = (-1, -1)
        if self._store._retry(key, lambda: lib.has_symbol(key)):
            tail = self._store._retry(key, lambda: lib.tail(key, 1).data)
            if len(tail):
                uid = int(tail["update_id"].iloc[-1]) if "update_id" in tail.columns else -1
                last = (uid, int(tail.index[-1].value))
        self._last[(name, key)] = last
        return last

    def append(self, frames: Mapping[str, BookFrames]) -> dict[str, int]:
        """Append the book frames of many instruments in one batch per library; return quotes added per key.

        Rows at or below a library's last stored update id for the instrument
        are dropped (idempotent); ledger rows are always added (merged in
        time order if they start before the last stored one).
        """
        payloads: dict[str, list[WritePayload]] = {name: [] for name in _LIBRARIES}
        lasts: dict[tuple[str, str], tuple[int, int]] = {}
        added: dict[str, int] = {}
        merges: list[tuple[str, pd.DataFrame]] = []
        for raw_key, bf in frames.items():
            key = instrument_key(raw_key)
            for name, frame in ((QUOTES, bf.quotes), (BOOK_DIFFS, bf.diffs), (BOOK_CHECKPOINTS, bf.checkpoints)):
                if frame.empty:
                    continue
                last_id, last_ns = self.last_stored(name, key, cached=True)
                new = frame[frame["update_id"].to_numpy() > last_id] if last_id >= 0 else frame
                if name == QUOTES:
                    added[key] = len(new)
                if new.empty:
                    continue
                if int(new.index[0].value) < last_ns:
                    raise StoreError(f"{key}: {name} rows at {new.index[0]} are older than the last stored "
                                     f"({pd.Timestamp(last_ns, tz='UTC')}) but carry newer update ids")
                payloads[name].append(WritePayload(key, new))
                lasts[(name, key)] = (int(new["update_id"].iloc[-1]), int(new.index[-1].value))
            if not bf.ledger.empty:
                _, last_ns = self.last_stored(BOOK_LEDGER, key, cached=True)
                ledger = bf.ledger.sort_index(kind="stable")
                if int(ledger.index[0].value) < last_ns:
                    merges.append((key, ledger))
                else:
                    payloads[BOOK_LEDGER].append(WritePayload(key, ledger))
                lasts[(BOOK_LEDGER, key)] = (-1, max(last_ns, int(ledger.index[-1].value)))
        for key, ledger in merges:
            self._merge_ledger(key, ledger)
        for name in _LIBRARIES:  # quotes last: a reader never sees a quote whose diffs are missing
            if payloads[name]:
                results = self._lib(name).append_batch(payloads[name], prune_previous_versions=True)
                errors = [r for r in results if isinstance(r, DataError)]
                if errors:
                    for payload in payloads[name]:
                        self._last.pop((name, payload.symbol), None)
                    raise StoreError(f"append to {name} of {self._store.uri} failed: {errors[0]}")
                for payload in payloads[name]:
                    self._last[(name, payload.symbol)] = lasts[(name, payload.symbol)]
        return added

    def _merge_ledger(self, key: str, ledger: pd.DataFrame) -> None:
        """Merge ledger rows older than the last stored one (a restarted writer's) into time order."""
        lib = self._lib(BOOK_LEDGER)
        lo = ledger.index[0]
        stored = lib.read(key, date_range=(lo, None)).data
        both = pd.concat([stored, ledger[list(stored.columns)]]).sort_index(kind="stable")
        lib.update(key, both, date_range=(lo, None), prune_previous_versions=True)

    def compact(self, symbol: InstrumentLike, rows_per_segment: int = 100_000) -> bool:
        """Merge the small appended segments of ``symbol`` in every book library; True if anything changed."""
        key = instrument_key(symbol)
        changed = False
        for name in _LIBRARIES:
            lib = self._lib(name)
            if not lib.has_symbol(key):
                continue
            before = lib.list_versions(key)
            lib.compact_data(key, rows_per_segment=rows_per_segment, prune_previous_versions=True)
            changed |= lib.list_versions(key) != before
        return changed

    def last_update(self, symbol: InstrumentLike) -> int | None:
        """The last update id stored in both quotes and diffs of ``symbol`` (where a writer resumes), or None."""
        key = instrument_key(symbol)
        q, d = self.last_stored(QUOTES, key)[0], self.last_stored(BOOK_DIFFS, key)[0]
        return None if q < 0 or d < 0 else min(q, d)

    # -- reads -------------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Instrument keys with a stored book (quotes), sorted."""
        return sorted(self._lib(QUOTES).list_symbols())

    def has(self, symbol: InstrumentLike) -> bool:
        key = instrument_key(symbol)
        lib = self._lib(QUOTES)
        return bool(self._store._retry(key, lambda: lib.has_symbol(key)))

    def require(self, symbol: InstrumentLike) -> str:
        if isinstance(symbol, str) and not symbol.strip():
            raise ValueError(f"an instrument such as 'BTCUSDT' or 'binance-usdm:BTCUSDT' is needed, got {symbol!r}")
        key = instrument_key(symbol)
        if not self.has(key):
            known = ", ".join(self.symbols()) or "none yet"
            raise UnknownSymbol(f"no order book of {key!r} in store {self._store.uri} (books: {known})")
        return key

    def read(self, name: str, key: str, **kwargs: Any) -> pd.DataFrame:
        lib = self._lib(name)
        if not self._store._retry(key, lambda: lib.has_symbol(key)):
            columns = {QUOTES: QUOTE_COLUMNS, BOOK_DIFFS: DIFF_COLUMNS, BOOK_CHECKPOINTS: CHECKPOINT_COLUMNS,
                       BOOK_LEDGER: LEDGER_COLUMNS}[name]
            return _empty(columns, _LEDGER_DTYPES if name == BOOK_LEDGER else {})
        return self._store._retry(key, lambda: lib.read(key, **kwargs).data)

    def read_range(self, name: str, symbol: InstrumentLike, start: TimeLike | None,
                   end: TimeLike | None) -> pd.DataFrame:
        """Rows of library ``name`` with ``start <= time < end``."""
        key = self.require(symbol)
        return self.read(name, key, date_range=date_range(start, end))

    def counts(self, symbol: InstrumentLike) -> dict[str, Any]:
        """Rows per book library and the last update id of ``symbol`` (zeros when it has no book)."""
        key = instrument_key(symbol)
        out: dict[str, Any] = {}
        for name, label in ((QUOTES, "quotes"), (BOOK_DIFFS, "book_diff_rows"),
                            (BOOK_CHECKPOINTS, "book_checkpoint_rows"), (BOOK_LEDGER, "book_ledger_rows")):
            lib = self._lib(name)
            has = self._store._retry(key, lambda lib=lib: lib.has_symbol(key))
            out[label] = int(self._store._retry(key, lambda lib=lib: lib.get_description(key).row_count)) if has else 0
        out["book_last_update_id"] = self.last_update(key)
        return out

    # -- a book at one moment -----------------------------------------------------------

    def checkpoint_before(self, key: str, at_ns: int) -> tuple[int, int] | None:
        """``(update id, time ns)`` of the last checkpoint at or before ``at_ns``, or None.

        Reads only the ``update_id`` column of a window before ``at``, widened
        until a checkpoint is found or the first one is passed.
        """
        lib = self._lib(BOOK_CHECKPOINTS)
        if not self._store._retry(key, lambda: lib.has_symbol(key)):
            return None
        head = self._store._retry(key, lambda: lib.head(key, 1).data)
        if head.empty or int(head.index[0].value) > at_ns:
            return None
        first = head.index[0]
        at = pd.Timestamp(at_ns, tz="UTC")
        window = _FIRST_WINDOW
        while True:
            lo = max(at - window, first)
            ids = self._store._retry(key, lambda lo=lo: lib.read(key, date_range=(lo, at),
                                                                 columns=["update_id"]).data)
            if len(ids):
                return int(ids["update_id"].iloc[-1]), int(ids.index[-1].value)
            if lo == first:  # pragma: no cover - the head itself is in the window
                return None
            window *= 8

    def checkpoint_book(self, key: str, update_id: int, time_ns: int) -> OrderBook:
        """The book of the stored checkpoint at ``update_id`` (time ``time_ns``)."""
        t = pd.Timestamp(time_ns, tz="UTC")
        q = adb.QueryBuilder()
        q = q[q["update_id"] == update_id]
        rows = self.read(BOOK_CHECKPOINTS, key, date_range=(t, t), query_builder=q)
        book = book_from_checkpoint(rows)
        book.symbol = key
        return book

    def diffs_after(self, key: str, update_id: int, lo_ns: int, hi_ns: int) -> pd.DataFrame:
        """Stored diff rows with ``lo <= time <= hi`` and an update id above ``update_id``."""
        q = adb.QueryBuilder()
        q = q[q["update_id"] > update_id]
        return self.read(BOOK_DIFFS, key, date_range=(pd.Timestamp(lo_ns, tz="UTC"), pd.Timestamp(hi_ns, tz="UTC")),
                          query_builder=q)

    def order_book(self, symbol: InstrumentLike, at: TimeLike | None = None) -> StoredBook:
        """The stored book of ``symbol`` at ``at`` (``None``: after the last stored event).

        Raises ``ValueError`` when ``at`` is before the first checkpoint (no book is known then).
        """
        key = self.require(symbol)
        t = parse_time(at) if at is not None else pd.Timestamp(self.last_stored(BOOK_DIFFS, key)[1], tz="UTC")
        assert t is not None
        at_ns = int(t.value)
        cp = self.checkpoint_before(key, at_ns)
        if cp is None:
            first = self.checkpoint_before(key, np.iinfo("int64").max)
            when = f"its first checkpoint is at {pd.Timestamp(first[1], tz='UTC')}" if first else "it has none"
            raise ValueError(f"no book of {key} is known at {t} ({when})")
        book = self.checkpoint_book(key, *cp)
        last_ns = cp[1]
        for time_ns, diff in diff_events(self.diffs_after(key, cp[0], cp[1], at_ns), key):
            book.apply(diff)
            last_ns = time_ns
        ledger = self.read(BOOK_LEDGER, key, date_range=(None, t))
        stale = bool(stale_at(ledger, np.array([at_ns]))[0])
        return StoredBook(book, pd.Timestamp(last_ns, tz="UTC"), stale)

    def book(self, symbol: InstrumentLike, at: TimeLike, depth: int = 20) -> BookLevels:
        """The best ``depth`` known levels of ``symbol``'s book at ``at`` (see :meth:`Store.book`)."""
        if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        if at is None:
            raise ValueError("at must be a time, got None")
        book, time, stale = self.order_book(symbol, at)
        return book.levels(int(depth), time=time, stale=stale)
