"""Checks of alert-rule fields: numbers, bar counts, durations, choices, timeframes.

Each check takes what a user typed (a number, a string such as ``"15m"`` or
``"120"``) and returns the value a rule stores, or raises ``ValueError``
naming the field and saying what to write instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

import pandas as pd

from quantify.model.timeframes import timeframe_to_offset

#: Most bars a bar-based rule may look back over (the writer keeps this many per series).
MAX_BARS: Final = 5_000

__all__ = ["MAX_BARS", "bars", "book_levels", "choice", "count", "duration", "finite", "imbalance_level", "level",
           "nonneg", "positive", "positive_duration", "timeframe"]

def finite(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonneg and x < 0:
        raise ValueError(f"{name} must be zero or positive, got {value!r}")
    return x


def positive(name: str) -> Callable[[Any], float]:
    return lambda v: finite(name, v, positive=True)


def nonneg(name: str) -> Callable[[Any], float]:
    return lambda v: finite(name, v, nonneg=True)


def level(name: str) -> Callable[[Any], float]:
    return lambda v: finite(name, v)


def imbalance_level(value: Any) -> float:
    x = finite("level", value)
    if not -1.0 < x < 1.0:
        raise ValueError(f"level must lie strictly between -1 and 1 (an imbalance is in [-1, 1]), got {value!r}")
    return x


def book_levels(value: Any) -> int:
    """Levels per side an imbalance sums; the writer's quotes carry the best bid and offer only."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\d+(\.0*)?", text) or float(text) < 1:
        raise ValueError(f"levels must be a positive integer number of book levels, got {value!r}")
    if float(text) != 1:
        raise ValueError(f"levels: the writer judges imbalance on the best bid and offer (levels=1); "
                         f"got {int(float(text))}")
    return 1


def count(name: str) -> Callable[[Any], int]:
    """Check a positive whole number (``3``, ``"3"``, ``3.0``) of things."""
    def check(value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"\d+(\.0*)?", text) or float(text) < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        return int(float(text))
    return check


def bars(name: str, minimum: int = 1, history: int = 1) -> Callable[[Any], int]:
    """Check a count of bars; the rule needs ``history * n - (history - 1)`` bars kept."""
    def check(value: Any) -> int:
        n: int | None = None
        if isinstance(value, bool):
            n = None
        elif isinstance(value, int):
            n = value
        elif isinstance(value, float) and value.is_integer():
            n = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            n = int(value.strip())
        if n is None or n < 1:
            raise ValueError(f"{name} must be a positive integer number of bars, got {value!r}")
        if n < minimum:
            raise ValueError(f"{name} must be at least {minimum} bars, got {n}")
        if history * n - (history - 1) > MAX_BARS:
            needs = f" needs {history * n - (history - 1)} bars of history and" if history > 1 else ""
            raise ValueError(
                f"{name} of {n} bars{needs} is larger than the history kept ({MAX_BARS} bars); "
                "use a longer timeframe with fewer bars"
            )
        return n
    return check


def duration(name: str, maximum: pd.Timedelta | None = None) -> Callable[[Any], float]:
    """Seconds from a number of seconds or a string such as ``"15m"``, ``"90s"``, ``"1h"``."""
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be seconds or a duration such as '15m', got {value!r}")
        text = None if isinstance(value, (int, float)) else str(value).strip()
        if text is not None and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text):
            value = float(text)  # "30" is 30 seconds, as 30 is (pandas would read nanoseconds)
        if isinstance(value, (int, float)):
            seconds = finite(name, value)
        else:
            try:
                seconds = pd.Timedelta(text).total_seconds()
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} must be seconds or a duration such as '90s', '15m' or '1h', got {value!r}"
                ) from None
        if seconds < 0:
            raise ValueError(f"{name} must not be negative, got {value!r}")
        if maximum is not None and seconds > maximum.total_seconds():
            raise ValueError(
                f"{name} {value!r} is larger than the history kept ({maximum}); use at most that"
            )
        return seconds
    return check


def positive_duration(name: str, maximum: pd.Timedelta | None = None) -> Callable[[Any], float]:
    inner = duration(name, maximum)

    def check(value: Any) -> float:
        seconds = inner(value)
        if seconds <= 0:
            raise ValueError(f"{name} must be a positive duration such as '5m', got {value!r}")
        return seconds
    return check


def choice(name: str, options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        v = str(value).strip().lower().replace("_", "-")
        if v not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return v
    return check


def timeframe(value: Any) -> str:
    try:
        td = timeframe_to_offset(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timeframe: {exc}") from None
    if isinstance(value, str):
        return value.strip()
    return f"{int(td.total_seconds())}s"
