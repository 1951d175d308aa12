"""AlertPanel through widget state: the form, inline validation, the rule list, the fired feed."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from quantify import alerts as qa
from quantify.alerts import AlertEngine
from quantify.venues.binance.recordings import read_trades, sample_files
from quantify.store import open_store
from quantify.widgets import AlertPanel, live_timers
from quantify.widgets.alerts import beep_uri, describe, fmt_seconds
from quantify.widgets.theme import SEVERITY_COLOURS
from tests.alerts.conftest import batches

_counter = itertools.count()


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in sample_files():
        for sym, frame in read_trades(path).items():
            parts.setdefault(sym, []).append(frame)
    return {sym: pd.concat(fs).sort_values("trade_id", kind="stable") for sym, fs in parts.items()}


@pytest.fixture(scope="module")
def split(sample) -> tuple[dict[str, pd.DataFrame], list[dict[str, pd.DataFrame]]]:
    """The recording's first two seconds, and the rest as the writer's 5-second batches."""
    cut = min(f.index[0] for f in sample.values()) + pd.Timedelta(seconds=2)
    head = {s: f[f.index < cut] for s, f in sample.items()}
    return head, batches({s: f[f.index >= cut] for s, f in sample.items()}, seconds=5.0)


@pytest.fixture
def store(split):
    """A fresh store holding the first two seconds of the recording (so both symbols exist)."""
    st = open_store(f"mem://alert-panel-{next(_counter)}")
    st.append_ticks(split[0])
    return st


@pytest.fixture
def panel(store):
    p = AlertPanel(store, autostart=False)
    yield p
    p.close()


def run_writer(store, chunks) -> AlertEngine:
    """What the ingestion writer does: append each batch, then evaluate the rules on it."""
    engine = AlertEngine(store, log_alerts=False, poll_interval=0)
    for chunk in chunks:
        store.append_ticks(chunk)
        engine(chunk)
    engine.dispatcher.close(1.0)
    return engine


def test_form_offers_kinds_symbols_and_fields_of_the_kind(panel, store):
    assert list(panel.kind.options) == list(qa.KINDS)
    assert list(panel.symbol.options) == store.symbols() == ["BTCUSDT", "ETHUSDT"]
    assert list(panel.severity.options) == list(qa.SEVERITIES)
    def shown():
        return [box.children[1] for box in panel._params_box.children]

    assert shown() == [panel.fields["level"], panel.fields["margin"]]
    assert panel._symbol_x_box.layout.display == "none"
    panel.kind.value = "zscore"
    assert panel._symbol_x_box.layout.display == ""
    assert panel.symbol_x.value == "ETHUSDT"
    names = [n for w in shown() for n, f in panel.fields.items() if f is w]
    assert names == ["level", "op", "timeframe", "window", "hedge", "margin"]
    assert panel.fields["window"].placeholder == "120"  # empty: the kind's default
    assert panel.message.placeholder == qa.KINDS["zscore"].message
    panel.kind.value = "pct-move"
    assert panel.fields["window"].placeholder == "e.g. 5m"  # required, and a duration here
    state = panel.kind.get_state()
    assert state["_options_labels"] == tuple(qa.KINDS) and state["index"] == list(qa.KINDS).index("pct-move")


def test_window_typo_is_rejected_inline_and_nothing_is_created(panel, store):
    panel.kind.value = "zscore"
    panel.fields["level"].value = "2.5"
    panel.fields["window"].value = "12O"  # checked as soon as the field changes
    msg = "window must be a positive integer number of bars, got &#x27;12O&#x27;"
    assert msg in panel.error.get_state()["value"]
    assert 'class="qf-error"' in panel.error.value
    assert f".qf-error {{ color:{panel.theme.down}" in panel.children[0].value  # red
    panel.add_button.click()
    assert panel.error.value.count(msg) == 1
    assert store.alerts.list() == []
    assert not panel.rule_rows
    # Fixing the field clears its message; adding then works.
    panel.fields["window"].value = "120"
    assert panel.error.value == ""
    panel.add_button.click()
    assert len(store.alerts.list()) == 1 and "added" in panel.error.value


@pytest.mark.parametrize(("setup", "message"), [
    ({"kind": "price-above"}, "level: a price-above rule needs level"),
    ({"kind": "price-above", "level": "62k"}, "level must be a number, got &#x27;62k&#x27;"),
    ({"kind": "price-below", "level": "61000", "cooldown": "soon"}, "cooldown must be seconds or a duration"),
    ({"kind": "stale", "seconds": "-5"}, "seconds must not be negative"),
    ({"kind": "price-above", "level": "1", "message": "{price}"}, "unknown field {price}"),
])
def test_other_mistakes_are_shown_and_nothing_is_created(panel, store, setup, message):
    panel.kind.value = setup.pop("kind")
    for name, value in setup.items():
        widget = panel.fields.get(name) or getattr(panel, name)
        widget.value = value
    assert panel.add_rule() is None
    assert message in panel.error.value
    assert store.alerts.list() == []


def test_priyas_zscore_rule_reaches_the_store(panel, store):
    panel.kind.value = "zscore"
    panel.symbol.value, panel.symbol_x.value = "BTCUSDT", "ETHUSDT"
    panel.fields["level"].value = "2.5"
    panel.fields["timeframe"].value = "1m"
    panel.fields["window"].value = "120"
    panel.severity.value = "high"
    panel.cooldown.value = "15m"
    panel.add_button.click()
    (rule,) = store.alerts.list()
    assert rule.kind == "zscore" and rule.symbols == ("BTCUSDT", "ETHUSDT")
    assert rule.params["level"] == 2.5 and rule.params["window"] == 120 and rule.params["op"] == "abs-above"
    assert rule.severity == "high" and rule.cooldown == 900.0
    row = panel.rule_rows[rule.id]
    assert "|z| &gt; 2.5 · 120 × 1m · ols" in row.html.value and "15m" in row.html.value
    assert "BTCUSDT/ETHUSDT" in row.html.value


def test_edit_toggle_and_delete_reach_the_store(panel, store):
    panel.fields["level"].value = "61700"
    rid = panel.add_rule()
    row = panel.rule_rows[rid]
    row.edit.click()
    assert panel.edit_box.layout.display == "flex"
    assert panel.edit_threshold.value == "61700" and panel.edit_cooldown.value == "0"
    panel.edit_threshold.value = "sixty"
    panel.edit_save.click()
    assert "level must be a number, got &#x27;sixty&#x27;" in panel.edit_error.value
    assert store.alerts.get(rid).params["level"] == 61700.0
    panel.edit_threshold.value = "62000"
    panel.edit_cooldown.value = "5m"
    panel.edit_severity.value = "critical"
    panel.edit_save.click()
    rule = store.alerts.get(rid)
    assert (rule.params["level"], rule.cooldown, rule.severity) == (62000.0, 300.0, "critical")
    assert panel.edit_box.layout.display == "none"
    assert "62,000" in panel.rule_rows[rid].html.value

    panel.rule_rows[rid].enabled.value = False
    assert store.alerts.get(rid).enabled is False
    assert "qf-row-off" in panel.rule_rows[rid].box._dom_classes
    panel.rule_rows[rid].enabled.value = True
    assert store.alerts.get(rid).enabled is True

    panel.rule_rows[rid].delete.click()
    assert store.alerts.list() == [] and panel.rule_rows == {}
    assert "No rules yet" in panel.rules_box.children[0].value


def test_rules_changed_elsewhere_show_on_the_next_poll(panel, store):
    rid = store.alerts.add(qa.stale("ETHUSDT", "30s", severity="low"))
    assert rid not in panel.rule_rows
    panel.refresh()
    assert "no trade for 30s" in panel.rule_rows[rid].html.value
    store.alerts.remove(rid)
    panel.refresh()
    assert panel.rule_rows == {}


def test_fired_alerts_feed_newest_first_by_severity_toast_and_acknowledge(store, sample, split):
    btc = sample["BTCUSDT"]["price"].to_numpy()
    level = float(np.quantile(btc, 0.3))
    panel = AlertPanel(store, autostart=False, toast_seconds=0.2)
    try:
        panel.kind.value = "price-below"
        panel.fields["level"].value = f"{level}"
        panel.fields["margin"].value = "2"
        panel.severity.value = "critical"
        panel.cooldown.value = "60s"
        crit = panel.add_rule()
        panel.kind.value = "pct-move"
        panel.symbol.value = "ETHUSDT"
        panel.fields["pct"].value = "0.05"
        panel.fields["window"].value = "20s"
        panel.severity.value = "low"
        panel.cooldown.value = "30s"
        low = panel.add_rule()
        assert crit and low
        assert "No alerts have fired yet" in panel.feed_box.children[0].value

        run_writer(store, split[1])
        hist = store.alerts.history()
        assert set(hist["rule_id"]) == {crit, low} and len(hist) >= 3
        panel.refresh()
        assert sorted(panel.alert_rows) == list(hist["alert_id"])
        shown = [next(a for a, r in panel.alert_rows.items() if r.box is box) for box in panel.feed_box.children]
        assert shown == sorted(hist["alert_id"], reverse=True)  # newest first
        for aid, row in panel.alert_rows.items():
            sev = hist.loc[hist["alert_id"] == aid, "severity"].item()
            assert f"qf-alert-{sev}" in row.box._dom_classes
            assert hist.loc[hist["alert_id"] == aid, "message"].item() in row.html.value.replace("&#x27;", "'")
        css = panel.children[0].value
        assert f".qf-alert-critical {{ border-left-color:{SEVERITY_COLOURS['light']['critical']}" in css
        assert SEVERITY_COLOURS["light"]["critical"] == "#cf222e"  # red; high orange, medium yellow, low grey
        # The critical firing raised the banner; it goes after toast_seconds.
        assert panel.toast.layout.display == "" and "CRITICAL" in panel.toast.value
        time.sleep(0.3)
        panel.refresh()
        assert panel.toast.layout.display == "none"

        first = int(hist["alert_id"].iloc[0])
        panel.alert_rows[first].ack.click()
        assert store.alerts.history()["acknowledged"].tolist() == [a == first for a in hist["alert_id"]]
        assert panel.alert_rows[first].ack.disabled and "qf-alert-acked" in panel.alert_rows[first].box._dom_classes
        assert f"<b>{len(hist) - 1}</b> not acknowledged" in panel.summary.value

        # A new panel (another viewer) shows the same history, with the acknowledgement.
        other = AlertPanel(store, autostart=False)
        try:
            assert sorted(other.alert_rows) == list(hist["alert_id"])
            assert other.alert_rows[first].acknowledged and other.toast.layout.display == "none"
        finally:
            other.close()
    finally:
        panel.close()


def test_feed_keeps_max_alerts(store, split):
    store.alerts.add(qa.pct_move("BTCUSDT", 0.01, "5s", severity="medium"))
    run_writer(store, split[1])
    n = store.alerts.latest_id() + 1
    assert n > 5
    panel = AlertPanel(store, autostart=False, max_alerts=5)
    try:
        assert sorted(panel.alert_rows) == list(range(n - 5, n))
        assert len(panel.feed_box.children) == 5
    finally:
        panel.close()


def test_timer_polls_and_close_stops_it(store):
    panel = AlertPanel(store, poll=0.1)
    try:
        assert panel.running and panel._timer in live_timers()
        rid = store.alerts.add(qa.gap("BTCUSDT"))
        deadline = time.monotonic() + 10
        while rid not in panel.rule_rows and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rid in panel.rule_rows
    finally:
        panel.close()
    assert not panel.running and panel._timer not in live_timers()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="poll must be at least 0.1 seconds, got 0.01"):
        AlertPanel("mem://alert-panel-args", poll=0.01)
    with pytest.raises(ValueError, match="max_alerts must be a positive integer, got 0"):
        AlertPanel("mem://alert-panel-args", max_alerts=0)
    with pytest.raises(ValueError, match="theme must be one of light, dark"):
        AlertPanel("mem://alert-panel-args", theme="blue", autostart=False)


def test_dark_theme_and_sound():
    panel = AlertPanel("mem://alert-panel-dark", theme="dark", sound=True, autostart=False)
    try:
        assert SEVERITY_COLOURS["dark"]["high"] in panel.children[0].value
        panel.show_toast({"symbol": "BTCUSDT", "message": "BTCUSDT at 1, below 2"})
        assert '<audio autoplay src="data:audio/wav;base64,' in panel.toast.value
    finally:
        panel.close()
    assert beep_uri().startswith("data:audio/wav;base64,UklGR")  # "RIFF"


def test_describe_and_durations():
    assert fmt_seconds(900) == "15m" and fmt_seconds(90) == "90s" and fmt_seconds(7200) == "2h"
    assert describe(qa.price_above("BTCUSDT", 61700.5, margin=2)) == "price ≥ 61,700.5 (re-arm ±2)"
    assert describe(qa.pct_move("BTCUSDT", 0.5, "5m", direction="down")) == "moves −0.5% within 5m"
    assert describe(qa.corr_breakdown("BTCUSDT", "ETHUSDT", 0.5)) == "corr 120 × 1m < 0.5"


def test_alerts_dashboard_has_panel_status_and_chart(store):
    from quantify.widgets import LiveChart, StatusBar
    from quantify.widgets.dashboards import alerts_dashboard

    page = alerts_dashboard(store, theme="light")
    try:
        kinds = [type(w).__name__ for w in _walk(page)]
        assert {"AlertPanel", "StatusBar", "LiveChart"} <= set(kinds)
        assert "alerts unavailable" not in str([getattr(w, "value", "") for w in _walk(page)])
    finally:
        for w in _walk(page):
            if isinstance(w, (AlertPanel, StatusBar, LiveChart)):
                w.close()


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)
