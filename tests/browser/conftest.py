"""Fixtures of the browser tests: replay + ingestion + Voilà on 127.0.0.1, Debian's Chromium.

The tests FAIL (never skip) when Chromium is missing: CI installs it
(``scripts/install-system-packages``); playwright never downloads a browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QUANTIFY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def live_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store the replay (real time, looping) streams into, through the ingestion service."""
    from quantify.config import IngestConfig
    from quantify.ingest.listeners import standard_listeners
    from quantify.ingest.service import IngestService
    from quantify.replay.server import ReplayConfig
    from quantify.replay.thread import ReplayThread
    from quantify.store import open_store

    uri = f"lmdb://{tmp_path_factory.mktemp('browser') / 'store'}"
    replay = ReplayThread(ReplayConfig(speed=1.0, loop=True)).start()
    cfg = IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
                       status_interval=0.5, journal=False)
    service = IngestService(cfg, listeners=standard_listeners(open_store(uri, create=True), cfg))
    service.start_in_thread()
    try:
        yield uri
    finally:
        service.join(10)
        replay.stop()


@pytest.fixture
def store_uri(live_store: str, tmp_path: Path) -> str:
    """``live_store`` under a URI of this test's own (the same LMDB path, spelled uniquely).

    Every process of a dashboard carries its store URI in ``QUANTIFY_STORE``: a test finds
    its own dashboard's processes by it (tests/browser/test_dashboard_kernels.py).
    """
    os.symlink(live_store.removeprefix("lmdb://"), tmp_path / "store")
    return f"lmdb://{tmp_path / 'store'}"


# Module scope, not session: Playwright's sync API keeps an event loop running
# in the main thread while it is open, which would break asyncio.run() in
# every test collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
                    "(apt-get install chromium); the browser tests need it", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def serve(live_store: str) -> Iterator[object]:
    """``serve(name) -> url``: Voilà serving a dashboard over ``live_store``; stopped at the end."""
    from quantify.cli.dashboard import serve_dashboard

    procs = []

    def start(name: str) -> str:
        url, proc = serve_dashboard(name, live_store)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A page that records console errors in ``page.errors``; screenshot saved after the test."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 1000})  # type: ignore[attr-defined]
    pg = ctx.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    ctx.close()
