"""Pairs statistics: hedge ratio, spread, z-score, correlation, static and rolling.

The rolling functions are O(n) numba kernels that stay exact on raw prices;
see :func:`rolling_hedge_ratio` for why that is not a given. Inputs are
checked by :mod:`quantify.analytics._validate`: :func:`hedge_ratio` drops rows
with a NaN; the rolling functions keep every row and are NaN where a window
holds one (and through the warm-up); infinite values are refused.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pandas as pd

from quantify.analytics import _kernels, _validate
from quantify.analytics._results import Result
from quantify.analytics._validate import SeriesLike

__all__ = [
    "HedgeRatioResult",
    "hedge_ratio",
    "rolling_corr",
    "rolling_hedge_ratio",
    "spread",
    "zscore",
]

def _arr(s: pd.Series) -> np.ndarray:
    return np.ascontiguousarray(s.to_numpy(dtype=np.float64))


def _centred_moments(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float]:
    """Means and centred sums of squares, two-pass with the mean's correction term."""
    mx = float(x.mean())
    my = float(y.mean())
    mx += float((x - mx).mean())
    my += float((y - my).mean())
    dx = x - mx
    dy = y - my
    return mx, my, float(dx @ dx), float(dy @ dy), float(dx @ dy)


@dataclasses.dataclass(frozen=True, repr=False)
class HedgeRatioResult(Result):
    """OLS hedge ratio of ``y`` on ``x``: ``y = alpha + beta * x + residual``.

    Attributes
    ----------
    beta, alpha : float
        Slope and intercept (``alpha`` is 0 without intercept).
    r_squared : float
        Centred R² with an intercept, uncentred without (as statsmodels).
    nobs : int
        Rows used (rows with a NaN in either series are dropped).
    residuals : Series
        ``y - alpha - beta * x`` on the input index (NaN where dropped).
    """

    _title: ClassVar[str] = "Hedge ratio (OLS)"

    beta: float
    alpha: float
    r_squared: float
    nobs: int
    residuals: pd.Series


def hedge_ratio(y: SeriesLike, x: SeriesLike, intercept: bool = True) -> HedgeRatioResult:
    """Estimate the OLS hedge ratio of ``y`` on ``x``.

    Parameters
    ----------
    y, x : Series or array-like
        Prices (or log prices) of the two legs, same length; two Series must
        share their index.
    intercept : bool, default True
        Fit ``alpha`` too; otherwise regress through the origin.

    Returns
    -------
    HedgeRatioResult

    Raises
    ------
    ValueError
        On different lengths or indexes, an infinite value, fewer than 2
        complete rows, or a constant ``x``.
    TypeError
        If an input is not one-dimensional and numeric.

    Notes
    -----
    With an intercept, :math:`\\beta = S_{xy}/S_{xx}` and
    :math:`\\alpha = \\bar y - \\beta \\bar x` where the sums are centred on
    the means, computed in two passes; without, :math:`\\beta = \\sum xy /
    \\sum x^2`. This equals statsmodels ``OLS(y, add_constant(x))`` (which
    solves by pseudo-inverse) to about 1e-10 relative, and is better
    conditioned on raw prices. Rows with a NaN in either series are dropped,
    like statsmodels' ``missing="drop"``.
    """
    ys, xs = _validate.pair(y, x, "hedge_ratio", nan="drop", minimum=2)
    ok = ys.notna() & xs.notna()
    yv = ys.to_numpy()[ok.to_numpy()]
    xv = xs.to_numpy()[ok.to_numpy()]
    n = len(yv)
    if intercept:
        mx, my, sxx, syy, sxy = _centred_moments(xv, yv)
        if sxx == 0.0:
            raise ValueError(f"hedge_ratio: x is constant ({float(xv[0])!r}): the hedge ratio is undefined")
        beta = sxy / sxx
        alpha = my - beta * mx
        r2 = sxy * sxy / (sxx * syy) if syy > 0 else np.nan
    else:
        sxx = float(np.dot(xv, xv))
        if sxx == 0.0:
            raise ValueError("hedge_ratio: x is all zero: the hedge ratio is undefined")
        beta = float(np.dot(xv, yv)) / sxx
        alpha = 0.0
        resid = yv - beta * xv
        r2 = 1.0 - float(np.dot(resid, resid)) / float(np.dot(yv, yv))
    residuals = ys - alpha - beta * xs
    return HedgeRatioResult(
        beta=float(beta), alpha=float(alpha), r_squared=float(r2), nobs=n, residuals=residuals
    )


