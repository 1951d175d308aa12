"""Perpetual futures in the store: mark price, funding settlements, open interest, liquidations.

Four libraries, one ArcticDB symbol per instrument key in each (the frames
of :mod:`quantify.model.perp`, indexed by time, UTC, ns):

``mark``
    Mark, index and estimated settle price, funding rate and next funding
    time, as streamed (``markPrice@1s``) or polled (``premiumIndex``).
``funding``
    Funding settlements: the rate and the mark it was charged at.
``open_interest``
    Open interest in contracts and, where known, its value.
``liquidations``
    Liquidation orders as the venue pushed them: a sample (Binance sends
    at most the latest one per symbol per second), not every liquidation.

Appends are idempotent (:meth:`PerpStore.append`): a row at a time the
library already holds for the instrument is not stored again (a re-applied
journal, a file loaded twice, a backfill that overlaps); where the stored row
lacks a value the new one has (open interest from ``/openInterest`` has no
value, ``openInterestHist`` does), the value is filled in. Rows newer than
the last stored one are appended; older ones (a backfill of history) are
merged into time order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from arcticdb.version_store.library import WritePayload
from arcticdb_ext.version_store import DataError

from quantify.exceptions import StoreError
from quantify.model.instrument import InstrumentLike, instrument_key
from quantify.model.perp import PERP_KINDS, empty_perp_frame
from quantify.model.times import TimeLike
from quantify.store.merge import date_range

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["PerpReads", "PerpStore"]

#: Library of each kind (the kind's own name, prefixed so that a library lists as perpetual data).
LIBRARIES: Final = {kind: f"perp_{kind}" for kind in PERP_KINDS}
#: The name of each kind's row count in :meth:`Store.describe` (and ``quantify status``).
ROW_COUNT_NAMES: Final = {"mark": "mark_rows", "funding": "funding_rows", "open_interest": "open_interest_rows",
                          "liquidations": "liquidation_rows"}
#: Columns stored as tz-naive UTC (ArcticDB keeps no time zone on columns).
_UTC_COLUMNS: Final = ("next_funding_time",)


def _to_stored(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame
    for col in _UTC_COLUMNS:
        if col in out.columns and getattr(out[col].dtype, "tz", None) is not None:
            out = out.copy() if out is frame else out
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _from_stored(frame: pd.DataFrame) -> pd.DataFrame:
    for col in _UTC_COLUMNS:
        if col in frame.columns and getattr(frame[col].dtype, "tz", None) is None:
            frame[col] = frame[col].dt.tz_localize("UTC")
    if frame.index.tz is None:
        frame.index = frame.index.tz_localize("UTC")
    frame.index.name = "time"
    return frame


def _check_kind(kind: str) -> str:
    if kind not in LIBRARIES:
        raise ValueError(f"kind must be one of {', '.join(PERP_KINDS)}, not {kind!r}")
    return kind


class PerpStore:
    """The perpetual-futures libraries of a :class:`~quantify.store.Store`.

    One writer appends (:meth:`append`); anyone reads. The last stored time
    of each library and instrument is cached after the first look (a store
    has one writer); reads always look at the store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last: dict[tuple[str, str], int] = {}

    def _lib(self, kind: str) -> Any:
        return self._store.library(LIBRARIES[kind])

    def _has(self, kind: str, key: str) -> bool:
        lib = self._lib(kind)
        return bool(self._store._retry(key, lambda: lib.has_symbol(key)))

    def has(self, kind: str, symbol: InstrumentLike) -> bool:
        """True if ``kind`` data of ``symbol`` is stored (even if none in a range read)."""
        return self._has(_check_kind(kind), instrument_key(symbol))

    def last_time(self, kind: str, key: str, *, cached: bool = False) -> int:
        """Time (ns) of the last stored row of ``kind`` for ``key``; -1 when none."""
        _check_kind(kind)
        if cached and (kind, key) in self._last:
            return self._last[(kind, key)]
        last = -1
        if self._has(kind, key):
            lib = self._lib(kind)
            tail = self._store._retry(key, lambda: lib.tail(key, 1).data)
            if len(tail):
                last = int(tail.index[-1].value)
        self._last[(kind, key)] = last
        return last

    def append(self, kind: str, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Append frames of ``kind`` for many instruments (one batch); return the rows added per key.

        Rows at times already stored are dropped (their missing values
        filled in); rows before the last stored time are merged in order.
        """
        _check_kind(kind)
        columns = list(empty_perp_frame(kind).columns)
        payloads: list[WritePayload] = []
        lasts: dict[str, int] = {}
        added: dict[str, int] = {}
        for raw_key, frame in frames.items():
            key = instrument_key(raw_key)
            if frame.empty:
                added[key] = 0
                continue
            if list(frame.columns) != columns:
                raise ValueError(f"{kind} frames have columns {columns}, got {list(frame.columns)}")
            frame = frame.sort_index(kind="stable") if not frame.index.is_monotonic_increasing else frame
            frame = frame[~frame.index.duplicated(keep="last")]
            last = self.last_time(kind, key, cached=True)
            times = frame.index.asi8
            if last < 0 or times[0] > last:
                payloads.append(WritePayload(key, _to_stored(frame)))
                lasts[key] = int(times[-1])
                added[key] = len(frame)
            else:
                added[key] = self._merge(kind, key, frame)
                self._last.pop((kind, key), None)
        if payloads:
            results = self._lib(kind).append_batch(payloads, prune_previous_versions=True)
            errors = [r for r in results if isinstance(r, DataError)]
            if errors:
                for p in payloads:
                    self._last.pop((kind, p.symbol), None)
                raise StoreError(f"append to {LIBRARIES[kind]} of {self._store.uri} failed: {errors[0]}")
            for p in payloads:
                self._last[(kind, p.symbol)] = lasts[p.symbol]
        return added

    def _merge(self, kind: str, key: str, frame: pd.DataFrame) -> int:
        """Merge rows that start at or before the last stored time: stored rows win, NaNs filled from new ones."""
        lib = self._lib(kind)
        lo = frame.index[0]
        stored = _from_stored(self._store._retry(key, lambda: lib.read(key, date_range=(lo, None)).data))
        new = frame[~frame.index.isin(stored.index)]
        both = pd.concat([stored, frame]).sort_index(kind="stable")
        # stored first within a time: groupby.first keeps the stored value and fills only its NaNs
        merged = both.groupby(level=0, sort=True).first()[list(frame.columns)]
        for col, dtype in frame.dtypes.items():
            if merged[col].dtype != dtype:
                merged[col] = merged[col].astype(dtype)
        merged.index.name = "time"
        if merged.equals(stored[list(frame.columns)]):
            return 0
        lib.update(key, _to_stored(merged), date_range=(lo, None), prune_previous_versions=True)
        return len(new)

    # -- reads -------------------------------------------------------------------

    def read(self, kind: str, symbol: InstrumentLike, start: TimeLike | None = None,
             end: TimeLike | None = None) -> pd.DataFrame:
        """Rows of ``kind`` for ``symbol`` with ``start <= time < end``; an empty frame when none are stored."""
        _check_kind(kind)
        key = instrument_key(symbol)
        span = date_range(start, end)
        if not self._has(kind, key):
            return empty_perp_frame(kind)
        lib = self._lib(kind)
        frame = self._store._retry(key, lambda: lib.read(key, date_range=span).data)
        return _from_stored(frame)

    def symbols(self) -> list[str]:
        """Instrument keys with any perpetual data, sorted."""
        keys: set[str] = set()
        for kind in PERP_KINDS:
            keys.update(self._lib(kind).list_symbols())
        return sorted(keys)

    def counts(self, symbol: InstrumentLike) -> dict[str, int]:
        """Rows stored per kind for ``symbol``."""
        key = instrument_key(symbol)
        out = {}
        for kind in PERP_KINDS:
            lib = self._lib(kind)
            out[kind] = (int(self._store._retry(key, lambda lib=lib: lib.get_description(key).row_count))
                         if self._has(kind, key) else 0)
        return out

    def row_counts(self, symbol: InstrumentLike) -> dict[str, int]:
        """:meth:`counts` under :meth:`Store.describe`'s names: ``mark_rows``, ``funding_rows``, ...."""
        return {ROW_COUNT_NAMES[kind]: n for kind, n in self.counts(symbol).items()}

    def compact(self, symbol: InstrumentLike, rows_per_segment: int = 100_000) -> bool:
        """Merge the small appended segments of ``symbol`` in every perpetual library; True if anything changed."""
        key = instrument_key(symbol)
        changed = False
        for kind in PERP_KINDS:
            if not self._has(kind, key):
                continue
            lib = self._lib(kind)
            before = lib.list_versions(key)
            lib.compact_data(key, rows_per_segment=rows_per_segment, prune_previous_versions=True)
            changed |= lib.list_versions(key) != before
        return changed


class PerpReads:
    """The perpetual-futures verbs of :class:`~quantify.store.Store` (``store.mark(...)``, ...)."""

    _perp: PerpStore

    def mark(self, symbol: InstrumentLike, start: TimeLike | None = None, end: TimeLike | None = None) -> pd.DataFrame:
        """Mark price updates of a perpetual, ``start <= time < end`` (UTC; ISO, datetime or ``"-1h"``).

        Index ``time`` (the event time); ``mark_price, index_price,
        settle_price, funding_rate`` (the rate to settle at
        ``next_funding_time``), ``next_funding_time`` (UTC), ``recv_time``
        (receipt, ns since the epoch, as recorded for a loaded capture; 0 when
        unknown). Empty when none are stored.
        """
        return self._perp.read("mark", symbol, start, end)

    def funding(self, symbol: InstrumentLike, start: TimeLike | None = None,
                end: TimeLike | None = None) -> pd.DataFrame:
        """Funding settlements of a perpetual: index ``time`` (settlement), ``funding_rate``, ``mark_price``.

        A positive rate means longs pay shorts ``rate * position * mark`` at
        that time. ``mark_price`` is NaN where the venue did not give it.
        """
        return self._perp.read("funding", symbol, start, end)

    def open_interest(self, symbol: InstrumentLike, start: TimeLike | None = None,
                      end: TimeLike | None = None) -> pd.DataFrame:
        """Open interest of a perpetual: ``open_interest`` (contracts), ``open_interest_value`` (quote, or NaN).

        Binance keeps only 30 days of open-interest history: what the
        ingestion polled and stored is all there is beyond that.
        """
        return self._perp.read("open_interest", symbol, start, end)

    def liquidations(self, symbol: InstrumentLike, start: TimeLike | None = None,
                     end: TimeLike | None = None) -> pd.DataFrame:
        """Liquidation orders of a perpetual as pushed by the venue: a sample, not every liquidation.

        Binance pushes at most the latest liquidation per symbol per second.
        Columns ``side`` (+1 ``BUY``: a short closed; -1 ``SELL``: a long
        closed), ``price, avg_price, qty, last_qty, filled_qty, notional``
        (``avg_price * filled_qty``), ``status``, ``recv_time``.
        """
        return self._perp.read("liquidations", symbol, start, end)

    def perp_symbols(self) -> list[str]:
        """Instrument keys with any stored perpetual data (mark, funding, open interest, liquidations)."""
        return self._perp.symbols()

    def last_funding_time(self, symbol: InstrumentLike) -> pd.Timestamp | None:
        """Time of the last stored funding settlement of ``symbol`` (where a funding backfill resumes), or None."""
        ns = self._perp.last_time("funding", instrument_key(symbol))
        return None if ns < 0 else pd.Timestamp(ns, tz="UTC")

    def last_perp_time(self, kind: str, symbol: InstrumentLike) -> pd.Timestamp | None:
        """Time of the last stored row of ``kind`` (``mark``, ``funding``, ...) for ``symbol``, or None.

        Where a restarted writer carries the instrument's stream on (its
        journal's marks at or before it are already stored).
        """
        ns = self._perp.last_time(kind, instrument_key(symbol))
        return None if ns < 0 else pd.Timestamp(ns, tz="UTC")

    def compact_perp(self, symbol: InstrumentLike, rows_per_segment: int = 100_000) -> bool:
        """Merge the small appended segments of ``symbol``'s perpetual data (the writer's schedule); True if any."""
        return self._perp.compact(symbol, rows_per_segment)

    def append_perp(self, kind: str, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Append perpetual data of ``kind`` (``mark``, ``funding``, ``open_interest``, ``liquidations``).

        ``frames`` maps instrument keys to frames of that kind
        (:mod:`quantify.model.perp`); one batch for all of them. Idempotent:
        rows at times already stored are not stored twice; older rows are
        merged into time order. Returns the rows added per key.
        """
        return self._perp.append(kind, frames)

