"""Volatility estimators against straightforward pandas formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from quantify.analytics import resample
from quantify.analytics.volatility import (
    garman_klass,
    historical_volatility,
    parkinson,
    realized_volatility,
)


@pytest.fixture(scope="module")
def ticks() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 20_000
    idx = pd.DatetimeIndex(
        pd.to_datetime(1_723_161_600_000 + np.cumsum(rng.integers(0, 400, n)), unit="ms", utc=True)
    )
    price = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, n))), 2)
    return pd.DataFrame(
        {
            "price": price,
            "qty": np.round(rng.exponential(0.01, n), 5) + 1e-5,
            "trade_id": np.arange(n),
            "is_buyer_maker": rng.random(n) < 0.5,
        },
        index=idx,
    )


@pytest.fixture(scope="module")
def candles(ticks: pd.DataFrame) -> pd.DataFrame:
    return resample(ticks, "1m")


def test_historical(candles: pd.DataFrame):
    r = np.log(candles["close"]).diff()
    ppy = 365 * 24 * 60  # inferred from 1m spacing
    assert_allclose(historical_volatility(candles), r.std() * math.sqrt(ppy), rtol=1e-12)
    assert_allclose(historical_volatility(candles["close"], 1000), r.std() * math.sqrt(1000))
    rolling = historical_volatility(candles, window=20)
    assert_allclose(rolling, r.rolling(20).std() * math.sqrt(ppy), rtol=1e-10)


def test_realized(ticks: pd.DataFrame, candles: pd.DataFrame):
    last = ticks["price"].resample("5min", origin="epoch").last().ffill()
    r = np.log(last).diff().dropna()
    year = 365 * 24 * 12
    assert_allclose(realized_volatility(ticks, "5m"), math.sqrt((r**2).sum() * year / len(r)))
    assert_allclose(realized_volatility(ticks, "5m", annualize=False), math.sqrt((r**2).sum()))
    # raw ticks: annualised over the time the returns span
    lr = np.log(ticks["price"]).diff()
    span = (ticks.index[-1] - ticks.index[0]) / pd.Timedelta(days=365)
    assert_allclose(realized_volatility(ticks), math.sqrt((lr**2).sum() / span), rtol=1e-12)
    # bars at their own spacing: same as sampling ticks at 1m
    assert_allclose(realized_volatility(candles), realized_volatility(ticks, "1m"), rtol=1e-12)
    roll = realized_volatility(ticks, "1m", window=10)
    r1 = np.log(candles["close"]).diff()
    assert_allclose(roll, np.sqrt((r1**2).rolling(10).sum() * 365 * 1440 / 10), rtol=1e-10)


def test_parkinson_and_garman_klass(candles: pd.DataFrame):
    hl = np.log(candles["high"] / candles["low"])
    co = np.log(candles["close"] / candles["open"])
    ppy = 365 * 1440
    assert_allclose(parkinson(candles), math.sqrt((hl**2).mean() / (4 * math.log(2)) * ppy))
    gk = 0.5 * hl**2 - (2 * math.log(2) - 1) * co**2
    assert_allclose(garman_klass(candles), math.sqrt(gk.mean() * ppy))
    assert_allclose(
        garman_klass(candles, window=15), np.sqrt(gk.rolling(15).mean() * ppy), rtol=1e-10
    )
    assert_allclose(
        parkinson(candles, 100.0, window=15),
        np.sqrt((hl**2 / (4 * math.log(2))).rolling(15).mean() * 100),
        rtol=1e-10,
    )
    # all estimators see the same simulated volatility, roughly
    hv = historical_volatility(candles)
    assert 0.5 * hv < parkinson(candles) < 2 * hv
    assert 0.5 * hv < garman_klass(candles) < 2 * hv


def test_bad_arguments(candles: pd.DataFrame):
    with pytest.raises(ValueError, match="periods_per_year"):
        historical_volatility(candles["close"].reset_index(drop=True))
    with pytest.raises(ValueError, match="-1"):
        historical_volatility(candles, -1)
    with pytest.raises(ValueError, match="window"):
        parkinson(candles, window=1)
    with pytest.raises(ValueError, match="open"):
        garman_klass(candles.drop(columns="open"))
    with pytest.raises(ValueError, match="timeframe"):
        realized_volatility(candles, "5 parsecs")


def test_realized_ewma_is_pandas_ewm_of_squared_log_returns(candles: pd.DataFrame):
    close = candles["close"]
    step = pd.Series(close.index).diff().median()
    r2 = np.log(close).diff() ** 2
    expected = np.sqrt(r2.ewm(halflife=12, ignore_na=True).mean() * (pd.Timedelta(days=365) / step))
    assert_allclose(realized_volatility(candles, halflife=12), expected, rtol=1e-12, equal_nan=True)
    assert_allclose(realized_volatility(candles, halflife=12, annualize=False),
                    np.sqrt(r2.ewm(halflife=12, ignore_na=True).mean()), rtol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="not both"):
        realized_volatility(candles, window=10, halflife=12)
    with pytest.raises(ValueError, match="halflife must be > 0"):
        realized_volatility(candles, halflife=0)
