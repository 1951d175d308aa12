"""Dashboard benchmark: first data after page load, frames/s, messages/s per figure.

Full-speed replay (speed 0, looping) → ingestion → store. Two measurements:

1. In-process: a PairMonitor tails the store under the full-speed stream for
   ``SECONDS``; frames drawn per second and widget messages per second per
   figure (counted by hooking ``Widget._send``). Targets: ≥5 fps, ≤50 msgs/s.
2. Browser (Debian Chromium, headless): Voilà serves the pairs monitor; time
   from ``page.goto`` to the first plotted point. Target: ≤5 s.

Run: ``python benchmarks/dashboard.py``.
"""

from __future__ import annotations

import collections
import tempfile
import time

SECONDS = 10.0


def main() -> None:
    import ipywidgets

    from quantify.config import IngestConfig
    from quantify.feed.replay import ReplayConfig, ReplayThread
    from quantify.ingest.service import IngestService
    from quantify.widgets import PairMonitor

    uri = f"lmdb://{tempfile.mkdtemp()}/store"
    replay = ReplayThread(ReplayConfig(speed=0, loop=True)).start()
    service = IngestService(IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url, journal=False))
    service.start_in_thread()
    time.sleep(2)
    counts: collections.Counter[str] = collections.Counter()
    original = ipywidgets.Widget._send

    def send(self, msg, buffers=None):  # type: ignore[no-untyped-def]
        counts[self.model_id] += 1
        return original(self, msg, buffers)

    ipywidgets.Widget._send = send
    mon = PairMonitor("BTCUSDT", "ETHUSDT", "1s", 60, store=uri, autostart=False, fps=10)
    counts.clear()
    frames0 = mon.frames_drawn
    mon.start()
    time.sleep(SECONDS)
    mon.stop()
    ipywidgets.Widget._send = original
    fps = (mon.frames_drawn - frames0) / SECONDS
    per_fig = {}
    for name, fig in mon.figures.items():
        ids = {fig.model_id, *(m.model_id for m in fig.marks), *(a.model_id for a in fig.axes)}
        per_fig[name] = sum(counts[i] for i in ids) / SECONDS
    print(f"in-process, full-speed replay: {fps:.1f} frames/s (target >= 5); "
          f"messages/s per figure: {', '.join(f'{k} {v:.1f}' for k, v in per_fig.items())} (target <= 50); "
          f"{service.status()['ticks_per_second']:,.0f} ticks/s stored")
    mon.close()

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
            page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
            first = time.monotonic() - t0
            browser.close()
        print(f"browser: first data drawn {first:.1f} s after page load (target <= 5 s)")
    finally:
        proc.terminate()
        service.join(10)
        replay.stop()


if __name__ == "__main__":
    main()
