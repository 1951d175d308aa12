"""backtest_pairs: hand-computed trades, a slow reference loop, and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from quantify.analytics.backtest import BacktestResult, backtest_pairs


def _hand_series() -> tuple[pd.Series, pd.Series]:
    """x fixed at 100, y = 100 + spread; the spread is flat except three spikes."""
    s = np.zeros(60)
    s[20], s[21] = 5.0, 5.0  # z(20) = 4.5/1.5811 = 2.85 -> short; z(21) = 1.90 hold
    s[40] = -5.0  # z(40) = -2.85 -> long; z(41) = 0.32 -> exit
    idx = pd.date_range("2024-01-01", periods=60, freq="1h")
    return pd.Series(100.0 + s, idx, name="y"), pd.Series(100.0, idx, name="x")


def test_hand_constructed_trades_and_pnl() -> None:
    y, x = _hand_series()
    c = 8e-4  # 5 bps commission + 3 bps slippage
    res = backtest_pairs(y, x, window=10, entry=2.0, exit=0.5, hedge=1.0,
                         cost_bps=5.0, slippage_bps=3.0, capital=1.0)
    # z(22): window = seven 0s, 5, 5, 0 -> mean 1, sd 2.108 -> z = -0.47: exit
    tr = res.trades
    assert list(tr["side"]) == ["short", "long"]
    assert list(tr["entry_time"]) == [y.index[20], y.index[40]]
    assert list(tr["exit_time"]) == [y.index[22], y.index[41]]
    assert_allclose(tr["entry_z"], [4.5 / math.sqrt(2.5), -4.5 / math.sqrt(2.5)], rtol=1e-12)
    # short 1/205 spread units at 105 (gross notional 1 = equity), buy back at 100
    q1 = 1.0 / 205.0
    pnl1 = 5.0 * q1 - c * 1.0 - c * 200.0 * q1
    e1 = 1.0 + pnl1
    q2 = e1 / 195.0  # long at 95, sized on the equity after trade 1
    pnl2 = 5.0 * q2 - c * e1 - c * 200.0 * q2
    assert_allclose(tr["pnl"], [pnl1, pnl2], rtol=1e-12)
    assert_allclose(tr["units_y"], [-q1, q2], rtol=1e-12)
    assert_allclose(tr["units_x"], [q1, -q2], rtol=1e-12)
    assert_allclose(res.total_return, pnl1 + pnl2, rtol=1e-12)
    assert_allclose(res.costs, c * (1.0 + 200 * q1 + e1 + 200 * q2), rtol=1e-12)
    assert_allclose(res.turnover, 1.0 + 200 * q1 + e1 + 200 * q2, rtol=1e-12)
    # positions: held from the fill bar up to (not including) the exit bar
    sig = res.positions["signal"].to_numpy()
    expect = np.zeros(60)
    expect[20:22], expect[40] = -1.0, 1.0
    assert_allclose(sig, expect)
    assert res.n_trades == 2 and res.periods_per_year == pytest.approx(365 * 24)


def _pair(seed: int, n: int = 600) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    x = 60_000.0 + np.cumsum(rng.normal(0.0, 30.0, n))
    u = np.zeros(n)
    for t in range(1, n):
        u[t] = 0.9 * u[t - 1] + rng.normal(0.0, 15.0)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min")
    return pd.Series(0.05 * x + 200.0 + u, idx), pd.Series(x, idx)


def _reference(y: pd.Series, x: pd.Series, window: int, entry: float, exit: float,
               rate: float) -> np.ndarray:
    """Slow, obvious loop of the documented rules; returns the equity path."""
    yv, xv = y.to_numpy(), x.to_numpy()
    n = len(yv)
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    for t in range(window, n):  # OLS on rows t-window .. t-1: known at close t
        b, a = np.polyfit(xv[t - window : t], yv[t - window : t], 1)
        beta[t], alpha[t] = b, a
    s = pd.Series(yv - beta * xv - alpha)
    z = ((s - s.rolling(window).mean()) / s.rolling(window).std()).to_numpy()
    eq, state, hy, hx = 1.0, 0, 0.0, 0.0
    out = []
    for t in range(n):
        if t:
            eq += hy * (yv[t] - yv[t - 1]) + hx * (xv[t] - xv[t - 1])
        new = state
        if not np.isnan(z[t]):
            if z[t] > entry:
                new = -1
            elif z[t] < -entry:
                new = 1
            elif state and abs(z[t]) < exit:
                new = 0
        if new != state and (new == 0 or not np.isnan(beta[t])):
            q = new * eq / (yv[t] + abs(beta[t]) * xv[t]) if new else 0.0
            ny, nx = q, -q * beta[t] if new else 0.0
            eq -= rate * (abs(ny - hy) * yv[t] + abs(nx - hx) * xv[t])
            hy, hx, state = ny, nx, new
        out.append(eq)
    return np.array(out)


@pytest.mark.parametrize("seed", [1, 2])
def test_equals_slow_reference_loop(seed: int) -> None:
    y, x = _pair(seed)
    res = backtest_pairs(y, x, window=30, entry=1.5, exit=0.3, cost_bps=4.0, slippage_bps=1.0)
    ref = _reference(y, x, 30, 1.5, 0.3, 5e-4)
    assert res.n_trades > 5
    # rolling OLS: ~1e-13 vs polyfit; z-score near the bands could flip on 1e-12 only
    assert_allclose(res.equity.to_numpy(), ref, rtol=1e-9)
    assert_allclose(res.trades["pnl"].sum(), res.equity.iloc[-1] - 1.0, rtol=1e-9)
    r = res.returns.to_numpy()
    assert_allclose(res.sharpe, r.mean() / r.std(ddof=1) * math.sqrt(525_600), rtol=1e-12)
    dd = 1.0 - res.equity / np.maximum.accumulate(np.maximum(res.equity, 1.0))
    assert_allclose(res.max_drawdown, dd.max(), rtol=1e-12)


@pytest.mark.parametrize("hedge", ["ols", "kalman"])
def test_no_look_ahead(hedge: str) -> None:
    y, x = _pair(3)
    cut = 400
    rng = np.random.default_rng(99)
    y2, x2 = y.copy(), x.copy()
    y2.iloc[cut + 1 :] += np.cumsum(rng.normal(0.0, 50.0, len(y) - cut - 1))
    x2.iloc[cut + 1 :] *= 1.05
    kw = {"window": 40, "hedge": hedge, "obs_var": 100.0, "cost_bps": 2.0}
    a = backtest_pairs(y, x, **kw)  # type: ignore[arg-type]
    b = backtest_pairs(y2, x2, **kw)  # type: ignore[arg-type]
    assert a.n_trades > 3
    for name in ("signal", "units_y", "units_x"):
        assert_allclose(a.positions[name].iloc[: cut + 1], b.positions[name].iloc[: cut + 1])
    assert_allclose(a.equity.iloc[: cut + 1], b.equity.iloc[: cut + 1])
    assert_allclose(a.hedge_ratio.iloc[: cut + 1], b.hedge_ratio.iloc[: cut + 1])
    assert not np.allclose(a.equity.iloc[cut + 2 :], b.equity.iloc[cut + 2 :])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(50, 280), window=st.integers(5, 40))
def test_no_look_ahead_hypothesis(seed: int, cut: int, window: int) -> None:
    y, x = _pair(seed % 1000, n=300)
    rng = np.random.default_rng(seed)
    y2 = y.copy()
    y2.iloc[cut + 1 :] = rng.uniform(0.5, 2.0) * y2.iloc[cut + 1 :] + rng.normal(0, 40, 300 - cut - 1)
    a = backtest_pairs(y, x, window=window, entry=1.0, exit=0.2)
    b = backtest_pairs(y2, x, window=window, entry=1.0, exit=0.2)
    assert_allclose(a.positions.iloc[: cut + 1], b.positions.iloc[: cut + 1])
    assert_allclose(a.equity.iloc[: cut + 1], b.equity.iloc[: cut + 1])


def test_hedge_ratio_is_lagged_one_bar() -> None:
    from quantify.analytics.rolling import rolling_hedge_ratio

    y, x = _pair(4, n=200)
    res = backtest_pairs(y, x, window=20)
    expect = rolling_hedge_ratio(y, x, 20)["beta"].shift(1)
    assert_allclose(res.hedge_ratio.to_numpy(), expect.to_numpy(), equal_nan=True)


def test_max_position_scales_and_result_api() -> None:
    y, x = _pair(5)
    one = backtest_pairs(y, x, window=30, cost_bps=0.0)
    half = backtest_pairs(y, x, window=30, cost_bps=0.0, max_position=0.5)
    first = one.trades.iloc[0]
    gross = abs(first["units_y"]) * y[first["entry_time"]] + abs(first["units_x"]) * x[first["entry_time"]]
    assert_allclose(gross, 1.0, rtol=1e-12)
    assert_allclose(half.trades["units_y"].iloc[0], 0.5 * first["units_y"], rtol=1e-12)
    assert one.costs == 0.0
    assert isinstance(one, BacktestResult)
    text = one.summary()
    assert "sharpe" in text and "max_drawdown" in text
    assert "<table" in one._repr_html_()
    bqplot = pytest.importorskip("bqplot")
    fig = one.plot()
    assert isinstance(fig, bqplot.Figure) and len(fig.axes) == 3


def test_plain_arrays_give_a_per_bar_sharpe() -> None:
    y, x = _pair(6, n=300)
    res = backtest_pairs(y.to_numpy(), x.to_numpy(), window=30)
    assert res.periods_per_year == 1.0
    assert isinstance(res.equity.index, pd.RangeIndex)


def test_warmup_bars_only_feed_the_estimates() -> None:
    y, x = _pair(8)
    full = backtest_pairs(y, x, window=30, entry=1.5, cost_bps=2.0)
    first_z = int(np.flatnonzero(full.zscore.notna().to_numpy())[0])
    assert first_z == 2 * 30 - 1  # hedge_window + window - 1 with the one-bar lag
    # a warm-up ending where the first z appears changes nothing but where the result starts
    same = backtest_pairs(y, x, window=30, entry=1.5, cost_bps=2.0, warmup=first_z)
    assert same.equity.index[0] == y.index[first_z]
    assert_allclose(same.equity.to_numpy(), full.equity.iloc[first_z:].to_numpy(), rtol=1e-15)
    pd.testing.assert_frame_equal(same.trades, full.trades)
    assert same.total_return == full.total_return and same.n_trades == full.n_trades
    r = full.returns.iloc[first_z:].to_numpy()
    assert_allclose(same.sharpe, r.mean() / r.std(ddof=1) * math.sqrt(full.periods_per_year), rtol=1e-12)
    # a longer warm-up takes no position on its bars: it starts flat at the first kept bar
    cut = first_z + 150
    later = backtest_pairs(y, x, window=30, entry=1.5, cost_bps=2.0, warmup=cut)
    assert later.equity.index[0] == y.index[cut] and later.equity.iloc[0] == 1.0
    assert later.trades["entry_time"].min() >= y.index[cut]
    assert_allclose(later.zscore.to_numpy(), full.zscore.iloc[cut:].to_numpy())
    for bad in (-1, len(y), 1.5, True):
        with pytest.raises(ValueError, match=f"got {bad!r}"):
            backtest_pairs(y, x, window=30, warmup=bad)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"window": 1}, ValueError, "window"),
        ({"entry": 0.5, "exit": 0.5}, ValueError, "exit=0.5"),
        ({"entry": -1.0}, ValueError, "-1.0"),
        ({"hedge": "lasso"}, ValueError, "'lasso'"),
        ({"cost_bps": -1}, ValueError, "-1"),
        ({"max_position": "1"}, TypeError, "'1'"),
        ({"periods_per_year": 0}, ValueError, "0"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type[Exception], match: str) -> None:
    y, x = _pair(7, n=100)
    with pytest.raises(exc, match=match):
        backtest_pairs(y, x, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        backtest_pairs(y.where(y.index != y.index[5]), x)


def test_no_trade_says_so() -> None:
    y, x = _pair(8, n=300)
    res = backtest_pairs(y, x, window=30, entry=50.0, exit=0.5)
    assert res.n_trades == 0 and len(res.trades) == 0
    assert math.isnan(res.sharpe) and res.total_return == 0.0 and res.turnover == 0.0
    assert res.note.startswith("no trades: the z-score never crossed \u00b150")
    assert "bars)" in res.note
    text = res.summary()
    assert text.splitlines()[2].startswith("note") and "undefined (no trades)" in text
    assert "no trades" in res._repr_html_()
    traded = backtest_pairs(y, x, window=30)
    assert traded.n_trades > 0 and traded.note == "" and "note" not in traded.summary()


def test_too_few_bars_for_one_zscore() -> None:
    y, x = _pair(9, n=100)
    with pytest.raises(ValueError, match=r"backtest_pairs needs at least 120 .*; got 100"):
        backtest_pairs(y, x, window=60)
    with pytest.raises(ValueError, match=r"needs at least 120 .*\(window, for one z-score\); got 100"):
        backtest_pairs(y, x, window=120, hedge=1.0)
