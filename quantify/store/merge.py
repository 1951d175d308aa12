"""Merging ticks and klines into a store by id: what makes loading and backfill idempotent.

Rules of the merge (:func:`merge_ticks`):

- Trade ids decide. A row whose id the store already holds is never added
  again, whatever file it comes from; a file loaded twice adds nothing.
- The stored data stays sorted by (time, trade id) without duplicates.
- Rows after the last stored trade (later time, higher id) are *appended*;
  anything else (an older file, a file that overlaps what the live stream
  stored, a gap being filled) is merged in: the stored rows of the file's
  time range are read, the new rows added, and that range rewritten with
  ArcticDB's ``update`` — only that range.
- An instrument holds one kind of id: trades (``trade_id == first_id == last_id``)
  or aggregate trades. Merging the other kind is refused, since the two id
  sequences cannot be compared.
- When rows are merged below the end of the continuously aggregated 1m
  candles (:mod:`quantify.store.candles`), the aggregate is cut back to the
  first affected minute; reads compute the rest from ticks and the next
  writer's catch-up rebuilds it.

The caller holds the store's writer lock (:class:`~quantify.store.lease.WriterLock`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from quantify.exceptions import FeedError, UnknownSymbol
from quantify.model.instrument import InstrumentLike, instrument_key
from quantify.model.times import TimeLike, parse_time
from quantify.store._libraries import CANDLES_1M, KLINES, TICKS

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["TICK_DTYPES", "MergeResult", "klines", "merge_klines", "merge_ticks", "tick_kind"]

logger = logging.getLogger(__name__)

#: Tick columns in stored order, with their dtypes.
TICK_DTYPES: Final = {
    "price": "float64", "qty": "float64", "trade_id": "int64", "is_buyer_maker": "bool",
    "first_id": "int64", "last_id": "int64", "is_market": "bool",
}


@dataclass(frozen=True)
class MergeResult:
    """What one :func:`merge_ticks` call did to one symbol."""

    symbol: str
    #: Rows offered (after dropping duplicates within the offer).
    rows: int
    #: Rows the store did not hold and now does.
    added: int
    #: Of ``added``, rows appended after the last stored trade.
    appended: int
    #: Of ``added``, rows merged in below the last stored trade.
    merged: int

    @property
    def duplicates(self) -> int:
        """Rows offered that the store already held."""
        return self.rows - self.added




def tick_kind(frame: pd.DataFrame) -> str:
    """``"trades"`` if every row is one trade (id = first = last id), else ``"aggTrades"``."""
    ids = frame["trade_id"].to_numpy()
    single = (ids == frame["first_id"].to_numpy()) & (ids == frame["last_id"].to_numpy())
    return "trades" if bool(single.all()) else "aggTrades"


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored layout: ns UTC index ``time``, columns in order, sorted by (time, id), unique ids."""
    missing = [c for c in ("price", "qty", "trade_id") if c not in frame.columns]
    if missing:
        raise ValueError(f"tick frame lacks column(s) {missing}; it has {list(frame.columns)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError(f"tick frame must have a DatetimeIndex, got {type(frame.index).__name__}")
    cols: dict[str, Any] = {}
    for name, dtype in TICK_DTYPES.items():
        if name in frame.columns:
            cols[name] = frame[name].to_numpy(dtype=dtype)
        elif name in ("first_id", "last_id"):
            cols[name] = frame["trade_id"].to_numpy(dtype="int64")
        elif name == "is_market":
            cols[name] = np.ones(len(frame), dtype=bool)
        else:
            cols[name] = np.zeros(len(frame), dtype=dtype)
    index = frame.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    times = index.as_unit("ns").asi8
    ids = cols["trade_id"]
    ordered = bool(len(ids) < 2 or (
        (np.diff(times) >= 0).all() and (np.diff(ids) > 0).all()
    ))
    if not ordered:
        order = np.lexsort((ids, times))
        times = times[order]
        cols = {k: v[order] for k, v in cols.items()}
        ids = cols["trade_id"]
        # unique ids (first occurrence in (time, id) order)
        _, first = np.unique(ids, return_index=True)
        if len(first) != len(ids):
            keep = np.zeros(len(ids), dtype=bool)
            keep[first] = True
            times = times[keep]
            cols = {k: v[keep] for k, v in cols.items()}
    out = pd.DataFrame(cols, copy=False)
    out.index = pd.DatetimeIndex(times.view("M8[ns]"), name="time").tz_localize("UTC")
    return out


def _truncate_candles(store: Store, sym: str, from_ns: int) -> None:
    """Cut the 1m aggregate of ``sym`` back to before the minute holding ``from_ns``."""
    lib = store.library(CANDLES_1M)
    if not lib.has_symbol(sym):
        return
    minute = from_ns // 60_000_000_000 * 60_000_000_000
    head = lib.head(sym, 1).data
    if not len(head) or int(head.index[0].value) >= minute:
        lib.delete(sym)
        logger.info("%s: 1m candle aggregate dropped (older ticks merged in); it is rebuilt "
                    "from ticks", sym)
        return
    tail = lib.tail(sym, 1).data
    if int(tail.index[-1].value) < minute:
        return
    lib.delete_data_in_range(sym, (pd.Timestamp(minute, tz="UTC"), None),
                             prune_previous_versions=True)
    logger.info("%s: 1m candle aggregate cut back to %s (older ticks merged in)", sym,
                pd.Timestamp(minute, tz="UTC"))


def merge_ticks(store: Store, symbol: InstrumentLike, frame: pd.DataFrame) -> MergeResult:
    """Merge a tick frame into ``symbol``'s stored ticks; ids decide what is new.

    Parameters
    ----------
    store : Store
        The store; the caller holds its writer lock.
    symbol : str or Instrument
        The instrument (``BTCUSDT``, ``binance-usdm:BTCUSDT``, ``okx:BTC-USDT``).
    frame : pandas.DataFrame
        A tick frame in any order, possibly overlapping what is stored.

    Returns
    -------
    MergeResult

    Raises
    ------
    FeedError
        If the frame holds aggregate trades and the symbol trades, or the
        reverse.

    Notes
    -----
    Rows with a later time and a higher id than the last stored trade are
    appended; the others are merged into their time range ``[t_min, t_max]``
    (read, add the rows whose ids are missing, sort by (time, id), ArcticDB
    ``update`` of that range). Nothing is written when nothing is new.
    """
    sym = instrument_key(symbol)
    new = _normalise(frame)
    n = len(new)
    if n == 0:
        return MergeResult(sym, 0, 0, 0, 0)
    lib = store.library(TICKS)
    if not lib.has_symbol(sym):
        lib.write(sym, new, prune_previous_versions=True)
        return MergeResult(sym, n, n, n, 0)
    tail = lib.tail(sym, 1).data
    if not len(tail):
        lib.write(sym, new, prune_previous_versions=True)
        return MergeResult(sym, n, n, n, 0)
    stored_kind, offered_kind = tick_kind(lib.tail(sym, 100).data), tick_kind(new)
    if stored_kind != offered_kind:
        raise FeedError(
            f"{sym} holds {stored_kind} in store {store.uri}; these rows are {offered_kind} "
            "(ids of another sequence): load them into another store"
        )
    last_ns = int(tail.index[-1].value)
    last_id = int(tail["trade_id"].iloc[-1])
    after = (new.index.asi8 >= last_ns) & (new["trade_id"].to_numpy() > last_id)
    older, newer = new[~after], new[after]
    if len(older) and len(newer) and older.index[-1] > newer.index[0]:
        # an old id among the new rows (inconsistent input): merge everything
        older, newer = new, new.iloc[:0]
    merged = 0
    if len(older):
        lo, hi = older.index[0], older.index[-1]
        stored = lib.read(sym, date_range=(lo, hi)).data
        fresh = older[~np.isin(older["trade_id"].to_numpy(), stored["trade_id"].to_numpy())]
        if len(fresh):
            both = pd.concat([stored[list(TICK_DTYPES)], fresh]) if len(stored) else fresh
            both = _normalise(both)
            lib.update(sym, both, date_range=(lo, hi), prune_previous_versions=True)
            merged = len(fresh)
            _truncate_candles(store, sym, int(fresh.index[0].value))
    if len(newer):
        lib.append(sym, newer, prune_previous_versions=True)
    added = merged + len(newer)
    return MergeResult(sym, n, added, len(newer), merged)


def merge_klines(store: Store, name: str, frame: pd.DataFrame) -> int:
    """Merge candles into ``klines/<name>`` (``BTCUSDT_1m``); later data wins per open time.

    Returns the number of bars whose open time was not stored before.
    """
    lib = store.library(KLINES)
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if not len(frame):
        return 0
    if not lib.has_symbol(name):
        lib.write(name, frame, prune_previous_versions=True)
        return len(frame)
    lo, hi = frame.index[0], frame.index[-1]
    stored = lib.read(name, date_range=(lo, hi)).data
    new_bars = int((~frame.index.isin(stored.index)).sum())
    both = pd.concat([stored[~stored.index.isin(frame.index)], frame[list(stored.columns)]])
    lib.update(name, both.sort_index(), date_range=(lo, hi), upsert=True,
               prune_previous_versions=True)
    return new_bars


def klines(store: Store, symbol: InstrumentLike, interval: str = "1m",
           start: TimeLike | None = None, end: TimeLike | None = None) -> pd.DataFrame:
    """Loaded or backfilled Binance klines of ``symbol`` with ``start <= open time < end``."""
    name = f"{instrument_key(symbol)}_{interval}"
    lib = store.library(KLINES)
    if not lib.has_symbol(name):
        known = ", ".join(sorted(lib.list_symbols())) or "none"
        raise UnknownSymbol(f"no {interval} klines of {symbol!r} in store {store.uri} "
                            f"(loaded klines: {known})")
    return lib.read(name, date_range=date_range(start, end)).data


def date_range(start: TimeLike | None, end: TimeLike | None) -> tuple[Any, Any] | None:
    """ArcticDB's ``date_range`` for ``start <= t < end`` (``None`` when unbounded on both sides)."""
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    if t0 is None and t1 is None:
        return None
    return (t0, None if t1 is None else t1 - pd.Timedelta(1, "ns"))
