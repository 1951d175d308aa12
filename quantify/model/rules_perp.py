"""Alert rules on perpetual futures: the constructors of the ``funding-above``, ``funding-below``, ``basis-z`` and ``liquidation-burst`` kinds.

Each builds a :class:`~quantify.model.rules.Rule` through
:func:`~quantify.model.rules.make_rule`, which checks every argument; the
kinds' fields and their table are in :mod:`quantify.model.rules`.
"""

from __future__ import annotations

from typing import Any

from quantify.model.rules import Rule, make_rule

__all__ = ["basis_z", "funding_above", "funding_below", "liquidation_burst"]


def funding_above(symbol: str, level: float, *, unit: str = "rate", margin: float = 0.0, **common: Any) -> Rule:
    """Fire at the first mark update whose funding rate is at or above ``level``.

    ``unit`` "rate": ``level`` is a fraction (0.0001 is 0.01 % per funding
    interval, Binance's ``r``); "bps": basis points (1 is 0.0001). The value
    is the mark's ``funding_rate`` (the rate that settles at its
    ``next_funding_time``) in that unit; it re-arms below ``level - margin``.
    """
    return make_rule("funding-above", symbol, level=level, unit=unit, margin=margin, **common)


def funding_below(symbol: str, level: float, *, unit: str = "rate", margin: float = 0.0, **common: Any) -> Rule:
    """Fire at the first mark update whose funding rate is at or below ``level`` (see :func:`funding_above`)."""
    return make_rule("funding-below", symbol, level=level, unit=unit, margin=margin, **common)


def basis_z(perp: str, spot: str, level: float, *, op: str = "abs-above", timeframe: str = "1m",
            window: int | str = 120, margin: float = 0.0, **common: Any) -> Rule:
    """Fire when the z-score of the perpetual's basis against spot passes ``level`` on closed bars.

    At each bar closed on both legs: the basis in bps of the bar closes,
    :func:`quantify.analytics.basis` (``basis_bps``), standardised over the
    last ``window`` bars with :func:`quantify.analytics.zscore`, the z-score
    kernel of the ``zscore`` rule (sample standard deviation, ``ddof=1``).
    """
    return make_rule("basis-z", (perp, spot), level=level, op=op, timeframe=timeframe, window=window,
                     margin=margin, **common)


def liquidation_burst(symbol: str, window: float | str, *, count: int | None = None,
                      notional: float | None = None, **common: Any) -> Rule:
    """Fire when the liquidations of the last ``window`` reach ``count`` (or ``notional``).

    Judged at every stored liquidation: the liquidations (or their summed
    ``avg_price * filled_qty``) stamped in ``(t - window, t]``. Give ``count``
    or ``notional``. It re-arms at a later liquidation whose window holds
    less. Binance pushes at most one liquidation per symbol per second (a
    sample), so a count is a lower bound of the liquidations.
    """
    return make_rule("liquidation-burst", symbol, window=window, count=count, notional=notional, **common)
