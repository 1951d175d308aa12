"""The LSTM and Transformer forecasters (the optional ``quantify[ml]`` extra): seeded, past-only, reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import quantify.analytics as qa  # noqa: E402
from quantify import datasets  # noqa: E402

N = 360
IDX = pd.date_range("2018-01-10", periods=N, freq="5min", tz="UTC")
_rng = np.random.default_rng(3)
CLOSE = pd.Series(0.1 * np.exp(np.cumsum(_rng.normal(0, 3e-3, N))), IDX, name="close")
FEATURES = qa.forecast_features(CLOSE)
TARGET = qa.forecast_target(CLOSE)
TINY = {"lookback": 6, "epochs": 2, "batch_size": 64}


def _tiny(kind: str, seed: int = 0) -> qa.LSTMForecaster | qa.TransformerForecaster:
    if kind == "lstm":
        return qa.LSTMForecaster(hidden=4, seed=seed, **TINY)
    return qa.TransformerForecaster(d_model=8, heads=2, seed=seed, **TINY)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_a_seed_gives_the_same_fit_and_threads_are_restored(kind: str) -> None:
    before = torch.get_num_threads()
    a = _tiny(kind).fit(FEATURES, TARGET).predict(FEATURES)
    assert torch.get_num_threads() == before
    b = _tiny(kind).fit(FEATURES, TARGET).predict(FEATURES)
    c = _tiny(kind, seed=1).fit(FEATURES, TARGET).predict(FEATURES)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["return"], c["return"])
    # one row per full window of finite features; probabilities in (0, 1)
    assert a.index[0] == FEATURES.dropna().index[TINY["lookback"] - 1] and a.index[-1] == IDX[-1]
    assert ((a["p_up"] > 0) & (a["p_up"] < 1)).all()


@pytest.mark.parametrize("t", [250, 330])
def test_perturbing_later_bars_changes_no_earlier_network_prediction(t: int) -> None:
    later = CLOSE.copy()
    later.iloc[t + 1 :] *= np.exp(np.random.default_rng(t).normal(0, 0.05, N - t - 1))
    models = {"lstm": _tiny("lstm"), "transformer": _tiny("transformer")}
    before = qa.walk_forward(CLOSE, models, n_folds=3, lookback=TINY["lookback"])
    after = qa.walk_forward(later, {k: _tiny(k) for k in models}, n_folds=3, lookback=TINY["lookback"])
    upto = before.predictions.index <= IDX[t]
    assert upto.sum() > 20
    pd.testing.assert_frame_equal(before.predictions[upto].drop(columns="actual"),
                                  after.predictions[upto].drop(columns="actual"))
    assert not before.predictions[~upto].equals(after.predictions[~upto])


def test_walk_forward_on_real_bars_reports_models_beside_baselines() -> None:
    bars = datasets.candles_2018_ohlcv("LTC").iloc[-1200:]
    rep = qa.walk_forward(bars, {"lstm": _tiny("lstm"), "transformer": _tiny("transformer")}, n_folds=3,
                          lookback=TINY["lookback"])
    assert list(rep.overall.index) == ["zero", "ar1", "last_sign", "lstm", "transformer"]
    assert rep.models == ("lstm", "transformer") and len(rep.folds) == 15
    assert rep.verdict.startswith("lstm ") and "; transformer " in rep.verdict
    assert set(np.unique(rep.directions["lstm"])) <= {-1.0, 0.0, 1.0}
    assert np.isfinite(rep.overall[["mse", "mae", "hit_rate", "r2_oos"]].to_numpy()).all()
    assert "transformer" in rep._repr_html_()
