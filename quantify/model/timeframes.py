"""Timeframes: the one table of bar lengths (Binance's kline intervals) and their parsing.

:data:`TIMEFRAMES` maps Binance's fixed-length kline intervals to their
length; :data:`KLINE_INTERVALS` adds the calendar ones (``3d``, ``1w``,
``1M``) that only the replay's klines serve; :data:`WIDGET_TIMEFRAMES` is the
subset (plus sub-minute lengths Binance has no kline for) the widgets offer.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from typing import Final

import pandas as pd

__all__ = ["KLINE_INTERVALS", "TIMEFRAMES", "WIDGET_TIMEFRAMES", "timeframe_to_offset"]

#: Binance's kline intervals of fixed length, by Binance's spelling.
TIMEFRAMES: Final[dict[str, pd.Timedelta]] = {
    "1s": pd.Timedelta(seconds=1),
    "1m": pd.Timedelta(minutes=1),
    "3m": pd.Timedelta(minutes=3),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "2h": pd.Timedelta(hours=2),
    "4h": pd.Timedelta(hours=4),
    "6h": pd.Timedelta(hours=6),
    "8h": pd.Timedelta(hours=8),
    "12h": pd.Timedelta(hours=12),
    "1d": pd.Timedelta(days=1),
}

_DAY_MS: Final = 86_400_000
#: All of Binance's kline intervals in milliseconds: :data:`TIMEFRAMES`, then
#: ``3d`` and ``1w`` (weeks open on Mondays), and ``1M``, a calendar month (0 here).
KLINE_INTERVALS: Final[dict[str, int]] = {
    **{name: int(td.value) // 1_000_000 for name, td in TIMEFRAMES.items()},
    "3d": 3 * _DAY_MS, "1w": 7 * _DAY_MS, "1M": 0,
}

#: The timeframes the widgets' menus offer, shortest first: a subset of
#: :data:`TIMEFRAMES` plus 5s and 15s (live charts want sub-minute bars).
WIDGET_TIMEFRAMES: Final[tuple[str, ...]] = tuple(
    sorted(("1s", "5s", "15s", "1m", "5m", "15m", "1h", "4h", "1d"),
           key=lambda name: TIMEFRAMES.get(name, pd.Timedelta(name)))
)


def timeframe_to_offset(timeframe: str | pd.Timedelta | _dt.timedelta) -> pd.Timedelta:
    """Return the length of a candle timeframe.

    Parameters
    ----------
    timeframe : str or Timedelta
        A Binance interval (``"1s"``, ``"1m"``, ``"3m"``, ``"5m"``, ``"15m"``,
        ``"30m"``, ``"1h"``, ``"2h"``, ``"4h"``, ``"6h"``, ``"8h"``, ``"12h"``,
        ``"1d"``), any fixed pandas offset (``"10s"``, ``"90min"``) or a
        positive timedelta.

    Returns
    -------
    pandas.Timedelta

    Raises
    ------
    ValueError
        If the timeframe is not positive, not of fixed length (``"1M"``, a
        month, in pandas; ``"1w"`` is not accepted either) or not parseable;
        the message lists the Binance spellings.

    Notes
    -----
    Binance spellings win over pandas': ``"1m"`` is a minute (pandas would
    read it the same, but ``"1M"`` would be a month and is refused).
    """
    if isinstance(timeframe, (pd.Timedelta, _dt.timedelta)):
        td = pd.Timedelta(timeframe)
    elif isinstance(timeframe, str):
        if timeframe in TIMEFRAMES:
            return TIMEFRAMES[timeframe]
        try:
            with warnings.catch_warnings():  # pandas warns on deprecated spellings ("1M")
                warnings.simplefilter("ignore", FutureWarning)
                offset = pd.tseries.frequencies.to_offset(timeframe)
        except ValueError:
            offset = None
        if not isinstance(offset, pd.offsets.Tick):  # a calendar offset: a bad value
            raise ValueError(
                f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)} "
                "or a fixed pandas offset such as '10s' or '90min'"
            )
        td = pd.Timedelta(offset)
    else:
        raise TypeError(f"timeframe must be a string or a timedelta, not {timeframe!r}")
    if td <= pd.Timedelta(0):
        raise ValueError(f"timeframe must be positive, got {timeframe!r}")
    return td
