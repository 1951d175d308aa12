"""Numba kernels behind the rolling and Kalman functions.

Private: the public modules validate and convert their inputs, then call these
with contiguous float64/int64 arrays. Every kernel is O(n) and compiled with
``cache=True`` so that a fresh process pays the compile cost once per machine.
"""

from __future__ import annotations

import numba
import numpy as np

__all__: list[str] = []

# --------------------------------------------------------------------------
# Rolling moments with shifted sums.
#
# Sums of raw values cancel catastrophically on prices near 60,000 (var is a
# difference of two ~3.6e9*n numbers). We keep sums of (v - ref) where ref is
# the first value of the current block of `window` steps, and recompute the
# sums exactly (two-pass, centred on the window mean) at every block start, so
# rounding errors cannot accumulate over more than `window` updates.
# --------------------------------------------------------------------------


@numba.njit(cache=True)
def _shifted_sums(
    x: np.ndarray, y: np.ndarray, lo: int, hi: int, bivariate: bool
) -> tuple[float, float, float, float, float, float, float]:
    """Reference values (two-pass means) and sums of deviations from them."""
    n = hi - lo
    rx = 0.0
    ry = 0.0
    for i in range(lo, hi):
        rx += x[i]
        if bivariate:
            ry += y[i]
    rx /= n
    ry /= n
    s_x = 0.0
    s_y = 0.0
    s_xx = 0.0
    s_yy = 0.0
    s_xy = 0.0
    for i in range(lo, hi):
        dx = x[i] - rx
        s_x += dx
        s_xx += dx * dx
        if bivariate:
            dy = y[i] - ry
            s_y += dy
            s_yy += dy * dy
            s_xy += dx * dy
    return rx, ry, s_x, s_y, s_xx, s_yy, s_xy


#: ``rolling_pair`` outputs: hedge ratio (beta of y on x, alpha) or correlation.
PAIR_BETA = 0
PAIR_CORR = 1


