"""Fields of the ``drawdown`` alert kind: its parameters, default message and cross-field check.

Kept apart from :mod:`quantify.model.rules` (which registers the kind in its
:data:`~quantify.model.rules.KINDS` table) so that the rule module stays one
screenful per concept; the constructor is :func:`quantify.model.rules_risk.drawdown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from quantify.model._rule_fields import bars, finite, nonneg, positive, timeframe

__all__ = ["DRAWDOWN_MESSAGE", "ONE_OR_TWO_SYMBOLS", "check_drawdown", "drawdown_params", "percent_level"]

#: Kinds that watch one instrument or a pair (``drawdown``: a price, or a pairs position).
ONE_OR_TWO_SYMBOLS: Final = ("drawdown",)

def percent_level(value: Any) -> float:
    """A drawdown level in percent of the peak: in (0, 100)."""
    x = finite("level", value)
    if not 0.0 < x < 100.0:
        raise ValueError(f"level is a drawdown in % of the peak equity, in (0, 100) such as 5; got {value!r}")
    return x


def drawdown_params(required: object) -> Mapping[str, tuple[Callable[[Any], Any], Any]]:
    """The parameter table of the ``drawdown`` kind, ``required`` marking the required ones."""
    return {
        "level": (percent_level, required),
        "timeframe": (timeframe, "1m"),
        # a pair's paper position needs 2 * window bars before its first trade; the peak is
        # taken over the last window bars: 3 * window - 2 bars kept at most
        "window": (bars("window", 3, history=3), 120),
        "entry": (positive("entry"), 2.0),
        "exit": (nonneg("exit"), 0.5),
        "margin": (nonneg("margin"), 0.0),
    }


DRAWDOWN_MESSAGE: Final = "{symbol} paper position {value:.2f}% below its peak (threshold {threshold:g}%)"


def check_drawdown(params: Mapping[str, Any]) -> None:
    """The checks across fields of a ``drawdown`` rule: the pair's bands ``0 <= exit < entry``."""
    if not params["exit"] < params["entry"]:
        raise ValueError(f"exit must be below entry (the pairs position's z-score bands), got "
                         f"exit={params['exit']!r} >= entry={params['entry']!r}")
