"""The ``drawdown`` alert kind: validated at creation, judged on closed bars with the analytics' numbers.

The engine's value is ``100 * trailing_drawdown(paper_equity(closes), window)``
of the bars it keeps: the closes of :func:`quantify.resample` (``fill=True``)
of the stored trades, the DrawdownMonitor's numbers on the same bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify import alerts as qa
from quantify.widgets import DrawdownMonitor
from tests.alerts.conftest import batches, feed


def _history(store) -> pd.DataFrame:
    return qa.AlertBook(store).history()


def _walk(values: np.ndarray, level: float) -> list[float]:
    """The level trigger over the closed bars: fire above ``level`` while armed, re-arm below it."""
    want, armed = [], True
    for v in values:
        if armed and v > level:
            want.append(float(v))
            armed = False
        elif not armed and v < level:
            armed = True
    return want


def test_rules_are_checked_at_creation() -> None:
    one = qa.drawdown("BTCUSDT", 5, timeframe="5m", window=60, severity="high")
    assert one.kind == "drawdown" and one.symbols == ("BTCUSDT",) and one.threshold == 5.0
    pair = qa.drawdown("BTCUSDT/ETHUSDT", 2.5)
    assert pair.symbols == ("BTCUSDT", "ETHUSDT") and pair.params["entry"] == 2.0
    assert qa.Rule.from_record(pair.to_record()) == pair
    assert "below its peak" in pair.format_message(value=3.0, time=pd.Timestamp(0, tz="UTC"))
    with pytest.raises(ValueError, match=r"in \(0, 100\)"):
        qa.drawdown("BTCUSDT", 150)
    with pytest.raises(ValueError, match="exit must be below entry"):
        qa.drawdown("BTCUSDT/ETHUSDT", 3, entry=1.0, exit=1.5)
    with pytest.raises(ValueError, match="symbols"):
        qa.make_rule("drawdown", "BTCUSDT/ETHUSDT/SOLUSDT", level=3)
    with pytest.raises(ValueError, match="window"):
        qa.drawdown("BTCUSDT", 3, window="12O")


def test_price_drawdown_fires_at_the_bars_the_analytics_give(store, make_engine, sample) -> None:
    window, level = 30, 0.03
    rid = qa.AlertBook(store).add(qa.drawdown("BTCUSDT", level, timeframe="1s", window=window),
                                  check_symbols=False)
    engine = make_engine(store)
    feed(store, engine, batches({"BTCUSDT": sample["BTCUSDT"]}, seconds=5.0))
    hist = _history(store)
    closes = qf.resample(sample["BTCUSDT"], "1s", fill=True)["close"]
    # judged from the first full window on; the last bar is still open
    dd = 100 * qf.trailing_drawdown(qf.paper_equity(closes), window).to_numpy()[window - 1:-1]
    want = _walk(dd, level)
    assert len(want) >= 2 and set(hist["rule_id"]) == {rid}
    np.testing.assert_allclose(hist["value"].to_numpy(), want, rtol=0, atol=1e-9)
    assert engine.stats()["alerts_rule_errors"] == 0
    # the monitor on the same store draws the same numbers at the bars the rule fired on
    mon = DrawdownMonitor("BTCUSDT", timeframe="1s", window=window, store=store, autostart=False)
    try:
        drawn = mon.compute()["drawdown"].to_numpy()
        assert all(np.min(np.abs(drawn - v)) < 1e-9 for v in hist["value"])
    finally:
        mon.close()


def test_pair_drawdown_is_the_pairs_strategy_equity(store, make_engine, sample) -> None:
    window, level = 120, 0.004  # 1 bp costs per fill: a round trip alone is a drawdown
    rid = qa.AlertBook(store).add(qa.drawdown("BTCUSDT/ETHUSDT", level, timeframe="1s", window=window),
                                  check_symbols=False)
    engine = make_engine(store)
    feed(store, engine, batches(sample, seconds=5.0))
    hist = _history(store)
    closes = pd.concat({s: qf.resample(sample[s], "1s", fill=True)["close"] for s in ("BTCUSDT", "ETHUSDT")},
                       axis=1).dropna()
    equity = qf.paper_equity(closes["BTCUSDT"].to_numpy(), closes["ETHUSDT"].to_numpy(), window=window)
    dd = 100 * qf.trailing_drawdown(equity, window).to_numpy()[2 * window - 1:-1]  # judged once tradable
    want = _walk(dd, level)
    assert len(want) >= 1 and set(hist["rule_id"]) == {rid}
    np.testing.assert_allclose(hist["value"].to_numpy(), want, rtol=0, atol=1e-9)
    assert engine.stats()["alerts_rule_errors"] == 0