@numba.njit(cache=True)
def rolling_pair(
    x: np.ndarray, y: np.ndarray, window: int, kind: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling OLS of y on x (``kind=PAIR_BETA``: beta, alpha) or rolling
    correlation (``kind=PAIR_CORR``: corr, and an empty second array).

    NaN for the first ``window - 1`` rows, for every window holding a NaN in
    either input (pandas ``min_periods=window``), and where a variance is 0.
    Shifted sums around the last exact window mean, recomputed two-pass every
    ``window`` rows.
    """
    n = x.shape[0]
    out1 = np.empty(n)
    out2 = np.empty(n if kind == PAIR_BETA else 0)
    w = float(window)
    last_nan = -1  # last index holding a NaN: windows reaching it are NaN
    rx = 0.0
    ry = 0.0
    s_x = 0.0
    s_y = 0.0
    s_xx = 0.0
    s_yy = 0.0
    s_xy = 0.0
    valid = False  # do the shifted sums describe the window ending at i - 1?
    age = 0  # updates since the last exact recompute
    for i in range(n):
        out1[i] = np.nan
        if kind == PAIR_BETA:
            out2[i] = np.nan
        if np.isnan(x[i]) or np.isnan(y[i]):
            last_nan = i
        if i < window - 1:
            continue
        lo = i - window + 1
        if last_nan >= lo:
            valid = False
            continue
        if valid and age < window:
            dx_in = x[i] - rx
            dx_out = x[lo - 1] - rx
            dy_in = y[i] - ry
            dy_out = y[lo - 1] - ry
            s_x += dx_in - dx_out
            s_y += dy_in - dy_out
            s_xx += dx_in * dx_in - dx_out * dx_out
            s_yy += dy_in * dy_in - dy_out * dy_out
            s_xy += dx_in * dy_in - dx_out * dy_out
            age += 1
        else:
            rx, ry, s_x, s_y, s_xx, s_yy, s_xy = _shifted_sums(x, y, lo, i + 1, True)
            valid = True
            age = 0
        sxx = s_xx - s_x * s_x / w
        sxy = s_xy - s_x * s_y / w
        if kind == PAIR_BETA:
            if sxx > 0.0:
                beta = sxy / sxx
                out1[i] = beta
                out2[i] = ry + s_y / w - beta * (rx + s_x / w)
        else:
            syy = s_yy - s_y * s_y / w
            if sxx > 0.0 and syy > 0.0:
                r = sxy / np.sqrt(sxx * syy)
                out1[i] = min(1.0, max(-1.0, r))
    return out1, out2


@numba.njit(cache=True)
def kalman_filter(
    y: np.ndarray, x: np.ndarray, q: float, obs_var: float, p0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kalman filter of y_t = beta_t x_t + alpha_t + v_t, state a random walk.

    State ``[beta, alpha]``, transition covariance ``q * I``, initial state 0
    with covariance ``p0 * I``. Returns filtered states ``(n, 2)``, filtered
    covariances ``(n, 3)`` as ``[P_bb, P_ba, P_aa]``, one-step forecasts of y,
    forecast errors and their variances. A NaN observation skips the update
    (prediction only), as pykalman does for masked observations.
    """
    n = y.shape[0]
    states = np.empty((n, 2))
    covs = np.empty((n, 3))
    yhat = np.empty(n)
    err = np.empty(n)
    qvar = np.empty(n)
    b = 0.0
    a = 0.0
    pbb = p0
    pba = 0.0
    paa = p0
    for t in range(n):
        if t > 0:
            # predict: the state is a random walk
            pbb += q
            paa += q
        xt = x[t]
        f = b * xt + a
        # H P H' + R with H = [x_t, 1]
        hb = pbb * xt + pba
        ha = pba * xt + paa
        s = hb * xt + ha + obs_var
        yhat[t] = f
        qvar[t] = s
        if np.isnan(y[t]) or np.isnan(xt):
            err[t] = np.nan
        else:
            e = y[t] - f
            err[t] = e
            kb = hb / s
            ka = ha / s
            b += kb * e
            a += ka * e
            # P - K H P, written out for the symmetric 2x2 case
            pbb -= kb * hb
            pba -= kb * ha
            paa -= ka * ha
        states[t, 0] = b
        states[t, 1] = a
        covs[t, 0] = pbb
        covs[t, 1] = pba
        covs[t, 2] = paa
    return states, covs, yhat, err, qvar


@numba.njit(cache=True)
def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling ``(x - mean) / std`` (ddof=1), with the shifted sums of
    :func:`rolling_pair`; NaN for warm-up rows, NaN windows and constant
    windows."""
    n = x.shape[0]
    out = np.empty(n)
    w = float(window)
    last_nan = -1
    rx = 0.0
    s_x = 0.0
    s_xx = 0.0
    valid = False
    age = 0
    for i in range(n):
        out[i] = np.nan
        if np.isnan(x[i]):
            last_nan = i
        if i < window - 1:
            continue
        lo = i - window + 1
        if last_nan >= lo:
            valid = False
            continue
        if valid and age < window:
            d_in = x[i] - rx
            d_out = x[lo - 1] - rx
            s_x += d_in - d_out
            s_xx += d_in * d_in - d_out * d_out
            age += 1
        else:
            rx, _, s_x, _, s_xx, _, _ = _shifted_sums(x, x, lo, i + 1, False)
            valid = True
            age = 0
        var = (s_xx - s_x * s_x / w) / (w - 1.0)
        if var > 0.0:
            out[i] = (x[i] - rx - s_x / w) / np.sqrt(var)
    return out


@numba.njit(cache=True)
def kalman_grid(
    y: np.ndarray, x: np.ndarray, start: int, s0: np.ndarray, p0: np.ndarray, qs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Filters of y_t = beta_t x_t + alpha_t + v_t, Var v_t = 1, for a grid of state noises.

    Every filter starts at row ``start - 1`` from state ``s0`` (``[beta, alpha]``)
    with covariance ``p0`` (``[P_bb, P_ba, P_aa]``); filter ``g`` adds
    ``qs[g] = [Q_bb, Q_ba, Q_aa]`` per row. Units are those of the observation
    variance (the caller scales), so each filter's log-likelihood is the
    concentrated one, :math:`-\\tfrac m2 \\log(\\sum e^2/f / m) - \\tfrac12
    \\sum\\log f` over its ``m`` updates. At each row the reported state is
    that of the filter with the highest log-likelihood so far (the first on a
    tie), and the forecast that of the filter chosen at the row before: both
    use only rows up to their own. Rows before ``start - 1`` are NaN; a NaN
    observation skips the update. Returns states ``(n, 2)``, covariances
    ``(n, 3)``, forecasts, errors, forecast variances and the chosen index
    (-1 where none).
    """
    n = y.shape[0]
    g_n = qs.shape[0]
    states = np.full((n, 2), np.nan)
    covs = np.full((n, 3), np.nan)
    yhat = np.full(n, np.nan)
    err = np.full(n, np.nan)
    fvar = np.full(n, np.nan)
    chosen = np.full(n, -1, dtype=np.int64)
    if start < 1 or start > n:
        return states, covs, yhat, err, fvar, chosen
    b = np.empty(g_n)
    a = np.empty(g_n)
    pbb = np.empty(g_n)
    pba = np.empty(g_n)
    paa = np.empty(g_n)
    sse = np.zeros(g_n)
    slogf = np.zeros(g_n)
    for g in range(g_n):
        b[g] = s0[0]
        a[g] = s0[1]
        pbb[g] = p0[0]
        pba[g] = p0[1]
        paa[g] = p0[2]
    m = 0
    best = 0
    states[start - 1, 0] = s0[0]
    states[start - 1, 1] = s0[1]
    covs[start - 1, 0] = p0[0]
    covs[start - 1, 1] = p0[1]
    covs[start - 1, 2] = p0[2]
    chosen[start - 1] = 0
    for t in range(start, n):
        xt = x[t]
        missing = np.isnan(y[t]) or np.isnan(xt)
        for g in range(g_n):
            pbb[g] += qs[g, 0]
            pba[g] += qs[g, 1]
            paa[g] += qs[g, 2]
            f = b[g] * xt + a[g]
            hb = pbb[g] * xt + pba[g]
            ha = pba[g] * xt + paa[g]
            s = hb * xt + ha + 1.0
            if g == best:
                yhat[t] = f
                fvar[t] = s
            if not missing:
                e = y[t] - f
                if g == best:
                    err[t] = e
                kb = hb / s
                ka = ha / s
                b[g] += kb * e
                a[g] += ka * e
                pbb[g] -= kb * hb
                pba[g] -= kb * ha
                paa[g] -= ka * ha
                sse[g] += e * e / s
                slogf[g] += np.log(s)
        if not missing:
            m += 1
            top = -np.inf
            for g in range(g_n):
                ll = -0.5 * slogf[g]
                if sse[g] > 0.0:
                    ll -= 0.5 * m * np.log(sse[g] / m)
                else:
                    ll = np.inf
                if ll > top:
                    top = ll
                    best = g
        states[t, 0] = b[best]
        states[t, 1] = a[best]
        covs[t, 0] = pbb[best]
        covs[t, 1] = pba[best]
        covs[t, 2] = paa[best]
        chosen[t] = best
    return states, covs, yhat, err, fvar, chosen
