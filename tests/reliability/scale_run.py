"""Three ``quantify ingest`` workers on one S3 store, a synthetic universe, one worker killed.

The runner behind ``tests/reliability/test_scale_workers.py`` and
``benchmarks/scale.py``: a replay serves ``instruments`` synthetic
instruments (:mod:`quantify.replay.universe`); ``workers`` worker processes
each ask for their slice (``--symbols``) and stand by for every other
(``--standby``), so the store's leases (:mod:`quantify.store.shard`) split
the universe between them. Once every instrument is owned and trades flow,
worker 0 is killed (SIGKILL); its instruments must be taken over by the
others once its lease expires and backfilled over REST. The check: every
instrument's stored trade ids are contiguous, without a duplicate, and end
at the replay's last id.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from quantify.exceptions import StoreError
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.store.shard import read_leases
from quantify.store.status import status


@dataclass
class ScaleResult:
    """What a scale run measured (see :func:`run_scale`)."""

    instruments: int
    streams: int
    trades_replayed: int = 0
    trades_stored: int = 0
    #: Instruments whose stored ids have a hole, a duplicate, or do not end at the replay's last id.
    bad: dict[str, str] = field(default_factory=dict)
    killed_owned: int = 0
    takeovers: int = 0
    takeover_s: float | None = None
    caught_up_s: float | None = None
    run_s: float = 0.0
    status_s: float = 0.0
    status_cli_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    store_latency_ms: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness_s: list[float] = field(default_factory=list)

    @property
    def cpu_us_per_message(self) -> float | None:
        frames = sum(self.frames.values())
        return 1e6 * sum(self.cpu_s.values()) / frames if frames else None

    def lines(self) -> list[str]:
        fresh = sorted(self.freshness_s)
        p50 = fresh[len(fresh) // 2] if fresh else None
        per_msg = self.cpu_us_per_message
        return [
            f"instruments {self.instruments}, streams {self.streams}, trades replayed {self.trades_replayed}, "
            f"stored {self.trades_stored}, bad instruments {len(self.bad)}",
            f"killed worker owned {self.killed_owned}; takeovers {self.takeovers}; all taken over "
            f"{_s(self.takeover_s)} after the kill; every instrument at the replay's last id "
            f"{_s(self.caught_up_s)} after the kill",
            f"worker CPU {_f(per_msg)} us per message received; RSS per worker (MB) "
            + ", ".join(f"{w} {mb:.0f}" for w, mb in sorted(self.rss_mb.items())),
            "append latency (ms, p50/p99) " + ", ".join(
                f"{w} {_f(lat.get('p50'))}/{_f(lat.get('p99'))}" for w, lat in sorted(self.store_latency_ms.items())),
            f"reader freshness (s behind the replay clock, median of {len(fresh)} samples) {_f(p50)}",
            f"status of {self.instruments} instruments: {self.status_s:.2f} s in process, "
            f"{self.status_cli_s:.2f} s as `quantify status --json`; run {self.run_s:.0f} s",
        ]


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.1f} s"


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _worker(uri: str, replay: ReplayThread, log: Path, mine: list[str], others: list[str],
            lease_ttl: float, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "quantify", "-v", "ingest", "--store", uri, "--ws-url", replay.ws_url,
           "--rest-url", replay.rest_url, "--symbols", ",".join(mine), "--lease-ttl", f"{lease_ttl:g}",
           "--no-journal", *extra]
    if others:
        cmd += ["--standby", ",".join(others)]
    return subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT)


def _owners(uri: str) -> dict[str, int]:
    """Instrument -> pid of the worker holding its live lease."""
    return {lease.symbol: lease.pid for lease in read_leases(open_store(uri, create=True)) if lease.alive()}


def _wait(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until true or ``timeout``; a read that fails (a loaded store or replay) counts as false."""
    def check() -> bool:
        try:
            return bool(predicate())
        except (StoreError, TimeoutError):
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def _sample(proc: subprocess.Popen, name: str, result: ScaleResult) -> None:
    try:
        p = psutil.Process(proc.pid)
        cpu = p.cpu_times()
        result.cpu_s[name] = cpu.user + cpu.system
        result.rss_mb[name] = max(result.rss_mb.get(name, 0.0), p.memory_info().rss / 2**20)
    except psutil.Error:
        pass


