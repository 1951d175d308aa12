"""How order-book data is stored: the frames of quotes, diffs, checkpoints and the continuity ledger.

Every frame is indexed by the exchange time of the depth event (UTC, ns,
named ``time``: the clock of trades), non-decreasing, and has the columns
of its ``*_COLUMNS`` tuple in that order:

``quotes`` (:func:`quotes_to_frame`)
    The best bid and offer of the local book after each applied depth event.
``book_diffs`` (:func:`diffs_to_frame`)
    The diffs applied, one row per level; ``side`` +1 bid, -1 ask, and 0
    (price and quantity NaN) for an event that changed no level, so the id
    chain stays whole.
``book_checkpoints`` (:func:`checkpoint_to_frame`)
    The top levels of the book after one event, one row per level; ``bound``
    is the side's known range (``bid_floor``/``ask_ceiling``, ±inf when the
    whole side is known), ``reason`` 0 periodic, 1 after a snapshot. A side
    with no known level but a finite range has one row of ``level`` 0,
    price and quantity NaN, that carries its ``bound``.
``book_ledger`` (:func:`ledger_to_frame`)
    Continuity events (:class:`~quantify.model.booksync.LedgerEvent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from quantify.model.book import OrderBook
from quantify.model.booksync import Applied, LedgerEvent

__all__ = [
    "CHECKPOINT_COLUMNS",
    "DIFF_COLUMNS",
    "LEDGER_COLUMNS",
    "QUOTE_COLUMNS",
    "BookFrames",
    "book_frames",
    "book_from_checkpoint",
    "checkpoint_to_frame",
    "diffs_to_frame",
    "ledger_to_frame",
    "quotes_to_frame",
]

QUOTE_COLUMNS = ("bid_price", "bid_qty", "ask_price", "ask_qty", "update_id", "first_update_id", "recv_time")
DIFF_COLUMNS = ("update_id", "first_update_id", "prev_update_id", "side", "price", "qty")
CHECKPOINT_COLUMNS = ("update_id", "side", "level", "price", "qty", "bound", "reason")
LEDGER_COLUMNS = ("kind", "expected_id", "got_id", "stale_seconds", "detail")


def _index(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((ms.astype("int64") * 1_000_000).view("M8[ns]"), name="time").tz_localize("UTC")


def quotes_to_frame(applied: Sequence[Applied]) -> pd.DataFrame:
    """The quotes frame of applied events (one row each)."""
    n = len(applied)
    bbo = np.array([a.bbo for a in applied], dtype="float64").reshape(n, 4)
    return pd.DataFrame(
        {
            "bid_price": bbo[:, 0], "bid_qty": bbo[:, 1], "ask_price": bbo[:, 2], "ask_qty": bbo[:, 3],
            "update_id": np.fromiter((a.diff.last_id for a in applied), "int64", n),
            "first_update_id": np.fromiter((a.diff.first_id for a in applied), "int64", n),
            "recv_time": np.fromiter((a.recv_ns for a in applied), "int64", n),
        },
        index=_index(np.fromiter((a.diff.event_time for a in applied), "int64", n)),
    )


def diffs_to_frame(applied: Sequence[Applied]) -> pd.DataFrame:
    """The diffs frame of applied events (one row per changed level)."""
    n = len(applied)
    diffs = [a.diff for a in applied]
    nb = np.fromiter((len(d.bids) for d in diffs), "int64", n)
    na = np.fromiter((len(d.asks) for d in diffs), "int64", n)
    none = (nb + na == 0).astype("int64")  # an event without levels keeps one row: the id chain stays whole
    per = nb + na + none
    side = np.repeat(np.tile(np.array([1, -1, 0], dtype="int8"), n), np.stack([nb, na, none], axis=1).ravel())
    levels = [lv for d in diffs for lv in (d.bids + d.asks if d.bids or d.asks else _NO_LEVEL)]
    pq = np.array(levels, dtype="float64").reshape(len(levels), 2)
    return pd.DataFrame(
        {
            "update_id": np.repeat(np.fromiter((d.last_id for d in diffs), "int64", n), per),
            "first_update_id": np.repeat(np.fromiter((d.first_id for d in diffs), "int64", n), per),
            "prev_update_id": np.repeat(np.fromiter((d.prev_id for d in diffs), "int64", n), per),
            "side": side, "price": pq[:, 0], "qty": pq[:, 1],
        },
        index=_index(np.repeat(np.fromiter((d.event_time for d in diffs), "int64", n), per)),
    )


_NO_LEVEL = [(float("nan"), float("nan"))]


def checkpoint_to_frame(applied: Applied) -> pd.DataFrame:
    """The checkpoint frame of an applied event that carries one."""
    levels = applied.checkpoint
    if levels is None:
        raise ValueError("this event carries no checkpoint")
    bid_floor, ask_ceiling = applied.checkpoint_bounds
    time_ms, reason = applied.diff.event_time, applied.checkpoint_reason
    # a side without a known level but with a finite bound keeps it on a level-0 row (price, qty NaN)
    bids = levels.bids if len(levels.bids) or bid_floor == -np.inf else np.full((1, 2), np.nan)
    asks = levels.asks if len(levels.asks) or ask_ceiling == np.inf else np.full((1, 2), np.nan)
    nb, na = len(bids), len(asks)
    n = nb + na
    prices = np.concatenate([bids[:, 0], asks[:, 0]]) if n else np.empty(0)
    qtys = np.concatenate([bids[:, 1], asks[:, 1]]) if n else np.empty(0)
    first_bid, first_ask = int(len(levels.bids) > 0), int(len(levels.asks) > 0)
    return pd.DataFrame(
        {
            "update_id": np.full(n, levels.update_id, dtype="int64"),
            "side": np.concatenate([np.ones(nb, "int8"), -np.ones(na, "int8")]),
            "level": np.concatenate([np.arange(first_bid, nb + first_bid, dtype="int32"),
                                     np.arange(first_ask, na + first_ask, dtype="int32")]),
            "price": prices.astype("float64"), "qty": qtys.astype("float64"),
            "bound": np.concatenate([np.full(nb, bid_floor), np.full(na, ask_ceiling)]).astype("float64"),
            "reason": np.full(n, reason, dtype="int8"),
        },
        index=_index(np.full(n, time_ms, dtype="int64")),
    )


def book_from_checkpoint(frame: pd.DataFrame) -> OrderBook:
    """The book a checkpoint frame (one checkpoint: one ``update_id``) holds, with its known range."""
    if frame.empty:
        raise ValueError("an empty checkpoint holds no book")
    ids = frame["update_id"].unique()
    if len(ids) != 1:
        raise ValueError(f"a checkpoint frame holds one update id, got {len(ids)}")
    bids = frame[frame["side"] > 0]
    asks = frame[frame["side"] < 0]
    floor = float(bids["bound"].iloc[0]) if len(bids) else -np.inf
    ceiling = float(asks["bound"].iloc[0]) if len(asks) else np.inf
    return OrderBook.from_levels(zip(bids["price"], bids["qty"], strict=True),
                                 zip(asks["price"], asks["qty"], strict=True), int(ids[0]),
                                 bid_floor=floor, ask_ceiling=ceiling)


def ledger_to_frame(events: Sequence[LedgerEvent]) -> pd.DataFrame:
    """The ledger frame of continuity events."""
    n = len(events)
    return pd.DataFrame(
        {
            "kind": [e.kind for e in events],
            "expected_id": np.fromiter((e.expected_id for e in events), "int64", n),
            "got_id": np.fromiter((e.got_id for e in events), "int64", n),
            "stale_seconds": np.fromiter((e.stale_seconds for e in events), "float64", n),
            "detail": [e.detail for e in events],
        },
        index=_index(np.fromiter((e.time_ms for e in events), "int64", n)),
    )


class BookFrames(NamedTuple):
    """What one append stores of one instrument's book: quotes, diffs, checkpoints, ledger."""

    quotes: pd.DataFrame
    diffs: pd.DataFrame
    checkpoints: pd.DataFrame
    ledger: pd.DataFrame


def book_frames(applied: Sequence[Applied], events: Sequence[LedgerEvent] = ()) -> BookFrames:
    """The frames of a batch of applied events (in id order) and ledger events."""
    cps = [checkpoint_to_frame(a) for a in applied if a.checkpoint is not None]
    checkpoints = pd.concat(cps) if cps else _no_checkpoints()
    return BookFrames(quotes_to_frame(applied), diffs_to_frame(applied), checkpoints, ledger_to_frame(events))


def _no_checkpoints() -> pd.DataFrame:
    """A checkpoint frame without rows (the columns and dtypes of :data:`CHECKPOINT_COLUMNS`)."""
    return pd.DataFrame(
        {"update_id": np.empty(0, "int64"), "side": np.empty(0, "int8"), "level": np.empty(0, "int32"),
         "price": np.empty(0), "qty": np.empty(0), "bound": np.empty(0), "reason": np.empty(0, "int8")},
        index=_index(np.empty(0, "int64")),
    )
