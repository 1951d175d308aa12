"""Pairs statistics against slow two-pass references, statsmodels and pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from statsmodels.regression.rolling import RollingOLS

from quantify.analytics.rolling import (
    HedgeRatioResult,
    hedge_ratio,
    rolling_corr,
    rolling_hedge_ratio,
    spread,
    zscore,
)

WINDOW = 50


def exact_rolling(y: np.ndarray, x: np.ndarray, w: int) -> dict[str, np.ndarray]:
    """Slow, obvious reference: a two-pass computation per window, centred on its mean."""
    out = {k: np.full(len(x), np.nan) for k in ("beta", "alpha", "corr", "z")}
    for i in range(w - 1, len(x)):
        xs, ys = x[i - w + 1 : i + 1], y[i - w + 1 : i + 1]
        if np.isnan(xs).any() or np.isnan(ys).any():
            continue
        mx, my = xs.mean(), ys.mean()
        dx, dy = xs - mx, ys - my
        sxx, syy, sxy = (dx * dx).sum(), (dy * dy).sum(), (dx * dy).sum()
        out["beta"][i] = sxy / sxx
        out["alpha"][i] = my - sxy / sxx * mx
        out["corr"][i] = sxy / np.sqrt(sxx * syy)
        out["z"][i] = (x[i] - mx) / np.sqrt(sxx / (w - 1))
    return out


def pair(kind: str, n: int = 1500, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = 60_000 + np.cumsum(rng.normal(0, 30, n))
    y = 0.05 * x + 100 + np.cumsum(rng.normal(0, 3, n))
    if kind == "log":
        return np.log(y), np.log(x)
    if kind == "returns":
        return np.diff(np.log(y)), np.diff(np.log(x))
    return y, x


@pytest.mark.parametrize("kind", ["raw", "log", "returns"])
def test_rolling_exact_against_two_pass(kind: str):
    y, x = pair(kind)
    ref = exact_rolling(y, x, WINDOW)
    got = rolling_hedge_ratio(y, x, WINDOW)
    assert_allclose(got["beta"], ref["beta"], rtol=1e-10)
    # alpha and z are differences of nearly equal numbers: the reference's own
    # rounding (1e-16 of 60,000) sets an absolute floor
    assert_allclose(got["alpha"], ref["alpha"], rtol=1e-10, atol=1e-9)
    assert_allclose(rolling_corr(y, x, WINDOW), ref["corr"], rtol=1e-10)
    assert_allclose(zscore(x, WINDOW), ref["z"], rtol=1e-10, atol=1e-10)
    assert np.isnan(got["beta"].to_numpy()[: WINDOW - 1]).all()
    assert not np.isnan(got["beta"].to_numpy()[WINDOW - 1 :]).any()


def with_nans(seed: int = 3) -> tuple[pd.Series, pd.Series]:
    y, x = pair("returns", 600, seed)
    rng = np.random.default_rng(seed)
    # centre so that the one-pass references are exact enough to compare at 1e-8
    y, x = (y - y.mean()) * 100, (x - x.mean()) * 100
    idx = pd.date_range("2024-08-08", periods=len(x), freq="1min", tz="UTC")
    y[rng.choice(len(y), 4, replace=False)] = np.nan
    x[[100, 101, 300]] = np.nan
    return pd.Series(y, idx), pd.Series(x, idx)


def test_rolling_matches_statsmodels_on_centred_data():
    y, x = with_nans()
    y, x = y.fillna(0.0), x.fillna(0.0)
    got = rolling_hedge_ratio(y, x, WINDOW)
    sm_params = RollingOLS(y, sm.add_constant(x), window=WINDOW).fit(params_only=True).params
    assert_allclose(
        got["beta"], sm_params["x"] if "x" in sm_params else sm_params.iloc[:, 1], rtol=1e-8
    )
    assert_allclose(got["alpha"], sm_params["const"], rtol=1e-8, atol=1e-12)


def test_rolling_nan_handling_matches_pandas():
    # statsmodels 0.15 RollingOLS is no reference here: missing="drop" fits
    # windows on the remaining rows, and missing="skip" gives wrong values
    # after the first NaN window; pandas' min_periods=window is the rule.
    y, x = with_nans()
    got = rolling_hedge_ratio(y, x, WINDOW)
    ref = exact_rolling(y.to_numpy(), x.to_numpy(), WINDOW)
    assert_allclose(got["beta"], ref["beta"], rtol=1e-10)
    assert_allclose(got["alpha"], ref["alpha"], rtol=1e-10, atol=1e-12)
    assert_allclose(rolling_corr(y, x, WINDOW), y.rolling(WINDOW).corr(x), rtol=1e-8)
    ref_z = (x - x.rolling(WINDOW).mean()) / x.rolling(WINDOW).std()
    assert_allclose(zscore(x, WINDOW), ref_z, rtol=1e-8, atol=1e-12)
    assert got.index.equals(y.index) and zscore(x, WINDOW).index.equals(x.index)
    # a NaN blanks exactly the windows that contain it
    assert np.isnan(got["beta"].iloc[100 : 101 + WINDOW]).all()
    assert not np.isnan(got["beta"].iloc[191:300]).any()  # y has NaNs at 107 and 141


def test_rolling_window_longer_than_data_and_constant():
    y, x = pair("returns", 20)
    assert rolling_hedge_ratio(y, x, 50)["beta"].isna().all()
    const = np.ones(30)
    assert zscore(const, 5).isna().all()
    assert rolling_corr(const, np.arange(30.0), 5).isna().all()
    assert rolling_hedge_ratio(np.arange(30.0), const, 5)["beta"].isna().all()


def test_hedge_ratio_equals_statsmodels():
    for kind in ("raw", "log", "returns"):
        y, x = pair(kind)
        res = hedge_ratio(y, x)
        ols = sm.OLS(y, sm.add_constant(x)).fit()
        assert isinstance(res, HedgeRatioResult)
        assert_allclose(res.beta, ols.params[1], rtol=1e-10)
        assert_allclose(res.alpha, ols.params[0], rtol=1e-10)
        assert_allclose(res.r_squared, ols.rsquared, rtol=1e-10)
        assert_allclose(res.residuals, ols.resid, rtol=1e-8, atol=1e-10 * np.abs(y).max())
        res0 = hedge_ratio(y, x, intercept=False)
        ols0 = sm.OLS(y, x).fit()
        assert_allclose(res0.beta, ols0.params[0], rtol=1e-10)
        assert_allclose(res0.r_squared, ols0.rsquared, rtol=1e-10)
        assert res0.alpha == 0.0


def test_hedge_ratio_drops_nans_and_summarises():
    y, x = with_nans()
    res = hedge_ratio(y, x)
    ols = sm.OLS(y.to_numpy(), sm.add_constant(x.to_numpy()), missing="drop").fit()
    assert_allclose([res.alpha, res.beta], ols.params, rtol=1e-10)
    assert res.nobs == ols.nobs
    assert res.residuals.index.equals(y.index)
    assert "beta" in res.summary() and "residuals" not in res.summary()
    assert "<table" in res._repr_html_()


def test_spread():
    y, x = with_nans()
    y, x = y.fillna(0.0), x.fillna(0.0)
    assert_allclose(spread(y, x, 2.0, 1.0), y - 2 * x - 1)
    beta = rolling_hedge_ratio(y, x, WINDOW)
    assert_allclose(spread(y, x, beta["beta"], beta["alpha"]), y - beta["beta"] * x - beta["alpha"])
    assert spread(y.to_numpy(), x.to_numpy(), 1.5).index.equals(pd.RangeIndex(len(y)))


def test_bad_arguments():
    y, x = pair("returns", 100)
    with pytest.raises(ValueError, match="1"):
        rolling_hedge_ratio(y, x, 1)
    with pytest.raises(TypeError, match="2.5"):
        zscore(x, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="50"):
        rolling_corr(y[:50], x, 10)
    with pytest.raises(ValueError, match="index"):
        rolling_corr(pd.Series(y), pd.Series(x, index=np.arange(len(x)) + 1), 10)
    with pytest.raises(ValueError, match="constant"):
        hedge_ratio(y, np.ones(len(y)))
    with pytest.raises(TypeError, match="beta"):
        spread(y, x, [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta"):
        spread(pd.Series(y), pd.Series(x), pd.Series(np.ones(5)))
