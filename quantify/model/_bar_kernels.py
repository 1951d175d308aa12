"""Numba kernels behind the bar (candle) functions of :mod:`quantify.model.bars`.

Private: the public functions validate and convert their inputs, then call
these with contiguous int64/float64 arrays. O(n), compiled with
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
def bar_bounds(ts: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Bar starts and bar ids of sorted int64 times, in one pass.

    Returns ``(bounds, bar_ids, bad)``: ``bounds`` holds each bar's first row
    and, last, ``len(ts)``; ``bad`` is the first row whose time decreases, or
    -1. Bars are ``floor(ts / step)`` (epoch-aligned).
    """
    n = ts.shape[0]
    bounds = np.empty(n + 1, dtype=np.int64)
    ids = np.empty(n, dtype=np.int64)
    nb = 0
    prev_bar = np.int64(0)
    for i in range(n):
        if i > 0 and ts[i] < ts[i - 1]:
            return bounds[:0], ids[:0], i
        b = ts[i] // step  # numba's // floors like Python's
        if i == 0 or b != prev_bar:
            bounds[nb] = i
            ids[nb] = b
            nb += 1
            prev_bar = b
    bounds[nb] = n
    return bounds[: nb + 1].copy(), ids[:nb].copy(), -1


@numba.njit(cache=True)
def to_units(price: np.ndarray, qty: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Float64 Binance decimals as int64 units of 1e-8, ``round(x * 1e8)``.

    Returns ``(price_units, qty_units, bad)``: ``bad`` is the first row whose
    price or quantity is NaN or falls outside ``[0, 2**52)`` units, or -1.
    """
    n = price.shape[0]
    pu = np.empty(n, dtype=np.int64)
    qu = np.empty(n, dtype=np.int64)
    top = float(1 << 52)
    for i in range(n):
        pf = np.rint(price[i] * 1e8)
        qf = np.rint(qty[i] * 1e8)
        # written so that NaN fails too
        if not (pf >= 0.0 and pf < top and qf >= 0.0 and qf < top):
            return pu[:0], qu[:0], i
        pu[i] = np.int64(pf)
        qu[i] = np.int64(qf)
    return pu, qu, -1


@numba.njit(cache=True)
def bar_units(
    bounds: np.ndarray,
    compare: np.ndarray,
    pu: np.ndarray,
    qu: np.ndarray,
    maker: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-bar rows and exact sums over integer units, in one pass.

    ``bounds`` has one more entry than there are bars: bar ``b`` holds rows
    ``bounds[b]:bounds[b + 1]`` (possibly none). ``compare`` (the prices as
    floats or units) orders rows for high and low: the first highest and the
    first lowest row win. ``pu``/``qu`` are int64 units, each in ``[0,
    2**52)``; the first row breaking that is returned as ``bad`` (else -1).
    ``counts`` holds each row's number of trades, or is empty (one each).
    Taker-buy sums cover rows with ``maker`` False.

    Returns ``(rows, volume, taker_volume, quote_limbs, taker_quote_limbs,
    trades, bad)``: ``rows`` is ``(nbars, 4)`` int64, the open, high, low and
    close row of each bar (-1 for an empty bar); limbs are ``(nbars, 3)``
    int64 in base 2**26, least significant first, the top limb unbounded (the
    value is ``l2 * 2**52 + l1 * 2**26 + l0``).
    """
    nb = bounds.shape[0] - 1
    rows = np.full((nb, 4), -1, dtype=np.int64)
    vol = np.zeros(nb, dtype=np.int64)
    tvol = np.zeros(nb, dtype=np.int64)
    quote = np.zeros((nb, 3), dtype=np.int64)
    tquote = np.zeros((nb, 3), dtype=np.int64)
    trades = np.zeros(nb, dtype=np.int64)
    mask = np.int64(_LIMB_MASK)
    bits = np.int64(LIMB_BITS)
    top = np.int64(1) << np.int64(52)
    ones = counts.shape[0] == 0
    for b in range(nb):
        lo_i = bounds[b]
        hi_i = bounds[b + 1]
        if hi_i <= lo_i:
            continue
        h = lo_i
        low = lo_i
        v = np.int64(0)
        tv = np.int64(0)
        a0 = np.int64(0)
        a1 = np.int64(0)
        a2 = np.int64(0)
        t0 = np.int64(0)
        t1 = np.int64(0)
        t2 = np.int64(0)
        c = np.int64(0)
        for i in range(lo_i, hi_i):
            pi = pu[i]
            qi = qu[i]
            if not (pi >= 0 and pi < top and qi >= 0 and qi < top):
                return rows, vol, tvol, quote, tquote, trades, i
            if compare[i] > compare[h]:
                h = i
            if compare[i] < compare[low]:
                low = i
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
            if not maker[i]:
                tv += qi
                t0 += m0
                t1 += m1
                t2 += m2
                t1 += t0 >> bits
                t0 &= mask
                t2 += t1 >> bits
                t1 &= mask
            c += 1 if ones else counts[i]
        rows[b, 0] = lo_i
        rows[b, 1] = h
        rows[b, 2] = low
        rows[b, 3] = hi_i - 1
        vol[b] = v
        tvol[b] = tv
        quote[b, 0] = a0
        quote[b, 1] = a1
        quote[b, 2] = a2
        tquote[b, 0] = t0
        tquote[b, 1] = t1
        tquote[b, 2] = t2
        trades[b] = c
    return rows, vol, tvol, quote, tquote, trades, -1
