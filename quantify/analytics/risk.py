"""Value at risk and expected shortfall of a return series, a position, a pair or a portfolio of backtests.

One function, :func:`value_at_risk`, with ``method=`` one of

- ``"historical"``: the empirical quantile of the returns (no model);
- ``"normal"``: a normal distribution with the sample mean and standard deviation;
- ``"student-t"``: a Student-t fitted by maximum likelihood (location, scale and
  degrees of freedom, :func:`scipy.stats.t.fit`);
- ``"cornish-fisher"``: the normal quantile corrected for the sample skewness
  and excess kurtosis (Cornish-Fisher expansion).

Sign convention: VaR and ES are **losses, reported as positive numbers**. A
99 % one-bar VaR of 0.02 says that a bar's return falls below -2 % with
probability 1 %; the ES of 0.03 says that, on those bars, the return is -3 %
on average. For a backtest (its ``pnl`` frame) both are in the currency of
its equity.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd
from scipy import stats

from quantify.analytics import _ledger, _validate

__all__ = ["VAR_METHODS", "VaRResult", "pnl_of", "rolling_var", "value_at_risk"]

VaRMethod = Literal["historical", "normal", "student-t", "cornish-fisher"]
#: The methods of :func:`value_at_risk`.
VAR_METHODS: Final = ("historical", "normal", "student-t", "cornish-fisher")
#: Methods :func:`rolling_var` estimates in one pass (the Student-t needs a fit per window).
_ROLLING_METHODS: Final = ("historical", "normal", "cornish-fisher")
_MIN_OBS: Final = 20


@dataclasses.dataclass(frozen=True, repr=False)
class VaRResult(_ledger.NotedResult):
    """Result of :func:`value_at_risk`.

    Attributes
    ----------
    var : float
        Value at risk: the loss exceeded with probability ``1 - level`` over
        ``horizon`` bars, a positive number (a gain at that quantile is a
        negative VaR).
    es : float
        Expected shortfall (conditional VaR): the mean loss on the bars whose
        loss is at least ``var``; ``es >= var``.
    level : float
        Confidence level, e.g. 0.99.
    horizon : int
        Bars the loss is over.
    method : str
        One of :data:`VAR_METHODS`.
    n : int
        Observations used.
    unit : str
        ``"return"`` (fractions of the position), or ``"currency"`` (a
        position's notional, a backtest's PnL).
    mean, std : float
        Sample mean and standard deviation (ddof 1) of the one-bar returns (or PnL).
    dof : float
        Degrees of freedom of the fitted Student-t (NaN for the other methods).
    skew, excess_kurtosis : float
        Sample skewness and excess kurtosis (biased, as :func:`scipy.stats.skew`
        and :func:`scipy.stats.kurtosis` by default).
    note : str
        Empty, or a warning about the fit, shown first: a parametric method on
        data with many bars exactly 0 (a strategy that is often flat), or a
        Student-t fitted with ``dof <= 1`` (no mean: its ES is infinite).
    """

    _title: ClassVar[str] = "Value at risk"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "var", "es", "level", "horizon", "method", "n", "unit", "mean", "std", "dof", "skew",
        "excess_kurtosis",
    )
    var: float
    es: float
    level: float
    horizon: int
    method: str
    n: int
    unit: str
    mean: float
    std: float
    dof: float = math.nan
    skew: float = math.nan
    excess_kurtosis: float = math.nan
    note: str = ""


def pnl_of(data: Any) -> pd.Series:
    """The per-bar PnL of a backtest result, or the summed PnL of several (a portfolio).

    Parameters
    ----------
    data : BacktestResult, CarryBacktestResult or a sequence of them
        Anything with a ``pnl`` frame holding ``total_pnl`` (the change in
        equity per bar). Several results are summed on the union of their
        bars (a bar a backtest does not have adds 0 to the sum).

    Returns
    -------
    Series
        ``total_pnl`` per bar, in the currency of the equity.
    """
    items = list(data) if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) else [data]
    if not items:
        raise ValueError("pnl_of needs at least one backtest result; got an empty sequence")
    frames = []
    for i, item in enumerate(items):
        pnl = getattr(item, "pnl", None)
        if not isinstance(pnl, pd.DataFrame) or "total_pnl" not in pnl.columns:
            raise TypeError(f"pnl_of: item {i} must be a backtest result with a pnl frame holding "
                            f"total_pnl (BacktestResult, CarryBacktestResult), got {type(item).__name__}")
        frames.append(pnl["total_pnl"].rename(i))
    if len(frames) == 1:
        return frames[0].rename("total_pnl")
    return pd.concat(frames, axis=1).fillna(0.0).sum(axis=1).rename("total_pnl")


def _returns(data: Any, func: str, notional: float | None, minimum: int) -> tuple[pd.Series, str]:
    """The series a risk measure is taken on, and its unit."""
    if hasattr(data, "pnl") or (isinstance(data, Sequence) and data and all(hasattr(d, "pnl") for d in data)):
        if notional is not None:
            raise ValueError(f"{func}: notional scales a return series; a backtest's PnL is in currency already")
        s = _validate.series(pnl_of(data), "pnl", func, nan="drop", minimum=minimum)
        return s, "currency"
    s = _validate.series(data, "returns", func, nan="drop", minimum=minimum)
    if notional is None:
        return s, "return"
    return s * _validate.check_number(notional, "notional", positive=True), "currency"


def _level(level: Any) -> float:
    lv = _validate.check_number(level, "level", positive=True, upper=1.0)
    if not lv > 0.5:
        raise ValueError(f"level must be a confidence level in (0.5, 1), such as 0.95 or 0.99, got {level!r}")
    return lv


def _cornish_fisher_z(z: float, s: float, k: float) -> float:
    """The Cornish-Fisher quantile of a standardised variable with skew ``s``, excess kurtosis ``k``."""
    return z + (z * z - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s * s / 36


def _cornish_fisher_tail_mean(z: float, s: float, k: float, alpha: float) -> float:
    """``E[q(Z) | Z < z]`` with ``q`` the Cornish-Fisher polynomial and ``Z`` standard normal.

    Closed form from the truncated normal moments
    ``M_j = int_{-inf}^{z} x^j phi(x) dx``: ``M_0 = alpha``, ``M_1 = -phi``,
    ``M_2 = alpha - z phi``, ``M_3 = -(z^2 + 2) phi``.
    """
    phi = float(stats.norm.pdf(z))
    m0, m1, m2, m3 = alpha, -phi, alpha - z * phi, -(z * z + 2) * phi
    total = (m1 + (m2 - m0) * s / 6 + (m3 - 3 * m1) * k / 24 - (2 * m3 - 5 * m1) * s * s / 36)
    return total / alpha


def _measure(r: np.ndarray, alpha: float, method: str, horizon: int) -> tuple[float, float, dict[str, float]]:
    """``(var, es, extra fields)`` of returns ``r`` at tail probability ``alpha``."""
    mu, sd = float(r.mean()), float(r.std(ddof=1))
    h = float(horizon)
    extra: dict[str, float] = {}
    if method == "historical":
        x = r if horizon == 1 else np.convolve(r, np.ones(horizon), mode="valid")  # overlapping h-bar sums
        q = float(np.quantile(x, alpha))
        return -q, -float(x[x <= q].mean()), extra
    if sd == 0.0:
        raise ValueError(f"value_at_risk: the returns are constant ({mu!r}); a {method} VaR needs them to vary")
    if method == "normal":
        z = float(stats.norm.ppf(alpha))
        var = -(mu * h + sd * math.sqrt(h) * z)
        es = -(mu * h - sd * math.sqrt(h) * float(stats.norm.pdf(z)) / alpha)
        return var, es, extra
    if method == "student-t":
        dof, loc, scale = (float(v) for v in stats.t.fit(r))
        tq = float(stats.t.ppf(alpha, dof))
        # E[T | T < tq] for a standard t with dof > 1
        tail = -(dof + tq * tq) / (dof - 1) * float(stats.t.pdf(tq, dof)) / alpha if dof > 1 else -math.inf
        extra["dof"] = dof
        return -(loc * h + scale * math.sqrt(h) * tq), -(loc * h + scale * math.sqrt(h) * tail), extra
    d = (r - mu) / float(r.std(ddof=0))  # scipy's biased moments, without its near-constant warning
    s, k = float(np.mean(d**3)), float(np.mean(d**4) - 3.0)
    extra.update(skew=s, excess_kurtosis=k)
    z = float(stats.norm.ppf(alpha))
    zq = _cornish_fisher_z(z, s, k)
    tail = _cornish_fisher_tail_mean(z, s, k, alpha)
    return -(mu * h + sd * math.sqrt(h) * zq), -(mu * h + sd * math.sqrt(h) * tail), extra


def value_at_risk(
    data: Any,
    level: float = 0.99,
    *,
    method: VaRMethod = "historical",
    horizon: int = 1,
    notional: float | None = None,
) -> VaRResult:
    """Value at risk and expected shortfall, losses as positive numbers.

    Parameters
    ----------
    data : Series, array-like, backtest result or a sequence of backtest results
        Bar returns (fractions: 0.01 is 1 %) of an instrument, a spread or a
        strategy; or a :class:`~quantify.analytics.BacktestResult` /
        :class:`~quantify.analytics.CarryBacktestResult` (its per-bar
        ``pnl["total_pnl"]``, in currency); or several of them, a portfolio
        (their PnL summed bar by bar, see :func:`pnl_of`). NaN rows are left out.
    level : float, default 0.99
        Confidence level in (0.5, 1): the tail holds ``1 - level`` of the bars.
    method : {"historical", "normal", "student-t", "cornish-fisher"}
        See the module docstring and Notes.
    horizon : int, default 1
        Bars the loss is over.
    notional : float, optional
        For returns: the position's size, so that VaR and ES are in currency
        (a position's PnL is returns times notional).

    Returns
    -------
    VaRResult

    Raises
    ------
    ValueError
        Fewer than 20 observations, a level outside (0.5, 1), an unknown
        method, constant returns (the parametric methods), or an infinite value.
    TypeError
        If ``data`` is not numeric or a parameter has the wrong type.

    Notes
    -----
    With :math:`\\alpha = 1 - \\text{level}`, :math:`\\mu, \\sigma` the sample
    mean and standard deviation (ddof 1) and :math:`h` the horizon:

    - historical: :math:`\\text{VaR} = -q_\\alpha` with :math:`q_\\alpha` the
      sample quantile (numpy's linear interpolation) of the overlapping
      :math:`h`-bar sums of returns, :math:`\\text{ES} = -\\text{mean}(r \\mid r \\le q_\\alpha)`;
    - normal: :math:`\\text{VaR} = -(\\mu h + \\sigma\\sqrt h\\, z_\\alpha)`,
      :math:`\\text{ES} = -\\mu h + \\sigma\\sqrt h\\, \\varphi(z_\\alpha)/\\alpha`;
    - Student-t with :math:`\\nu` degrees of freedom, location :math:`m` and scale :math:`s`
      fitted by maximum likelihood: :math:`\\text{VaR} = -(m h + s\\sqrt h\\, t_{\\nu,\\alpha})`,
      :math:`\\text{ES} = -m h + s\\sqrt h\\, \\frac{\\nu + t_{\\nu,\\alpha}^2}{\\nu - 1}
      \\frac{f_\\nu(t_{\\nu,\\alpha})}{\\alpha}`;
    - Cornish-Fisher with sample skewness :math:`S` and excess kurtosis :math:`K`:
      :math:`z_{cf} = z + (z^2-1)S/6 + (z^3-3z)K/24 - (2z^3-5z)S^2/36` at :math:`z = z_\\alpha`,
      VaR as the normal one with :math:`z_{cf}`; ES the mean of the same
      polynomial over the normal tail :math:`Z < z_\\alpha` (closed form from
      the truncated normal moments), the "modified ES" of Boudt, Peterson and
      Croux (2008) without their re-ordering correction.

    The parametric methods scale a one-bar distribution to :math:`h` bars by
    :math:`\\mu h` and :math:`\\sigma\\sqrt h` (independent bars; the shape,
    :math:`\\nu` or :math:`S, K`, is kept), the historical one does not
    assume: it reads the :math:`h`-bar sums. Returns are summed, so pass log
    returns for a multi-bar horizon of a price, or PnL (additive) of a backtest.
    """
    if method not in VAR_METHODS:
        raise ValueError(f"method must be one of {', '.join(VAR_METHODS)}, got {method!r}")
    lv = _level(level)
    h = _validate.check_int(horizon, "horizon", 1, what="an integer number of bars")
    s, unit = _returns(data, "value_at_risk", notional, _MIN_OBS + h - 1)
    r = s.to_numpy(dtype=np.float64)
    var, es, extra = _measure(r, 1.0 - lv, method, h)
    return VaRResult(var=var, es=es, level=lv, horizon=h, method=method, n=len(r), unit=unit,
                     mean=float(r.mean()), std=float(r.std(ddof=1)), note=_note(r, method, extra), **extra)


def _note(r: np.ndarray, method: str, extra: dict[str, float]) -> str:
    """Why a parametric estimate deserves care, or ""."""
    notes = []
    zeros = float(np.mean(r == 0.0))
    if method != "historical" and zeros > 0.1:
        notes.append(f"{zeros:.0%} of the bars are exactly 0 (a position often flat): one {method} "
                     "distribution describes that mixture badly; the historical VaR does not assume one")
    if extra.get("dof", math.inf) <= 1.0:
        notes.append(f"the fitted Student-t has {extra['dof']:.3g} <= 1 degrees of freedom: no mean, "
                     "so its ES is infinite")
    return "; ".join(notes)


def rolling_var(
    returns: Any,
    window: int,
    level: float = 0.99,
    *,
    method: VaRMethod = "historical",
) -> pd.Series:
    """One-bar VaR forecasts: at each bar, the VaR of the ``window`` bars before it.

    The forecast for bar :math:`t` uses the returns :math:`t-\\text{window}`
    to :math:`t-1` only (shifted by one bar), so it can be compared with the
    return of bar :math:`t` in :func:`~quantify.analytics.var_backtest`
    without look-ahead. NaN for the first ``window`` bars.

    Parameters
    ----------
    returns : Series or array-like
        Bar returns (or PnL), no NaN.
    window : int
        Bars per estimate, at least 20.
    level : float, default 0.99
    method : {"historical", "normal", "cornish-fisher"}
        As :func:`value_at_risk` (the Student-t fit per window is left out: one
        maximum-likelihood fit per bar is slow).

    Returns
    -------
    Series
        Positive losses, on the input's index, named ``var``.
    """
    if method not in _ROLLING_METHODS:
        raise ValueError(f"rolling_var: method must be one of {', '.join(_ROLLING_METHODS)}, got {method!r}")
    w = _validate.check_window(window, _MIN_OBS)
    lv = _level(level)
    s = _validate.series(returns, "returns", "rolling_var", nan="refuse", minimum=w + 1)
    alpha = 1.0 - lv
    roll = s.rolling(w, min_periods=w)
    if method == "historical":
        out = -roll.quantile(alpha, interpolation="linear")
    else:
        mu, sd = roll.mean(), roll.std(ddof=1)
        z = float(stats.norm.ppf(alpha))
        if method == "cornish-fisher":
            # pandas' rolling skew/kurt are the bias-corrected ones; value_at_risk uses scipy's biased
            # moments, so correct back: same numbers on the same window
            n = float(w)
            g1 = roll.skew() * (n - 2) / math.sqrt(n * (n - 1))
            g2 = (roll.kurt() * (n - 2) * (n - 3) / (n - 1) - 6.0) / (n + 1)
            z = z + (z * z - 1) * g1 / 6 + (z**3 - 3 * z) * g2 / 24 - (2 * z**3 - 5 * z) * g1 * g1 / 36
        out = -(mu + sd * z)
    return out.shift(1).rename("var")
