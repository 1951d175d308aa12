"""fit_regimes: seeded reproducibility, hmmlearn's own filter/smoother/Viterbi, state order, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from quantify.analytics.regimes import (
    RegimeResult,
    filter_regimes,
    fit_regimes,
    regime_features,
)
from quantify.analytics.volatility import realized_volatility


def _two_regimes(seed: int, n: int = 800, block: int = 100) -> tuple[pd.Series, np.ndarray]:
    """Prices whose returns switch between a calm (sd 0.1%) and a wild (sd 0.6%) block every ``block`` bars."""
    rng = np.random.default_rng(seed)
    truth = (np.arange(n) // block) % 2
    r = rng.normal(0.0, np.where(truth == 1, 0.006, 0.001))
    idx = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.Series(100.0 * np.exp(np.cumsum(r)), idx, name="close"), truth


def _hmmlearn_model(res: RegimeResult):  # type: ignore[no-untyped-def]
    from hmmlearn.hmm import GaussianHMM

    p = res._params
    m = GaussianHMM(n_components=res.n_states, covariance_type="full")
    m.n_features = p.means.shape[1]
    m.startprob_, m.transmat_, m.means_, m.covars_ = p.start, p.trans, p.means, p.covars
    return m, (res.features.to_numpy()[res.window:] - p.centre) / p.scale


def test_features_are_returns_and_realised_vol() -> None:
    prices, _ = _two_regimes(1, n=200)
    f = regime_features(prices, window=10)
    assert list(f.columns) == ["return", "rv"]
    assert_allclose(f["return"].iloc[1:], np.diff(np.log(prices.to_numpy())), rtol=1e-13)
    rv = realized_volatility(prices, window=10, annualize=False) / math.sqrt(10)
    assert_allclose(f["rv"], rv, rtol=1e-13, equal_nan=True)
    assert f["rv"].iloc[:10].isna().all() and f["rv"].iloc[10:].notna().all()


def test_reproducible_with_a_seed() -> None:
    prices, _ = _two_regimes(2)
    a = fit_regimes(prices, 2, seed=7)
    b = fit_regimes(prices, 2, seed=7)
    assert_allclose(a.filtered, b.filtered, rtol=0, atol=0, equal_nan=True)
    assert_allclose(a.transition, b.transition, rtol=0, atol=0)
    assert_allclose(a.means, b.means, rtol=0, atol=0)
    pd.testing.assert_series_equal(a.viterbi, b.viterbi)


def test_states_sorted_calm_first_and_recover_the_truth() -> None:
    prices, truth = _two_regimes(3)
    res = fit_regimes(prices, 2, window=10, seed=0)
    assert res.vols[0] < res.vols[1]
    assert res.means.loc[0, "rv"] < res.means.loc[1, "rv"]
    # per-bar sd 0.1% and 0.6%, annualised over 5-minute bars of a 365-day year
    assert_allclose(res.vols.to_numpy() / math.sqrt(105_120), [0.001, 0.006], rtol=0.25)
    ok = res.viterbi.notna().to_numpy()
    assert (res.viterbi.to_numpy()[ok] == truth[ok]).mean() > 0.9
    assert (res.regime.to_numpy()[ok] == truth[ok]).mean() > 0.85
    assert_allclose(res.transition.sum(axis=1), 1.0, rtol=1e-12)
    assert (res.durations > 20).all()  # blocks of 100 bars
    assert_allclose(res.filtered.dropna().sum(axis=1), 1.0, rtol=1e-12)


def test_filter_smoother_viterbi_equal_hmmlearn() -> None:
    prices, _ = _two_regimes(4, n=500)
    res = fit_regimes(prices, 3, window=10, seed=1)
    model, z = _hmmlearn_model(res)
    w = res.window
    # smoothed and Viterbi: hmmlearn's forward-backward and Viterbi with the same (sorted) parameters
    assert_allclose(res.smoothed.iloc[w:], model.predict_proba(z), atol=1e-9)
    assert (res.viterbi.iloc[w:].to_numpy() == model.predict(z)).all()
    # filtered at t: hmmlearn's posterior of the last bar given the data up to t only
    for t in (0, 5, 100, 300, len(z) - 1):
        assert_allclose(res.filtered.iloc[w + t], model.predict_proba(z[: t + 1])[-1], atol=1e-9)
    assert_allclose(filter_regimes(res, prices), res.filtered, atol=1e-12, equal_nan=True)


def test_out_of_sample_filter_uses_only_the_training_fit() -> None:
    prices, _ = _two_regimes(5)
    res = fit_regimes(prices, 2, window=10, train=300)
    assert res.out_of_sample and res.refits == 1 and res.train == 300
    assert res.filtered.iloc[:300].isna().all().all() and res.regime.iloc[:300].isna().all()
    assert res.filtered.iloc[300:].notna().all().all()
    fit_head = fit_regimes(prices.iloc[:300], 2, window=10)
    # the parameters are those of a fit on the first 300 bars alone, filtered forward from bar 10
    assert_allclose(res.transition, fit_head.transition, rtol=1e-12)
    assert_allclose(filter_regimes(fit_head, prices).iloc[300:], res.filtered.iloc[300:], atol=1e-12)
    allow = res.allow(0)
    assert allow.dtype == bool and not allow.iloc[:300].any()
    assert (allow.iloc[300:] == (res.regime.iloc[300:] == 0)).all()


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(150, 380))
def test_walk_forward_has_no_look_ahead(seed: int, cut: int) -> None:
    prices, _ = _two_regimes(seed % 1000, n=400, block=60)
    rng = np.random.default_rng(seed)
    changed = prices.copy()
    changed.iloc[cut + 1 :] *= np.exp(np.cumsum(rng.normal(0.0, 0.01, len(prices) - cut - 1)))
    kw = {"window": 10, "train": 120, "refit_every": 60, "seed": 3}
    a = fit_regimes(prices, 2, **kw)  # type: ignore[arg-type]
    b = fit_regimes(changed, 2, **kw)  # type: ignore[arg-type]
    assert a.refits == 5
    assert_allclose(a.filtered.iloc[: cut + 1], b.filtered.iloc[: cut + 1], rtol=0, atol=0, equal_nan=True)
    pd.testing.assert_series_equal(a.regime.iloc[: cut + 1], b.regime.iloc[: cut + 1])


def test_result_api_and_plot() -> None:
    prices, _ = _two_regimes(6, n=300)
    res = fit_regimes(prices, 2, window=10)
    text = res.summary()
    assert "Gaussian HMM regimes" in text and "vols" in text and "0: " in text
    assert "<table" in res._repr_html_()
    bq = pytest.importorskip("bqplot")
    fig = res.plot()
    assert isinstance(fig, bq.Figure) and len(fig.marks) == 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_states": 1}, "n_states"),
    ({"n_states": 7}, "n_states"),
    ({"train": 20}, "train"),
    ({"train": 10_000}, "train"),
    ({"refit_every": 10}, "refit_every"),
    ({"window": 1}, "window"),
])
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    prices, _ = _two_regimes(7, n=200)
    with pytest.raises(ValueError, match=match):
        fit_regimes(prices, **kwargs)  # type: ignore[arg-type]


def test_bad_prices() -> None:
    prices, _ = _two_regimes(8, n=200)
    bad = prices.copy()
    bad.iloc[50] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_regimes(bad)
    with pytest.raises(ValueError, match="positive"):
        fit_regimes(-prices)
    with pytest.raises(ValueError, match="at least"):
        fit_regimes(prices.iloc[:25], 2)
    with pytest.raises(TypeError):
        filter_regimes("model", prices)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="states"):
        fit_regimes(prices, 2).allow(2)
