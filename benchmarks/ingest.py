"""Ingestion throughput and latency against the replay server at full speed.

Measured in one run, each against a fresh replay server process (speed 0,
looping the bundled recording, so the server is never the bottleneck it
would be with one ``send()`` per message):

1. the ceilings: a bare websockets client and a bare picows client that only
   count frames;
2. QuantiFy end to end, receiving with each WebSocket client in turn
   (``IngestConfig.ws_client``): parse, journal, id ordering, batched
   ArcticDB appends into a fresh LMDB store;
3. receipt-to-visible latency: a separate reader process polls the store's
   last trade id; every 1,000th trade's receipt time is recorded by a thin
   wrapper around the parser (the only instrumentation);
4. memory: the process's RSS sampled every second.

Usage: python benchmarks/ingest.py [--trades 1000000] [--ws-clients picows,websockets]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import websockets
from _common import bare_picows, cpu_seconds, run_quantify, start_replay

from quantify.config import WS_CLIENTS

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


def ceilings(n: int) -> dict[str, tuple[float, float]]:
    """Frames/s and CPU µs/frame of the bare websockets and picows loops, each against a fresh replay."""
    out = {}
    for client in WS_CLIENTS:
        proc, ws_url, _ = start_replay()
        try:
            if client == "websockets":
                out[client] = asyncio.run(bare_receive(ws_url, n))
            else:
                r = asyncio.run(bare_picows(f"{ws_url}/stream?streams={STREAMS}", n))
                out[client] = r["rate"], r["cpu_us"]
        finally:
            proc.kill()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=1_000_000)
    ap.add_argument("--ws-clients", default=",".join(WS_CLIENTS),
                    help="the receiver's WebSocket clients to run QuantiFy with, in turn")
    args = ap.parse_args()
    n = args.trades
    clients = [c for c in args.ws_clients.split(",") if c]
    for name in clients:
        if name not in WS_CLIENTS:
            ap.error(f"unknown WebSocket client {name!r}; choose from {', '.join(WS_CLIENTS)}")

    ceiling = ceilings(min(n, 500_000))
    for client, (rate, cpu) in ceiling.items():
        print(f"bare {client:<10} receive loop : {rate:,.0f} frames/s, {cpu:.1f} µs CPU/frame (a ceiling)")
    for client in clients:
        run = run_quantify(n, ws_client=client)
        rate, cpu_per_trade = run.rate, run.cpu_us
        first, middle, last = run.rss_thirds()
        print(f"\nQuantiFy receiving with {client}: {run.stored:,} trades ingested")
        print(f"  end to end (LMDB)            : {rate:,.0f} trades/s, {cpu_per_trade:.1f} µs CPU/trade "
              f"(one core's rate {1e6 / cpu_per_trade:,.0f} trades/s)")
        for bare, (bare_rate, bare_cpu) in ceiling.items():
            print(f"  ratio to the bare {bare:<10} : {rate / bare_rate:.2f} wall clock, "
                  f"{bare_cpu / cpu_per_trade:.2f} CPU")
        if len(run.latency_ms):
            print(f"  receipt-to-visible (reader)  : p50 {run.p(50):.0f} ms, "
                  f"p99 {run.p(99):.0f} ms over {len(run.latency_ms)} samples")
        print(f"  RSS (MB) first/middle/last third: {first:.0f} / {middle:.0f} / {last:.0f}; peak {run.peak_mb:.0f}")
        print(f"  appends {run.appends}, compactions {run.compactions}, store latency {run.store_latency}")


if __name__ == "__main__":
    main()
