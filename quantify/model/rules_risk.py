"""Alert rules on risk: the ``drawdown`` kind's constructor.

A ``drawdown`` rule watches the equity of a paper position on closed bars:
one instrument held long (its drawdown is the price's fall from its peak),
or, for a pair ``Y/X``, the z-score strategy of
:func:`quantify.analytics.backtest_pairs` run on the two legs' closes
(:func:`quantify.analytics.paper_equity`, the position the
:class:`~quantify.widgets.DrawdownMonitor` draws). Its value is the fall of
that equity from its highest value over the last ``window`` bars, in % of
that peak (:func:`quantify.analytics.trailing_drawdown` times 100); it fires
at the first closed bar where it exceeds ``level`` and re-arms once the
drawdown is back below ``level - margin``.
"""

from __future__ import annotations

from typing import Any

from quantify.model.rules import Rule, make_rule

__all__ = ["drawdown"]


def drawdown(symbols: str | tuple[str, str], level: float, *, timeframe: str = "1m", window: int | str = 120,
             entry: float = 2.0, exit: float = 0.5, margin: float = 0.0, **common: Any) -> Rule:
    """Fire when a paper position's equity falls more than ``level`` % below its recent peak.

    Parameters
    ----------
    symbols : str or (str, str)
        One instrument (``"BTCUSDT"``: a long position, equity proportional to
        the price) or a pair (``"BTCUSDT/ETHUSDT"`` or a tuple: the pairs
        strategy on the two legs' closes).
    level : float
        Drawdown in % of the peak equity, in (0, 100).
    timeframe : str, default "1m"
        Bars the position is marked on.
    window : int, default 120
        Bars over which the peak is taken; for a pair also the rolling OLS
        hedge and z-score window of the strategy.
    entry, exit : float, default 2.0 and 0.5
        The pair strategy's z-score bands (unused for one instrument).
    margin : float, default 0
        Percentage points the drawdown must recover below ``level`` to re-arm.
    **common
        ``severity``, ``cooldown``, ``message``, ``name``, ``enabled``.
    """
    return make_rule("drawdown", symbols, level=level, timeframe=timeframe, window=window, entry=entry,
                     exit=exit, margin=margin, **common)
