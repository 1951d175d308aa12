"""The ingestion side of ``benchmarks/book.py``: three clients of one replay server, one after another.

Each client gets a fresh replay server process (speed 0, looping the bundled
spot BTCUSDT recording: per diff about 11 ``@bookTicker`` events and 2
aggregate trades) and the same three streams, ``btcusdt@aggTrade`` (what
cryptofeed's ``TRADES`` channel subscribes), ``btcusdt@depth@100ms`` and
``btcusdt@bookTicker``:

1. a bare websockets receive loop that only counts frames (the ceiling), on
   QuantiFy's connections: the trades on one, the book's streams on another;
2. QuantiFy: ``IngestService`` with ``books=("BTCUSDT",)`` into a fresh LMDB
   store: journal, Binance's procedure, bookTicker checks, quotes, diffs,
   checkpoints and ledger appended to ArcticDB, and every trade stored
   (trades on a connection of their own, as QuantiFy streams them);
3. cryptofeed's Binance L2 book (``TRADES``, ``L2_BOOK`` and ``TICKER``
   channels, no-op callbacks; all three streams on its one connection) in its
   own virtual environment (created on first use in
   ``~/.cache/quantify-bench/cryptofeed``, never in the project's).

Two runs: at speed 0 (as fast as each client reads: throughput, diff events
per second, applied and stored for QuantiFy, book callbacks for cryptofeed,
diff frames received for the bare loop), and paced at the recording's speed
times 40, where every client receives the same frames in the same wall time
and what differs is the CPU each spends per diff event (all frames
included). At speed 0 the layouts differ: cryptofeed reads the trades on
the book's connection (at the recording's mix), QuantiFy and the bare loop
on a connection of their own, which the replay serves as fast as it is read.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from typing import Any

import _common
import websockets
from _common import CF_PLAIN_WS, cpu_seconds, cryptofeed_python

from quantify.config import IngestConfig
from quantify.ingest.service import IngestService

BOOK_STREAMS = "btcusdt@depth@100ms/btcusdt@bookTicker"
REPLAY = (
    "import time; from quantify.replay import ReplayConfig, ReplayThread; "
    "from quantify.venues.binance.recordings import book_sample_files, sample_files; "
    "files = tuple(p for p in book_sample_files() if p.name.startswith('spot-2024-btcusdt')) "
    "+ tuple(p for p in sample_files() if 'btcusdt' in p.name); "
    "r = ReplayThread(ReplayConfig(files=files, speed={speed}, loop=True)).start(); "
    "print(r.ws_url, r.rest_url, flush=True); time.sleep(3600)"
)
CF_CLIENT = '''
import asyncio, os, sys, time
from cryptofeed import FeedHandler
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exchanges import Binance
import cryptofeed.connection as connection
''' + CF_PLAIN_WS + '''WS, REST, DIFFS = sys.argv[1], sys.argv[2], int(sys.argv[3])
class ReplayBinance(Binance):
    websocket_endpoints = [WebsocketEndpoint(WS)]
    rest_endpoints = [RestEndpoint(REST, routes=Routes("/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}",
                                                       authentication="/api/v3/userDataStream"))]
state = {"n": 0, "t0": None}
async def book(b, receipt):
    state["n"] += 1
    if state["t0"] is None:
        state["t0"] = (time.perf_counter(), time.process_time())
    elif state["n"] >= DIFFS:
        t0, c0 = state["t0"]
        print(state["n"] - 1, time.perf_counter() - t0, time.process_time() - c0, flush=True)
        os._exit(0)
async def other(t, receipt):
    pass
fh = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
fh.add_feed(ReplayBinance(symbols=["BTC-USDT"], channels=[TRADES, L2_BOOK, TICKER],
                          callbacks={L2_BOOK: book, TICKER: other, TRADES: other}, max_depth=1000))
fh.run(install_signal_handlers=False)
'''


def start_replay(speed: float) -> tuple[subprocess.Popen, str, str]:
    return _common.start_replay(REPLAY.format(speed=speed))


async def _count(url: str) -> None:
    async with websockets.connect(url, max_size=1 << 22, compression=None) as ws:
        async for _ in ws:
            pass


async def _bare(ws_url: str, diffs: int) -> tuple[float, float]:
    # QuantiFy's layout: the trades on one connection, the book's two streams on another
    trades = asyncio.ensure_future(_count(f"{ws_url}/stream?streams=btcusdt@aggTrade"))
    try:
        async with websockets.connect(f"{ws_url}/stream?streams={BOOK_STREAMS}", max_size=1 << 22,
                                      compression=None) as ws:
            n = 0
            t0 = c0 = 0.0
            async for frame in ws:
                if b'"depthUpdate"' in (frame if isinstance(frame, bytes) else frame.encode()):
                    n += 1
                    if n == 1:
                        t0, c0 = time.perf_counter(), cpu_seconds()
                    elif n >= diffs:
                        break
            return (n - 1) / (time.perf_counter() - t0), (cpu_seconds() - c0) / (n - 1)
    finally:
        trades.cancel()


def bare(diffs: int, speed: float = 0) -> tuple[float, float]:
    """Diff frames per second a receive loop can take (with the trades and tickers between them), CPU s per diff."""
    proc, ws_url, _ = start_replay(speed)
    try:
        return asyncio.run(_bare(ws_url, diffs))
    finally:
        proc.kill()


def quantify(diffs: int, speed: float = 0) -> tuple[float, float, dict[str, Any]]:
    """Diff events applied and stored per second by the ingestion service, CPU s per diff, its book status."""
    proc, ws_url, rest_url = start_replay(speed)
    tmp = tempfile.mkdtemp(prefix="quantify-book-bench-")
    try:
        service = IngestService(IngestConfig(symbols=("BTCUSDT",), books=("BTCUSDT",), stream="aggTrade",
                                             store=f"lmdb://{tmp}/store",
                                             ws_url=ws_url, rest_url=rest_url, alerts=False))
        service.start_in_thread()
        t0 = c0 = s0 = None
        while True:
            time.sleep(0.25)
            stored = service.stats.quotes_stored
            if t0 is None and stored > 0:
                t0, c0, s0 = time.perf_counter(), cpu_seconds(), stored
            if t0 is not None and stored - s0 >= diffs:
                break
        rate = (service.stats.quotes_stored - s0) / (time.perf_counter() - t0)
        cpu = (cpu_seconds() - c0) / (service.stats.quotes_stored - s0)
        service.join(timeout=30)
        book = service.status().books["BTCUSDT"]
        return rate, cpu, {"gaps": book.gaps, "mismatches": book.mismatches, "ticker_checks": book.ticker_checks,
                           "refreshes": book.refreshes}
    finally:
        proc.kill()


def cryptofeed(diffs: int, speed: float = 0) -> tuple[float, float]:
    """Book updates per second cryptofeed's Binance L2 book takes (no-op callbacks), CPU s per update."""
    python = cryptofeed_python()
    proc, ws_url, rest_url = start_replay(speed)
    try:
        out = subprocess.run([str(python), "-c", CF_CLIENT, ws_url, rest_url, str(diffs)], capture_output=True,
                             text=True, timeout=600, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        n, elapsed, cpu = out.stdout.split()
        return int(n) / float(elapsed), float(cpu) / int(n)
    finally:
        proc.kill()
