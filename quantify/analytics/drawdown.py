"""Drawdown analytics of an equity curve: maximum drawdown, its duration, recovery, underwater curve, Calmar.

The drawdown at a bar is the fall from the running peak of equity, as a
positive fraction of that peak: ``1 - equity / running_max(equity)``. The
``max_drawdown`` of :func:`~quantify.analytics.backtest_pairs` and
:func:`~quantify.analytics.carry_backtest` is this module's number on their
equity (the same running peak, starting from ``capital``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantify.analytics import _ledger, _validate
from quantify.analytics._plotting import bqplot, time_axis
from quantify.analytics._results import Result
from quantify.analytics.backtest import backtest_pairs

__all__ = ["DrawdownResult", "drawdown", "paper_equity", "trailing_drawdown", "underwater"]


@dataclasses.dataclass(frozen=True, repr=False)
class DrawdownResult(Result):
    """Result of :func:`drawdown`.

    Attributes
    ----------
    max_drawdown : float
        Largest fall from a running peak, a positive fraction of the peak (0.2: 20 %).
    peak, trough : Timestamp or int
        Index labels of the peak before the largest fall and of its lowest point.
    recovery : Timestamp, int or None
        First label after the trough where equity is back at the peak's level;
        None if it never recovered within the data.
    duration : Timedelta, int or None
        Peak to recovery (the whole episode under water); None if not recovered.
    time_to_recovery : Timedelta, int or None
        Trough to recovery; None if not recovered.
    longest_underwater : Timedelta or int
        The longest stretch between a peak and the next new peak (or the end of the data).
    calmar : float
        Annualised return over ``max_drawdown`` (NaN with no drawdown).
    annual_return : float
        Compound annual growth of equity, ``(E_end / E_0) ** (periods_per_year / bars) - 1``.
    periods_per_year : float
    equity : Series
    underwater : Series
        Drawdown at every bar (0 at a new peak), positive fractions.
    """

    _title: ClassVar[str] = "Drawdown"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "max_drawdown", "peak", "trough", "recovery", "duration", "time_to_recovery",
        "longest_underwater", "calmar", "annual_return", "periods_per_year",
    )
    max_drawdown: float
    peak: Any
    trough: Any
    recovery: Any
    duration: Any
    time_to_recovery: Any
    longest_underwater: Any
    calmar: float
    annual_return: float
    periods_per_year: float
    equity: pd.Series
    underwater: pd.Series

    def plot(self) -> Any:
        """Equity (top) and the underwater curve in % (bottom) as a bqplot Figure.

        Raises
        ------
        ImportError
            If bqplot is not installed (``pip install bqplot``).
        """
        bq = bqplot("DrawdownResult.plot")
        xs, xvals, xlabel = time_axis(bq, self.equity.index)
        eq_scale, dd_scale = bq.LinearScale(), bq.LinearScale()
        equity = bq.Lines(x=xvals, y=self.equity.to_numpy(), scales={"x": xs, "y": eq_scale},
                          colors=["#1f77b4"], labels=["equity"], display_legend=True)
        under = bq.Lines(x=xvals, y=-100.0 * self.underwater.to_numpy(), scales={"x": xs, "y": dd_scale},
                         colors=["#d62728"], fill="bottom", fill_opacities=[0.3], labels=["drawdown %"],
                         display_legend=True)
        axes = [
            bq.Axis(scale=xs, label=xlabel),
            bq.Axis(scale=eq_scale, side="left", label="equity"),
            bq.Axis(scale=dd_scale, side="right", label="drawdown %", grid_lines="none"),
        ]
        return bq.Figure(marks=[under, equity], axes=axes,
                         title=f"{self._title}: max {100 * self.max_drawdown:.2f} %")


def underwater(equity: Any) -> pd.Series:
    """The drawdown at every bar: ``1 - equity / running peak``, positive fractions (0 at a peak).

    Parameters
    ----------
    equity : Series or array-like
        Account value (or a price: the equity of one unit held), > 0; NaN
        rows are left out.

    Returns
    -------
    Series
        On the equity's (NaN-free) index, named ``underwater``.
    """
    s = _equity(equity, "underwater")
    v = s.to_numpy()
    return pd.Series(1.0 - v / np.maximum.accumulate(v), index=s.index, name="underwater")


def _equity(equity: Any, func: str) -> pd.Series:
    s = _validate.series(equity, "equity", func, nan="drop", minimum=2)
    v = s.to_numpy()
    if not (v > 0).all():
        bad = int(np.flatnonzero(~(v > 0))[0])
        raise ValueError(f"{func}: equity must be > 0 (a drawdown is a fraction of the peak); "
                         f"got {v[bad]!r} at row {bad}")
    return s


def _span(index: pd.Index, a: int, b: int) -> Any:
    """The time (or bars, without a DatetimeIndex) from row ``a`` to row ``b``."""
    if isinstance(index, pd.DatetimeIndex):
        return index[b] - index[a]
    return int(b - a)


def _label(index: pd.Index, i: int) -> Any:
    return index[i] if isinstance(index, pd.DatetimeIndex) else int(i)


def drawdown(equity: Any, *, periods_per_year: float | None = None) -> DrawdownResult:
    """Maximum drawdown, its duration and recovery, the underwater curve and the Calmar ratio.

    Parameters
    ----------
    equity : Series, array-like or a backtest result
        Account value over time (> 0), or a result with an ``equity`` series
        (:class:`~quantify.analytics.BacktestResult`,
        :class:`~quantify.analytics.CarryBacktestResult`). NaN rows are left out.
    periods_per_year : float, optional
        For the annual return of the Calmar ratio. Default: from the median
        bar spacing of a DatetimeIndex over a 365-day year, else 1.

    Returns
    -------
    DrawdownResult
        Times (``peak``, ``duration``, ...) are index labels and Timedeltas
        with a DatetimeIndex, row numbers and bar counts without.

    Raises
    ------
    ValueError
        Fewer than 2 finite values, a value <= 0, or an infinite value.

    Notes
    -----
    :math:`D_t = 1 - E_t / \\max_{s \\le t} E_s`; ``max_drawdown`` is
    :math:`\\max_t D_t`, its trough the first bar reaching it and its peak the
    last running maximum before that. Recovery is the first bar after the
    trough with :math:`E_t \\ge E_{peak}` (:math:`D_t = 0`). Calmar is
    :math:`\\text{CAGR} / \\text{max\\_drawdown}` over the whole sample (not
    the usual trailing 36 months: a research sample is often days of bars).
    """
    if hasattr(equity, "equity") and isinstance(equity.equity, pd.Series):
        equity = equity.equity
    s = _equity(equity, "drawdown")
    ppy = _ledger.periods_per_year(s.index, periods_per_year)
    v = s.to_numpy()
    running = np.maximum.accumulate(v)
    dd = 1.0 - v / running
    idx = s.index
    trough = int(np.argmax(dd))
    mdd = float(dd[trough])
    at_peak = np.flatnonzero(dd[: trough + 1] == 0.0)
    peak = int(at_peak[-1]) if at_peak.size else 0
    later = np.flatnonzero(dd[trough:] == 0.0) if mdd > 0 else np.empty(0, dtype=int)
    rec = int(trough + later[0]) if later.size else None
    # longest stretch between consecutive new peaks (or from the last peak to the end)
    peaks = np.flatnonzero(dd == 0.0)
    ends = np.append(peaks[1:], len(v) - 1)
    gaps = ends - peaks
    j = int(np.argmax(gaps))
    longest = _span(idx, int(peaks[j]), int(ends[j]))
    log_growth = ppy / (len(v) - 1) * math.log(v[-1] / v[0])
    annual = math.expm1(log_growth) if log_growth < 700 else math.inf
    calmar = annual / mdd if mdd > 0 else math.nan
    return DrawdownResult(
        max_drawdown=mdd,
        peak=_label(idx, peak),
        trough=_label(idx, trough),
        recovery=None if rec is None else _label(idx, rec),
        duration=None if rec is None else _span(idx, peak, rec),
        time_to_recovery=None if rec is None else _span(idx, trough, rec),
        longest_underwater=longest,
        calmar=float(calmar),
        annual_return=annual,
        periods_per_year=ppy,
        equity=s.rename("equity"),
        underwater=pd.Series(dd, index=idx, name="underwater"),
    )


def paper_equity(
    y: Any,
    x: Any = None,
    *,
    window: int = 120,
    entry: float = 2.0,
    exit: float = 0.5,
    capital: float = 1.0,
) -> pd.Series:
    """Equity of a paper position on bar closes: one instrument held long, or a pairs strategy.

    The position a ``drawdown`` alert rule and the
    :class:`~quantify.widgets.DrawdownMonitor` watch, so both compute the
    same number from the same closes.

    Parameters
    ----------
    y : Series
        Closes of the instrument (or of the pair's ``y`` leg), > 0, no NaN.
    x : Series, optional
        Closes of the pair's ``x`` leg, on ``y``'s index. Without it the
        position is ``capital / y[0]`` units of ``y`` bought at the first
        close: equity ``capital * y / y[0]``.
    window : int, default 120
        With ``x``: the bars of the rolling OLS hedge and of the z-score of
        :func:`~quantify.analytics.backtest_pairs` (``hedge_window = window``).
    entry, exit : float, default 2.0 and 0.5
        With ``x``: the backtest's z-score bands.
    capital : float, default 1.0

    Returns
    -------
    Series
        Equity per bar, named ``equity``.

    Raises
    ------
    ValueError
        Too few bars (a pair needs ``2 * window``), a price <= 0 or NaN.
    """
    cap = _validate.check_number(capital, "capital", positive=True)
    if x is None:
        s = _validate.series(y, "y", "paper_equity", nan="refuse", minimum=2)
        v = s.to_numpy()
        _validate.check_positive_prices("paper_equity", "y", v)
        return (cap * s / v[0]).rename("equity")
    w = _validate.check_window(window, 3)
    bt = backtest_pairs(y, x, window=w, hedge_window=w, entry=entry, exit=exit, capital=cap)
    return bt.equity


def trailing_drawdown(equity: Any, window: int) -> pd.Series:
    """Drawdown from the highest equity of the last ``window`` bars (this bar included), positive fractions.

    ``1 - E_t / max(E_{t-window+1}, ..., E_t)``, over fewer bars at the start:
    the value a ``drawdown`` alert rule compares (times 100) with its level.
    """
    s = _equity(equity, "trailing_drawdown")
    w = _validate.check_window(window, 1)
    return (1.0 - s / s.rolling(w, min_periods=1).max()).rename("drawdown")
