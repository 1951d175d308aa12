"""Trades and the venue-neutral events ingestion reacts to.

Every venue adapter (:mod:`quantify.venues`) turns its wire format into
these: a :class:`Trade` per trade (or aggregate trade), a
:class:`ServerShutdown` when the exchange announces it will close a
connection. The store, analytics, replay and ingestion build on them and
never on a venue's own messages.

A tick frame (:func:`trades_to_frame`) is how trades are stored: indexed by
trade time (UTC, ns), columns :data:`TICK_COLUMNS`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["MAX_ID", "MAX_TIME_MS", "TICK_COLUMNS", "ServerShutdown", "Trade", "trades_to_frame"]

#: Columns of a tick frame, in order (index: trade time, UTC).
TICK_COLUMNS = ("price", "qty", "trade_id", "is_buyer_maker", "first_id", "last_id", "is_market")

#: Largest trade time (ms) a tick frame can hold: its ns index is an int64 (year 2262).
MAX_TIME_MS: Final = (2**63 - 1) // 1_000_000
#: Largest trade id a tick frame can hold (int64).
MAX_ID: Final = 2**63 - 1


class Trade(NamedTuple):
    """One trade, or one aggregate trade, of one instrument.

    ``symbol`` is the venue's own spelling (``BTCUSDT``, ``BTC-USDT-SWAP``);
    the venue is known to whoever parsed the trade. ``trade_id`` is the id
    the venue numbers trades (or aggregate trades) by; ``first_id``/``last_id``
    are the underlying trade ids (both ``trade_id`` for a plain trade) so a
    candle's trade count is ``sum(last_id - first_id + 1)``. ``is_market`` is
    False for trades that did not happen in the order book (Binance USD-M
    ``X`` other than ``MARKET``: insurance fund, ADL). Times (``time``: the
    trade; ``event_time``: the message, or ``time`` if absent) are
    milliseconds since the epoch.
    """

    symbol: str
    trade_id: int
    price: float
    qty: float
    time: int
    is_buyer_maker: bool
    first_id: int
    last_id: int
    is_market: bool
    event_time: int


class ServerShutdown(NamedTuple):
    """The venue announces that it will close this connection soon."""

    event_time: int


def trades_to_frame(trades: list[Trade]) -> pd.DataFrame:
    """Convert trades (all of one instrument) to a tick frame.

    The index is the trade time (UTC, ns); columns are :data:`TICK_COLUMNS`.
    """
    n = len(trades)
    if n == 0:
        return pd.DataFrame(
            {c: np.empty(0, dtype=d) for c, d in zip(TICK_COLUMNS, _DTYPES, strict=True)},
            index=pd.DatetimeIndex([], tz="UTC", name="time"),
        )
    # One list comprehension per column: zip(*trades) is quadratic-ish for large batches.
    ms = np.fromiter([t[4] for t in trades], dtype="int64", count=n)
    index = pd.DatetimeIndex((ms * 1_000_000).view("M8[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame(
        {
            "price": np.fromiter([t[2] for t in trades], dtype="float64", count=n),
            "qty": np.fromiter([t[3] for t in trades], dtype="float64", count=n),
            "trade_id": np.fromiter([t[1] for t in trades], dtype="int64", count=n),
            "is_buyer_maker": np.fromiter([t[5] for t in trades], dtype="bool", count=n),
            "first_id": np.fromiter([t[6] for t in trades], dtype="int64", count=n),
            "last_id": np.fromiter([t[7] for t in trades], dtype="int64", count=n),
            "is_market": np.fromiter([t[8] for t in trades], dtype="bool", count=n),
        },
        index=index,
    )


_DTYPES = ("float64", "float64", "int64", "bool", "int64", "int64", "bool")
