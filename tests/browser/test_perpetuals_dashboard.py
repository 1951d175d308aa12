"""The perpetuals dashboard in Debian's Chromium: BTCUSDT spot against binance-usdm:BTCUSDT, streamed by the replay.

The replay serves the shipped 2024-08-08 spot and USD-M recordings (the same
minutes) in real time; the ingestion writes both legs' trades, and no perpetual
stream: the basis must show from the trades alone. The store also holds the
marks of the shipped 2023 USD-M capture (loaded beforehand), shown as the last
stored ones, with their funding countdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_dashboards import _errors, _points, _wait_points, outside  # noqa: F401 - a fixture

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
PERP = "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def perp_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Spot and USD-M BTCUSDT trades streamed from the replay into a store holding the 2023 marks."""
    from quantify.config import IngestConfig
    from quantify.ingest.listeners import standard_listeners
    from quantify.ingest.service import IngestService
    from quantify.replay.config import usdm_sample_files
    from quantify.replay.server import ReplayConfig
    from quantify.replay.thread import ReplayThread
    from quantify.store import open_store
    from quantify.venues.files import read_recorded_kinds

    uri = f"lmdb://{tmp_path_factory.mktemp('perp') / 'store'}"
    store = open_store(uri, create=True)
    marks = read_recorded_kinds(DATA / "usdm-2023-btcusdt_20230405.perp.gz")["mark"]
    store.append_perp("mark", marks)
    replay = ReplayThread(ReplayConfig(speed=1.0, loop=True, usdm_files=tuple(usdm_sample_files()))).start()
    cfg = IngestConfig(store=uri, symbols=("BTCUSDT", PERP), ws_url=replay.ws_url, rest_url=replay.rest_url,
                       status_interval=0.5, journal=False)
    service = IngestService(cfg, listeners=standard_listeners(store, cfg))
    service.start_in_thread()
    try:
        yield uri
    finally:
        service.join(10)
        replay.stop()


@pytest.fixture(scope="module")
def dashboard(perp_store: str) -> Iterator[str]:
    from quantify.cli.dashboard import serve_dashboard, stop_dashboard

    url, proc = serve_dashboard("perpetuals", perp_store)
    yield url
    stop_dashboard(proc)


def test_perpetuals_dashboard_shows_the_basis_growing(dashboard, page, outside):  # noqa: F811
    page.goto(dashboard, timeout=60_000)
    page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
    first = _wait_points(page, lambda n: n >= 3)
    assert first >= 3, "the basis shows no bars"
    body = page.inner_text("body")
    assert "Perpetuals" in body and "REPLAY — recorded Binance trades, 2024-08-08" in body
    assert re.search(r"basis\s+[+-]\d+\.\d\d bps", body), body[:2000]
    assert f"{PERP} / BTCUSDT" in body
    # the 2023 marks: shown as the last stored ones, with the countdown they had
    assert "before the plotted bars" in body and re.search(r"next funding in\s+7h 53m 06s", body), body[:2000]
    grown = _wait_points(page, lambda n: n > first, timeout=20)
    assert grown > first, f"plotted points did not grow ({first} -> {grown})"
    paths = page.eval_on_selector_all(".bqplot svg path.line", "els => els.map(e => e.getAttribute('d') || '')")
    drawn = [d for d in paths if d.count("L") >= 2]
    assert len(drawn) >= 4, paths  # perp and spot prices, basis and its zero line, funding
    assert all("NaN" not in d for d in paths)
    assert _errors(page) == [], "\n".join(_errors(page))
    assert outside == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "perpetuals_dashboard.png"), full_page=True)
    assert _points(page) >= grown
