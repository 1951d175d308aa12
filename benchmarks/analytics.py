"""Benchmark the analytics kernels against their reference implementations.

Run ``python benchmarks/analytics.py`` (``--quick`` for smaller sizes). Every
ratio is measured in the same run: ours vs statsmodels ``RollingOLS``, pandas
rolling, a per-step numpy Kalman loop and pandas ``resample().agg()``. Slow
references run on fewer points and are scaled linearly (all are O(n)); the
table says so. Accuracy columns give the max relative error against an exact
per-window two-pass computation on sampled windows. Then, if
``benchmarks/stationarity.py`` exists, its ``main()`` runs too.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantify.analytics import kalman_hedge, resample, rolling_corr, rolling_hedge_ratio, zscore

WINDOW = 500


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Minimum wall time of ``repeat`` calls, after one warm-up call (numba compile)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def prices(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two cointegrated random walks near 60,000 and 3,000 (BTC, ETH-like)."""
    rng = np.random.default_rng(seed)
    x = 60_000 + np.cumsum(rng.normal(0, 30, n))
    y = 0.05 * x + 100 + np.cumsum(rng.normal(0, 3, n)) * 0.1
    return y, x


def exact_windows(y: np.ndarray, x: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Two-pass moments of the windows ending at ``ends``: the accuracy reference."""
    view = np.lib.stride_tricks.sliding_window_view
    xs = view(x, WINDOW)[ends - WINDOW + 1]
    ys = view(y, WINDOW)[ends - WINDOW + 1]
    dx = xs - xs.mean(axis=1, keepdims=True)
    dy = ys - ys.mean(axis=1, keepdims=True)
    sxx, syy, sxy = (dx * dx).sum(1), (dy * dy).sum(1), (dx * dy).sum(1)
    return {
        "beta": sxy / sxx,
        "corr": sxy / np.sqrt(sxx * syy),
        "z": dx[:, -1] / np.sqrt(sxx / (WINDOW - 1)),
    }


def max_rel(got: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> float:
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), floor)))


def bench_rolling(n: int, n_sm: int, rows: list[dict[str, Any]]) -> None:
    from statsmodels.regression.rolling import RollingOLS
    from statsmodels.tools import add_constant

    y, x = prices(n)
    ends = np.linspace(WINDOW - 1, n - 1, 2000).astype(np.int64)
    ref = exact_windows(y, x, ends)

    ours = best_of(lambda: rolling_hedge_ratio(y, x, WINDOW))
    ys, xs = y[:n_sm], x[:n_sm]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        sm = RollingOLS(ys, add_constant(xs), window=WINDOW).fit(params_only=True).params
        t_sm = (time.perf_counter() - t) * n / n_sm
    sm_ends = ends[ends < n_sm]
    got = rolling_hedge_ratio(y, x, WINDOW)["beta"].to_numpy()
    rows.append(
        {
            "what": f"rolling hedge ratio w={WINDOW}",
            "n": n,
            "ours_s": ours,
            "ref": f"statsmodels RollingOLS (on {n_sm:,}, scaled)",
            "ref_s": t_sm,
            "err_ours": max_rel(got[ends], ref["beta"]),
            "err_ref": max_rel(sm[sm_ends, 1], ref["beta"][: len(sm_ends)]),
        }
    )

    sy, sx = pd.Series(y), pd.Series(x)
    ours = best_of(lambda: zscore(x, WINDOW))

    def pz() -> pd.Series:
        return (sx - sx.rolling(WINDOW).mean()) / sx.rolling(WINDOW).std()

    t_pd = best_of(pz)
    rows.append(
        {
            "what": f"zscore w={WINDOW}",
            "n": n,
            "ours_s": ours,
            "ref": "pandas rolling mean/std",
            "ref_s": t_pd,
            # z is O(1) and crosses 0: absolute error, relative to max(|z|, 1)
            "err_ours": max_rel(zscore(x, WINDOW).to_numpy()[ends], ref["z"], floor=1.0),
            "err_ref": max_rel(pz().to_numpy()[ends], ref["z"], floor=1.0),
        }
    )

    ours = best_of(lambda: rolling_corr(y, x, WINDOW))

    def pc() -> pd.Series:
        return sy.rolling(WINDOW).corr(sx)

    t_pd = best_of(pc)
    rows.append(
        {
            "what": f"rolling_corr w={WINDOW}",
            "n": n,
            "ours_s": ours,
            "ref": "pandas rolling corr",
            "ref_s": t_pd,
            "err_ours": max_rel(rolling_corr(y, x, WINDOW).to_numpy()[ends], ref["corr"]),
            "err_ref": max_rel(pc().to_numpy()[ends], ref["corr"]),
        }
    )

    ly, lx = np.log(y), np.log(x)
    lref = exact_windows(ly, lx, ends)
    lsy, lsx = pd.Series(ly), pd.Series(lx)
    rows.append(
        {
            "what": f"rolling_corr w={WINDOW}, log prices",
            "n": n,
            "ours_s": best_of(lambda: rolling_corr(ly, lx, WINDOW)),
            "ref": "pandas rolling corr",
            "ref_s": best_of(lambda: lsy.rolling(WINDOW).corr(lsx)),
            "err_ours": max_rel(rolling_corr(ly, lx, WINDOW).to_numpy()[ends], lref["corr"]),
            "err_ref": max_rel(lsy.rolling(WINDOW).corr(lsx).to_numpy()[ends], lref["corr"]),
        }
    )


def kalman_loop(y: np.ndarray, x: np.ndarray, delta: float, obs_var: float) -> np.ndarray:
    """The textbook per-step numpy implementation (Chan ch. 3)."""
    vw = delta / (1 - delta) * np.eye(2)
    state, p = np.zeros(2), np.eye(2)
    out = np.empty((len(y), 2))
    for t in range(len(y)):
        r = p + vw if t else p
        h = np.array([x[t], 1.0])
        q = h @ r @ h + obs_var
        k = r @ h / q
        state = state + k * (y[t] - h @ state)
        p = r - np.outer(k, h) @ r
        out[t] = state
    return out


def bench_kalman(n: int, n_loop: int, rows: list[dict[str, Any]]) -> None:
    y, x = prices(n, seed=1)
    ours = best_of(lambda: kalman_hedge(y, x, delta=1e-4, obs_var=1e-3))
    t = time.perf_counter()
    ref = kalman_loop(y[:n_loop], x[:n_loop], 1e-4, 1e-3)
    t_loop = (time.perf_counter() - t) * n / n_loop
    got = kalman_hedge(y[:n_loop], x[:n_loop], delta=1e-4, obs_var=1e-3).beta.to_numpy()
    rows.append(
        {
            "what": "kalman_hedge",
            "n": n,
            "ours_s": ours,
            "ref": f"numpy per-step loop (on {n_loop:,}, scaled)",
            "ref_s": t_loop,
            "err_ours": max_rel(got, ref[:, 0]),
            "err_ref": float("nan"),
        }
    )


def ticks_frame(n: int, seed: int = 2) -> pd.DataFrame:
    """``n`` BTCUSDT-like trades over about one day."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, 2 * 86_400_000_000_000 // n, n)
    ts = np.int64(1_723_161_600_000_000_000) + np.cumsum(gaps)
    return pd.DataFrame(
        {
            "price": np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 1e-5, n))), 2),
            "qty": np.round(rng.exponential(0.02, n), 5) + 1e-5,
            "trade_id": np.arange(n, dtype=np.int64),
            "is_buyer_maker": rng.random(n) < 0.5,
        },
        index=pd.DatetimeIndex(pd.to_datetime(ts, utc=True)),
    )


