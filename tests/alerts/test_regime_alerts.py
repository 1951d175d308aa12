"""The regime-change kind: its fields, and the engine's firings against fit_regimes on the same bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantify import alerts as qa
from quantify.analytics import fit_regimes, resample
from quantify.model.rules import KINDS, Rule
from tests.alerts.conftest import batches, feed


def test_fields_defaults_and_round_trip() -> None:
    rule = qa.regime_change("BTCUSDT", timeframe="5s", states=3, cooldown="1m", prob=0.8)
    assert "regime-change" in KINDS
    assert rule.params == {"timeframe": "5s", "states": 3, "window": 20, "lookback": 500, "seed": 0, "prob": 0.8}
    assert rule.threshold == 0.8 and rule.cooldown == 60.0
    assert Rule.from_record(rule.to_record()) == rule
    assert rule.format_message(value=2.0, time=pd.Timestamp(0, tz="UTC")) == \
        "BTCUSDT: regime changed to state 2 (0 = calmest)"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"states": 1}, "states"), ({"states": 7}, "states"), ({"window": 41}, "window"),
    ({"lookback": 99}, "lookback"), ({"lookback": 6000}, "lookback"), ({"prob": 1.0}, "prob"),
    ({"seed": -1}, "seed"), ({"timeframe": "soon"}, "timeframe"),
])
def test_bad_fields(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        qa.regime_change("BTCUSDT", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one symbol"):
        qa.make_rule("regime-change", "BTCUSDT/ETHUSDT")


def _reference(ticks: pd.DataFrame, tf: str, lookback: int, window: int, states: int) -> list[tuple[pd.Timestamp, int]]:
    """(bar start, new state) at every bar whose filtered regime differs from the bar before,
    each fit on the ``lookback`` closes ending at the bar."""
    closes = resample(ticks, tf)["close"].ffill().to_numpy()
    starts = resample(ticks, tf).index
    out = []
    for k in range(lookback - 1, len(closes)):
        c = closes[k + 1 - lookback: k + 1]
        reg = fit_regimes(pd.Series(c), states, window=window, periods_per_year=1.0).regime.to_numpy()
        if not np.isnan(reg[-2:]).any() and reg[-1] != reg[-2]:
            out.append((starts[k], int(reg[-1])))
    return out


def test_engine_fires_where_fit_regimes_changes_state(store, sample, make_engine) -> None:
    book = qa.AlertBook(store)
    rid = book.add(qa.regime_change("BTCUSDT", timeframe="5s", window=10, lookback=100, id="regime"),
                   check_symbols=False)
    feed(store, make_engine(store), batches(sample, seconds=20.0))
    hist = book.history(rule_id=rid)
    want = _reference(sample["BTCUSDT"], "5s", 100, 10, 2)
    assert len(want) >= 2, "the recording should change regime at least twice on 5 s bars"
    # each firing is at the trade that closed the bar: the first trade of the next bar
    bar = pd.Timedelta(seconds=5)
    got = [(t.floor("5s") - bar, int(v)) for t, v in zip(hist["fired_at"], hist["value"])]
    assert got == want
    assert (hist["threshold"] == 0.0).all() and hist["message"].str.contains("regime changed to state").all()
