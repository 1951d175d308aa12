"""The alert panel's form for the perpetual kinds: fields, labels, inline checks, the stored rule."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

import quantify as qf
from quantify import alerts as qa
from quantify.store import open_store
from quantify.venues.files import read_recorded_kinds
from quantify.widgets import AlertPanel
from quantify.widgets._alert_form import EditBar
from quantify.widgets._alert_view import describe

PERP = "binance-usdm:BTCUSDT"
DATA = Path(qf.__file__).resolve().parent / "data"
_counter = itertools.count()


@pytest.fixture(scope="module")
def recorded() -> dict[str, pd.DataFrame]:
    kinds = read_recorded_kinds(DATA / "usdm-2023-btcusdt_20230405.perp.gz")
    spot = read_recorded_kinds(DATA / "spot-2024-btcusdt_20240808.trades.gz")["ticks"]["BTCUSDT"]
    return {"marks": kinds["mark"][PERP].iloc[:20], "spot": spot.iloc[:50]}


@pytest.fixture
def panel(recorded):
    """A panel on a store with spot BTCUSDT trades and only marks of the perpetual."""
    store = open_store(f"mem://perp-form-{next(_counter)}")
    store.append_ticks({"BTCUSDT": recorded["spot"]})
    store.append_perp("mark", {PERP: recorded["marks"]})
    p = AlertPanel(store, autostart=False)
    yield p
    p.close()


def _shown(panel) -> list[str]:
    widgets = [box.children[1] for box in panel._params_box.children]
    return [n for w in widgets for n, f in panel.fields.items() if f is w]


def test_perpetual_kinds_offer_their_fields(panel):
    assert {"funding-above", "funding-below", "basis-z", "liquidation-burst"} <= set(panel.kind.options)
    assert list(panel.symbol.options) == ["BTCUSDT", PERP]  # the perpetual has marks only, still offered
    panel.kind.value = "funding-above"
    assert _shown(panel) == ["level", "unit", "margin"]
    assert panel.fields["unit"].value == "rate" and list(panel.fields["unit"].options) == ["rate", "bps"]
    assert panel.fields["level"].placeholder == "e.g. 0.0005"
    assert "Funding rate" in panel._params_box.children[0].children[0].value
    panel.kind.value = "basis-z"
    assert _shown(panel) == ["level", "op", "timeframe", "window", "margin"]
    assert "Perpetual" in panel.form.symbol_box.children[0].value
    assert "Spot" in panel._symbol_x_box.children[0].value and panel._symbol_x_box.layout.display == ""
    panel.kind.value = "liquidation-burst"
    assert _shown(panel) == ["window", "count", "notional"]
    assert panel.fields["window"].placeholder == "e.g. 1m"


def test_funding_rule_in_bps_reaches_the_store(panel):
    panel.kind.value = "funding-above"
    panel.symbol.value = PERP
    panel.fields["level"].value = "1"
    panel.fields["unit"].value = "bps"
    panel.cooldown.value = "8h"
    rid = panel.add_rule()
    (rule,) = panel.store.alerts.list()
    assert rule.id == rid
    assert rule == qa.funding_above(PERP, 1, unit="bps", cooldown="8h").replace(id=rid, created=rule.created)
    assert "funding ≥ 1 bps" in panel.rule_rows[rid].html.value


def test_basis_rule_and_liquidation_mistakes(panel):
    panel.kind.value = "basis-z"
    panel.symbol.value, panel.symbol_x.value = PERP, "BTCUSDT"
    panel.fields["level"].value = "3"
    panel.fields["window"].value = "60"
    rid = panel.add_rule()
    (rule,) = panel.store.alerts.list()
    assert rule.symbols == (PERP, "BTCUSDT") and rule.params["window"] == 60 and rule.id == rid
    assert describe(rule) == "basis |z| > 3 · 60 × 1m"
    # the wrong way round: said inline, nothing stored
    panel.symbol.value, panel.symbol_x.value = "BTCUSDT", PERP
    assert panel.add_rule() is None and "is spot" in panel.error.value
    panel.kind.value = "liquidation-burst"
    panel.symbol.value = PERP
    panel.fields["window"].value = "1m"
    assert panel.add_rule() is None and "count (liquidations) or notional" in panel.error.value
    panel.fields["count"].value = "2.5"
    assert "count must be a positive whole number" in panel.error.value
    panel.fields["count"].value = ""
    panel.fields["notional"].value = "1e6"
    rid2 = panel.add_rule()
    burst = next(r for r in panel.store.alerts.list() if r.id == rid2)
    assert burst.params["notional"] == 1e6 and burst.threshold == 1e6
    # the edit bar changes the notional, the rule's threshold
    bar = EditBar()
    bar.show(burst)
    assert bar.threshold.value == "1e+06" and "or notional" in bar.threshold_box.children[0].value
    assert bar.changes(burst)["notional"] == "1e+06"
