"""Dashboard benchmark: first data after page load, frames/s, messages/s per figure.

Full-speed replay (speed 0, looping) → ingestion → store, each in its own
process (``quantify replay``, ``quantify ingest``), as in a deployment where
the dashboard's kernel tails a store another process writes. Two measurements:

1. At full speed and at 40x real time, a PairMonitor as the pairs dashboard builds it (``1s`` bars, window 60,
   1,500 bars) tails the store for ``SECONDS``: frames drawn per second and
   widget messages per second per figure (counted by hooking
   ``Widget._send``), with the writer's appends per second beside them (a
   frame is drawn only when new trades are stored, so appends/s bounds fps).
   Targets: ≥5 fps, ≤50 msgs/s. Also the time to build the monitor (history
   read through ``Store.ohlcv`` plus the first frame).
2. Browser (Debian Chromium, headless): Voilà serves the pairs monitor; time
   from ``page.goto`` to the page's load event, to the first bqplot figure and
   to the first plotted line. Target: ≤5 s to the first line.

Run: ``python benchmarks/dashboard.py``.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit

SECONDS = 10.0
WARMUP = 4.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _writer(uri: str, speed: float) -> list[subprocess.Popen[bytes]]:
    port = _free_port()
    cli = [sys.executable, "-m", "quantify"]
    log = open(os.devnull, "wb")
    replay = subprocess.Popen([*cli, "replay", "--speed", str(speed), "--loop", "--port", str(port)],
                              stdout=log, stderr=log, start_new_session=True)
    time.sleep(2)
    ingest = subprocess.Popen([*cli, "ingest", "--store", uri, "--ws-url", f"ws://127.0.0.1:{port}",
                               "--rest-url", f"http://127.0.0.1:{port}", "--no-journal"],
                              stdout=log, stderr=log, start_new_session=True)
    return [ingest, replay]


def _monitor(speed: float, browser: bool) -> None:
    import ipywidgets

    from quantify.store import open_store
    from quantify.widgets import PairMonitor

    uri = f"lmdb://{tempfile.mkdtemp()}/store"
    procs = _writer(uri, speed)
    try:
        store = open_store(uri, create=True)  # the writer process may not have made it yet
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(store.symbols()) < 2:
            time.sleep(0.2)
        time.sleep(WARMUP)
        counts: collections.Counter[str] = collections.Counter()
        original = ipywidgets.Widget._send

        def send(self, msg, buffers=None):  # type: ignore[no-untyped-def]
            counts[self.model_id] += 1
            return original(self, msg, buffers)

        ipywidgets.Widget._send = send
        t0 = time.monotonic()
        mon = PairMonitor("BTCUSDT", "ETHUSDT", "1s", 60, store=store, autostart=False, fps=10, bars=1500)
        build = time.monotonic() - t0
        status0 = store.read_status() or {}
        counts.clear()
        frames0 = mon.frames_drawn
        mon.start()
        time.sleep(SECONDS)
        mon.stop()
        status1 = store.read_status() or {}
        ipywidgets.Widget._send = original
        fps = (mon.frames_drawn - frames0) / SECONDS
        per_fig = {}
        for name, fig in mon.figures.items():
            ids = {fig.model_id, *(m.model_id for m in fig.marks), *(a.model_id for a in fig.axes)}
            per_fig[name] = sum(counts[i] for i in ids) / SECONDS
        stored = (status1.get("trades_stored", 0) - status0.get("trades_stored", 0)) / SECONDS
        appends = (status1.get("appends", 0) - status0.get("appends", 0)) / SECONDS
        frame_ms = 1e3 * min(timeit.repeat(mon.refresh, number=1, repeat=5))
        mon._dirty = True
        draw_ms = 1e3 * min(timeit.repeat(lambda: (setattr(mon, "_dirty", True), mon.refresh()), number=1, repeat=5))
        label = "full speed" if speed == 0 else f"{speed:g}x real time"
        print(f"replay {label}: PairMonitor (1s bars, 1,500 bars) tailing the store: built in {build:.2f} s; "
              f"{fps:.1f} frames/s (target >= 5); messages/s per figure: "
              f"{', '.join(f'{k} {v:.1f}' for k, v in per_fig.items())} (target <= 50); "
              f"writer: {stored:,.0f} ticks/s stored in {appends:.1f} appends/s; "
              f"one frame: {frame_ms:.0f} ms polling, {draw_ms:.0f} ms polling and redrawing")
        mon.close()
        if browser:
            _browser(uri)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    _monitor(0, browser=True)
    _monitor(40, browser=False)


def _browser(uri: str) -> None:
    from playwright.sync_api import sync_playwright

    from quantify.cli.dashboard import serve_dashboard

    url, proc = serve_dashboard("pairs_monitor", uri)
    time.sleep(8)  # the preheated kernel runs the dashboard before the first visitor
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--headless", "--no-sandbox", "--disable-gpu",
                                               "--disable-background-networking"])
            page = browser.new_page()
            t0 = time.monotonic()
            page.goto(url, timeout=60_000)
            loaded = time.monotonic() - t0
            page.wait_for_selector(".bqplot svg", state="attached", timeout=60_000)
            figure = time.monotonic() - t0
            page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
            first = time.monotonic() - t0
            browser.close()
        print(f"browser: page loaded {loaded:.1f} s, first figure {figure:.1f} s, "
              f"first data drawn {first:.1f} s after page.goto (target <= 5 s)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
