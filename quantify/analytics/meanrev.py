"""Mean-reversion speed of a spread: OU half-life and the Hurst exponent."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from quantify.analytics import _validate
from quantify.analytics._results import Result
from quantify.analytics._validate import SeriesLike
from quantify.analytics.rolling import hedge_ratio

__all__ = ["HalfLifeResult", "HurstResult", "half_life", "hurst"]


@dataclasses.dataclass(frozen=True, repr=False)
class HalfLifeResult(Result):
    """Half-life of mean reversion from an AR(1) fit of the spread.

    Attributes
    ----------
    half_life : float
        In rows (multiply by the bar length for time); ``inf`` when the fit
        shows no mean reversion (``b >= 0``).
    b, a : float
        Slope and intercept of :math:`\\Delta s_t = a + b s_{t-1}`.
    theta : float
        OU speed per row, :math:`-\\ln(1 + b)` (NaN when ``b >= 0``).
    mean : float
        Long-run level :math:`-a/b`.
    nobs : int
    """

    _title: ClassVar[str] = "Half-life (AR(1))"

    half_life: float
    b: float
    a: float
    theta: float
    mean: float
    nobs: int


def half_life(spread: SeriesLike) -> HalfLifeResult:
    """Estimate the half-life of mean reversion of a spread.

    Parameters
    ----------
    spread : Series or array-like
        Regularly sampled, at least 3 finite values; a NaN row is left out
        together with the difference that uses it (no gap is bridged);
        infinite values are refused.

    Returns
    -------
    HalfLifeResult

    Raises
    ------
    ValueError
        With fewer than 3 finite values (or 2 consecutive pairs), an
        infinite value or a constant spread.

    Notes
    -----
    OLS of :math:`\\Delta s_t = a + b\\,s_{t-1} + \\varepsilon_t`, then
    :math:`h = -\\ln 2 / \\ln(1 + b)`: the AR(1) coefficient is
    :math:`\\phi = 1 + b` and an OU process sampled each row has
    :math:`\\phi = e^{-\\theta}`. Chan (2013) uses the first-order
    approximation :math:`-\\ln 2 / b`, which is close for small ``|b|``
    and ours is exact for the discrete AR(1). ``b >= 0`` gives ``inf``;
    ``b <= -1`` (overshooting, not an OU) gives NaN.
    """
    s = _validate.series(spread, "spread", "half_life", nan="keep", minimum=3).to_numpy()
    _validate.check_not_constant("half_life", "spread", s, why="there is no reversion to measure")
    lag = s[:-1]
    diff = np.diff(s)
    pairs = int(np.count_nonzero(~(np.isnan(lag) | np.isnan(diff))))
    _validate.need("half_life", 2, "pairs of consecutive finite values of spread", pairs)
    fit = hedge_ratio(diff, lag)
    b, a = fit.beta, fit.alpha
    if b >= 0:
        hl, theta = float("inf"), float("nan")
    elif b <= -1:
        hl, theta = float("nan"), float("nan")
    else:
        theta = -float(np.log1p(b))
        hl = float(np.log(2.0) / theta)
    return HalfLifeResult(
        half_life=hl, b=b, a=a, theta=theta, mean=-a / b if b else float("nan"), nobs=fit.nobs
    )


@dataclasses.dataclass(frozen=True, repr=False)
class HurstResult(Result):
    """Hurst exponent by the variance-of-lags method.

    Attributes
    ----------
    hurst : float
        About 0.5 for a random walk, below for mean reversion, above for trend.
    intercept : float
        Of the log-log fit.
    lags : ndarray
        Lags used.
    tau : ndarray
        Standard deviation of the lag-``k`` differences, per lag.
    """

    _title: ClassVar[str] = "Hurst exponent (variance of lags)"

    hurst: float
    intercept: float
    lags: np.ndarray
    tau: np.ndarray


def hurst(series: SeriesLike, max_lag: int = 100, min_lag: int = 2) -> HurstResult:
    """Estimate the Hurst exponent of a price or spread series.

    Parameters
    ----------
    series : Series or array-like
        Levels (prices, log prices, a spread), not returns. NaNs are dropped.
    max_lag, min_lag : int, default 100 and 2
        Lags ``min_lag .. max_lag - 1``; ``max_lag`` is capped at half the
        length.

    Returns
    -------
    HurstResult

    Raises
    ------
    ValueError
        With bad lags, an infinite value, or too short a series (fewer than
        3 lags: ``2 * (min_lag + 3)`` finite values).

    Notes
    -----
    For a self-similar process :math:`\\mathrm{std}(s_{t+k} - s_t) \\propto
    k^H`; :math:`H` is the OLS slope of :math:`\\log\\tau_k` on
    :math:`\\log k`. This is the variance-of-lags estimator common in pairs
    trading notes, not Mandelbrot's rescaled range (R/S); it is less biased on
    short series but, like R/S, only an indication: test stationarity with
    ADF/Engle-Granger.
    """
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 3:
        raise ValueError(f"max_lag must be an integer >= 3, got {max_lag!r}")
    if isinstance(min_lag, bool) or not isinstance(min_lag, (int, np.integer)) or min_lag < 1:
        raise ValueError(f"min_lag must be an integer >= 1, got {min_lag!r}")
    if max_lag < min_lag + 3:
        raise ValueError(f"max_lag must be >= min_lag + 3 = {min_lag + 3} to give 3 lags, got {max_lag!r}")
    s = _validate.series(series, "series", "hurst", nan="drop").to_numpy()
    top = min(int(max_lag), len(s) // 2)
    lags = np.arange(int(min_lag), top)
    if len(lags) < 3:
        raise ValueError(
            f"hurst needs at least {2 * (int(min_lag) + 3)} finite observations of series "
            f"for 3 lags from min_lag={min_lag}; got {len(s)}"
        )
    tau = np.array([np.std(s[k:] - s[:-k]) for k in lags])
    if np.any(tau <= 0):
        raise ValueError("series is constant over some lag: the Hurst exponent is undefined")
    fit = hedge_ratio(np.log(tau), np.log(lags.astype(np.float64)))
    return HurstResult(hurst=fit.beta, intercept=fit.alpha, lags=lags, tau=tau)
