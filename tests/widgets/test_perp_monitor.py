"""PerpMonitor through widget state: the basis of the 2024 spot and USD-M recordings, marks, liquidations."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.model.perp import Liquidation, liquidations_to_frame
from quantify.store import open_store
from quantify.venues.files import read_recorded_kinds
from quantify.widgets import PerpMonitor, live_timers
from quantify.widgets.dashboards import perpetuals_dashboard
from quantify.widgets.perp import funding_countdown

PERP = "binance-usdm:BTCUSDT"
DATA = Path(qf.__file__).resolve().parent / "data"
_counter = itertools.count()


@pytest.fixture(scope="module")
def recorded() -> dict[str, pd.DataFrame]:
    spot = read_recorded_kinds(DATA / "spot-2024-btcusdt_20240808.trades.gz")["ticks"]["BTCUSDT"]
    perp = read_recorded_kinds(DATA / "usdm-2024-btcusdt_20240808.trades.gz")["ticks"][PERP]
    marks = read_recorded_kinds(DATA / "usdm-2023-btcusdt_20230405.perp.gz")["mark"][PERP]
    return {"BTCUSDT": spot, PERP: perp, "marks": marks}


def _cut(recorded, end: str) -> dict[str, pd.DataFrame]:
    t = pd.Timestamp(end, tz="UTC")
    return {s: recorded[s][recorded[s].index < t] for s in ("BTCUSDT", PERP)}


@pytest.fixture
def store(recorded):
    st = open_store(f"mem://perp-monitor-{next(_counter)}")
    st.append_ticks(_cut(recorded, "2024-08-08 23:56:00"))
    return st


def _lines(mark) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(mark.x), np.asarray(mark.y, dtype=float)


def test_basis_is_the_analytics_basis_of_the_bar_closes_and_grows(store, recorded):
    mon = PerpMonitor(PERP, "BTCUSDT", "1s", store=store, autostart=False)
    try:
        closes = {s: qf.resample(f, "1s", fill=True)["close"] for s, f in _cut(recorded, "2024-08-08 23:56").items()}
        want = qf.basis(closes[PERP], closes["BTCUSDT"])
        pd.testing.assert_frame_equal(mon.data, want, check_freq=False)
        assert 90 <= len(want) <= 110  # 23:54:16 .. 23:56:00
        x, y = _lines(mon._basis)
        assert len(x) == len(want) and np.allclose(y[0], want["basis_bps"]) and np.isfinite(y).all()
        assert "bps" in mon._stats.value and f'data-points="{len(want)}"' in mon._stats.value
        before = mon.points["basis"]
        store.append_ticks({s: f[f.index >= pd.Timestamp("2024-08-08 23:56", tz="UTC")]
                            for s, f in _cut(recorded, "2024-08-08 23:57").items()})
        mon.refresh()
        assert mon.points["basis"] == before + 60
        assert mon.points["prices"] == mon.points["basis"]
    finally:
        mon.close()
    assert mon._timer not in live_timers()


def test_no_marks_no_open_interest_said_so(store):
    mon = PerpMonitor(PERP, "BTCUSDT", "1s", store=store, autostart=False)
    try:
        assert "no marks of binance-usdm:BTCUSDT stored" in mon._empty["funding"].value
        assert "no open interest of binance-usdm:BTCUSDT stored" in mon._empty["open_interest"].value
        assert not mon.shown("funding") and not mon.shown("open_interest") and mon.shown("basis")
        assert mon.points["funding"] == 0 and mon.points["liquidations"] == 0
        assert "no marks stored" in mon._stats.value and "none stored" in mon._stats.value
    finally:
        mon.close()


def test_marks_of_another_day_liquidations_and_the_countdown(store, recorded):
    marks = recorded["marks"]
    store.append_perp("mark", {PERP: marks})
    base = pd.Timestamp("2024-08-08 23:55:00", tz="UTC").value // 1_000_000
    liq = liquidations_to_frame([
        Liquidation(PERP, base + 1000 * i, base + 1000 * i, side, "LIMIT", "IOC", 0.5, 61_000.0, avg, "FILLED",
                    0.5, 0.5) for i, (side, avg) in enumerate([("SELL", 60_990.0), ("BUY", 61_020.0), ("SELL", 0.0)])])
    store.append_perp("liquidations", {PERP: liq})
    mon = PerpMonitor(PERP, "BTCUSDT", "1s", store=store, autostart=False)
    try:
        # the 2023 marks lie before the 2024 bars: the last 30 minutes of them are shown, and said so
        assert "before the plotted bars" in mon._empty["funding"].value
        assert mon.shown("funding") and not mon.shown("open_interest")
        x, y = _lines(mon._funding)
        assert len(x) == len(marks) and np.allclose(y, marks["funding_rate"].to_numpy() * 1e4)
        left = funding_countdown(marks)
        assert left == pd.Timestamp("2023-04-05 08:00", tz="UTC") - marks.index[-1] == pd.Timedelta("7h53m6s")
        assert "7h 53m 06s" in mon._stats.value and "(at 08:00 UTC)" in mon._stats.value
        assert f"({marks['funding_rate'].iloc[-1] * 1e4:+.3f} bps)" in mon._stats.value
        # liquidations: markers on the prices, at the average price (the price where none was filled)
        assert mon.points["liquidations"] == 3
        assert list(np.asarray(mon._liq.y, dtype=float)) == [60_990.0, 61_020.0, 61_000.0]
        assert list(mon._liq.colors) == [mon.theme.down, mon.theme.up, mon.theme.down]
    finally:
        mon.close()


def test_countdown_crosses_the_settlement():
    marks = read_recorded_kinds(DATA / "usdm-2023-btcusdt_20230405.perp.gz")["mark"][PERP]
    before = marks[marks.index < pd.Timestamp("2023-04-05", tz="UTC")]
    assert funding_countdown(before) == pd.Timestamp("2023-04-05", tz="UTC") - before.index[-1]
    assert funding_countdown(before) < pd.Timedelta(seconds=2)
    assert funding_countdown(marks.iloc[:0]) is None


def test_arguments_are_checked(store):
    with pytest.raises(ValueError, match="perp must be a perpetual"):
        PerpMonitor("BTCUSDT", "BTCUSDT", store=store, autostart=False)
    with pytest.raises(ValueError, match="spot must be a spot market"):
        PerpMonitor(PERP, "binance-usdm:ETHUSDT", store=store, autostart=False)
    with pytest.raises(ValueError, match="perp_every"):
        PerpMonitor(PERP, "BTCUSDT", store=store, autostart=False, perp_every=0)
    with pytest.raises(ValueError, match="funding_interval"):
        PerpMonitor(PERP, "BTCUSDT", store=store, autostart=False, funding_interval="soon")


def test_dashboard_picks_the_perpetual_and_its_spot(store):
    page = perpetuals_dashboard(store)
    try:
        monitor = page.children[-1]
        assert isinstance(monitor, PerpMonitor) and monitor.pair == (PERP, "BTCUSDT")
        assert "Perpetuals" in page.children[0].value
        controls = page.children[2]
        pick_perp, pick_spot, pick_tf = controls.children[:3]
        assert pick_perp.value == PERP and pick_spot.value == "BTCUSDT" and pick_tf.value == "1s"
        pick_tf.value = "5s"
        assert monitor.timeframe == "5s" and 15 <= monitor.points["basis"] <= 25
    finally:
        for w in page.children:
            if hasattr(w, "close"):
                w.close()


def test_the_monitors_basis_is_the_one_the_basis_z_alert_standardises(recorded):
    from quantify import alerts as qa
    from quantify.analytics import zscore
    from tests.alerts.conftest import batches

    store = open_store(f"mem://perp-monitor-{next(_counter)}")
    legs = _cut(recorded, "2024-08-08 23:58:00")
    window = 30
    qa.AlertBook(store).add(qa.basis_z(PERP, "BTCUSDT", 1.5, timeframe="1s", window=window), check_symbols=False)
    engine = qa.AlertEngine(store, log_alerts=False, poll_interval=0)
    for chunk in batches(legs, seconds=2.0):
        store.append_ticks(chunk)
        engine(chunk)
    engine.close()
    fired = qa.AlertBook(store).history()["value"].to_numpy()
    assert len(fired) >= 2
    mon = PerpMonitor(PERP, "BTCUSDT", "1s", store=store, autostart=False)
    try:
        z = zscore(mon.data["basis_bps"], window).to_numpy()
        # the rule's trigger over the monitor's bars (the last one still open) gives the alerts' values
        want, armed = [], True
        for v in np.abs(z[:-1]):
            if armed and v > 1.5:
                want.append(v)
                armed = False
            elif not armed and v < 1.5:
                armed = True
        assert np.allclose(np.abs(fired), want, rtol=0, atol=1e-9)
    finally:
        mon.close()


def test_marks_in_the_window_are_followed_as_they_are_stored(store, recorded):
    # the 2023 marks moved onto the 2024 minutes, stored in two steps
    marks = recorded["marks"].copy()
    marks.index = marks.index + (pd.Timestamp("2024-08-08 23:54:20", tz="UTC") - marks.index[0])
    marks["next_funding_time"] = marks["next_funding_time"] + (marks.index[0] - recorded["marks"].index[0])
    half = marks[marks.index < pd.Timestamp("2024-08-08 23:55:00", tz="UTC")]
    store.append_perp("mark", {PERP: half})
    mon = PerpMonitor(PERP, "BTCUSDT", "1s", store=store, autostart=False, perp_every=1e-6)
    try:
        assert mon.points["funding"] == len(half) and "funding" not in mon.notes
        store.append_perp("mark", {PERP: marks[marks.index >= half.index[-1]]})
        mon.refresh()
        assert mon._from["mark"] <= mon.data.index[0]  # read from the first plotted bar on
        pd.testing.assert_frame_equal(mon.marks, marks[marks.index >= mon._from["mark"]], check_freq=False)
        assert mon.points["funding"] == len(mon.marks)
    finally:
        mon.close()
