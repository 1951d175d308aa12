"""Numba kernels behind the candle, rolling and Kalman functions.

Private: the public modules validate and convert their inputs, then call these
with contiguous float64/int64 arrays. Every kernel is O(n) and compiled with
``cache=True`` so that a fresh process pays the compile cost once per machine.
"""

from __future__ import annotations

import numba
import numpy as np

__all__: list[str] = []

#: Limb width of the exact quote-volume sums: 2**26, so that every partial
#: product of two 26-bit limbs fits in 52 bits and a limb never overflows int64.
LIMB_BITS = 26
_LIMB_MASK = (1 << LIMB_BITS) - 1


@numba.njit(cache=True)
def bar_sums(
    bounds: np.ndarray, p: np.ndarray, q: np.ndarray, taker_buy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact per-bar sums of ``q`` and ``p * q`` in integer units.

    ``bounds`` has one more entry than there are bars: bar ``b`` holds ticks
    ``bounds[b]:bounds[b + 1]``. ``p`` and ``q`` are non-negative int64 below
    2**52. Returns ``(volume, taker_volume, quote_limbs, taker_quote_limbs)``;
    limbs are ``(nbars, 3)`` int64 in base 2**26, least significant first, the
    top limb unbounded (the value is ``l2 * 2**52 + l1 * 2**26 + l0``).
    """
    nb = bounds.shape[0] - 1
    vol = np.zeros(nb, dtype=np.int64)
    tvol = np.zeros(nb, dtype=np.int64)
    quote = np.zeros((nb, 3), dtype=np.int64)
    tquote = np.zeros((nb, 3), dtype=np.int64)
    mask = np.int64(_LIMB_MASK)
    bits = np.int64(LIMB_BITS)
    for b in range(nb):
        v = np.int64(0)
        tv = np.int64(0)
        a0 = np.int64(0)
        a1 = np.int64(0)
        a2 = np.int64(0)
        t0 = np.int64(0)
        t1 = np.int64(0)
        t2 = np.int64(0)
        for i in range(bounds[b], bounds[b + 1]):
            pi = p[i]
            qi = q[i]
            p0 = pi & mask
            p1 = pi >> bits
            q0 = qi & mask
            q1 = qi >> bits
            m0 = p0 * q0
            m1 = p0 * q1 + p1 * q0
            m2 = p1 * q1
            v += qi
            a0 += m0
            a1 += m1
            a2 += m2
            # normalise: keeps a0, a1 below 2**26 so the next add cannot overflow
            a1 += a0 >> bits
            a0 &= mask
            a2 += a1 >> bits
            a1 &= mask
            if taker_buy[i]:
                tv += qi
                t0 += m0
                t1 += m1
                t2 += m2
                t1 += t0 >> bits
                t0 &= mask
                t2 += t1 >> bits
                t1 &= mask
        vol[b] = v
        tvol[b] = tv
        quote[b, 0] = a0
        quote[b, 1] = a1
        quote[b, 2] = a2
        tquote[b, 0] = t0
        tquote[b, 1] = t1
        tquote[b, 2] = t2
    return vol, tvol, quote, tquote


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


@numba.njit(cache=True)
def rolling_moments(
    x: np.ndarray, y: np.ndarray, window: int, bivariate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rolling means and centred sums of squares/cross-products over ``window``.

    Returns ``(mean_x, mean_y, sxx, syy, sxy)`` (sums, not divided by n), NaN
    for the first ``window - 1`` rows and for every window holding a NaN in
    either input (pandas ``min_periods=window``). With ``bivariate=False``
    ``y`` is ignored and only ``mean_x`` and ``sxx`` are filled.
    """
    n = x.shape[0]
    mean_x = np.full(n, np.nan)
    mean_y = np.full(n, np.nan)
    out_xx = np.full(n, np.nan)
    out_yy = np.full(n, np.nan)
    out_xy = np.full(n, np.nan)
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
        if np.isnan(x[i]) or (bivariate and np.isnan(y[i])):
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
            s_x += dx_in - dx_out
            s_xx += dx_in * dx_in - dx_out * dx_out
            if bivariate:
                dy_in = y[i] - ry
                dy_out = y[lo - 1] - ry
                s_y += dy_in - dy_out
                s_yy += dy_in * dy_in - dy_out * dy_out
                s_xy += dx_in * dy_in - dx_out * dy_out
            age += 1
        else:
            rx, ry, s_x, s_y, s_xx, s_yy, s_xy = _shifted_sums(x, y, lo, i + 1, bivariate)
            valid = True
            age = 0
        mean_x[i] = rx + s_x / w
        v = s_xx - s_x * s_x / w
        out_xx[i] = v if v > 0.0 else 0.0
        if bivariate:
            mean_y[i] = ry + s_y / w
            v = s_yy - s_y * s_y / w
            out_yy[i] = v if v > 0.0 else 0.0
            out_xy[i] = s_xy - s_x * s_y / w
    return mean_x, mean_y, out_xx, out_yy, out_xy


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
