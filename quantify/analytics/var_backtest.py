"""VaR backtests: Kupiec's proportion of failures, Christoffersen's independence and conditional coverage.

A VaR model is right when its exceptions (bars whose loss exceeds the VaR
forecast for that bar) occur with probability ``1 - level`` (unconditional
coverage, Kupiec 1995) and independently of each other (Christoffersen
1998): a model that is right on average but clusters its exceptions in
turbulent weeks fails the second.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import xlogy

from quantify.analytics import _validate
from quantify.analytics._results import Result

__all__ = ["VaRBacktestResult", "var_backtest"]


@dataclasses.dataclass(frozen=True, repr=False)
class VaRBacktestResult(Result):
    """Result of :func:`var_backtest`.

    Attributes
    ----------
    n : int
        Bars compared (those with a finite forecast).
    exceptions : int
        Bars whose loss exceeded the VaR.
    expected : float
        ``n * (1 - level)``.
    rate : float
        ``exceptions / n``.
    lr_pof, p_pof : float
        Kupiec's likelihood ratio of the proportion of failures, and its
        p-value under :math:`\\chi^2_1`.
    lr_ind, p_ind : float
        Christoffersen's likelihood ratio of independence (first-order
        Markov alternative), :math:`\\chi^2_1`.
    lr_cc, p_cc : float
        Conditional coverage, ``lr_pof + lr_ind``, :math:`\\chi^2_2`.
    n00, n01, n10, n11 : int
        Transitions between consecutive bars (0: no exception, 1: exception).
    level : float
    hits : Series
        1 on the bars with an exception, 0 elsewhere.
    """

    _title: ClassVar[str] = "VaR backtest"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "n", "exceptions", "expected", "rate", "lr_pof", "p_pof", "lr_ind", "p_ind", "lr_cc", "p_cc",
        "n00", "n01", "n10", "n11", "level",
    )
    n: int
    exceptions: int
    expected: float
    rate: float
    lr_pof: float
    p_pof: float
    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float
    n00: int
    n01: int
    n10: int
    n11: int
    level: float
    hits: pd.Series


def _loglik(zeros: float, ones: float, p: float) -> float:
    """Bernoulli log-likelihood of ``zeros`` and ``ones`` at probability ``p`` (0 log 0 = 0)."""
    return float(xlogy(zeros, 1.0 - p) + xlogy(ones, p))


def _tests(hits: np.ndarray, alpha: float) -> dict[str, Any]:
    """Kupiec and Christoffersen statistics of a 0/1 exception series."""
    n = hits.size
    x = int(hits.sum())
    lr_pof = -2.0 * (_loglik(n - x, x, alpha) - _loglik(n - x, x, x / n))
    prev, cur = hits[:-1], hits[1:]
    n00 = int(np.sum((prev == 0) & (cur == 0)))
    n01 = int(np.sum((prev == 0) & (cur == 1)))
    n10 = int(np.sum((prev == 1) & (cur == 0)))
    n11 = int(np.sum((prev == 1) & (cur == 1)))
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n - 1)
    lr_ind = -2.0 * (_loglik(n00 + n10, n01 + n11, pi)
                     - _loglik(n00, n01, pi0) - _loglik(n10, n11, pi1))
    lr_pof, lr_ind = max(lr_pof, 0.0), max(lr_ind, 0.0)  # rounding below 0 on a perfect fit
    lr_cc = lr_pof + lr_ind
    return {
        "n": n, "exceptions": x, "expected": n * alpha, "rate": x / n,
        "lr_pof": lr_pof, "p_pof": float(stats.chi2.sf(lr_pof, 1)),
        "lr_ind": lr_ind, "p_ind": float(stats.chi2.sf(lr_ind, 1)),
        "lr_cc": lr_cc, "p_cc": float(stats.chi2.sf(lr_cc, 2)),
        "n00": n00, "n01": n01, "n10": n10, "n11": n11,
    }


def var_backtest(returns: Any, var: Any, level: float = 0.99) -> VaRBacktestResult:
    """Test VaR forecasts against the returns they forecast.

    Parameters
    ----------
    returns : Series or array-like
        Realised bar returns (or PnL), in the unit of ``var``.
    var : Series, array-like or float
        The VaR forecast for each bar, a positive loss (as
        :func:`~quantify.analytics.value_at_risk` and
        :func:`~quantify.analytics.rolling_var` report it), on the same bars;
        a number is one VaR for every bar. Bars where it is NaN (a rolling
        forecast's warm-up) are left out, with their returns.
    level : float, default 0.99
        The VaR's confidence level: exceptions should have probability ``1 - level``.

    Returns
    -------
    VaRBacktestResult

    Raises
    ------
    ValueError
        Fewer than 2 bars with a forecast, a NaN return, misaligned inputs,
        or a level outside (0.5, 1).

    Notes
    -----
    An exception at bar :math:`t` is :math:`r_t < -\\text{VaR}_t`. With
    :math:`x` exceptions in :math:`n` bars, :math:`\\alpha = 1 - \\text{level}`
    and :math:`\\hat p = x/n`:

    .. math::
        LR_{pof} = -2\\ln\\frac{(1-\\alpha)^{n-x}\\alpha^x}{(1-\\hat p)^{n-x}\\hat p^x}
        \\sim \\chi^2_1

    With :math:`n_{ij}` the transitions from state :math:`i` to :math:`j`
    between consecutive bars, :math:`\\pi_0 = n_{01}/(n_{00}+n_{01})`,
    :math:`\\pi_1 = n_{11}/(n_{10}+n_{11})`, :math:`\\pi = (n_{01}+n_{11})/(n-1)`:

    .. math::
        LR_{ind} = -2\\ln\\frac{(1-\\pi)^{n_{00}+n_{10}}\\pi^{n_{01}+n_{11}}}
        {(1-\\pi_0)^{n_{00}}\\pi_0^{n_{01}}(1-\\pi_1)^{n_{10}}\\pi_1^{n_{11}}} \\sim \\chi^2_1,
        \\qquad LR_{cc} = LR_{pof} + LR_{ind} \\sim \\chi^2_2

    with :math:`0 \\ln 0 = 0`, as MATLAB's ``varbacktest`` computes them
    (the independence test's likelihoods use the :math:`n-1` transitions,
    the proportion of failures all :math:`n` bars).
    """
    lv = _validate.check_number(level, "level", positive=True, upper=1.0)
    if not lv > 0.5:
        raise ValueError(f"level must be a confidence level in (0.5, 1), such as 0.99, got {level!r}")
    if isinstance(var, (int, float, np.integer, np.floating)) and not isinstance(var, bool):
        r = _validate.series(returns, "returns", "var_backtest", nan="refuse", minimum=2)
        v = pd.Series(_validate.check_number(var, "var"), index=r.index)
    else:
        r, v = _validate.pair(returns, var, "var_backtest", nan="keep", minimum=2, names=("returns", "var"))
        if r.isna().any():
            raise ValueError(f"var_backtest: returns has {int(r.isna().sum())} NaN value(s); drop them "
                             "(and the forecasts of those bars) first")
    known = v.notna().to_numpy()
    hits = (r.to_numpy() < -v.to_numpy()) & known
    h = hits[known].astype(np.int64)
    _validate.need("var_backtest", 2, "bars with a VaR forecast", int(h.size))
    out = _tests(h, 1.0 - lv)
    return VaRBacktestResult(level=lv, hits=pd.Series(h, index=r.index[known], name="hits"), **out)

