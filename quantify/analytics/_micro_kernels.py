"""Numba kernels behind the as-of join and the microstructure functions.

Private: the public modules validate and convert their inputs, then call these
with contiguous int64/float64 arrays. Every kernel is O(n) (one merge walk or
one pass) and compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__: list[str] = []

#: ``asof_indexer`` directions.
BACKWARD = 0
FORWARD = 1
NEAREST = 2


@numba.njit(cache=True)
def _rank(right: np.ndarray, key: float, strict: bool) -> int:
    """How many right keys are < ``key`` (``strict``) or <= ``key``: a binary search."""
    lo = 0
    hi = right.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        r = right[mid]
        if r < key or (not strict and r == key):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def _step(
    left: np.ndarray, right: np.ndarray, out: np.ndarray, i: int, j: int, m: int, strict: bool
) -> tuple[int, int]:
    """One branch-free step of a merge walk: advance ``j`` past a smaller key, or emit ``i``."""
    last = m - 1
    jj = j if j < last else last
    r = right[jj]
    key = left[i]
    c = (j < m) & ((r < key) | ((not strict) & (r == key)))
    out[i] = j
    return i + 1 - c, j + c


#: Independent merge walks interleaved in one loop (instruction-level parallelism).
_STREAMS = 4


@numba.njit(cache=True)
def ranks(left: np.ndarray, right: np.ndarray, strict: bool) -> np.ndarray:
    """For each sorted left key, how many sorted right keys are < it (``strict``) or <= it.

    A merge walk, O(n + m), split into four walks over quarters of ``left``
    (each starts at a binary search) that run interleaved: each step of a
    walk depends on the previous one, four walks keep the CPU busy. Their
    step counts are known in advance, so the loop has no data-dependent
    branch.
    """
    n = left.shape[0]
    m = right.shape[0]
    out = np.zeros(n, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    a = np.empty(_STREAMS + 1, dtype=np.int64)
    for k in range(_STREAMS + 1):
        a[k] = (n * k) // _STREAMS
    i_at = np.empty(_STREAMS, dtype=np.int64)
    j_at = np.empty(_STREAMS, dtype=np.int64)
    steps = np.empty(_STREAMS, dtype=np.int64)
    for k in range(_STREAMS):
        i_at[k] = a[k]
        if a[k + 1] > a[k]:
            j_at[k] = _rank(right, left[a[k]], strict)
            steps[k] = (a[k + 1] - a[k]) + (_rank(right, left[a[k + 1] - 1], strict) - j_at[k])
        else:
            j_at[k] = 0
            steps[k] = 0
    i0, i1, i2, i3 = i_at[0], i_at[1], i_at[2], i_at[3]
    j0, j1, j2, j3 = j_at[0], j_at[1], j_at[2], j_at[3]
    for _ in range(steps.min()):
        i0, j0 = _step(left, right, out, i0, j0, m, strict)
        i1, j1 = _step(left, right, out, i1, j1, m, strict)
        i2, j2 = _step(left, right, out, i2, j2, m, strict)
        i3, j3 = _step(left, right, out, i3, j3, m, strict)
    i_at[0], i_at[1], i_at[2], i_at[3] = i0, i1, i2, i3
    j_at[0], j_at[1], j_at[2], j_at[3] = j0, j1, j2, j3
    for k in range(_STREAMS):
        i = i_at[k]
        j = j_at[k]
        while i < a[k + 1]:
            i, j = _step(left, right, out, i, j, m, strict)
    return out


@numba.njit(cache=True)
def asof_indexer(
    left: np.ndarray, right: np.ndarray, direction: int, exact: bool, tolerance: float, has_tol: bool
) -> np.ndarray:
    """The right row matched to each left row (-1: none), as ``pandas.merge_asof``.

    ``left`` and ``right`` are sorted keys of one dtype (int64 ns or float64).
    ``nearest`` takes the backward match when both are equally far, as pandas.
    """
    m = right.shape[0]
    if direction == BACKWARD:
        idx = ranks(left, right, not exact) - 1
    elif direction == FORWARD:
        idx = ranks(left, right, exact)
        for i in range(idx.shape[0]):
            if idx[i] == m:
                idx[i] = -1
    else:
        idx = ranks(left, right, not exact) - 1
        if exact:  # the first key >= t follows the last <= t unless that one equals t (then it wins)
            for i in range(left.shape[0]):
                b = idx[i]
                f = b + 1
                if f < m and (b < 0 or (right[b] != left[i] and (right[f] - left[i]) < (left[i] - right[b]))):
                    idx[i] = f
        else:
            fwd = ranks(left, right, False)
            for i in range(left.shape[0]):
                f = fwd[i]
                if f < m and (idx[i] < 0 or (right[f] - left[i]) < (left[i] - right[idx[i]])):
                    idx[i] = f
    if has_tol:
        for i in range(left.shape[0]):
            j = idx[i]
            if j >= 0:
                d = left[i] - right[j]
                if d < 0:
                    d = -d
                if d > tolerance:
                    idx[i] = -1
    return idx


@numba.njit(cache=True)
def first_decrease(keys: np.ndarray) -> int:
    """The first row whose key is below the previous one, or -1 when sorted."""
    down = False
    for i in range(1, keys.shape[0]):  # no early exit: the loop vectorises
        down |= keys[i] < keys[i - 1]
    if down:
        for i in range(1, keys.shape[0]):
            if keys[i] < keys[i - 1]:
                return i
    return -1


@numba.njit(cache=True)
def take_int(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` for an index without -1."""
    out = np.empty(idx.shape[0], dtype=values.dtype)
    for i in range(idx.shape[0]):
        out[i] = values[idx[i]]
    return out


