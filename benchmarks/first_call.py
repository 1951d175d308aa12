"""The first rolling hedge ratio of a fresh interpreter, against statsmodels' first RollingOLS.

Each trial is a new Python process (a new notebook kernel): ``import quantify``
first, as a notebook's first cell does, then the timed first call on 2,000
bars with a 60-bar window. Three clients, interleaved, ``--trials`` each:

- ``quantify``: ``qf.rolling_hedge_ratio`` (loads the rolling module and its
  cached numba kernels, nothing else);
- ``quantify, loading every module``: every analytics name imported, then
  the same call, both timed (what the first call cost while
  ``quantify.analytics`` imported all its modules eagerly);
- ``statsmodels``: ``RollingOLS(y, add_constant(x), 60).fit()`` after
  ``import statsmodels.api`` (the peer; its import counted in the call).

Prints the median seconds of each and the ratios to statsmodels.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

SETUP = ("import time, numpy as np, pandas as pd, quantify as qf; rng = np.random.default_rng(1); "
         "y = pd.Series(np.cumsum(rng.normal(size=2000)) + 100.0); "
         "x = pd.Series(np.cumsum(rng.normal(size=2000)) + 100.0); ")
CLIENTS = {
    "quantify": "t = time.perf_counter(); qf.rolling_hedge_ratio(y, x, 60)",
    "quantify, loading every module": ("t = time.perf_counter(); import quantify.analytics as qa; "
                                       "[getattr(qa, n) for n in qa.__all__]; qf.rolling_hedge_ratio(y, x, 60)"),
    "statsmodels": ("t = time.perf_counter(); import statsmodels.api as sm; "
                    "from statsmodels.regression.rolling import RollingOLS; "
                    "RollingOLS(y, sm.add_constant(x), 60).fit()"),
}


def trial(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", SETUP + code + "; print(time.perf_counter() - t)"],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=7, help="fresh processes per client (default 7)")
    args = parser.parse_args()
    trial(CLIENTS["quantify"])  # warm the numba cache and the OS file cache
    times: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for _ in range(args.trials):
        for name, code in CLIENTS.items():
            times[name].append(trial(code))
    ref = statistics.median(times["statsmodels"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:36s} median {med:.3f} s  (min {min(values):.3f}, max {max(values):.3f})  "
              f"ratio to statsmodels {med / ref:.2f}")


if __name__ == "__main__":
    main()