def rolling_hedge_ratio(y: SeriesLike, x: SeriesLike, window: int) -> pd.DataFrame:
    """Rolling OLS hedge ratio over the last ``window`` rows.

    Parameters
    ----------
    y, x : Series or array-like
        The two legs, same length (and index, if Series).
    window : int
        Rows per regression, at least 2.

    Returns
    -------
    DataFrame
        Columns ``beta`` and ``alpha`` on ``y``'s index. The first
        ``window - 1`` rows are NaN (all of them when the input is shorter
        than ``window``), and so is every row whose window holds a NaN in
        either input or a constant ``x``.

    Raises
    ------
    ValueError
        On a bad window, different lengths or indexes, an infinite value, or
        no row where both inputs are finite.
    TypeError
        If an input is not one-dimensional and numeric.

    Notes
    -----
    Per window, :math:`\\beta = S_{xy}/S_{xx}`, :math:`\\alpha = \\bar y -
    \\beta\\bar x` with centred sums, as statsmodels ``RollingOLS(y,
    add_constant(x), window).fit(params_only=True)``. Unlike statsmodels and
    pandas, which keep one-pass sums of raw squares and so lose about 1e-6
    relative on prices near 60,000 (7.5e-5 on log prices), the kernel keeps
    sums of deviations from a local reference value and recomputes them
    exactly (two-pass) every ``window`` rows: about 1e-13 relative, O(n).
    A window with a NaN is NaN, as pandas' ``min_periods=window``
    (statsmodels' default ``missing="drop"`` instead fits the remaining rows
    of such a window, and its ``missing="skip"`` goes wrong after the first
    NaN window in statsmodels 0.15).
    """
    ys, xs = _validate.pair(y, x, "rolling_hedge_ratio", nan="keep")
    w = _validate.check_window(window)
    beta, alpha = _kernels.rolling_pair(_arr(xs), _arr(ys), w, _kernels.PAIR_BETA)
    return pd.DataFrame({"beta": beta, "alpha": alpha}, index=ys.index)


def spread(
    y: SeriesLike, x: SeriesLike, beta: float | pd.Series, alpha: float | pd.Series = 0.0
) -> pd.Series:
    """Return the spread ``y - beta * x - alpha``.

    Parameters
    ----------
    y, x : Series or array-like
        The two legs.
    beta, alpha : float or Series
        Hedge ratio and intercept, constant or per row (a Series on the same
        index, e.g. a column of :func:`rolling_hedge_ratio`; no look-ahead is
        added or removed: shift it yourself to trade on yesterday's ratio).

    Returns
    -------
    Series
    """
    ys, xs = _validate.pair(y, x, "spread", nan="keep")
    coefs = []
    for name, value in (("beta", beta), ("alpha", alpha)):
        if isinstance(value, pd.Series):
            if len(value) != len(ys) or not value.index.equals(ys.index):
                raise ValueError(f"{name} must share the index of y, got {len(value)} rows")
            v = _validate.as_series(value, name).to_numpy()
            _validate.check_values("spread", name, v, "keep")
            coefs.append(v)
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            coefs.append(_validate.check_number(value, name))
        else:
            raise TypeError(f"{name} must be a number or a Series, got {type(value).__name__}")
    out = ys.to_numpy() - coefs[0] * xs.to_numpy() - coefs[1]
    return pd.Series(out, index=ys.index, name="spread")


def zscore(series: SeriesLike, window: int) -> pd.Series:
    """Rolling z-score ``(s - mean) / std`` over the last ``window`` rows.

    Parameters
    ----------
    series : Series or array-like
    window : int
        At least 2.

    Returns
    -------
    Series
        NaN for the first ``window - 1`` rows, windows holding a NaN, and
        constant windows.

    Raises
    ------
    ValueError
        On a bad window, an infinite value, or no finite value at all.

    Notes
    -----
    :math:`z_t = (s_t - \\bar s_t)/\\hat\\sigma_t` with the sample standard
    deviation (``ddof=1``) of the window ending at and including ``t``, as
    ``(s - s.rolling(w).mean()) / s.rolling(w).std()``. A constant window
    gives NaN here (pandas gives NaN or ±inf depending on rounding).
    """
    s = _validate.series(series, "series", "zscore", nan="keep")
    w = _validate.check_window(window)
    z = _kernels.rolling_zscore(_arr(s), w)
    return pd.Series(z, index=s.index, name=s.name)


def rolling_corr(a: SeriesLike, b: SeriesLike, window: int) -> pd.Series:
    """Rolling Pearson correlation over the last ``window`` rows.

    Parameters
    ----------
    a, b : Series or array-like
        Same length (and index, if Series). Pass returns, not prices, for a
        meaningful correlation of two assets.
    window : int
        At least 2.

    Returns
    -------
    Series
        NaN for the first ``window - 1`` rows, windows with a NaN in either
        input, and windows where either input is constant.

    Raises
    ------
    ValueError
        On a bad window, different lengths or indexes, an infinite value, or
        no row where both inputs are finite.

    Notes
    -----
    :math:`\\rho = S_{ab}/\\sqrt{S_{aa}S_{bb}}` with centred sums, as
    ``a.rolling(w).corr(b)``, but exact to ~1e-13 where pandas' one-pass sums
    lose ~2e-7 on prices near 60,000.
    """
    sa, sb = _validate.pair(a, b, "rolling_corr", nan="keep", names=("a", "b"))
    w = _validate.check_window(window)
    rho, _ = _kernels.rolling_pair(_arr(sa), _arr(sb), w, _kernels.PAIR_CORR)
    return pd.Series(rho, index=sa.index)
