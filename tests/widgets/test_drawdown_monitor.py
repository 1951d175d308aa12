"""DrawdownMonitor: widget state (no browser) and its numbers against the analytics on the same bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.widgets import DrawdownMonitor


def _closes(store, symbols, timeframe):
    return pd.concat({s: qf.resample(store.ticks(s), timeframe, fill=True)["close"] for s in symbols},
                     axis=1).dropna()


def test_long_position_equity_and_underwater_curve(sample_store) -> None:
    mon = DrawdownMonitor("BTCUSDT", timeframe="1s", window=30, level=0.05, store=sample_store, autostart=False)
    try:
        data = mon.compute()
        closes = _closes(sample_store, ["BTCUSDT"], "1s")["BTCUSDT"]
        np.testing.assert_allclose(data["equity"].to_numpy(), closes.to_numpy() / closes.iloc[0], rtol=1e-12)
        want = 100 * qf.trailing_drawdown(qf.paper_equity(closes), 30)
        np.testing.assert_allclose(data["drawdown"].to_numpy(), want.to_numpy(), rtol=0, atol=1e-12)
        state = mon._under.get_state()
        y = np.asarray(mon._under.y)
        assert y.shape[0] == 2 and np.allclose(y[1], -0.05) and (y[0] <= 0).all()
        assert mon.points["equity"] == len(mon._equity.x) > 100 and state["fill"] == "bottom"
        assert mon.stats["max_drawdown"] == pytest.approx(float(want.max()))
        assert "long BTCUSDT" in mon._stats.value and "alert level" in mon._stats.value
    finally:
        mon.close()


def test_pair_position_is_the_pairs_backtest_and_warms_up(sample_store) -> None:
    mon = DrawdownMonitor("BTCUSDT", "ETHUSDT", timeframe="1s", window=60, store=sample_store, autostart=False)
    try:
        data = mon.compute()
        closes = _closes(sample_store, ["BTCUSDT", "ETHUSDT"], "1s")
        bt = qf.backtest_pairs(closes["BTCUSDT"].to_numpy(), closes["ETHUSDT"].to_numpy(), window=60,
                               hedge_window=60)
        np.testing.assert_allclose(data["equity"].to_numpy(), bt.equity.to_numpy(), rtol=1e-12)
        assert bt.n_trades >= 1 and np.isfinite(mon.stats["drawdown"])
    finally:
        mon.close()
    slow = DrawdownMonitor("BTCUSDT", "ETHUSDT", timeframe="1m", window=60, store=sample_store, autostart=False)
    try:
        assert "warming up" in slow.note and not slow._equity.visible  # 12 one-minute bars of 120
    finally:
        slow.close()


def test_bad_arguments_are_refused(sample_store) -> None:
    with pytest.raises(ValueError, match="window"):
        DrawdownMonitor("BTCUSDT", window="12O", store=sample_store, autostart=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exit < entry"):
        DrawdownMonitor("BTCUSDT", "ETHUSDT", entry=0.5, exit=1.0, store=sample_store, autostart=False)
    with pytest.raises(ValueError, match="level"):
        DrawdownMonitor("BTCUSDT", level=120, store=sample_store, autostart=False)
