"""Kelly sizing against its closed forms; volatility targeting against a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from quantify import datasets
from quantify.analytics import backtest_pairs, kelly, realized_volatility, vol_target

IDX = pd.date_range("2024-08-08", periods=2_000, freq="5min", tz="UTC")


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    rng = np.random.default_rng(17)
    return pd.Series(rng.normal(2e-4, 4e-3, len(IDX)), index=IDX)


def test_continuous_kelly_equals_mu_over_sigma_squared(returns: pd.Series) -> None:
    r = returns.to_numpy()
    mu, var = float(np.mean(r)), float(np.var(r, ddof=1))
    res = kelly(returns, fraction=0.5, confidence=0.9)
    assert res.full_kelly == mu / var
    assert res.kelly == 0.5 * (mu / var)
    se = math.sqrt(var) / math.sqrt(r.size)
    z = stats.norm.ppf(0.95)
    assert_allclose([res.mean_se, res.ci_low, res.ci_high], [se, (mu - z * se) / var, (mu + z * se) / var],
                    rtol=1e-13)
    assert res.negative_share == pytest.approx(max(0.0, -res.ci_low) / (res.ci_high - res.ci_low))
    f = res.kelly
    assert res.growth == pytest.approx(f * mu - 0.5 * f * f * var, rel=1e-13)


def test_binary_kelly_equals_p_minus_q_over_b() -> None:
    # 60 wins of +2 %, 40 losses of -1 %, 5 pushes: p = 0.6, b = 2, f* = 0.6 - 0.4 / 2 = 0.4
    r = np.concatenate([np.full(60, 0.02), np.full(40, -0.01), np.zeros(5)])
    res = kelly(np.random.default_rng(1).permutation(r), method="binary")
    assert res.n == 100
    assert res.win_prob == 0.6
    assert res.win_loss_ratio == pytest.approx(2.0, rel=1e-15)
    assert res.full_kelly == pytest.approx(0.6 - 0.4 / 2.0, abs=1e-15)
    assert res.leverage == pytest.approx(0.4 / 0.01, rel=1e-12)  # f* of the capital a loss (1 %) may lose
    se = math.sqrt(0.6 * 0.4 / 100)
    z = stats.norm.ppf(0.975)
    assert_allclose([res.ci_low, res.ci_high], [(0.6 - z * se) * 1.5 - 0.5, (0.6 + z * se) * 1.5 - 0.5],
                    rtol=1e-13)
    # the growth rate of the bet is maximal at f*
    g = [0.6 * math.log1p(2 * f) + 0.4 * math.log1p(-f) for f in np.linspace(0.0, 0.9, 901)]
    assert np.linspace(0.0, 0.9, 901)[int(np.argmax(g))] == pytest.approx(res.full_kelly, abs=1e-3)
    assert res.growth == pytest.approx(max(g), rel=1e-6)


def test_a_noisy_edge_shows_a_mostly_negative_interval() -> None:
    noise = np.random.default_rng(3).normal(0.0, 1e-2, 500)
    noise -= noise.mean()
    se = noise.std(ddof=1) / math.sqrt(500)
    res = kelly(pd.Series(noise - 0.3 * se))  # an edge 0.3 standard errors below zero
    assert res.ci_low < 0 < res.ci_high
    z = stats.norm.ppf(0.975)
    assert res.negative_share == pytest.approx((0.3 + z) / (2 * z), rel=1e-9)
    assert "negative_share" in res.summary() and "<table" in res._repr_html_()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fraction": 1.5}, r"fraction must be in \(0, 1\]"),
        ({"fraction": 0.0}, r"fraction must be > 0"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\.0\)"),
        ({"method": "log"}, r"method must be one of"),
    ],
)
def test_kelly_refuses_bad_parameters(returns: pd.Series, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kelly(returns, **kwargs)


def test_kelly_refuses_degenerate_returns() -> None:
    with pytest.raises(ValueError, match=r"returns is constant"):
        kelly([0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match=r"needs wins and losses; got 3 win\(s\) and 0 loss"):
        kelly([0.01, 0.02, 0.03], method="binary")
    with pytest.raises(ValueError, match=r"returns must be > -1"):
        kelly([0.01, -1.0, 0.03])


def test_vol_target_scales_by_the_previous_bars_forecast(returns: pd.Series) -> None:
    res = vol_target(returns, 0.4, window=50, max_leverage=2.0)
    equity = np.exp(np.cumsum(np.log1p(returns)))
    forecast = realized_volatility(equity, window=50)
    expected = np.minimum(0.4 / forecast.shift(1), 2.0)
    assert_allclose(res.scale.to_numpy(), expected.to_numpy(), rtol=1e-13, equal_nan=True)
    assert_allclose(res.returns.to_numpy(), (expected * returns).to_numpy(), rtol=1e-13, equal_nan=True)
    assert res.scale.iloc[:51].isna().all() and res.scale.iloc[51:].notna().all()
    # the unscaled returns run at about 4e-3 * sqrt(105120) = 1.30 a year; the target is met within 10 %
    assert res.unscaled_vol == pytest.approx(1.30, rel=0.05)
    assert res.realized_vol == pytest.approx(0.4, rel=0.1)


def test_vol_target_ewma_forecast_is_pandas_ewm_of_squared_log_returns(returns: pd.Series) -> None:
    res = vol_target(returns, 0.4, halflife=10)
    ppy = pd.Timedelta(days=365) / pd.Timedelta("5min")
    # the equity's log returns are log(1 + r) from the second bar on
    lr2 = np.log1p(returns.iloc[1:]) ** 2
    expected = np.sqrt(lr2.ewm(halflife=10).mean() * ppy)
    assert_allclose(res.forecast_vol.to_numpy()[1:], expected.to_numpy(), rtol=1e-12)
    assert res.estimator == "ewma halflife 10"


def test_vol_target_caps_leverage_when_the_strategy_is_flat() -> None:
    r = pd.Series(np.r_[np.zeros(30), np.random.default_rng(5).normal(0, 1e-3, 70)], index=IDX[:100])
    res = vol_target(r, 0.2, window=10, max_leverage=4.0)
    assert (res.scale.iloc[11:31] == 4.0).all()  # zero forecast: the cap, not an infinite scale
    assert 0 < res.capped_share < 1


def test_vol_target_refuses_bad_input(returns: pd.Series) -> None:
    with pytest.raises(TypeError, match=r"DatetimeIndex"):
        vol_target(returns.reset_index(drop=True), 0.1)
    with pytest.raises(ValueError, match=r"not both"):
        vol_target(returns, 0.1, window=10, halflife=5)
    with pytest.raises(ValueError, match=r"target_vol must be > 0"):
        vol_target(returns, 0.0)


def test_kelly_of_a_real_pairs_backtest() -> None:
    closes = datasets.candles_2018()[["ETH", "LTC"]].ffill().dropna()
    bt = backtest_pairs(closes.ETH, closes.LTC, window=60, entry=2.0, exit=0.5)
    res = kelly(bt.returns)
    r = bt.returns.to_numpy()
    assert res.full_kelly == float(np.mean(r)) / float(np.var(r, ddof=1))
    assert res.ci_low < res.full_kelly < res.ci_high
    trades = kelly(bt.trades["return"], method="binary")
    assert trades.n <= bt.n_trades
