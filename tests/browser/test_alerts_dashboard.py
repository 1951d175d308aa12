"""The alerts dashboard in Debian's Chromium: create a price alert, see it listed, see it fire.

The replay runs at ten times real speed (a lap of the 11-minute recording
takes about 65 s). The alert's level is computed from the bundled recording
and the replay's current position, so it is crossed within seconds but not
before the rule reaches the writer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from tests.browser.conftest import ARTIFACTS

#: Voilà's page template links font-awesome from a CDN; offline that load fails (as in test_dashboards).
OFFLINE_NOISE = ("net::ERR_NAME_NOT_RESOLVED", "net::ERR_INTERNET_DISCONNECTED")

SPEED = 10.0
#: Recording time (s) after the replay's position during which the level must not be reached:
#: the rule has to be typed, stored and picked up by the writer first (6 s of wall time at SPEED).
LEAD = 60.0


@pytest.fixture(scope="module")
def alerts_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Replay (fast, looping) -> ingestion -> lmdb store, and Voilà serving the alerts dashboard on it."""
    from quantify.cli.dashboard import serve_dashboard
    from quantify.config import IngestConfig
    from quantify.ingest.listeners import standard_listeners
    from quantify.ingest.service import IngestService
    from quantify.replay.server import ReplayConfig
    from quantify.replay.thread import ReplayThread
    from quantify.store import open_store

    uri = f"lmdb://{tmp_path_factory.mktemp('alerts-browser') / 'store'}"
    replay = ReplayThread(ReplayConfig(speed=SPEED, loop=True)).start()
    cfg = IngestConfig(store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
                       status_interval=0.5, journal=False)
    service = IngestService(cfg, listeners=standard_listeners(open_store(uri, create=True), cfg))
    proc = None
    try:
        service.start_in_thread()
        store = open_store(uri)
        deadline = time.monotonic() + 30
        while store.symbols() != ["BTCUSDT", "ETHUSDT"] and time.monotonic() < deadline:
            time.sleep(0.2)  # the panel's symbol list is read when the page opens
        assert store.symbols() == ["BTCUSDT", "ETHUSDT"], "ingestion stored nothing within 30 s"
        url, proc = serve_dashboard("alerts", uri, theme="dark")
        yield url, uri
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        service.join(10)
        replay.stop()


@dataclass(frozen=True)
class Plan:
    kind: str
    level: float
    eta: float  # seconds of recording from the replay's position to the crossing


def plan_crossing(symbol: str, now: pd.Timestamp) -> Plan:
    """A price-below or price-above level the replay crosses soon, but not within ``LEAD`` s.

    ``now`` is the time of the last stored trade; with looping, lap ``k``
    repeats the recording shifted by ``k`` times (duration + 1 s).
    """
    from quantify.venues.binance.recordings import read_trades, sample_files

    frames = [f for p in sample_files() for f in read_trades(p).values()]
    first = min(f.index[0] for f in frames)
    lap = max(f.index[-1] for f in frames) - first + pd.Timedelta(seconds=1)
    prices = pd.concat([f for p in sample_files() for s, f in read_trades(p).items() if s == symbol])["price"]
    pos = first + (now - first) % lap
    ahead = pd.concat([prices[prices.index > pos], prices.set_axis(prices.index + lap)])
    seconds = (ahead.index - pos).total_seconds()
    safe, later = ahead[seconds <= LEAD], ahead[seconds > LEAD]
    plans = []
    below = round(float(safe.min()) - 0.01, 2)
    hit = later[later <= below]
    if len(hit):
        plans.append(Plan("price-below", below, (hit.index[0] - pos).total_seconds()))
    above = round(float(safe.max()) + 0.01, 2)
    hit = later[later >= above]
    if len(hit):
        plans.append(Plan("price-above", above, (hit.index[0] - pos).total_seconds()))
    assert plans, f"the recording never leaves its range after {pos}"
    return min(plans, key=lambda p: p.eta)


def _errors(page) -> list[str]:
    return [e for e in page.errors if not any(noise in e for noise in OFFLINE_NOISE)]


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_alert_created_in_the_panel_is_listed_and_fires(alerts_site, page):
    from quantify.store import open_store

    url, uri = alerts_site
    store = open_store(uri)
    page.goto(url, timeout=60_000)
    page.wait_for_selector(".qf-add", timeout=60_000)
    assert "REPLAY — recorded Binance trades, 2024-08-08" in page.inner_text("body")
    assert "No rules yet" in page.inner_text(".qf-alerts")

    # A price alert at a level the replay will cross soon.
    plan = plan_crossing("BTCUSDT", store.last_trades()["BTCUSDT"][1])
    page.locator(".qf-field-kind select").select_option(plan.kind)
    page.locator(".qf-field-symbol select").select_option("BTCUSDT")
    page.locator(".qf-field-level input").fill(f"{plan.level}")
    page.locator(".qf-field-severity select").select_option("critical")
    page.locator(".qf-field-cooldown input").fill("1m")
    page.locator(".qf-add").click()
    created = time.monotonic()
    rule_row = page.locator(".qf-rule", has_text=f"{plan.level:,.2f}".rstrip("0").rstrip("."))
    rule_row.wait_for(timeout=10_000)
    assert "BTCUSDT" in rule_row.inner_text() and plan.kind in rule_row.inner_text()
    (rule,) = store.alerts.list()
    assert (rule.kind, rule.symbols, rule.params["level"], rule.severity, rule.cooldown) == (
        plan.kind, ("BTCUSDT",), plan.level, "critical", 60.0)

    # A typo in a window field is rejected next to the form; nothing is created.
    page.locator(".qf-field-kind select").select_option("zscore")
    page.locator(".qf-field-level input").fill("2.5")
    page.locator(".qf-field-window input").fill("12O")
    page.locator(".qf-field-window input").press("Tab")
    message = page.locator(".qf-form-message .qf-error")
    message.wait_for(timeout=10_000)
    assert "window must be a positive integer number of bars, got '12O'" in message.inner_text()
    assert message.evaluate("e => getComputedStyle(e).color") == "rgb(248, 81, 73)"  # the dark theme's red
    page.locator(".qf-add").click()
    page.wait_for_timeout(500)
    assert len(store.alerts.list()) == 1
    _shot(page, "alerts_dashboard_rule_and_validation.png")

    # The replay crosses the level; the writer fires; the feed shows it.
    budget = plan.eta / SPEED + 20
    fired = page.locator(".qf-alert")
    fired.first.wait_for(timeout=budget * 1000)
    text = fired.first.inner_text()
    assert "BTCUSDT" in text and "CRITICAL" in text.upper()
    assert ("below" if plan.kind == "price-below" else "above") in text
    hist = store.alerts.history(rule_id=rule.id)
    assert len(hist) >= 1
    value = float(hist["value"].iloc[0])
    assert value <= plan.level if plan.kind == "price-below" else value >= plan.level
    assert time.monotonic() - created >= 1.0, "fired before the replay could have crossed the level"
    assert "qf-alert-critical" in (fired.first.get_attribute("class") or "")
    page.locator(".qf-toast").wait_for(timeout=5_000)  # the critical banner
    _shot(page, "alerts_dashboard_fired.png")

    # Acknowledge it from the page; the store records it.
    fired.first.locator(".qf-ack").click()
    deadline = time.monotonic() + 10
    while not store.alerts.history(rule_id=rule.id)["acknowledged"].any() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.alerts.history(rule_id=rule.id)["acknowledged"].sum() == 1
    page.locator(".qf-alert-acked").first.wait_for(timeout=5_000)
    assert _errors(page) == []
