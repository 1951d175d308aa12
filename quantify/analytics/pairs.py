"""The pair z-score: one definition for the backtest, the dashboards and the alerts."""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import pandas as pd

from quantify.analytics import _kernels, _validate
from quantify.analytics._validate import SeriesLike
from quantify.analytics.kalman import kalman_hedge
from quantify.analytics.rolling import rolling_hedge_ratio
from quantify.model.rules import HEDGES

__all__ = ["HEDGES", "PAIR_ZSCORE_COLUMNS", "pair_zscore"]

#: The estimated hedges of :func:`pair_zscore` (a number is a fixed hedge).
#: Columns of :func:`pair_zscore`'s frame, in order.
PAIR_ZSCORE_COLUMNS: Final = ("beta", "alpha", "spread", "z")


def pair_zscore(
    y: SeriesLike,
    x: SeriesLike,
    window: int,
    *,
    hedge: Literal["ols", "kalman"] | float = "ols",
    log: bool = True,
    hedge_window: int | None = None,
    lag: int = 0,
    delta: float | None = None,
    obs_var: float | None = None,
    initial_cov: float | None = None,
) -> pd.DataFrame:
    """z-score of the spread of ``y`` on ``x``, bar by bar.

    Parameters
    ----------
    y, x : Series or array-like
        Bar closes of the two legs, same length (and index, if Series). A
        bar with a NaN gives NaN in every window that holds it; infinite
        values are refused.
    window : int
        Bars of the rolling z-score, at least 2; also of the rolling OLS
        hedge unless ``hedge_window`` is given.
    hedge : {"ols", "kalman"} or float, default "ols"
        ``"ols"``: the rolling OLS of :func:`~quantify.analytics.rolling_hedge_ratio`;
        ``"kalman"``: the causal filter of :func:`~quantify.analytics.kalman_hedge`
        (``delta``, ``obs_var``, ``initial_cov``; warmed up on ``hedge_window``
        bars); a number: that fixed beta, alpha 0.
    log : bool, default True
        Work on log prices (``False``: on the prices themselves).
    hedge_window : int, optional
        Bars of the rolling OLS, or of the Kalman filter's warm-up OLS;
        default ``window``.
    lag : int, default 0
        Use the hedge fitted through bar ``t - lag`` at bar ``t`` (the
        backtest trades at close ``t`` on the ratio known before it: 1).
        A fixed hedge is not lagged.
    delta, obs_var, initial_cov : float, optional
        Kalman parameters, see :func:`~quantify.analytics.kalman_hedge`;
        by default the filter calibrates itself on the warm-up.

    Returns
    -------
    DataFrame
        Columns ``beta``, ``alpha``, ``spread``, ``z`` on ``y``'s index.

    Raises
    ------
    ValueError
        On a bad window, hedge or lag, misaligned or infinite input, no
        complete row, or (with ``log``) a price that is not positive.
        Fewer bars than the hedge and z-score windows need is not an error:
        those rows are NaN (live callers compute on a growing history).

    Notes
    -----
    On closes :math:`Y_t, X_t`, with :math:`y = \\log Y`, :math:`x = \\log X`
    (or the prices, ``log=False``):

    - :math:`\\beta_t, \\alpha_t`: OLS of :math:`y` on :math:`x` (with
      intercept) over the ``hedge_window`` bars ending at :math:`t`, or the
      Kalman state filtered through :math:`t`, or a fixed beta;
    - :math:`s_t = y_t - \\beta_{t-l}x_t - \\alpha_{t-l}` (``l = lag``);
    - :math:`z_t = (s_t - \\bar s_t)/\\hat\\sigma_t`, mean and sample standard
      deviation (``ddof=1``) of the ``window`` spreads ending at :math:`t`.

    With either estimated hedge the first z is at bar ``hedge_window +
    window - 2 + lag`` (0-based): ``2 * window - 1`` bars are needed by
    default. The Kalman hedge exists from the last bar of its warm-up and
    depends on the whole history from the first bar given (a causal
    filter), so two callers agree only when they start on the same bar.

    Where it differs: the spread uses each bar's own hedge (a rolling
    hedge, not statsmodels' single in-sample fit), and the rolling sums are
    exact two-pass ones (see :func:`~quantify.analytics.rolling_hedge_ratio`),
    not pandas' one-pass ``rolling().cov()`` (about 1e-6 relative off on log
    prices).
    """
    ys, xs = _validate.pair(y, x, "pair_zscore", nan="keep")
    w = _validate.check_window(window)
    hw = w if hedge_window is None else _validate.check_window(hedge_window, 3 if hedge == "kalman" else 2,
                                                                 "hedge_window")
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0:
        raise ValueError(f"lag must be an integer >= 0, got {lag!r}")
    if log:
        for name, s in (("y", ys), ("x", xs)):
            _validate.check_positive_prices("pair_zscore (log prices; use log=False)", name, s.to_numpy())
        ys, xs = np.log(ys), np.log(xs)
    if isinstance(hedge, str):
        if hedge == "ols":
            fit = rolling_hedge_ratio(ys, xs, hw)
            beta, alpha = fit["beta"], fit["alpha"]
        elif hedge == "kalman":
            kf = kalman_hedge(ys, xs, delta=delta, obs_var=obs_var, initial_cov=initial_cov,
                              warmup=max(hw, 3))
            beta, alpha = kf.beta, kf.alpha
        else:
            raise ValueError(f"hedge must be one of {', '.join(HEDGES)} or a number, got {hedge!r}")
    elif isinstance(hedge, bool) or not isinstance(hedge, (int, float, np.integer, np.floating)) \
            or not np.isfinite(hedge):
        raise ValueError(f"hedge must be one of {', '.join(HEDGES)} or a finite number, got {hedge!r}")
    else:
        beta = pd.Series(float(hedge), index=ys.index)
        alpha = pd.Series(0.0, index=ys.index)
    if lag and isinstance(hedge, str):
        beta, alpha = beta.shift(lag), alpha.shift(lag)
    s = pd.Series(ys.to_numpy() - beta.to_numpy() * xs.to_numpy() - alpha.to_numpy(),
                  index=ys.index, name="spread")
    return pd.DataFrame({"beta": beta.to_numpy(), "alpha": alpha.to_numpy(), "spread": s.to_numpy(),
                         # the kernel of zscore(): a spread that is NaN throughout (warm-up) is no error here
                         "z": _kernels.rolling_zscore(np.ascontiguousarray(s.to_numpy()), w)}, index=ys.index)
