"""Half-life against statsmodels OLS; Hurst on seeded random walks and AR(1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from quantify.analytics.meanrev import HalfLifeResult, half_life, hurst


def ar1(phi: float, n: int, seed: int, level: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    s = np.empty(n)
    s[0] = level
    for t in range(1, n):
        s[t] = level + phi * (s[t - 1] - level) + e[t]
    return s


def test_half_life_equals_statsmodels():
    s = pd.Series(ar1(0.95, 3000, seed=1, level=5.0))
    s.iloc[100] = np.nan
    res = half_life(s)
    ds, lag = s.diff(), s.shift(1)
    ols = sm.OLS(ds.to_numpy(), sm.add_constant(lag.to_numpy()), missing="drop").fit()
    a, b = ols.params
    assert isinstance(res, HalfLifeResult)
    assert_allclose([res.a, res.b], [a, b], rtol=1e-10)
    assert_allclose(res.half_life, -np.log(2) / np.log(1 + b), rtol=1e-12)
    assert res.nobs == ols.nobs
    assert_allclose(res.mean, 5.0, atol=1.0)
    # the true half-life of phi=0.95 is ln 2 / -ln 0.95 = 13.5 rows
    assert 9 < res.half_life < 20
    assert "half_life" in res.summary()


def test_half_life_of_random_walk_is_long_or_infinite():
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(size=2000))
    assert half_life(walk).half_life > 100
    trend = np.exp(np.arange(200) / 50.0)
    assert half_life(trend).half_life == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hurst(seed: int):
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=5000))
    h_walk = hurst(walk).hurst
    assert 0.4 < h_walk < 0.6
    h_ar = hurst(ar1(0.5, 5000, seed)).hurst
    assert h_ar < 0.2 < h_walk


def test_hurst_bad_arguments():
    with pytest.raises(ValueError, match="3 lags"):
        hurst(np.arange(8.0))
    with pytest.raises(ValueError, match="max_lag"):
        hurst(np.arange(100.0), max_lag=2)
    with pytest.raises(ValueError, match="constant"):
        hurst(np.ones(100))
    with pytest.raises(ValueError, match="constant"):
        half_life(np.ones(10))
