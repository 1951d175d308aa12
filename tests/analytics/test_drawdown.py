"""Drawdown analytics against a slow, obvious implementation and hand-made equity curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import quantify as qf


def _slow_max_drawdown(v: np.ndarray) -> float:
    return max(1 - v[j] / max(v[: j + 1]) for j in range(len(v)))


def test_peak_trough_recovery_and_durations_on_a_hand_made_curve() -> None:
    idx = pd.date_range("2024-01-01", periods=9, freq="1h", tz="UTC")
    eq = pd.Series([100, 110, 99, 88, 95, 110, 120, 108, 115], index=idx, dtype=float)
    res = qf.drawdown(eq)
    assert res.max_drawdown == pytest.approx(0.2)
    assert (res.peak, res.trough, res.recovery) == (idx[1], idx[3], idx[5])
    assert res.duration == pd.Timedelta(hours=4) and res.time_to_recovery == pd.Timedelta(hours=2)
    assert res.longest_underwater == pd.Timedelta(hours=4)
    assert_allclose(res.underwater.to_numpy(), [0, 0, 0.1, 0.2, 15 / 110, 0, 0, 0.1, 5 / 120])
    years = 8 / (365 * 24)
    assert_allclose(res.annual_return, (115 / 100) ** (1 / years) - 1, rtol=1e-9)
    assert_allclose(res.calmar, res.annual_return / 0.2)


def test_unrecovered_drawdown_and_bar_counts_without_a_calendar() -> None:
    res = qf.drawdown(np.array([1.0, 2.0, 1.5, 1.0, 1.2]))
    assert res.max_drawdown == 0.5 and (res.peak, res.trough) == (1, 3)
    assert res.recovery is None and res.duration is None and res.longest_underwater == 3
    flat = qf.drawdown(np.ones(5))
    assert flat.max_drawdown == 0 and np.isnan(flat.calmar)


def test_matches_the_slow_definition_and_the_backtests_own_figure() -> None:
    c = qf.datasets.candles_2018()[["LTC", "XMR"]].dropna()
    bt = qf.backtest_pairs(c["LTC"], c["XMR"], window=60, capital=1_000.0)
    res = qf.drawdown(bt)
    assert_allclose(res.max_drawdown, _slow_max_drawdown(bt.equity.to_numpy()), rtol=1e-12)
    assert_allclose(res.max_drawdown, bt.max_drawdown, rtol=1e-12)  # equity starts at capital, flat
    assert_allclose(qf.underwater(bt.equity), res.underwater)
    rng = np.random.default_rng(5)
    v = np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    assert_allclose(qf.drawdown(v).max_drawdown, _slow_max_drawdown(v), rtol=1e-12)


def test_plot_summary_and_bad_input() -> None:
    res = qf.drawdown(pd.Series([1.0, 0.9, 1.1], index=pd.date_range("2024", periods=3, freq="D", tz="UTC")))
    fig = res.plot()
    assert len(fig.marks) == 2 and "Drawdown" in res.summary() and "<table" in res._repr_html_()
    with pytest.raises(ValueError, match="> 0"):
        qf.drawdown([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        qf.drawdown([1.0])
