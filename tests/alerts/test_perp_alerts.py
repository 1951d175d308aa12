"""Perpetual alert kinds: funding levels on recorded marks, liquidation bursts, the basis z-score on bars.

Marks are the 514 ``markPrice@1s`` updates of the shipped USD-M BTCUSDT
capture (2023-04-05, across the 00:00 funding settlement), handed to the
engine as the writer would (``AlertEngine.perp_batch``, a few seconds per
call). The basis z-score runs on the shipped 2024-08-08 spot and USD-M
BTCUSDT trades (the same minutes) and must equal
``zscore(basis(perp closes, spot closes).basis_bps, window)`` of the same
bars: the number the perpetual monitor plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify import alerts as qa
from quantify.model.perp import Liquidation, liquidations_to_frame
from quantify.venues.files import read_recorded_kinds
from tests.alerts.conftest import batches

DATA = Path(qf.__file__).resolve().parent / "data"
PERP = "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def marks() -> pd.DataFrame:
    return read_recorded_kinds(DATA / "usdm-2023-btcusdt_20230405.perp.gz")["mark"][PERP]


def _mark_calls(marks: pd.DataFrame, seconds: int = 5) -> list[pd.DataFrame]:
    keys = (marks.index.asi8 // (seconds * 1_000_000_000))
    return [marks[keys == k] for k in np.unique(keys)]


def _levels_reference(values: np.ndarray, times: np.ndarray, level: float, above: bool,
                      cooldown_ns: int = 0) -> list[int]:
    """The obvious loop: fire at a value beyond the level while armed (and cooled), re-arm on the other side."""
    out, armed, last = [], True, None
    for i, v in enumerate(values):
        beyond = v >= level if above else v <= level
        if armed and beyond:
            if last is None or times[i] - last >= cooldown_ns:
                out.append(i)
                last = times[i]
            armed = False
        elif not armed and not beyond:
            armed = True
    return out


def _history(store) -> pd.DataFrame:
    return qa.AlertBook(store).history()


@pytest.mark.parametrize(("kind", "level", "unit", "above"), [
    ("funding-above", 0.284, "bps", True),
    ("funding-above", 2.84e-5, "rate", True),
    ("funding-below", 0.2757, "bps", False),  # the rate before the settlement
])
def test_funding_rules_fire_at_the_marks_that_pass_their_level(store, make_engine, marks, kind, level, unit, above):
    book = qa.AlertBook(store)
    rid = book.add(qa.make_rule(kind, PERP, level=level, unit=unit), check_symbols=False)
    engine = make_engine(store)
    for call in _mark_calls(marks):
        engine.perp_batch({PERP: call}, {})
    rate = marks["funding_rate"].to_numpy() * (1e4 if unit == "bps" else 1.0)
    t = marks.index.asi8
    want = _levels_reference(rate, t, level, above)
    assert len(want) == 1, "the recording's rate crosses the level once (it rises after the settlement)"
    hist = _history(store)
    assert list(hist["rule_id"].unique()) == [rid]
    assert list(hist["fired_at"]) == list(marks.index[want])
    assert np.allclose(hist["value"].to_numpy(), rate[want])
    assert list(hist["trade_id"]) == list(t[want])  # a firing's key: the mark's time in ns
    assert engine.stats()["alerts_marks"] == len(marks)


def test_funding_rule_cooldown_and_marks_handed_twice(store, make_engine, marks):
    # the recorded marks with a funding rate swinging around 0.284 bps once a minute
    phase = (marks.index.asi8 - marks.index.asi8[0]) / 60e9 * 2 * np.pi
    marks = marks.assign(funding_rate=(0.284 + 0.01 * np.sin(phase)) * 1e-4)
    book = qa.AlertBook(store)
    book.add(qa.funding_above(PERP, 0.284, unit="bps", cooldown="2m"), check_symbols=False)
    engine = make_engine(store)
    calls = _mark_calls(marks)
    for call in calls:
        engine.perp_batch({PERP: call}, {})
    engine.perp_batch({PERP: calls[-1]}, {})  # the same rows again: judged once
    rate, t = marks["funding_rate"].to_numpy() * 1e4, marks.index.asi8
    want = _levels_reference(rate, t, 0.284, True, cooldown_ns=120 * 1_000_000_000)
    plain = _levels_reference(rate, t, 0.284, True)
    assert 0 < len(want) < len(plain) and len(plain) >= 6
    assert list(_history(store)["fired_at"]) == list(marks.index[want])
    assert engine.stats()["alerts_suppressed"] == len(plain) - len(want)
    assert engine.stats()["alerts_marks"] == len(marks)


def test_funding_rule_stays_quiet_below_its_level(store, make_engine, marks):
    qa.AlertBook(store).add(qa.funding_above(PERP, 0.3, unit="bps"), check_symbols=False)
    engine = make_engine(store)
    for call in _mark_calls(marks):
        engine.perp_batch({PERP: call}, {})
    assert _history(store).empty


def test_funding_rule_judges_stored_marks_after_a_restart(store, make_engine, marks):
    qa.AlertBook(store).add(qa.funding_above(PERP, 0.284, unit="bps"), check_symbols=False)
    calls = _mark_calls(marks)
    half = len(calls) // 2
    first = make_engine(store, checkpoint_interval=0.0)
    for call in calls[:half]:
        store.append_perp("mark", {PERP: call})
        first.perp_batch({PERP: call}, {})
    first.close()
    for call in calls[half:]:  # stored while no engine ran
        store.append_perp("mark", {PERP: call})
    second = make_engine(store)
    second.start()
    rate, t = marks["funding_rate"].to_numpy() * 1e4, marks.index.asi8
    want = _levels_reference(rate, t, 0.284, True)
    assert list(_history(store)["fired_at"]) == list(marks.index[want])
    assert second.stats()["alerts_catchup_perp"] == sum(len(c) for c in calls[half:])


def _liquidations(times_s: list[float], notional: float = 10_000.0) -> pd.DataFrame:
    base = pd.Timestamp("2024-08-08 23:55", tz="UTC").value // 1_000_000
    rows = [Liquidation(PERP, base + int(s * 1000), base + int(s * 1000), "SELL", "LIMIT", "IOC", 0.2,
                        notional / 0.2, notional / 0.2, "FILLED", 0.2, 0.2) for s in times_s]
    return liquidations_to_frame(rows)


def test_liquidation_burst_counts_the_window_across_calls(store, make_engine):
    qa.AlertBook(store).add(qa.liquidation_burst(PERP, "10s", count=3), check_symbols=False)
    engine = make_engine(store)
    frame = _liquidations([0, 4, 30, 31, 35, 39, 50, 52, 70, 71, 72])
    # handed in calls that split the bursts: the window reaches back into earlier calls
    for part in (frame.iloc[:3], frame.iloc[3:5], frame.iloc[5:9], frame.iloc[9:]):
        engine.perp_batch({}, {PERP: part})
    hist = _history(store)
    # 31 s: two in the window; 35 s: three -> fires; 39 s still three (disarmed); 50 s: one -> re-arms;
    # 52 s: two; 72 s: three -> fires again
    assert list(hist["fired_at"]) == [frame.index[4], frame.index[10]]
    assert list(hist["value"]) == [3.0, 3.0]
    assert engine.stats()["alerts_liquidations"] == len(frame)


def test_liquidation_burst_by_notional_and_cooldown(store, make_engine):
    book = qa.AlertBook(store)
    book.add(qa.liquidation_burst(PERP, "1m", notional=25_000, cooldown="5m"), check_symbols=False)
    quiet = book.add(qa.liquidation_burst(PERP, "1m", notional=1e6), check_symbols=False)
    engine = make_engine(store)
    # bursts at 0-20 s and at 200-220 s: the second is within the 5-minute cooldown
    frame = _liquidations([0, 10, 20, 200, 210, 220], notional=10_000)
    engine.perp_batch({}, {PERP: frame})
    hist = _history(store)
    assert list(hist["fired_at"]) == [frame.index[2]]
    assert hist["value"].iloc[0] == pytest.approx(30_000)
    assert quiet not in set(hist["rule_id"])
    assert engine.stats()["alerts_suppressed"] == 1


@pytest.fixture(scope="module")
def legs() -> dict[str, pd.DataFrame]:
    """2024-08-08 BTCUSDT spot and USD-M trades over the minutes both recordings cover."""
    spot = read_recorded_kinds(DATA / "spot-2024-btcusdt_20240808.trades.gz")["ticks"]["BTCUSDT"]
    perp = read_recorded_kinds(DATA / "usdm-2024-btcusdt_20240808.trades.gz")["ticks"][PERP]
    start, end = max(spot.index[0], perp.index[0]), min(spot.index[-1], perp.index[-1])
    return {s: f[(f.index >= start) & (f.index <= end)] for s, f in (("BTCUSDT", spot), (PERP, perp))}


def test_basis_z_equals_the_monitors_number_on_the_same_bars(store, make_engine, legs):
    window, level = 30, 1.5
    book = qa.AlertBook(store)
    rid = book.add(qa.basis_z(PERP, "BTCUSDT", level, timeframe="1s", window=window), check_symbols=False)
    engine = make_engine(store)
    for chunk in batches(legs, seconds=2.0):
        store.append_ticks(chunk)
        engine(chunk)
    hist = _history(store)
    assert len(hist) >= 2 and set(hist["rule_id"]) == {rid}
    # the same number from the store's bars: basis of the 1s closes, z over the window
    closes = {s: qf.resample(legs[s], "1s", fill=True)["close"] for s in legs}
    z = qf.zscore(qf.basis(closes[PERP], closes["BTCUSDT"])["basis_bps"], window)
    # the level trigger walked over those bars (|z| > level while armed; re-armed below it)
    want, armed = [], True
    for v in np.abs(z.to_numpy()[:-1]):  # the last bar is still open at the end
        if armed and v > level:
            want.append(v)
            armed = False
        elif not armed and v < level:
            armed = True
    assert np.allclose(np.abs(hist["value"].to_numpy()), want, rtol=0, atol=1e-9)
    assert engine.stats()["alerts_rule_errors"] == 0


def test_basis_z_stays_quiet_under_a_high_level(store, make_engine, legs):
    qa.AlertBook(store).add(qa.basis_z(PERP, "BTCUSDT", 50.0, timeframe="1s", window=30), check_symbols=False)
    engine = make_engine(store)
    for chunk in batches(legs, seconds=5.0):
        store.append_ticks(chunk)
        engine(chunk)
    assert _history(store).empty


def test_perp_rules_are_checked_at_creation():
    with pytest.raises(ValueError, match="is spot"):
        qa.funding_above("BTCUSDT", 1.0)
    with pytest.raises(ValueError, match="PERP/SPOT"):
        qa.basis_z(PERP, "binance-usdm:ETHUSDT", 2.0)
    with pytest.raises(ValueError, match="count .* or notional"):
        qa.liquidation_burst(PERP, "1m")
    with pytest.raises(ValueError, match="unit must be one of rate, bps"):
        qa.funding_below(PERP, -1.0, unit="%")
    with pytest.raises(ValueError, match="larger than the history kept"):
        qa.liquidation_burst(PERP, "1d", count=5)
    rule = qa.funding_above(PERP, 1.0, unit="bps")
    assert rule.format_message(value=1.25, time=pd.Timestamp(0, tz="UTC")) == \
        "binance-usdm:BTCUSDT funding rate 1.25 bps, above 1 bps"
    assert qa.liquidation_burst(PERP, "30s", notional=1e6).threshold == 1e6
    assert qa.Rule.from_record(rule.to_record()) == rule


def test_liquidation_burst_window_survives_a_restart(store, make_engine):
    qa.AlertBook(store).add(qa.liquidation_burst(PERP, "10s", count=3), check_symbols=False)
    frame = _liquidations([0, 2, 4])
    first = make_engine(store, checkpoint_interval=0.0)
    store.append_perp("liquidations", {PERP: frame.iloc[:2]})
    first.perp_batch({}, {PERP: frame.iloc[:2]})
    first.close()
    assert _history(store).empty
    # a new writer: the window's first two liquidations are read back from the store
    second = make_engine(store)
    store.append_perp("liquidations", {PERP: frame.iloc[2:]})
    second.perp_batch({}, {PERP: frame})  # handed again from the start: only the new one is judged
    hist = _history(store)
    assert list(hist["fired_at"]) == [frame.index[2]] and list(hist["value"]) == [3.0]
    assert second.stats()["alerts_liquidations"] == 1
