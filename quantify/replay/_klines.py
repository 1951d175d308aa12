"""Binance klines over a replay tape: bar boundaries per interval and the kline rows.

Bars run on UTC: weekly bars open on Mondays, monthly bars on the first of the
month. :func:`kline_rows` aggregates the exact integer units of the replayed
``MARKET`` trades with the model's bar kernel and formats them as Binance's
decimal strings; open/high/low/close give back the served price strings (the
recorded ones in lap 0, the scaled ones of later laps: :mod:`quantify.replay.laps`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any, NamedTuple

import numpy as np

from quantify.model.bars import bars_of_units, limbs_to_ints
from quantify.model.timeframes import KLINE_INTERVALS
from quantify.replay._decimals import format_units
from quantify.replay.tape import SymbolTape

__all__ = ["KlineUnits", "close_before", "kline_next", "kline_open", "kline_opens", "kline_rows"]

_D = 86_400_000
_MONDAY_OFFSET = 4 * _D  # 1970-01-01 was a Thursday; weekly bars open on Mondays


class KlineUnits(NamedTuple):
    """A symbol tape's trades as arrays for the bar kernel (lap 0, local index order).

    Prices are not among them: they change from lap to lap (``SymbolTape.lap_prices``).
    """

    qty_units: np.ndarray
    makers: np.ndarray
    market: np.ndarray

    @classmethod
    def of(cls, sym: SymbolTape) -> KlineUnits:
        """The arrays of ``sym``'s trades."""
        return cls(
            np.array(sym.qty_units, dtype=np.int64),
            np.array(sym.makers, dtype=bool),
            np.array(sym.market, dtype=bool),
        )


def kline_open(t: int, interval: str) -> int:
    """Open time of the ``interval`` bar holding time ``t`` (ms, UTC)."""
    step = KLINE_INTERVALS[interval]
    if interval == "1M":
        d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    if interval == "1w":
        return (t - _MONDAY_OFFSET) // step * step + _MONDAY_OFFSET
    return t // step * step


def kline_next(open_ms: int, interval: str) -> int:
    """Open time of the ``interval`` bar after the one opening at ``open_ms``."""
    if interval == "1M":
        d = dt.datetime.fromtimestamp(open_ms / 1000, dt.UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + KLINE_INTERVALS[interval]


def kline_opens(lo: int, hi: int, start: int | None, limit: int, interval: str) -> list[int]:
    """Open times of the bars served, oldest first, between bar opens ``lo`` and ``hi``.

    From the first bar opening at or after ``start`` onwards, else the last
    ``limit`` bars up to ``hi``; at most ``limit`` either way.
    """
    opens: list[int] = []
    if start is not None:
        b = kline_open(start, interval)
        if b < start:
            b = kline_next(b, interval)
        b = max(b, lo)
        while b <= hi and len(opens) < limit:
            opens.append(b)
            b = kline_next(b, interval)
    else:
        b = hi
        while b >= lo and len(opens) < limit:
            opens.append(b)
            b = kline_open(b - 1, interval)
        opens.reverse()
    return opens


def kline_rows(sym: SymbolTape, units: KlineUnits, opens: list[int], edges: list[int],
               ks: np.ndarray) -> list[list[Any]]:
    """Binance kline rows of the consecutive bars opening at ``opens``.

    ``edges`` are the bars' open times and the close of the last one;
    ``ks`` the absolute trade index (capped at the replayed trades) of each edge.
    """
    k = np.arange(ks[0], ks[-1], dtype=np.int64)  # absolute trade indices
    r = k % sym.n  # -> lap-0 rows
    market = units.market[r]
    if not market.all():  # insurance-fund/ADL trades (USD-M) are not in Binance's klines
        kept = np.concatenate(([0], np.cumsum(market)))
        bounds = kept[ks - ks[0]]
        k, r = k[market], r[market]
    else:
        bounds = ks - ks[0]
    bars = bars_of_units(bounds, sym.lap_prices.units_at(k), units.qty_units[r], units.makers[r])
    quote = limbs_to_ints(bars.quote_volume)
    buy_quote = limbs_to_ints(bars.taker_buy_quote_volume)
    price = sym.lap_prices.text_at
    qscale = sym.price_scale + sym.qty_scale
    # a bar without trades is flat at the previous close (none before: the first price)
    prev = close_before(sym, int(ks[0]))
    out: list[list[Any]] = []
    for b, open_ms in enumerate(opens):
        if bars.open_row[b] < 0:
            o = h = lo = c = prev
        else:
            o = price(int(k[bars.open_row[b]]))
            h = price(int(k[bars.high_row[b]]))
            lo = price(int(k[bars.low_row[b]]))
            c = prev = price(int(k[bars.close_row[b]]))
        out.append([
            open_ms, o, h, lo, c, sym.qty_str(int(bars.volume[b])), edges[b + 1] - 1,
            format_units(quote[b], qscale, 8), int(bars.trades[b]),
            sym.qty_str(int(bars.taker_buy_volume[b])), format_units(buy_quote[b], qscale, 8),
            "0",
        ])
    return out


def close_before(sym: SymbolTape, k0: int) -> str:
    """Price of the last ``MARKET`` trade before absolute index ``k0`` (or the first price)."""
    n = sym.n
    k = k0 - 1
    while k >= 0 and not sym.market[k % n]:
        k -= 1
    return sym.lap_prices.text_at(k) if k >= 0 else sym.prices[0]
