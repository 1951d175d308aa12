"""Ingestion throughput and latency against the replay server at full speed.

Measured in one run, each against a fresh replay server process (speed 0,
looping the bundled recording, so the server is never the bottleneck it
would be with one ``send()`` per message):

1. the ceiling: a bare websockets client that only counts frames;
2. QuantiFy end to end: parse, journal, id ordering, batched ArcticDB appends
   into a fresh LMDB store;
3. receipt-to-visible latency: a separate reader process polls the store's
   last trade id; every 1,000th trade's receipt time is recorded by a thin
   wrapper around the parser (the only instrumentation);
4. memory: the process's RSS sampled every second.

Usage: python benchmarks/ingest.py [--trades 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import websockets
from _common import cpu_seconds, run_quantify, start_replay

STREAMS = "btcusdt@trade/ethusdt@trade"


async def bare_receive(ws_url: str, n: int) -> tuple[float, float]:
    """Frames per second a client that does nothing but receive can take, and CPU µs per frame."""
    async with websockets.connect(f"{ws_url}/stream?streams={STREAMS}", max_size=1 << 20,
                                  compression=None) as ws:
        count = 0
        t0, c0 = time.perf_counter(), cpu_seconds()
        async for _ in ws:
            count += 1
            if count == 1:
                t0, c0 = time.perf_counter(), cpu_seconds()
            if count >= n:
                break
        return (count - 1) / (time.perf_counter() - t0), (cpu_seconds() - c0) / (count - 1) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.trades

    proc, ws_url, _ = start_replay()
    try:
        ceiling, ceiling_cpu = asyncio.run(bare_receive(ws_url, min(n, 500_000)))
    finally:
        proc.kill()

    run = run_quantify(n)
    rate, cpu_per_trade = run.rate, run.cpu_us
    first, middle, last = run.rss_thirds()
    print(f"trades ingested                : {run.stored:,}")
    print(f"bare websockets receive loop   : {ceiling:,.0f} frames/s (the ceiling)")
    print(f"QuantiFy end to end (LMDB)     : {rate:,.0f} trades/s")
    print(f"ratio end-to-end / ceiling     : {rate / ceiling:.2f}")
    print(f"CPU per trade: receive only {ceiling_cpu:.1f} µs, end to end {cpu_per_trade:.1f} µs "
          f"(ratio {ceiling_cpu / cpu_per_trade:.2f}; one core's rate {1e6 / cpu_per_trade:,.0f} trades/s)")
    if len(run.latency_ms):
        print(f"receipt-to-visible (reader)    : p50 {run.p(50):.0f} ms, "
              f"p99 {run.p(99):.0f} ms over {len(run.latency_ms)} samples")
    print(f"RSS (MB) first/middle/last third: {first:.0f} / {middle:.0f} / {last:.0f}; peak {run.peak_mb:.0f}")
    print(f"appends {run.appends}, compactions {run.compactions}, store latency {run.store_latency}")


if __name__ == "__main__":
    main()
