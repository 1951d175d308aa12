"""Time arguments: datetimes, ISO strings and relative strings, all UTC."""

from __future__ import annotations

import datetime as dt
import re
from typing import TypeAlias

import numpy as np
import pandas as pd

from quantify.exceptions import InvalidTime

__all__ = ["TimeLike", "parse_time"]

TimeLike: TypeAlias = dt.datetime | dt.date | pd.Timestamp | np.datetime64 | str | int | float

_RELATIVE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_UNITS = {"ms": "ms", "s": "s", "m": "min", "min": "min", "h": "h", "d": "D", "w": "W"}


def parse_time(value: TimeLike | None, *, now: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """Return ``value`` as a UTC :class:`pandas.Timestamp` (``None`` stays ``None``).

    Accepted: ``datetime``/``Timestamp`` (naive ones are taken as UTC), ISO
    strings (``"2024-08-08 23:55"``, ``"2024-08-08T23:55:00Z"``), ``"now"``,
    relative strings ``"-90s"``, ``"-15m"``, ``"-6h"``, ``"-2d"``, ``"-1w"``
    (relative to ``now``), and numbers as milliseconds since the epoch.

    Raises
    ------
    InvalidTime
        When the value cannot be read as a time; the message shows the value
        and the accepted forms.
    """
    if value is None:
        return None
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    try:
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == "now":
                return now
            match = _RELATIVE.match(text)
            if match:
                return now - pd.Timedelta(float(match.group(1)), unit=_UNITS[match.group(2)])
            ts = pd.Timestamp(text)
        elif isinstance(value, bool):
            raise TypeError("bool is not a time")
        elif isinstance(value, (int, float, np.integer, np.floating)):
            ts = pd.Timestamp(int(value), unit="ms")
        else:
            ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidTime(
            f"cannot read {value!r} as a time; use a datetime, an ISO string such as "
            "'2024-08-08 23:55', 'now', or a relative time such as '-6h', '-15m', '-2d'"
        ) from exc
    if ts is pd.NaT or pd.isna(ts):
        raise InvalidTime(f"cannot read {value!r} as a time (it is NaT)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
