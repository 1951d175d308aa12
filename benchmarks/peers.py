"""QuantiFy's ingestion side by side with cryptofeed and a bare receive loop, on the replay server.

Every client reads the same combined stream of BTCUSDT and ETHUSDT (``@trade``
or ``@aggTrade``) from a fresh replay server process (speed 0, looping the
bundled recording), in a fresh process of its own; the trials interleave the
clients (bare, cryptofeed, QuantiFy, bare, ...) so a load that changes over
the run touches each alike:

1. bare: a websockets receive loop that decodes each frame with orjson and
   keeps nothing; bare-picows: the same with picows (frames parsed in Cython,
   one callback per frame);
2. cryptofeed: its Binance feed with a no-op trade callback, pointed at the
   replay by a subclass setting its WebSocket and REST endpoints, installed in
   its own virtual environment (``~/.cache/quantify-bench/cryptofeed``, made
   on first use from PyPI; never the project's);
3. QuantiFy: the ingestion service storing every trade into a fresh LMDB
   store (journal, id continuity, batched appends, 1m aggregates, alerts), as
   ``benchmarks/ingest.py`` runs it, with its receipt-to-visible latency and
   RSS, receiving with picows (the default ``ws_client``); quantify-websockets:
   the same service receiving with websockets.

Reported per client: messages per second and CPU µs per message of the client
process (``getrusage``), the median over the trials; then the ratios
of each QuantiFy run to each peer.

Usage: python benchmarks/peers.py [--trades 300000] [--trials 3] [--kinds trade,aggTrade]
       [--clients bare,bare-picows,cryptofeed,quantify,quantify-websockets]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import orjson
import websockets
from _common import CF_PLAIN_WS, bare_picows, cpu_seconds, cryptofeed_python, run_quantify, start_replay

CLIENTS = ("bare", "bare-picows", "cryptofeed", "quantify", "quantify-websockets")
#: QuantiFy's runs, by client name: the receiver's WebSocket client.
QUANTIFY = {"quantify": "picows", "quantify-websockets": "websockets"}
KINDS = ("trade", "aggTrade")
# cryptofeed's Binance TRADES channel subscribes @aggTrade and its handler dispatches only "aggTrade"
# events; for the @trade kind the subclass subscribes @trade and hands each trade to the same _trade
# (whose fields match but for the id: "t", not "a").
CF_CLIENT = '''
import asyncio, json, os, sys, time
from decimal import Decimal
import cryptofeed.connection as connection
from cryptofeed import FeedHandler
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Binance
''' + CF_PLAIN_WS + '''WS, REST, N, KIND = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class ReplayBinance(Binance):
    websocket_endpoints = [WebsocketEndpoint(WS)]
    rest_endpoints = [RestEndpoint(REST, routes=Routes("/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}",
                                                       authentication="/api/v3/userDataStream"))]
    websocket_channels = {**Binance.websocket_channels, TRADES: KIND}
    async def message_handler(self, msg, conn, timestamp):
        # the same work as cryptofeed's own handler for an aggTrade: decode with Decimal floats, then _trade
        if KIND == "trade":
            data = json.loads(msg, parse_float=Decimal)["data"]
            if data.get("e") == "trade":
                data["a"] = data["t"]
                await self._trade(data, timestamp)
                return
        await super().message_handler(msg, conn, timestamp)
state = {"n": 0, "t0": None}
async def trade(t, receipt):
    state["n"] += 1
    if state["t0"] is None:
        state["t0"] = (time.perf_counter(), time.process_time())
    elif state["n"] >= N:
        t0, c0 = state["t0"]
        print(state["n"] - 1, time.perf_counter() - t0, time.process_time() - c0, flush=True)
        os._exit(0)
fh = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
fh.add_feed(ReplayBinance(symbols=["BTC-USDT", "ETH-USDT"], channels=[TRADES], callbacks={TRADES: trade}))
fh.run(install_signal_handlers=False)
'''


def streams(kind: str) -> str:
    return f"btcusdt@{kind}/ethusdt@{kind}"


async def _bare(ws_url: str, n: int, kind: str) -> dict[str, float]:
    loads = orjson.loads
    async with websockets.connect(f"{ws_url}/stream?streams={streams(kind)}", max_size=1 << 20,
                                  compression=None) as ws:
        count = 0
        t0 = c0 = 0.0
        async for frame in ws:
            loads(frame)
            count += 1
            if count == 1:
                t0, c0 = time.perf_counter(), cpu_seconds()
            elif count >= n:
                break
        return {"rate": (count - 1) / (time.perf_counter() - t0), "cpu_us": (cpu_seconds() - c0) / (count - 1) * 1e6}


def child(client: str, kind: str, n: int, ws_url: str) -> dict[str, float]:
    """In a fresh process: one client's measured run."""
    if client == "bare":
        return asyncio.run(_bare(ws_url, n, kind))
    if client == "bare-picows":
        return asyncio.run(bare_picows(f"{ws_url}/stream?streams={streams(kind)}", n, orjson.loads))
    run = run_quantify(n, kind, QUANTIFY[client])
    first, middle, last = run.rss_thirds()
    return {"rate": run.rate, "cpu_us": run.cpu_us, "p50_ms": run.p(50), "p99_ms": run.p(99),
            "rss_first": first, "rss_middle": middle, "rss_last": last}


