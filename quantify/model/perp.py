"""Perpetual futures: mark price, liquidations, funding settlements and open interest, and their frames.

The records are venue-neutral and sans I/O (the Binance parser builds them
from ``markPriceUpdate`` and ``forceOrder`` events and from the REST answers
of ``fundingRate``, ``premiumIndex``, ``openInterest`` and
``openInterestHist``). Times are milliseconds since the epoch, UTC; prices
are float64 read from the venue's decimal strings.

Frames (the form of the store and of every consumer) are indexed by a UTC
``DatetimeIndex`` named ``time``, non-decreasing, with the columns of the
``*_COLUMNS`` tuples in that order:

``mark`` (:func:`marks_to_frame`), index = event time
    ``mark_price``, ``index_price``, ``settle_price`` (Binance's estimated
    settle price ``P``), ``funding_rate`` (the rate that will settle at
    ``next_funding_time``), ``next_funding_time`` (UTC timestamp),
    ``recv_time`` (int64 ns since the epoch, 0 when unknown).
``liquidations`` (:func:`liquidations_to_frame`), index = order trade time
    ``side`` (int8: +1 ``BUY``, -1 ``SELL``; a ``SELL`` liquidation order
    closes a long), ``price``, ``avg_price``, ``qty`` (original), ``last_qty``,
    ``filled_qty``, ``notional`` (``avg_price * filled_qty``), ``status``
    (``FILLED``, ...), ``recv_time``. Binance pushes at most the latest
    liquidation per symbol per second: these rows are a sample of the
    liquidations, not all of them.
``funding`` (:func:`funding_to_frame`), index = settlement time
    ``funding_rate``, ``mark_price`` (the mark the settlement was charged
    at; NaN where the venue does not say).
``open_interest`` (:func:`open_interest_to_frame`), index = time
    ``open_interest`` (contracts), ``open_interest_value`` (quote currency;
    NaN where the venue gives only contracts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "FUNDING_COLUMNS",
    "LIQUIDATION_COLUMNS",
    "MARK_COLUMNS",
    "OPEN_INTEREST_COLUMNS",
    "PERP_KINDS",
    "FundingSettlement",
    "Liquidation",
    "MarkPrice",
    "OpenInterest",
    "empty_perp_frame",
    "funding_to_frame",
    "liquidations_to_frame",
    "marks_to_frame",
    "open_interest_to_frame",
]


class MarkPrice(NamedTuple):
    """One mark-price update of a perpetual (Binance ``markPriceUpdate``, or a ``premiumIndex`` answer)."""

    symbol: str
    event_time: int
    mark_price: float
    index_price: float
    settle_price: float
    funding_rate: float
    next_funding_time: int
    recv_ns: int = 0


class Liquidation(NamedTuple):
    """One liquidation order as the venue reports it (Binance ``forceOrder``)."""

    symbol: str
    event_time: int
    trade_time: int
    side: str
    order_type: str
    time_in_force: str
    qty: float
    price: float
    avg_price: float
    status: str
    last_qty: float
    filled_qty: float
    recv_ns: int = 0


class FundingSettlement(NamedTuple):
    """One funding settlement: the rate paid at ``funding_time`` (longs pay shorts when positive)."""

    symbol: str
    funding_time: int
    funding_rate: float
    mark_price: float = float("nan")


class OpenInterest(NamedTuple):
    """Open interest at one time: contracts and, where the venue gives it, their value."""

    symbol: str
    time: int
    open_interest: float
    open_interest_value: float = float("nan")


MARK_COLUMNS = ("mark_price", "index_price", "settle_price", "funding_rate", "next_funding_time", "recv_time")
LIQUIDATION_COLUMNS = ("side", "price", "avg_price", "qty", "last_qty", "filled_qty", "notional", "status",
                       "recv_time")
FUNDING_COLUMNS = ("funding_rate", "mark_price")
OPEN_INTEREST_COLUMNS = ("open_interest", "open_interest_value")

#: The kinds of perpetual data, each a store library and a frame of the columns above.
PERP_KINDS = ("mark", "funding", "open_interest", "liquidations")

_COLUMNS = {"mark": MARK_COLUMNS, "liquidations": LIQUIDATION_COLUMNS, "funding": FUNDING_COLUMNS,
            "open_interest": OPEN_INTEREST_COLUMNS}
_DTYPES = {"next_funding_time": "datetime64[ns, UTC]", "recv_time": "int64", "side": "int8", "status": "object"}


def _index(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((ms.astype("int64") * 1_000_000).view("M8[ns]"), name="time").tz_localize("UTC")


def _utc(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((ms.astype("int64") * 1_000_000).view("M8[ns]")).tz_localize("UTC")


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    return frame


def empty_perp_frame(kind: str) -> pd.DataFrame:
    """An empty frame of ``kind`` (one of :data:`PERP_KINDS`) with its columns and dtypes."""
    if kind not in _COLUMNS:
        raise ValueError(f"kind must be one of {', '.join(PERP_KINDS)}, not {kind!r}")
    return pd.DataFrame(
        {c: pd.Series(dtype=_DTYPES.get(c, "float64")) for c in _COLUMNS[kind]},
        index=pd.DatetimeIndex([], name="time", tz="UTC"),
    )


def marks_to_frame(marks: Sequence[MarkPrice]) -> pd.DataFrame:
    """The mark frame of ``marks`` (indexed by event time, sorted)."""
    if not marks:
        return empty_perp_frame("mark")
    a = np.array([(m.mark_price, m.index_price, m.settle_price, m.funding_rate) for m in marks], dtype="float64")
    n = len(marks)
    frame = pd.DataFrame(
        {
            "mark_price": a[:, 0], "index_price": a[:, 1], "settle_price": a[:, 2], "funding_rate": a[:, 3],
            "next_funding_time": _utc(np.fromiter((m.next_funding_time for m in marks), "int64", n)),
            "recv_time": np.fromiter((m.recv_ns for m in marks), "int64", n),
        },
        index=_index(np.fromiter((m.event_time for m in marks), "int64", n)),
    )
    return _ordered(frame)


def liquidations_to_frame(liquidations: Sequence[Liquidation]) -> pd.DataFrame:
    """The liquidations frame (indexed by the order's trade time, sorted)."""
    if not liquidations:
        return empty_perp_frame("liquidations")
    n = len(liquidations)
    a = np.array([(x.price, x.avg_price, x.qty, x.last_qty, x.filled_qty) for x in liquidations], dtype="float64")
    frame = pd.DataFrame(
        {
            "side": np.fromiter((1 if x.side == "BUY" else -1 for x in liquidations), "int8", n),
            "price": a[:, 0], "avg_price": a[:, 1], "qty": a[:, 2], "last_qty": a[:, 3], "filled_qty": a[:, 4],
            "notional": a[:, 1] * a[:, 4],
            "status": np.array([x.status for x in liquidations], dtype=object),
            "recv_time": np.fromiter((x.recv_ns for x in liquidations), "int64", n),
        },
        index=_index(np.fromiter((x.trade_time for x in liquidations), "int64", n)),
    )
    return _ordered(frame)


def funding_to_frame(settlements: Sequence[FundingSettlement]) -> pd.DataFrame:
    """The funding frame of settlements (indexed by settlement time, sorted, one row per time)."""
    if not settlements:
        return empty_perp_frame("funding")
    n = len(settlements)
    frame = pd.DataFrame(
        {
            "funding_rate": np.fromiter((s.funding_rate for s in settlements), "float64", n),
            "mark_price": np.fromiter((s.mark_price for s in settlements), "float64", n),
        },
        index=_index(np.fromiter((s.funding_time for s in settlements), "int64", n)),
    )
    frame = _ordered(frame)
    return frame[~frame.index.duplicated(keep="last")]


def open_interest_to_frame(rows: Sequence[OpenInterest]) -> pd.DataFrame:
    """The open-interest frame (indexed by time, sorted, one row per time)."""
    if not rows:
        return empty_perp_frame("open_interest")
    n = len(rows)
    frame = pd.DataFrame(
        {
            "open_interest": np.fromiter((r.open_interest for r in rows), "float64", n),
            "open_interest_value": np.fromiter((r.open_interest_value for r in rows), "float64", n),
        },
        index=_index(np.fromiter((r.time for r in rows), "int64", n)),
    )
    frame = _ordered(frame)
    return frame[~frame.index.duplicated(keep="last")]
