"""Benchmark the order-book pieces against their references, measured in one run.

Run ``python benchmarks/book.py`` (``--quick`` for smaller sizes, ``--only
SECTION`` for one section). Sections:

``ingest``
    Order-book diffs applied and stored per second by QuantiFy's ingestion,
    against a bare websockets receive loop of the same frames (goal >= 0.5)
    and cryptofeed's Binance L2 book (goal >= 1.5x), each on a fresh replay
    server (``benchmarks/_book_peers.py``; cryptofeed is installed into a
    throwaway environment of its own on first use).
``asof``
    :func:`quantify.analytics.asof` vs ``pandas.merge_asof`` joining trades
    (a tick frame) to the prevailing quote (the store's quotes schema), on the
    index and on a column; the results are checked equal before timing.

Each section is a function in ``SECTIONS`` taking the parsed arguments and
returning its table rows; ``main`` prints one table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import _book_peers
import numpy as np
import pandas as pd
from _common import CRYPTOFEED

from quantify.analytics import asof


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Minimum wall time of ``repeat`` calls, after one warm-up call (numba compile)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def trades_and_quotes(n: int, m: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` trades and ``m`` quotes over one hour, on a ms clock (so with many equal times)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-08-08", tz="UTC")
    tt = np.sort(rng.integers(0, 3_600_000, n))
    qt = np.sort(rng.integers(0, 3_600_000, m))
    mid = 60_000 + np.cumsum(rng.normal(0, 0.5, m))
    trades = pd.DataFrame(
        {"price": np.round(60_000 + np.cumsum(rng.normal(0, 0.5, n)), 2), "qty": rng.random(n),
         "trade_id": np.arange(n, dtype=np.int64), "is_buyer_maker": rng.random(n) < 0.5},
        index=pd.DatetimeIndex(t0 + pd.to_timedelta(tt, "ms"), name="time"))
    quotes = pd.DataFrame(
        {"bid_price": mid - 0.005, "bid_qty": rng.random(m), "ask_price": mid + 0.005, "ask_qty": rng.random(m),
         "update_id": np.arange(m, dtype=np.int64) + 50_000_000_000,
         "first_update_id": np.arange(m, dtype=np.int64) + 49_999_999_990,
         "recv_time": (t0.value + qt * 1_000_000 + 40_000_000).astype(np.int64)},
        index=pd.DatetimeIndex(t0 + pd.to_timedelta(qt, "ms"), name="time"))
    return trades, quotes


def bench_asof(args: argparse.Namespace) -> list[dict[str, Any]]:
    n = 100_000 if args.quick else 1_000_000
    trades, quotes = trades_and_quotes(n, n)
    rows = []
    cases: list[tuple[str, Callable[[], pd.DataFrame], Callable[[], pd.DataFrame]]] = [
        ("index, backward",
         lambda: asof(trades, quotes),
         lambda: pd.merge_asof(trades, quotes, left_index=True, right_index=True, suffixes=("", "_right"))),
        ("index, backward, strictly before, 1 s tolerance",
         lambda: asof(trades, quotes, allow_exact_matches=False, tolerance=pd.Timedelta("1s")),
         lambda: pd.merge_asof(trades, quotes, left_index=True, right_index=True, allow_exact_matches=False,
                               tolerance=pd.Timedelta("1s"), suffixes=("", "_right"))),
        ("index, nearest",
         lambda: asof(trades, quotes, direction="nearest"),
         lambda: pd.merge_asof(trades, quotes, left_index=True, right_index=True, direction="nearest",
                               suffixes=("", "_right"))),
    ]
    lt, rt = trades.reset_index(), quotes.reset_index()
    cases.append(("column 'time', backward", lambda: asof(lt, rt, on="time"),
                  lambda: pd.merge_asof(lt, rt, on="time", suffixes=("", "_right"))))
    for name, ours, ref in cases:
        got, want = ours(), ref()
        want.index = got.index
        pd.testing.assert_frame_equal(got, want[list(got.columns)])
        t_ours, t_ref = best_of(ours), best_of(ref)
        rows.append({"section": "asof", "case": f"{name} ({n:,} x {n:,})", "ours_s": t_ours,
                     "reference_s": t_ref, "ratio": t_ref / t_ours, "reference": "pandas.merge_asof"})
    return rows


def bench_ingest(args: argparse.Namespace) -> list[dict[str, Any]]:
    diffs = 5_000 if args.quick else 30_000
    lap = 6_000  # diffs of one lap of the recording, paced at 40 times its speed (~16 s)
    rows = []
    ceiling, _ = _book_peers.bare(diffs)
    ours, _, book = _book_peers.quantify(diffs)
    peer, _ = _book_peers.cryptofeed(diffs)
    print(f"QuantiFy's book while measured: {book}")
    case = f"{diffs:,} diffs (+ ~11 bookTicker, ~2 aggTrade frames each), speed 0, diffs/s"
    rows += [
        {"section": "ingest", "case": f"{case}: QuantiFy vs bare receive loop", "ours_s": 1 / ours,
         "reference_s": 1 / ceiling, "ratio": ours / ceiling, "reference": "websockets recv loop"},
        {"section": "ingest", "case": f"{case}: QuantiFy vs cryptofeed L2 book", "ours_s": 1 / ours,
         "reference_s": 1 / peer, "ratio": ours / peer, "reference": CRYPTOFEED},
    ]
    _, bare_cpu = _book_peers.bare(lap, speed=40)
    _, ours_cpu, book = _book_peers.quantify(lap, speed=40)
    _, peer_cpu = _book_peers.cryptofeed(lap, speed=40)
    print(f"QuantiFy's book while measured (paced): {book}")
    case = f"{lap:,} diffs paced (speed 40, the same frames in the same time), CPU s per diff"
    rows += [
        {"section": "ingest", "case": f"{case}: QuantiFy vs bare receive loop", "ours_s": ours_cpu,
         "reference_s": bare_cpu, "ratio": bare_cpu / ours_cpu, "reference": "websockets recv loop"},
        {"section": "ingest", "case": f"{case}: QuantiFy vs cryptofeed L2 book", "ours_s": ours_cpu,
         "reference_s": peer_cpu, "ratio": peer_cpu / ours_cpu, "reference": CRYPTOFEED},
    ]
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "ingest": bench_ingest, "asof": bench_asof,
}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    args = parser.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {_cpu()}, pandas {pd.__version__}")
    rows = []
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            rows += section(args)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.to_string(index=False, formatters={"ours_s": "{:.4f}".format,
                                                      "reference_s": "{:.4f}".format,
                                                      "ratio": "{:.2f}x".format}))


if __name__ == "__main__":
    main()
