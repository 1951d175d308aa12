"""Accounting shared by the backtests: bar calendar, fills, costs and performance figures.

:func:`~quantify.analytics.backtest_pairs` and
:func:`~quantify.analytics.carry_backtest` both fill at a bar's close, charge
commission and slippage in basis points of the traded notional, and report
Sharpe ratio and drawdown of an equity path in the same way; this module is
that one implementation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from quantify.analytics._results import Result
from quantify.analytics.volatility import DAYS_PER_YEAR  # 365: crypto trades every day

__all__: list[str] = []


@dataclasses.dataclass(frozen=True, repr=False)
class NotedResult(Result):
    """A backtest's result: a non-empty ``note`` (why no trade was made) is shown first, and an
    undefined Sharpe ratio says so. Subclasses declare ``note: str`` and ``sharpe: float``."""

    def _rows(self) -> list[tuple[str, Any]]:
        rows = super()._rows()
        note = getattr(self, "note", "")
        if not note:
            return rows
        rows = [(k, "undefined (no trades)" if k == "sharpe" and math.isnan(v) else v) for k, v in rows]
        return [("note", note), *rows]


def periods_per_year(index: pd.Index, given: float | None) -> float:
    """``given``, or bars per 365-day year from the median spacing of a DatetimeIndex, else 1."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, (int, float)) or not given > 0:
            raise ValueError(f"periods_per_year must be a number > 0, got {given!r}")
        return float(given)
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        step = pd.Series(index).diff().median()
        if isinstance(step, pd.Timedelta) and step > pd.Timedelta(0):
            return pd.Timedelta(days=DAYS_PER_YEAR) / step
    return 1.0  # no calendar: per-bar Sharpe


def close_times(index: pd.Index, bar: Any, func: str) -> pd.DatetimeIndex:
    """When each bar's close price was observed: ``index + bar``.

    ``bar=None`` takes the median spacing of the index (candle closes labelled
    at their bar's open, as ``store.ohlcv`` gives them); ``0`` (or ``"0s"``)
    means the prices are stamped at their own time (ticks, marks).
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{func}: the prices must be indexed by time (a DatetimeIndex) to meet the "
                        f"funding settlements, got {type(index).__name__}")
    idx = index if index.tz is not None else index.tz_localize("UTC")
    if bar is None:
        step = pd.Timedelta(int(np.median(np.diff(idx.asi8))), unit="ns") if len(idx) > 1 else pd.Timedelta(0)
    else:
        if isinstance(bar, bool) or (not isinstance(bar, (str, pd.Timedelta, np.timedelta64, int)) \
                and not hasattr(bar, "total_seconds")):
            raise TypeError(f"bar must be a timedelta, a string such as '1m' or 0, got {bar!r}")
        try:
            step = pd.Timedelta(0) if isinstance(bar, int) and bar == 0 else pd.Timedelta(bar)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bar must be a length such as '1m', '8h' or 0, got {bar!r}") from exc
        if step < pd.Timedelta(0):
            raise ValueError(f"bar must be >= 0, got {bar!r}")
    return pd.DatetimeIndex(idx + step)


def traded_notional(units: list[np.ndarray], prices: list[np.ndarray]) -> np.ndarray:
    """Notional traded at each bar's close: the change in units of every leg times its price."""
    out = np.zeros(len(prices[0]))
    for u, p in zip(units, prices):
        out += np.abs(np.diff(u, prepend=0.0)) * p
    return out


def performance(equity: np.ndarray, capital: float, ppy: float) -> tuple[np.ndarray, float, float, float]:
    """Bar returns, Sharpe ratio (NaN when undefined), max drawdown and total return of an equity path."""
    prev = np.concatenate([[capital], equity[:-1]])
    rets = (equity - prev) / prev
    sd = float(rets.std(ddof=1)) if len(rets) > 1 else math.nan
    sharpe = float(rets.mean() / sd * math.sqrt(ppy)) if sd > 0 else math.nan
    peak = np.maximum.accumulate(np.concatenate([[capital], equity]))[1:]
    drawdown = float(np.max(1.0 - equity / peak)) if len(equity) else 0.0
    total = float(equity[-1] / capital - 1.0) if len(equity) else 0.0
    return rets, sharpe, drawdown, total
