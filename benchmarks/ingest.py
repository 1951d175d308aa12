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
import json
import multiprocessing as mp
import multiprocessing.synchronize
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets

from quantify.config import IngestConfig
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.model.trades import Trade
from quantify.store import open_store
from quantify.venues.binance.parse import FrameParser

STREAMS = "btcusdt@trade/ethusdt@trade"
REPLAY = (
    "import sys, time; from quantify.replay import ReplayConfig, ReplayThread; "
    "r = ReplayThread(ReplayConfig(speed=0, loop=True)).start(); "
    "print(r.ws_url, r.rest_url, flush=True); time.sleep(3600)"
)


def start_replay() -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([sys.executable, "-c", REPLAY], stdout=subprocess.PIPE, text=True)
    ws_url, rest_url = proc.stdout.readline().split()  # type: ignore[union-attr]
    return proc, ws_url, rest_url


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


class SamplingParser(FrameParser):
    """Records the receipt time of every 1,000th trade id."""

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[tuple[str, int], float] = {}

    def parse(self, frame):  # type: ignore[no-untyped-def]
        event = super().parse(frame)
        if type(event) is Trade and event.trade_id % 1000 == 0:
            self.received[(event.symbol, event.trade_id)] = time.time()
        return event


def reader(uri: str, out: str, ready: mp.synchronize.Event, stop: mp.synchronize.Event) -> None:
    """In another process: poll the last visible trade id of BTCUSDT and ETHUSDT until ``stop``."""
    store = open_store(uri, create=True)  # the writer process may not have made it yet
    seen: list[tuple[float, str, int]] = []
    ready.set()
    while not stop.is_set():
        for sym in ("BTCUSDT", "ETHUSDT"):
            try:
                tail = store._ticks.tail(sym, 1).data
            except Exception:  # the symbol may not exist yet
                continue
            if len(tail):
                seen.append((time.time(), sym, int(tail["trade_id"].iloc[-1])))
        time.sleep(0.01)
    Path(out).write_text(json.dumps(seen))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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

    proc, ws_url, rest_url = start_replay()
    tmp = tempfile.mkdtemp(prefix="quantify-bench-")
    uri = f"lmdb://{tmp}/store"
    seen_file = f"{tmp}/seen.json"
    try:
        config = IngestConfig(store=uri, ws_url=ws_url, rest_url=rest_url)
        service = IngestService(config, listeners=standard_listeners(open_store(uri, create=True), config))
        parser = SamplingParser()
        service.feeds["binance"].parser = parser  # the spot feed's parser
        # The reader polls before the first trade arrives, so its start-up
        # (a fresh interpreter importing ArcticDB) is not counted as latency.
        ctx = mp.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        rd = ctx.Process(target=reader, args=(uri, seen_file, ready, stop))
        rd.start()
        ready.wait(120)
        service.start_in_thread()
        rss = []
        t0 = None
        while True:
            time.sleep(0.5)
            stored = service.stats.stored
            if t0 is None and stored > 0:
                t0, s0, c0 = time.perf_counter(), stored, cpu_seconds()
            rss.append(rss_mb())
            if stored >= n:
                break
        elapsed = time.perf_counter() - t0  # type: ignore[operator]
        rate = (service.stats.stored - s0) / elapsed
        cpu_per_trade = (cpu_seconds() - c0) / (service.stats.stored - s0) * 1e6
        service.join(timeout=30)
        stop.set()
        rd.join(60)
    finally:
        proc.kill()

    # Latency: first time the reader saw an id >= a sampled id, minus its receipt.
    seen = json.loads(Path(seen_file).read_text()) if Path(seen_file).exists() else []
    shutil.rmtree(tmp, ignore_errors=True)
    by_sym: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sym in {s for _, s, _ in seen}:
        obs = [(t, tid) for t, s, tid in seen if s == sym]
        by_sym[sym] = (np.array([o[0] for o in obs]), np.maximum.accumulate(np.array([o[1] for o in obs])))
    lat = []
    for (sym, tid), t_recv in parser.received.items():
        if sym in by_sym:
            times, ids = by_sym[sym]
            k = np.searchsorted(ids, tid)
            if k < len(ids):
                lat.append(times[k] - t_recv)
    lat_arr = np.array(lat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    third = max(len(rss) // 3, 1)
    print(f"trades ingested                : {service.stats.stored:,}")
    print(f"bare websockets receive loop   : {ceiling:,.0f} frames/s (the ceiling)")
    print(f"QuantiFy end to end (LMDB)     : {rate:,.0f} trades/s")
    print(f"ratio end-to-end / ceiling     : {rate / ceiling:.2f}")
    print(f"CPU per trade: receive only {ceiling_cpu:.1f} µs, end to end {cpu_per_trade:.1f} µs "
          f"(ratio {ceiling_cpu / cpu_per_trade:.2f}; one core's rate {1e6 / cpu_per_trade:,.0f} trades/s)")
    if len(lat_arr):
        print(f"receipt-to-visible (reader)    : p50 {np.percentile(lat_arr, 50) * 1e3:.0f} ms, "
              f"p99 {np.percentile(lat_arr, 99) * 1e3:.0f} ms over {len(lat_arr)} samples")
    print(f"RSS (MB) first/middle/last third: {np.mean(rss[:third]):.0f} / "
          f"{np.mean(rss[third:2 * third]):.0f} / {np.mean(rss[2 * third:]):.0f}; peak {peak:.0f}")
    print(f"appends {service.stats.appends}, compactions {service.stats.compactions}, "
          f"store latency {service.stats.latency_ms()}")


if __name__ == "__main__":
    main()
