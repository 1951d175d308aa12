"""Stored order books on a regular time grid: :meth:`Store.book_snapshots`, in one forward pass.

The walk starts from the nearest checkpoint at or before the first grid
point, applies the stored diffs in update-id order, replaces the book by
every checkpoint it meets (a checkpoint is the book after its event, and the
only way past an overlay or a resync), and records the book at each grid
point: the same rows :meth:`BookStore.book` reads, so both agree at every
grid point.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from quantify.model.book import OrderBook
from quantify.model.book_frames import book_from_checkpoint
from quantify.model.instrument import InstrumentLike
from quantify.model.times import TimeLike, parse_time
from quantify.store._libraries import BOOK_CHECKPOINTS, BOOK_LEDGER, QUOTES
from quantify.store.book import BookStore, diff_events, stale_at

__all__ = ["MAX_GRID_POINTS", "book_snapshots", "snapshot_columns"]

#: Grid points one call returns at most (a wider range or a finer step is refused).
MAX_GRID_POINTS: Final = 5_000_000


def snapshot_columns(depth: int) -> list[str]:
    """``bid_price_1..N, bid_qty_1..N, ask_price_1..N, ask_qty_1..N`` for ``depth`` N."""
    return [f"{name}_{i}" for name in ("bid_price", "bid_qty", "ask_price", "ask_qty") for i in range(1, depth + 1)]


def _step(every: str | pd.Timedelta) -> pd.Timedelta:
    try:
        step = pd.Timedelta(every)
    except (ValueError, TypeError):
        step = None
    if step is None or step is pd.NaT or step <= pd.Timedelta(0):
        raise ValueError(f"every must be a positive duration such as '1s', '100ms', '1min', got {every!r}")
    return step


def _grid(books: BookStore, key: str, start: TimeLike | None, end: TimeLike | None,
          step: pd.Timedelta) -> pd.DatetimeIndex:
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    if t0 is None:
        head = books.read(BOOK_CHECKPOINTS, key, row_range=(0, 1))
        if head.empty:
            return pd.DatetimeIndex([], tz="UTC", name="time")
        t0 = head.index[0]
    if t1 is None:
        last = books.last_stored(QUOTES, key)[1]
        t1 = pd.Timestamp(last + 1, tz="UTC")
    first_point = t0.ceil(step)
    n = int((t1 - first_point - pd.Timedelta(1, "ns")) // step) + 1 if t1 > first_point else 0
    if n > MAX_GRID_POINTS:
        raise ValueError(f"{n:,} grid points of {step} from {first_point} to {t1}: more than "
                         f"{MAX_GRID_POINTS:,}; choose a coarser 'every' or a shorter range")
    return pd.DatetimeIndex(first_point + step * np.arange(max(n, 0)), name="time")


def book_snapshots(books: BookStore, symbol: InstrumentLike, start: TimeLike | None = None,
                   end: TimeLike | None = None, every: str | pd.Timedelta = "1s",
                   depth: int = 10) -> pd.DataFrame:
    """The book of ``symbol`` on a grid of ``every`` from ``start`` to ``end`` (see :meth:`Store.book_snapshots`)."""
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    depth = int(depth)
    step = _step(every)
    key = books.require(symbol)
    grid = _grid(books, key, start, end, step)
    n = len(grid)
    bids = np.full((n, 2, depth), np.nan)  # [point, price/qty, level]
    asks = np.full((n, 2, depth), np.nan)
    ids = np.full(n, -1, dtype="int64")
    if n:
        g = grid.asi8
        hi = int(g[-1])
        cp = books.checkpoint_before(key, int(g[0]))
        book: OrderBook | None = None
        after, lo = -1, None
        if cp is not None:
            book = books.checkpoint_book(key, *cp)
            after, lo = cp
        window = (None if lo is None else pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC"))
        cps = books.read(BOOK_CHECKPOINTS, key, date_range=window)
        cps = cps[cps["update_id"].to_numpy() > after]
        by_id = {int(u): rows for u, rows in cps.groupby("update_id", sort=False)} if len(cps) else {}
        diffs = books.diffs_after(key, after, lo if lo is not None else 0, hi)
        gi = 0

        def record(i: int) -> None:
            if book is None:
                return
            ids[i] = book.update_id
            for side, out in ((True, bids), (False, asks)):
                levels = book.side(side, depth)
                if levels:
                    arr = np.asarray(levels, dtype="float64")
                    out[i, 0, : len(levels)] = arr[:, 0]
                    out[i, 1, : len(levels)] = arr[:, 1]

        for time_ns, diff in diff_events(diffs, key):
            while gi < n and g[gi] < time_ns:
                record(gi)
                gi += 1
            rows = by_id.get(diff.last_id)
            if rows is not None:
                book = book_from_checkpoint(rows)
            elif book is not None:
                book.apply(diff)
        while gi < n:
            record(gi)
            gi += 1
    ledger = books.read(BOOK_LEDGER, key, date_range=(None, grid[-1])) if n else None
    stale = stale_at(ledger, grid.asi8) if ledger is not None else np.zeros(0, dtype=bool)
    data = np.concatenate([bids[:, 0], bids[:, 1], asks[:, 0], asks[:, 1]], axis=1)
    out = pd.DataFrame(data, index=grid, columns=snapshot_columns(depth))
    out["update_id"] = ids
    out["stale"] = stale | (ids < 0)
    return out