def trial(client: str, kind: str, n: int) -> dict[str, float]:
    """One trial of ``client`` against a fresh replay server (QuantiFy's run starts its own)."""
    if client in QUANTIFY:
        out = subprocess.run([sys.executable, __file__, "--child", client, "--kinds", kind, "--trades", str(n)],
                             capture_output=True, text=True, check=True, timeout=1800)
        return json.loads(out.stdout.splitlines()[-1])
    proc, ws_url, rest_url = start_replay()
    try:
        if client.startswith("bare"):
            cmd = [sys.executable, __file__, "--child", client, "--kinds", kind, "--trades", str(n), "--ws", ws_url]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
            return json.loads(out.stdout.splitlines()[-1])
        out = subprocess.run([str(cryptofeed_python()), "-c", CF_CLIENT, ws_url, rest_url, str(n), kind],
                             capture_output=True, text=True, timeout=1800, check=True,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
        count, elapsed, cpu = out.stdout.split()
        return {"rate": int(count) / float(elapsed), "cpu_us": float(cpu) / int(count) * 1e6}
    finally:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=300_000, help="messages per client per trial")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(KINDS), help="stream kinds: trade,aggTrade")
    ap.add_argument("--clients", default=",".join(CLIENTS), help=",".join(CLIENTS))
    ap.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    clients = [c for c in args.clients.split(",") if c]
    for name in kinds:
        if name not in KINDS:
            ap.error(f"unknown stream kind {name!r}; choose from {', '.join(KINDS)}")
    for name in clients:
        if name not in CLIENTS:
            ap.error(f"unknown client {name!r}; choose from {', '.join(CLIENTS)}")
    if args.child:
        print(json.dumps(child(args.child, kinds[0], args.trades, args.ws)))
        return
    if "cryptofeed" in clients:
        cryptofeed_python()  # install before timing anything
    print(f"{args.trades:,} messages per client per trial, {args.trials} interleaved trials, "
          f"{os.cpu_count()} CPUs; median over the trials")
    for kind in kinds:
        results: dict[str, list[dict[str, float]]] = {c: [] for c in clients}
        for _ in range(args.trials):
            for client in clients:
                results[client].append(trial(client, kind, args.trades))
        med = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for c, rs in results.items()}
        print(f"\n@{kind} (BTCUSDT + ETHUSDT, combined stream)")
        for client, m in med.items():
            rates = ", ".join(f"{r['rate'] / 1e3:.0f}k" for r in results[client])
            print(f"  {client:<19}: {m['rate']:>9,.0f} msgs/s  {m['cpu_us']:5.1f} µs CPU/msg  (trials {rates})")
        for name in QUANTIFY:
            q = med.get(name)
            if q is None:
                continue
            for peer in ("quantify-websockets", "cryptofeed", "bare", "bare-picows"):
                if peer in med and peer != name:
                    print(f"  {name} / {peer:<19}: {q['rate'] / med[peer]['rate']:.2f}× msgs/s, "
                          f"{med[peer]['cpu_us'] / q['cpu_us']:.2f}× CPU efficiency")
            print(f"  {name} receipt-to-visible p50 {q['p50_ms']:.0f} ms, p99 {q['p99_ms']:.0f} ms; "
                  f"RSS (MB) first/middle/last third {q['rss_first']:.0f} / {q['rss_middle']:.0f} / "
                  f"{q['rss_last']:.0f}")


if __name__ == "__main__":
    main()
