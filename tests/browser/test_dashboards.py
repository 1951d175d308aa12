"""The Voilà dashboards in Debian's Chromium, while the replay and ingestion run."""

from __future__ import annotations

import re
import time

import pytest

#: What a dashboard page may load: the Voilà server on 127.0.0.1, inline data (no CDN, no other host).
LOOPBACK = re.compile(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob|about):")
#: bqplot's first layout of a figure, when a redraw races it on a loaded machine, can set one
#: <g> transform from a scale that has no range yet ("translate(undefined,y)"); the next frame
#: draws correctly (the screenshots show it). Seen about once in six runs with both cores busy,
#: never on an idle machine; the widget sends no NaN and no zero-width domain (_base.py:
#: finite_tail). Tolerated only in this exact form, and only while it stays a burst (at most 30;
#: up to 11 were seen in one failed run).
BQPLOT_FIRST_LAYOUT = 'attribute transform: Expected number, "translate(undefined,'
#: The same race on a redraw that shrinks a line (1s -> 1m bars): bqplot can draw one frame
#: with the new y values against the old x scale, whose last point maps to NaN. Seen once
#: under a doubly loaded CI run. Tolerated only as a burst and only while every line drawn
#: at the end of the test is free of NaN (:func:`_errors` checks the final paths).
BQPLOT_REDRAW = 'attribute d: Expected number, "'


def _points(page) -> int:
    values = page.eval_on_selector_all(".qf-points", "els => els.map(e => +e.dataset.points)")
    return max(values) if values else 0


def _wait_points(page, pred, timeout=30.0) -> int:
    deadline = time.monotonic() + timeout
    n = _points(page)
    while time.monotonic() < deadline and not pred(n):
        page.wait_for_timeout(250)
        n = _points(page)
    return n


@pytest.fixture
def outside(page) -> list[str]:
    """URLs the page requested from anywhere but 127.0.0.1 (an offline desk reaches nothing else)."""
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if not LOOPBACK.match(r.url) else None)
    return urls


def _errors(page) -> list[str]:
    errors = list(page.errors)
    layout = [e for e in errors if BQPLOT_FIRST_LAYOUT in e or BQPLOT_REDRAW in e]
    final = page.eval_on_selector_all(".bqplot svg path.line", "els => els.map(e => e.getAttribute('d') || '')")
    drawn_nan = [d[:80] for d in final if "NaN" in d]
    tolerated = len(layout) <= 30 and not drawn_nan
    return [e for e in errors if e not in layout] + ([] if tolerated else layout + drawn_nan)


def test_pairs_monitor_renders_grows_and_redraws(serve, page, outside):
    page.goto(serve("pairs_monitor"), timeout=60_000)
    page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
    assert "REPLAY — recorded Binance trades, 2024-08-08" in page.inner_text("body")
    first = _wait_points(page, lambda n: n >= 3)
    assert first >= 3, "the figure shows no data"
    grown = _wait_points(page, lambda n: n > first, timeout=20)
    assert grown > first, f"plotted points did not grow ({first} -> {grown})"
    d = page.eval_on_selector(".bqplot svg path.line", "e => e.getAttribute('d')")
    assert d and d.count("L") >= 2
    # Bars: 1s -> 1m in the control panel: far fewer points, redrawn.
    page.locator("select").nth(2).select_option("1m")
    after = _wait_points(page, lambda n: n <= 3, timeout=20)
    assert after <= 3, f"timeframe change did not redraw ({grown} points at 1s, {after} at 1m)"
    assert "1 × 1m" in page.inner_text("body") or f"{after} × 1m" in page.inner_text("body")
    assert _errors(page) == [], "\n".join(_errors(page))
    assert outside == []
    # the button's icon draws from the Font Awesome bundled with Voilà (no CDN stylesheet)
    glyph = page.eval_on_selector(".fa-download", "e => getComputedStyle(e, '::before').content")
    assert glyph not in ("", "none", "normal"), glyph


def test_market_overview_candles(serve, page, outside):
    page.goto(serve("market_overview"), timeout=60_000)
    page.wait_for_selector(".bqplot svg .stick", state="attached", timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.locator(".bqplot svg .stick").count() >= 2
    assert "BTCUSDT" in page.inner_text("body") and "ETHUSDT" in page.inner_text("body")
    assert _errors(page) == [], "\n".join(_errors(page))
    assert outside == []


@pytest.mark.slow  # one more Voilà server (~30 s); the dashboards above check the same per page
def test_dashboard_list_loads_nothing_from_outside(serve, page, outside):
    page.goto(serve(None), timeout=60_000)
    page.wait_for_selector("text=pairs_monitor.ipynb", timeout=60_000)
    body = page.inner_text("body")
    assert all(f"{name}.ipynb" in body for name in ("pairs_monitor", "market_overview", "alerts"))
    # (Voilà's list page polls /api/kernels, which its server does not serve, and starts the
    # widget plugins without a kernel: console errors of Voilà's own, not checked here.)
    assert outside == []