def run_scale(uri: str, log_dir: Path, *, instruments: int = 30, seconds: float = 120.0, speed: float = 4.0,
              workers: int = 3, lease_ttl: float = 6.0, kill_after: float = 0.35, timeout: float = 240.0,
              extra: tuple[str, ...] = (), say: Any = print) -> ScaleResult:
    """Run the scenario of the module docstring on the S3 store ``uri``; return what it measured.

    Parameters
    ----------
    instruments, seconds, speed
        The synthetic universe: size, seconds of the recording, replay speed.
    workers, lease_ttl
        Worker processes and their ``--lease-ttl``.
    kill_after
        Fraction of the replay's duration after which worker 0 is killed.
    timeout
        Seconds any phase may take.
    extra
        More ``quantify ingest`` options (``--book`` ...).
    """
    t0 = time.monotonic()
    cfg = ReplayConfig(speed=speed, seed=1, synthetic_universe=instruments, universe_seconds=seconds)
    with ReplayThread(cfg) as replay:
        tape = replay.server.tape
        symbols = sorted(tape.symbols)
        last_ids = {s: tape.symbols[s].ids[-1] for s in symbols}
        duration = (tape.last_time - tape.first_time) / 1000 / speed
        streams = len(symbols) * (3 if "--book" in extra else 1)
        result = ScaleResult(instruments=len(symbols), streams=streams)
        slices = [symbols[k::workers] for k in range(workers)]
        names = [f"w{k}" for k in range(workers)]
        logs = [log_dir / f"{n}.log" for n in names]
        procs = [_worker(uri, replay, logs[k], slices[k], [s for s in symbols if s not in slices[k]],
                         lease_ttl, list(extra)) for k in range(workers)]
        stop_sampling = threading.Event()

        def sample() -> None:
            store = open_store(uri, create=True)
            watched = symbols[1::max(1, len(symbols) // 5)][:5]  # a few instruments the killed one does not own
            while not stop_sampling.wait(1.0):
                for name, proc in zip(names, procs):
                    if proc.poll() is None:
                        _sample(proc, name, result)
                try:  # the replay's loop may be too busy to answer within its timeout
                    now_ms, started = replay.now_ms(), replay.stats["started"]
                except TimeoutError:
                    continue
                if started and now_ms < tape.last_time:
                    try:
                        last = [store.last_trade(s) for s in watched]
                    except Exception:  # a reader's hiccup is no measurement
                        continue
                    times = [t.value // 10**6 for t in (x[1] for x in last if x is not None)]
                    if times:
                        result.freshness_s.append((now_ms - max(times)) / 1000)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            if not _wait(lambda: len(_owners(uri)) == len(symbols), timeout):
                raise AssertionError(f"not every instrument got an owner: {len(_owners(uri))} of {len(symbols)}; "
                                     + logs[0].read_text()[-2000:])
            owners: dict[str, int] = {}
            _wait(lambda: owners.update(_owners(uri)) or len(owners) == len(symbols), timeout)
            by_owner: dict[int, list[str]] = {}
            for s, o in owners.items():
                by_owner.setdefault(o, []).append(s)
            say(f"owned: {sorted(len(v) for v in by_owner.values())} instruments per worker; "
                f"replay {duration:.0f} s long")
            kill_at = duration * kill_after
            _wait(lambda: replay.stats["started"]
                  and (replay.now_ms() - tape.first_time) / 1000 / speed >= kill_at, timeout)
            now_owned: dict[str, int] = {}
            _wait(lambda: now_owned.update(_owners(uri)) or len(now_owned) == len(symbols), timeout)
            killed_owned = [s for s, pid in now_owned.items() if pid == procs[0].pid]
            result.killed_owned = len(killed_owned)
            _sample(procs[0], names[0], result)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            killed = time.monotonic()
            say(f"killed {names[0]} (owned {len(killed_owned)}) at replay second "
                f"{(replay.now_ms() - tape.first_time) / 1000:.0f} of {duration * speed:.0f}")
            def taken_over() -> bool:
                owners = _owners(uri)
                return len(owners) == len(symbols) and procs[0].pid not in owners.values()

            if _wait(taken_over, timeout):
                result.takeover_s = time.monotonic() - killed
            store = open_store(uri, create=True)

            def caught_up() -> bool:
                last = store.last_trades()
                return all(last.get(s, (0,))[0] == last_ids[s] for s in symbols)

            if _wait(caught_up, timeout + duration, 1.0):
                result.caught_up_s = time.monotonic() - killed
            stats = replay.stats
            result.trades_replayed = sum(stats["trades_replayed"].values())
            t = time.perf_counter()
            st = status(open_store(uri, create=True))
            result.status_s = time.perf_counter() - t
            assert len(st.instruments) == len(symbols)
            t = time.perf_counter()
            cli = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", uri, "--json"],
                                 check=False, capture_output=True, text=True, timeout=120)
            result.status_cli_s = time.perf_counter() - t
            assert cli.returncode == 0, cli.stderr[-2000:]
            for name, w in store.worker_statuses().items():
                result.store_latency_ms[name] = w.get("store_latency_ms", {})
                result.frames[name] = int(w.get("frames") or 0)
        finally:
            stop_sampling.set()
            sampler.join(5)
            for name, proc in zip(names, procs):
                if proc.poll() is None:
                    _sample(proc, name, result)
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(180)  # a final flush of 100 instruments on a loaded moto takes a minute or more
                except subprocess.TimeoutExpired:
                    proc.kill()
    # the killed worker's frames are not in the store's statuses: it never published its last count
    result.takeovers = sum(log.read_text().count("took over from") for log in logs)
    store = open_store(uri, create=True)
    for s in symbols:
        ids = store.ticks(s)["trade_id"].tolist() if s in store.symbols() else []
        result.trades_stored += len(ids)
        if not ids:
            result.bad[s] = "nothing stored"
        elif ids != list(range(ids[0], ids[0] + len(ids))):
            result.bad[s] = f"{len(ids)} ids, {len(set(ids))} distinct, {ids[-1] - ids[0] + 1} in their range"
        elif ids[-1] != last_ids[s]:
            result.bad[s] = f"ends at {ids[-1]}, the replay at {last_ids[s]}"
    for proc, log in zip(procs[1:], logs[1:]):
        if proc.returncode != 0:
            result.bad[f"worker {log.stem}"] = f"exit {proc.returncode}: {log.read_text()[-1500:]}"
    result.run_s = time.monotonic() - t0
    return result