def pandas_candles(ticks: pd.DataFrame) -> pd.DataFrame:
    """The same columns with pandas' resample/agg (float sums, not exact)."""
    taker = ~ticks["is_buyer_maker"]
    quote = ticks["price"] * ticks["qty"]
    frame = pd.DataFrame(
        {
            "price": ticks["price"],
            "qty": ticks["qty"],
            "quote": quote,
            "tb": ticks["qty"].where(taker, 0.0),
            "tbq": quote.where(taker, 0.0),
        }
    )
    return frame.resample("1min").agg(
        {
            "price": ["first", "max", "min", "last", "count"],
            "qty": "sum",
            "quote": "sum",
            "tb": "sum",
            "tbq": "sum",
        }
    )


def bench_resample(n: int, rows: list[dict[str, Any]]) -> None:
    ticks = ticks_frame(n)
    ours = best_of(lambda: resample(ticks, "1m"))
    full = best_of(lambda: pandas_candles(ticks), 1)
    bare = best_of(
        lambda: ticks.resample("1min").agg(
            {"price": ["first", "max", "min", "last"], "qty": "sum"}
        ),
        1,
    )
    rows.append(
        {
            "what": "resample ticks -> 1m",
            "n": n,
            "ours_s": ours,
            "ref": "pandas resample.agg, same 9 columns",
            "ref_s": full,
            "err_ours": float("nan"),
            "err_ref": float("nan"),
        }
    )
    rows.append(
        {
            "what": "resample ticks -> 1m",
            "n": n,
            "ours_s": ours,
            "ref": "pandas resample.agg, OHLC + volume only",
            "ref_s": bare,
            "err_ours": float("nan"),
            "err_ref": float("nan"),
        }
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'benchmark':<36} {'n':>10} {'ours s':>9} {'ref s':>9} {'ratio':>8}  "
        f"{'max rel err ours':>16} {'ref':>9}  reference"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["ref_s"] / r["ours_s"]
        print(
            f"{r['what']:<36} {r['n']:>10,} {r['ours_s']:>9.4f} {r['ref_s']:>9.3f} "
            f"{ratio:>7.1f}x  {r['err_ours']:>16.1e} {r['err_ref']:>9.1e}  {r['ref']}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (seconds, not minutes)")
    args, _ = parser.parse_known_args(argv)
    n, n_slow, n_ticks = (
        (100_000, 20_000, 1_000_000) if args.quick else (1_000_000, 100_000, 10_000_000)
    )
    rows: list[dict[str, Any]] = []
    bench_rolling(n, n_slow, rows)
    bench_kalman(n, n_slow, rows)
    bench_resample(n_ticks, rows)
    print_table(rows)

    other = Path(__file__).with_name("stationarity.py")
    if other.exists():
        spec = importlib.util.spec_from_file_location("benchmarks_stationarity", other)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print()
            module.main()


if __name__ == "__main__":
    main()
