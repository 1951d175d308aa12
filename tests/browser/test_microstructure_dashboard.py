"""The microstructure dashboard in Debian's Chromium, on a store holding the shipped spot BTCUSDT book and trades."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_dashboards import _errors, _wait_points, outside  # noqa: F401 - outside is a fixture

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"


@pytest.fixture(scope="module")
def book_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An LMDB store filled by ``quantify load`` of the shipped spot BTCUSDT book and trade files."""
    from quantify.ingest.load import load_files
    from quantify.store import open_store

    uri = f"lmdb://{tmp_path_factory.mktemp('micro') / 'store'}"
    result = load_files(open_store(uri, create=True), sorted(DATA.glob("spot-2024-btcusdt_2024080*.gz")),
                        progress=False)
    assert all(f.ok for f in result.files) and len(result.files) == 4
    return uri


@pytest.fixture(scope="module")
def dashboard(book_store: str) -> Iterator[str]:
    from quantify.cli.dashboard import serve_dashboard, stop_dashboard

    url, proc = serve_dashboard("microstructure", book_store)
    yield url
    stop_dashboard(proc)


def test_microstructure_dashboard_shows_the_book_and_its_panels(dashboard, page, outside):  # noqa: F811
    page.goto(dashboard, timeout=60_000)
    page.wait_for_selector(".qf-ladder", state="attached", timeout=60_000)
    page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=30_000)
    body = page.inner_text("body")
    assert "Microstructure" in body and "IN SYNC" in body and "STALE" not in body
    # the recording ends with the best bid below the snapshot's range: unknown, said so, never guessed
    assert "no known bid: the best levels lie beyond the snapshot's range" in body
    assert re.search(r"spread\s+– bps", body), body[:2000]
    # the ladder's asks, the depth chart's lines and the panels' series are drawn
    asks = page.eval_on_selector_all(".qf-ladder tr", "rows => rows.length")
    assert asks == 11  # header + 10 levels
    paths = page.eval_on_selector_all(".bqplot svg path.line", "els => els.map(e => e.getAttribute('d') || '')")
    assert sum(1 for d in paths if d.count("L") >= 2) >= 3, paths
    assert _wait_points(page, lambda n: n > 500) > 500  # one point per second of quotes
    assert "markout 1s (mean ± se)" in body and "+0.722 ± 0.012 bps" in body  # notebook 06's number
    assert _errors(page) == [], "\n".join(_errors(page))
    assert outside == []
    # the panels below the book, for the eye (the page fixture saves the top of the page)
    page.locator(".bqplot").last.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "microstructure_panels.png"))
