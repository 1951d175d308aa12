"""Kalman-filter hedge ratio: a time-varying beta and alpha, updated every row."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pandas as pd

from quantify.analytics import _kernels
from quantify.analytics._results import Result
from quantify.analytics.rolling import SeriesLike, _check_pair

__all__ = ["KalmanResult", "kalman_hedge"]


@dataclasses.dataclass(frozen=True, repr=False)
class KalmanResult(Result):
    """Filtered hedge ratio of :func:`kalman_hedge`.

    Attributes
    ----------
    beta, alpha : Series
        Filtered state after observing row t (uses data up to and including t).
    covariance : DataFrame
        Filtered state covariance: columns ``var_beta``, ``cov_beta_alpha``,
        ``var_alpha``.
    forecast : Series
        One-step forecast of y, :math:`\\hat y_t = \\beta_{t-1} x_t + \\alpha_{t-1}`.
    error : Series
        Forecast error :math:`e_t = y_t - \\hat y_t` (Chan's trading signal).
    error_var : Series
        Its variance :math:`Q_t`; ``sqrt(Q_t)`` is Chan's entry band.
    final_beta, final_alpha, final_var_beta, final_var_alpha : float
        Last filtered state and its variances.
    delta, obs_var, initial_cov : float
        The model's parameters.
    log_prices : bool
        Whether the filter ran on log prices.
    """

    _title: ClassVar[str] = "Kalman hedge ratio"

    beta: pd.Series
    alpha: pd.Series
    covariance: pd.DataFrame
    forecast: pd.Series
    error: pd.Series
    error_var: pd.Series
    final_beta: float
    final_alpha: float
    final_var_beta: float
    final_var_alpha: float
    delta: float
    obs_var: float
    initial_cov: float
    log_prices: bool

    @property
    def zscore(self) -> pd.Series:
        """Standardised forecast error :math:`e_t/\\sqrt{Q_t}`."""
        return self.error / np.sqrt(self.error_var)


def kalman_hedge(
    y: SeriesLike,
    x: SeriesLike,
    delta: float = 1e-4,
    obs_var: float = 1e-3,
    *,
    log_prices: bool = False,
    initial_cov: float = 1.0,
) -> KalmanResult:
    """Estimate a time-varying hedge ratio with a Kalman filter.

    Parameters
    ----------
    y, x : Series or array-like
        Prices of the two legs, same length (and index, if Series).
    delta : float, default 1e-4
        In (0, 1): the state's random-walk covariance is
        ``delta / (1 - delta) * I``; larger adapts faster.
    obs_var : float, default 1e-3
        Observation noise variance, > 0 (in squared price units of y, or of
        log y with ``log_prices``).
    log_prices : bool, default False
        Filter ``log(y)`` on ``log(x)``.
    initial_cov : float, default 1.0
        Initial state covariance ``initial_cov * I`` around the initial state
        ``[0, 0]`` (pykalman's default). ``0`` reproduces Chan's code exactly
        (no update at the first row).

    Returns
    -------
    KalmanResult

    Raises
    ------
    ValueError
        If ``delta`` is not in (0, 1), ``obs_var`` not > 0, ``initial_cov``
        negative, or prices not positive with ``log_prices``.

    Notes
    -----
    Chan, *Algorithmic Trading* (2013), ch. 3: state
    :math:`s_t = [\\beta_t, \\alpha_t]'` with :math:`s_t = s_{t-1} + w_t`,
    :math:`w_t \\sim N(0, \\tfrac{\\delta}{1-\\delta} I)`, and observation
    :math:`y_t = \\beta_t x_t + \\alpha_t + v_t`, :math:`v_t \\sim N(0,
    V_e)`. Per row: :math:`R = P + \\tfrac{\\delta}{1-\\delta}I` (from the
    second row), :math:`Q_t = H R H' + V_e` with :math:`H = [x_t, 1]`,
    :math:`K = R H'/Q_t`, :math:`s \\leftarrow s + K e_t`,
    :math:`P = R - K H R`. This is pykalman's ``KalmanFilter(
    transition_matrices=I, observation_matrices=H_t[None], transition_covariance=
    delta/(1-delta) I, observation_covariance=obs_var, initial_state_mean=0,
    initial_state_covariance=initial_cov I).filter(y)``. A row with a NaN in
    y or x makes no update (prediction only; NaN error), as pykalman does
    for masked observations. O(n), one numba loop.
    """
    ys, xs = _check_pair(y, x)
    for name, value in (("delta", delta), ("obs_var", obs_var), ("initial_cov", initial_cov)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if obs_var <= 0.0:
        raise ValueError(f"obs_var must be > 0, got {obs_var!r}")
    if initial_cov < 0.0:
        raise ValueError(f"initial_cov must be >= 0, got {initial_cov!r}")
    yv = ys.to_numpy(dtype=np.float64)
    xv = xs.to_numpy(dtype=np.float64)
    if log_prices:
        if np.any(yv <= 0) or np.any(xv <= 0):
            raise ValueError("log_prices needs positive prices; found a value <= 0")
        yv = np.log(yv)
        xv = np.log(xv)
    q = delta / (1.0 - delta)
    states, covs, yhat, err, qvar = _kernels.kalman_filter(
        np.ascontiguousarray(yv), np.ascontiguousarray(xv), q, float(obs_var), float(initial_cov)
    )
    idx = ys.index
    n = len(idx)
    last = n - 1
    return KalmanResult(
        beta=pd.Series(states[:, 0], index=idx, name="beta"),
        alpha=pd.Series(states[:, 1], index=idx, name="alpha"),
        covariance=pd.DataFrame(
            covs, index=idx, columns=["var_beta", "cov_beta_alpha", "var_alpha"]
        ),
        forecast=pd.Series(yhat, index=idx, name="forecast"),
        error=pd.Series(err, index=idx, name="error"),
        error_var=pd.Series(qvar, index=idx, name="error_var"),
        final_beta=float(states[last, 0]) if n else float("nan"),
        final_alpha=float(states[last, 1]) if n else float("nan"),
        final_var_beta=float(covs[last, 0]) if n else float("nan"),
        final_var_alpha=float(covs[last, 2]) if n else float("nan"),
        delta=float(delta),
        obs_var=float(obs_var),
        initial_cov=float(initial_cov),
        log_prices=log_prices,
    )
