"""Benchmark adf / coint / scan_pairs against statsmodels, measured in the same run.

Run: ``python benchmarks/stationarity.py`` (full sizes, a few minutes) or
``python benchmarks/stationarity.py --quick``. Prints times, speed-up ratios
and the largest differences from the reference.

Both sides run with single-threaded OpenBLAS by default (``--blas-threads``):
on a shared machine a threaded BLAS makes the many small least-squares fits of
either implementation 5-300x slower and the ratios meaningless.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_adf(n: int) -> dict[str, Any]:
    from statsmodels.tsa.stattools import adfuller

    from quantify.analytics import adf

    rng = np.random.default_rng(0)
    x = 60_000.0 + np.cumsum(rng.normal(0.0, 30.0, n))
    adf(x[:1000])  # warm-up
    ours_t, ours = _best(lambda: adf(x, regression="c", autolag="AIC"), 3)
    ref_t, ref = _best(lambda: adfuller(x, regression="c", autolag="AIC", result_object=True), 1)
    return {
        "case": f"adf, {n:,} points, AIC (maxlag {ours.maxlag})",
        "ours_s": ours_t, "ref_s": ref_t, "ratio": ref_t / ours_t,
        "check": f"lags {ours.lags} vs {ref.lags}; stat rel. diff "
                 f"{abs(ours.stat - ref.statistic) / abs(ref.statistic):.1e}",
    }


def bench_coint(n: int) -> dict[str, Any]:
    from statsmodels.tsa.stattools import coint as sm_coint

    from quantify.analytics import coint

    rng = np.random.default_rng(1)
    x = np.log(60_000.0) + np.cumsum(rng.normal(0.0, 1e-3, n))
    y = np.log(3_000.0) + np.cumsum(rng.normal(0.0, 1e-3, n))
    ours_t, ours = _best(lambda: coint(y, x), 3)
    ref_t, ref = _best(lambda: sm_coint(y, x), 1)
    return {
        "case": f"coint, {n:,} points, AIC", "ours_s": ours_t, "ref_s": ref_t,
        "ratio": ref_t / ours_t,
        "check": f"stat rel. diff {abs(ours.stat - ref[0]) / abs(ref[0]):.1e}; "
                 f"p diff {abs(ours.pvalue - ref[1]):.1e}",
    }


def bench_scan(k: int, n: int, sample: int) -> dict[str, Any]:
    from statsmodels.tsa.stattools import coint as sm_coint

    from quantify.analytics import scan_pairs

    rng = np.random.default_rng(2)
    closes = pd.DataFrame(
        np.log(60_000.0) + np.cumsum(rng.normal(0.0, 1e-3, (n, k)), axis=0),
        columns=[f"S{i:02d}" for i in range(k)],
    )
    # a few cointegrated columns so the top of the table is not all noise
    for i in range(0, k, 10):
        closes.iloc[:, i + 1] = closes.iloc[:, i] * 0.9 + rng.normal(0.0, 2e-4, n)
    pairs = list(itertools.combinations(closes.columns, 2))
    t0 = time.perf_counter()
    table = scan_pairs(closes, progress=False)
    ours_t = time.perf_counter() - t0

    picks = [pairs[i] for i in np.random.default_rng(3).choice(len(pairs), sample, replace=False)]
    t0 = time.perf_counter()
    worst = 0.0
    for a, b in picks:  # both orderings, as scan_pairs does
        fwd = sm_coint(closes[a], closes[b])
        rev = sm_coint(closes[b], closes[a])
        row = table[((table.y == a) & (table.x == b)) | ((table.y == b) & (table.x == a))].iloc[0]
        ref_fwd, ref_rev = (fwd, rev) if row.y == a else (rev, fwd)
        worst = max(worst, abs(row.pvalue - ref_fwd[1]), abs(row.pvalue_reverse - ref_rev[1]))
    per_pair = (time.perf_counter() - t0) / sample
    ref_t = per_pair * len(pairs)
    return {
        "case": f"scan_pairs, {k} series x {n:,} points = {len(pairs):,} pairs, both orderings, "
                f"{os.cpu_count()} processes",
        "ours_s": ours_t, "ref_s": ref_t, "ratio": ref_t / ours_t,
        "check": f"reference = statsmodels coint loop timed on {sample} pairs "
                 f"({per_pair:.2f} s/pair) x {len(pairs):,}; max p diff on them {worst:.1e}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~1 minute)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads for both sides (default 1; 0 leaves it alone)")
    args = parser.parse_args(argv)

    from quantify.analytics.scan import limit_blas_threads

    if args.blas_threads > 0:
        limit_blas_threads(args.blas_threads)
    warnings.simplefilter("ignore", FutureWarning)
    if args.quick:
        runs = [lambda: bench_adf(20_000), lambda: bench_coint(10_000),
                lambda: bench_scan(12, 2_000, 5)]
    else:
        runs = [lambda: bench_adf(100_000), lambda: bench_coint(10_000),
                lambda: bench_scan(50, 10_000, 20)]
    print(f"# {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, BLAS threads "
          f"{args.blas_threads if args.blas_threads > 0 else 'default'}")
    print(f"{'case':<82} {'ours s':>9} {'statsmodels s':>14} {'ratio':>8}")
    for run in runs:
        r = run()
        print(f"{r['case']:<82} {r['ours_s']:>9.3f} {r['ref_s']:>14.2f} {r['ratio']:>7.0f}x")
        print(f"    {r['check']}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