@numba.njit(cache=True)
def take_int_as_float(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` as float64, NaN where ``idx`` is -1 (pandas' upcast of a missing int)."""
    out = np.empty(idx.shape[0], dtype=np.float64)
    for i in range(idx.shape[0]):
        j = idx[i]
        out[i] = values[j] if j >= 0 else np.nan
    return out


@numba.njit(cache=True)
def take_float(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` with NaN where ``idx`` is -1."""
    out = np.empty(idx.shape[0], dtype=np.float64)
    for i in range(idx.shape[0]):
        j = idx[i]
        out[i] = values[j] if j >= 0 else np.nan
    return out


@numba.njit(cache=True)
def ofi_events(
    bid: np.ndarray, bid_qty: np.ndarray, ask: np.ndarray, ask_qty: np.ndarray
) -> np.ndarray:
    """Cont-Kukanov-Stoikov order-flow contribution of each quote change (NaN first)."""
    n = bid.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n:
        out[0] = np.nan
    for i in range(1, n):
        if (np.isnan(bid[i]) or np.isnan(bid[i - 1]) or np.isnan(ask[i]) or np.isnan(ask[i - 1])
                or np.isnan(bid_qty[i]) or np.isnan(bid_qty[i - 1]) or np.isnan(ask_qty[i])
                or np.isnan(ask_qty[i - 1])):
            out[i] = np.nan
            continue
        e = 0.0
        if bid[i] >= bid[i - 1]:
            e += bid_qty[i]
        if bid[i] <= bid[i - 1]:
            e -= bid_qty[i - 1]
        if ask[i] <= ask[i - 1]:
            e -= ask_qty[i]
        if ask[i] >= ask[i - 1]:
            e += ask_qty[i - 1]
        out[i] = e
    return out


@numba.njit(cache=True)
def volume_buckets(
    volume: np.ndarray, buy_fraction: np.ndarray, bucket_volume: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill equal-volume buckets from bars, splitting a bar across buckets.

    Returns per completed bucket its buy volume, sell volume and the row of
    the bar that completed it. The last, unfinished bucket is left out.
    """
    n = volume.shape[0]
    cap = int(volume.sum() / bucket_volume) + 2
    buy = np.empty(cap, dtype=np.float64)
    sell = np.empty(cap, dtype=np.float64)
    end = np.empty(cap, dtype=np.int64)
    k = 0
    filled = 0.0
    b = 0.0
    s = 0.0
    for i in range(n):
        left = volume[i]
        f = buy_fraction[i]
        while left > 0.0:
            room = bucket_volume - filled
            take = left if left < room else room
            b += take * f
            s += take * (1.0 - f)
            filled += take
            left -= take
            if filled >= bucket_volume * (1.0 - 1e-12):
                buy[k] = b
                sell[k] = s
                end[k] = i
                k += 1
                filled = 0.0
                b = 0.0
                s = 0.0
    return buy[:k], sell[:k], end[:k]
