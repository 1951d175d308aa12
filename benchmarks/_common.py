"""What the ingestion benchmarks share: a replay server process, CPU and RSS readings, QuantiFy's measured run.

``benchmarks/ingest.py`` and ``benchmarks/peers.py`` both run QuantiFy's
ingestion service against a fresh replay server (speed 0, looping the bundled
recording) into a fresh LMDB store, with the receipt-to-visible latency
measured by a reader in another process and RSS sampled while it runs.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from quantify.config import IngestConfig
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.model.trades import Trade
from quantify.store import open_store
from quantify.venues.binance.parse import FrameParser

REPLAY = (
    "import sys, time; from quantify.replay import ReplayConfig, ReplayThread; "
    "r = ReplayThread(ReplayConfig(speed=0, loop=True)).start(); "
    "print(r.ws_url, r.rest_url, flush=True); time.sleep(3600)"
)
#: The throwaway environment cryptofeed is installed into (never the project's).
CF_VENV = Path("~/.cache/quantify-bench/cryptofeed").expanduser()
CRYPTOFEED = "cryptofeed==2.4.1"
#: The first lines of a cryptofeed child script (its ``import cryptofeed.connection as connection`` before).
CF_PLAIN_WS = '''# cryptofeed refuses ws:// (the replay speaks plain WebSocket on loopback): let the check pass, connect as given
_init = connection.WSAsyncConn.__init__
def _plain_ws(self, address, *args, **kwargs):
    _init(self, address.replace("ws://", "wss://", 1), *args, **kwargs)
    self.address = address
connection.WSAsyncConn.__init__ = _plain_ws
'''


def start_replay(code: str = REPLAY) -> tuple[subprocess.Popen, str, str]:
    """A replay server in a fresh process running ``code``, and its WebSocket and REST URLs."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    ws_url, rest_url = proc.stdout.readline().split()  # type: ignore[union-attr]
    return proc, ws_url, rest_url


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def bare_picows(url: str, n: int, loads: object = None) -> dict[str, float]:
    """A picows client that only receives (``loads(payload)`` each frame, if given): its msgs/s and CPU µs/msg.

    The clock starts at the first frame; the connection closes at the ``n``-th.
    """
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock = {"count": 0, "t0": 0.0, "c0": 0.0}
    text, binary = WSMsgType.TEXT, WSMsgType.BINARY

    class Counter(WSListener):  # type: ignore[misc]
        count = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not text and frame.msg_type is not binary:
                return
            payload = frame.get_payload_as_bytes()
            if loads is not None:
                loads(payload)  # type: ignore[operator]
            self.count += 1
            if self.count == 1:
                clock["t0"], clock["c0"] = time.perf_counter(), cpu_seconds()
            elif self.count >= n and not done.done():
                clock["count"] = self.count
                done.set_result(None)
                transport.disconnect()

    transport, _ = await ws_connect(Counter, url, max_frame_size=1 << 20)
    await done
    t1, c1 = time.perf_counter(), cpu_seconds()
    await transport.wait_disconnected()
    count = clock["count"] - 1
    return {"rate": count / (t1 - clock["t0"]), "cpu_us": (c1 - clock["c0"]) / count * 1e6}


def cryptofeed_python() -> Path:
    """The interpreter of the throwaway cryptofeed environment (made on first use; needs PyPI)."""
    python = CF_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CF_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", CRYPTOFEED], check=True)
    return python


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


@dataclass(frozen=True)
class IngestRun:
    """One measured run of the ingestion service (rates over the trades after the first stored batch)."""

    stored: int
    rate: float  # trades stored per second
    cpu_us: float  # CPU µs of the process per stored trade
    latency_ms: np.ndarray  # receipt-to-visible of the sampled trades
    rss: list[float]  # MB, sampled every 0.5 s
    peak_mb: float
    appends: int
    compactions: int
    store_latency: object

    def rss_thirds(self) -> tuple[float, float, float]:
        third = max(len(self.rss) // 3, 1)
        r = self.rss
        return (float(np.mean(r[:third])), float(np.mean(r[third:2 * third] or r[-1:])),
                float(np.mean(r[2 * third:] or r[-1:])))

    def p(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if len(self.latency_ms) else float("nan")


def _latencies(seen: list[tuple[float, str, int]], received: dict[tuple[str, int], float]) -> np.ndarray:
    """First time the reader saw an id >= a sampled id, minus its receipt (ms)."""
    by_sym: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sym in {s for _, s, _ in seen}:
        obs = [(t, tid) for t, s, tid in seen if s == sym]
        by_sym[sym] = (np.array([o[0] for o in obs]), np.maximum.accumulate(np.array([o[1] for o in obs])))
    lat = []
    for (sym, tid), t_recv in received.items():
        if sym in by_sym:
            times, ids = by_sym[sym]
            k = np.searchsorted(ids, tid)
            if k < len(ids):
                lat.append(times[k] - t_recv)
    return np.array(lat) * 1e3


def run_quantify(n: int, stream: str = "trade", ws_client: str = "picows") -> IngestRun:
    """Ingest ``n`` trades of BTCUSDT and ETHUSDT from a fresh replay into a fresh LMDB store, measured.

    ``ws_client`` is the receiver's WebSocket client (``IngestConfig.ws_client``).
    """
    proc, ws_url, rest_url = start_replay()
    tmp = tempfile.mkdtemp(prefix="quantify-bench-")
    uri = f"lmdb://{tmp}/store"
    seen_file = f"{tmp}/seen.json"
    try:
        config = IngestConfig(symbols=("BTCUSDT", "ETHUSDT"), stream=stream, store=uri,
                              ws_url=ws_url, rest_url=rest_url, ws_client=ws_client)
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
        stored = service.stats.stored
        rate = (stored - s0) / elapsed
        cpu_us = (cpu_seconds() - c0) / (stored - s0) * 1e6
        service.join(timeout=30)
        stop.set()
        rd.join(60)
        seen = json.loads(Path(seen_file).read_text()) if Path(seen_file).exists() else []
    finally:
        proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return IngestRun(stored=service.stats.stored, rate=rate, cpu_us=cpu_us,
                     latency_ms=_latencies(seen, parser.received), rss=rss,
                     peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                     appends=service.stats.appends, compactions=service.stats.compactions,
                     store_latency=service.stats.latency_ms())
