"""Forecast features, splits and the baselines-only walk-forward: no look-ahead, exact formulas, no torch needed."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantify.analytics as qa
from quantify import datasets

N = 400
IDX = pd.date_range("2018-01-10", periods=N, freq="5min", tz="UTC")
_rng = np.random.default_rng(17)
CLOSE = pd.Series(0.1 * np.exp(np.cumsum(_rng.normal(0, 3e-3, N))), IDX, name="close")
CANDLES = pd.DataFrame({"close": CLOSE, "high": CLOSE * (1 + _rng.uniform(0, 4e-3, N)),
                        "low": CLOSE * (1 - _rng.uniform(0, 4e-3, N)), "volume": _rng.lognormal(3, 1, N)})


def _perturb_after(bars: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """The same bars up to row ``t``; every later bar scaled by a random positive factor."""
    rng = np.random.default_rng(seed)
    out = bars.copy()
    factor = np.exp(rng.normal(0, 0.05, N - t - 1))
    for col in ("close", "high", "low"):
        out.iloc[t + 1 :, out.columns.get_loc(col)] *= factor
    out.iloc[t + 1 :, out.columns.get_loc("volume")] *= rng.uniform(0.1, 10, N - t - 1)
    return out


@settings(max_examples=25, deadline=None, derandomize=True)
@given(t=st.integers(30, N - 2), seed=st.integers(0, 2**16))
def test_perturbing_later_bars_changes_no_earlier_feature(t: int, seed: int) -> None:
    before = qa.forecast_features(CANDLES)
    after = qa.forecast_features(_perturb_after(CANDLES, t, seed))
    pd.testing.assert_frame_equal(before.iloc[: t + 1], after.iloc[: t + 1])
    assert not before.iloc[t + 1 :].equals(after.iloc[t + 1 :])  # the perturbation is seen later
    h = 3
    tb, ta = qa.forecast_target(CANDLES, h), qa.forecast_target(_perturb_after(CANDLES, t, seed), h)
    pd.testing.assert_series_equal(tb.iloc[: t + 1 - h], ta.iloc[: t + 1 - h])


@settings(max_examples=8, deadline=None, derandomize=True)
@given(t=st.integers(200, N - 2), seed=st.integers(0, 2**16))
def test_perturbing_later_bars_changes_no_earlier_baseline_prediction(t: int, seed: int) -> None:
    before = qa.walk_forward(CANDLES, (), n_folds=3)
    after = qa.walk_forward(_perturb_after(CANDLES, t, seed), (), n_folds=3)
    cols = ["zero", "ar1", "last_sign"]
    upto = before.predictions.index <= IDX[t]
    pd.testing.assert_frame_equal(before.predictions.loc[upto, cols], after.predictions.loc[upto, cols])
    pd.testing.assert_frame_equal(before.directions.loc[upto], after.directions.loc[upto])


def test_features_equal_their_formulas() -> None:
    f = qa.forecast_features(CANDLES, lags=3, vol_window=10)
    assert list(f.columns) == ["ret_1", "ret_2", "ret_3", "vol", "mom", "range", "volume_z"]
    c = CLOSE.to_numpy()
    t = 50
    r = np.diff(np.log(c))  # r[i] = ln(c[i+1] / c[i])
    np.testing.assert_allclose(f.iloc[t][["ret_1", "ret_2", "ret_3"]], [r[t - 1], r[t - 2], r[t - 3]], rtol=1e-12)
    np.testing.assert_allclose(f["vol"].iloc[t], np.std(r[t - 10 : t], ddof=1), rtol=1e-12)
    np.testing.assert_allclose(f["mom"].iloc[t], np.log(c[t] / c[t - 10]), rtol=1e-12)
    np.testing.assert_allclose(f["range"].iloc[t], np.log(CANDLES.high.iloc[t] / CANDLES.low.iloc[t]), rtol=1e-12)
    lv = np.log1p(CANDLES.volume.to_numpy()[t - 9 : t + 1])
    np.testing.assert_allclose(f["volume_z"].iloc[t], (lv[-1] - lv.mean()) / lv.std(ddof=1), rtol=1e-10)
    assert f.iloc[:10].isna().any(axis=1).all() and not f.iloc[10:].isna().any().any()
    assert list(qa.forecast_features(CLOSE).columns) == ["ret_1", "ret_2", "ret_3", "ret_4", "ret_5", "vol", "mom"]
    target = qa.forecast_target(CLOSE, 2)
    np.testing.assert_allclose(target.iloc[t], np.log(c[t + 2] / c[t]), rtol=1e-12)
    assert target.iloc[-2:].isna().all()


@pytest.mark.parametrize(("horizon", "purge", "embargo", "train_size"), [(1, None, None, None), (3, 4, 5, None),
                                                                          (2, None, None, 50)])
def test_splits_train_strictly_before_the_gap_and_tile_the_test_rows(horizon, purge, embargo, train_size) -> None:
    splits = qa.purged_splits(300, n_folds=4, horizon=horizon, purge=purge, embargo=embargo, train_size=train_size)
    gap = (purge or horizon) + (embargo or horizon)
    assert len(splits) == 4
    tested = np.concatenate([test for _, test in splits])
    np.testing.assert_array_equal(tested, np.arange(60, 300))  # 5 blocks of 60; the first only trains
    for train, test in splits:
        assert train[-1] == test[0] - gap - 1 and np.all(np.diff(train) == 1)
        assert len(train) == (test[0] - gap if train_size is None else min(train_size, test[0] - gap))


def test_splits_refuse_a_purge_or_embargo_below_the_horizon_and_tiny_folds() -> None:
    with pytest.raises(ValueError, match="purge must be at least the label horizon"):
        qa.purged_splits(300, horizon=3, purge=2)
    with pytest.raises(ValueError, match="embargo must be at least the label horizon"):
        qa.purged_splits(300, horizon=3, embargo=0)
    with pytest.raises(ValueError, match="fewer than min_train"):
        qa.purged_splits(30, n_folds=5)
    with pytest.raises(TypeError, match="n must be"):
        qa.purged_splits(CLOSE)  # type: ignore[arg-type]


def test_baselines_are_their_closed_forms_fitted_on_the_train_fold_only() -> None:
    rep = qa.walk_forward(CANDLES, (), n_folds=3, horizon=2)
    pred = rep.predictions
    past = np.log(CLOSE / CLOSE.shift(2)).reindex(pred.index)
    target = qa.forecast_target(CANDLES, 2)
    assert (pred["zero"] == 0).all() and (rep.directions["zero"] == 0).all()
    np.testing.assert_allclose(pred["last_sign"], past, rtol=0, atol=1e-14)
    f0 = rep.folds[(rep.folds.fold == 0) & (rep.folds.model == "ar1")].iloc[0]
    train = slice(f0.train_start, f0.train_end)
    b, a = np.polyfit(np.log(CLOSE / CLOSE.shift(2))[train], target[train], 1)
    np.testing.assert_allclose(pred.loc[pred.fold == 0, "ar1"], a + b * past[pred.fold == 0], rtol=1e-9, atol=1e-13)
    assert f0.train_end < f0.test_start - pd.Timedelta(minutes=5 * 4)  # purge 2 + embargo 2
    np.testing.assert_allclose(rep.overall.loc["zero", "hit_rate"], 0.5)
    np.testing.assert_allclose(rep.overall.loc["zero", "mse"], np.mean(pred["actual"] ** 2))
    assert rep.verdict == "baselines only: no model was evaluated"


def test_report_on_real_bars_prints_and_renders() -> None:
    """ETH/BTC 5-minute bars of 2018: AR(1) on the bid-ask bounce beats the zero forecast; last sign loses."""
    rep = qa.walk_forward(datasets.candles_2018_ohlcv("ETH"), ())
    o = rep.overall
    assert list(o.index) == ["zero", "ar1", "last_sign"] and rep.n_test == 4770
    assert o.loc["ar1", "mse"] < o.loc["zero", "mse"] < o.loc["last_sign", "mse"]
    assert o.loc["ar1", "hit_rate"] > 0.55 > 0.45 > o.loc["last_sign", "hit_rate"]
    assert "ar1" in rep.summary() and "<table" in rep._repr_html_()
    fig = rep.plot("hit_rate")
    assert len(fig.marks[0].labels) == 3
    np.testing.assert_allclose(rep.plot("mse").marks[0].y[0], 1.0)  # relative to the zero forecast
    with pytest.raises(ValueError, match="metric must be"):
        rep.plot("sharpe")


def test_networks_without_torch_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "quantify.analytics.forecast._torch", raising=False)
    # once imported, the submodule is also an attribute of its package, which ``from ... import`` finds first
    monkeypatch.delattr(importlib.import_module("quantify.analytics.forecast"), "_torch", raising=False)
    with pytest.raises(ImportError, match=r"pip install -e \.\[ml\]"):
        qa.walk_forward(CANDLES, ("lstm",), n_folds=3)
    with pytest.raises(ImportError, match=r"pip install -e \.\[ml\]"):
        qa.TransformerForecaster(lookback=4).fit(qa.forecast_features(CLOSE), qa.forecast_target(CLOSE))


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="unknown model 'gru'"):
        qa.walk_forward(CANDLES, ("gru",))
    with pytest.raises(ValueError, match="lookback"):
        qa.walk_forward(CANDLES, {"small": qa.LSTMForecaster(lookback=4)})
    with pytest.raises(ValueError, match="d_model must be a multiple of heads"):
        qa.TransformerForecaster(d_model=10, heads=3)
    with pytest.raises(ValueError, match="close must be positive"):
        qa.forecast_features(CANDLES.assign(close=-CANDLES.close))


def test_import_quantify_loads_no_torch() -> None:
    code = ("import sys, quantify as qf, quantify.analytics; qf.walk_forward; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
