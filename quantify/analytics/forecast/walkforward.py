"""Purged walk-forward evaluation of forecasters against the baselines, on one instrument's bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics.forecast.baselines import BASELINES
from quantify.analytics.forecast.features import forecast_features, forecast_target
from quantify.analytics.forecast.nets import LSTMForecaster, TransformerForecaster, _NetForecaster, windows
from quantify.analytics.forecast.report import BASELINE_NAMES, WalkForwardReport, scores, verdict
from quantify.analytics.forecast.splits import purged_splits

__all__ = ["walk_forward"]

_NETS: dict[str, type[LSTMForecaster] | type[TransformerForecaster]] = {
    "lstm": LSTMForecaster, "transformer": TransformerForecaster,
}


def _models(models: Any, lookback: int, seed: int) -> dict[str, _NetForecaster]:
    """``{name: forecaster}`` from names, forecasters, or a mapping of names to forecasters."""
    if isinstance(models, str):
        models = (models,)
    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, Sequence):
        items = [(m, m) if isinstance(m, str) else (getattr(m, "name", type(m).__name__), m) for m in models]
    else:
        raise TypeError(f"models must be names ('lstm', 'transformer'), forecasters or a mapping, got {models!r:.80}")
    out: dict[str, _NetForecaster] = {}
    for name, model in items:
        if isinstance(model, str):
            if model not in _NETS:
                raise ValueError(f"unknown model {model!r}: use 'lstm', 'transformer' or a forecaster")
            model = _NETS[model](lookback=lookback, seed=seed)
        if not isinstance(model, _NetForecaster):
            raise TypeError(f"model {name!r} must be an LSTMForecaster or TransformerForecaster, got {model!r:.80}")
        if not isinstance(name, str) or name in BASELINE_NAMES or name in out or name in ("actual", "fold"):
            raise ValueError(f"model names must be distinct strings other than {BASELINE_NAMES}, got {name!r}")
        if model.lookback != lookback:
            raise ValueError(f"model {name!r} has lookback={model.lookback}, the evaluation lookback={lookback}; "
                             "give both the same (the test rows must be the same for every model)")
        out[name] = model
    return out


def walk_forward(
    bars: Any,
    models: Any = ("lstm", "transformer"),
    *,
    horizon: int = 1,
    n_folds: int = 5,
    purge: int | None = None,
    embargo: int | None = None,
    train_size: int | None = None,
    lookback: int = 16,
    lags: int = 5,
    vol_window: int = 20,
    seed: int = 0,
) -> WalkForwardReport:
    """Evaluate forecasters of the ``horizon``-bar return fold by fold, beside three baselines.

    Parameters
    ----------
    bars : Series or DataFrame
        One instrument's closes or candles (:func:`~quantify.analytics.forecast_features`).
    models : sequence or mapping, default ("lstm", "transformer")
        Names (``"lstm"``, ``"transformer"``: the default forecasters with
        ``lookback`` and ``seed``), forecaster instances, or ``{name:
        forecaster}``; ``()`` evaluates the baselines only and needs no PyTorch.
    horizon : int, default 1
        Bars ahead of the target (:func:`~quantify.analytics.forecast_target`).
    n_folds, purge, embargo, train_size : optional
        The splits of :func:`~quantify.analytics.purged_splits` (``purge`` and
        ``embargo`` default to ``horizon``).
    lookback : int, default 16
        Rows in a network's input window; the first test row of every model
        is the same.
    lags, vol_window : int, default 5 and 20
        Of :func:`~quantify.analytics.forecast_features`.
    seed : int, default 0
        Seeds the default forecasters (every fold refits from the same seed).

    Returns
    -------
    WalkForwardReport
        Per fold and pooled MSE/MAE of the return and hit rate of the
        direction for the baselines ``zero``, ``ar1`` and ``last_sign`` and
        each model, with a verdict.

    Raises
    ------
    ImportError
        When a network model is asked for without PyTorch (``pip install -e .[ml]``).
    ValueError
        On bad prices or parameters, or too few bars for the folds.
    TypeError
        If an input or a parameter has the wrong type.

    Notes
    -----
    A row is a bar :math:`t` with a full window of features (bars up to
    :math:`t` only) and a known target :math:`\\ln(c_{t+h}/c_t)`. The rows are
    split by :func:`~quantify.analytics.purged_splits`; in each fold every
    model (and the AR(1) and the feature scaling inside the networks) is
    fitted on the training rows only and predicts the test rows. The
    baselines predict from the last ``horizon``-bar return
    :math:`p_t = \\ln(c_t/c_{t-h})`: zero (no directional call), AR(1)
    :math:`a + b\\,p_t` by least squares on the training rows, and the last
    sign (persistence, :math:`p_t` itself). Hit rate: over test rows whose
    target is not zero, the share whose sign was called right, a no-call
    counting one half (so the zero forecast scores 0.5). A prediction at
    :math:`t` uses no bar after :math:`t` and no label that ends inside the
    test block.
    """
    h = _validate.check_int(horizon, "horizon", 1, what="an integer number of bars")
    lookback = _validate.check_int(lookback, "lookback", 1, what="an integer number of bars")
    seed = _validate.check_int(seed, "seed", 0)
    nets = _models(models, lookback, seed)
    feats = forecast_features(bars, lags=lags, vol_window=vol_window)
    target = forecast_target(bars, h).to_numpy()
    close = feats.index  # the rows of bars
    logc = np.log(bars["close"] if isinstance(bars, pd.DataFrame) else _validate.as_series(bars, "bars"))
    past = (logc - logc.shift(h)).to_numpy(dtype=np.float64)
    values = feats.to_numpy(dtype=np.float64)
    if "volume_z" in feats.columns:  # a window of constant volume has no deviation: z 0, not a hole
        col = feats.columns.get_loc("volume_z")
        full = np.arange(len(values)) >= vol_window - 1
        values[full & np.isnan(values[:, col]), col] = 0.0
    x_all = windows(values, lookback)
    usable = np.isfinite(x_all).all(axis=(1, 2)) & np.isfinite(target) & np.isfinite(past)
    rows = np.flatnonzero(usable)
    if rows.size and not np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
        raise ValueError("walk_forward: the usable rows are not contiguous")  # features are NaN only in warm-up
    splits = purged_splits(len(rows), n_folds=n_folds, horizon=h, purge=purge, embargo=embargo,
                           train_size=train_size)
    p = h if purge is None else int(purge)
    e = h if embargo is None else int(embargo)

    names = [*BASELINE_NAMES, *nets]
    n = len(rows)
    pred = {m: np.full(n, np.nan) for m in names}
    direction = {m: np.full(n, np.nan) for m in names}
    fold_of = np.full(n, -1)
    fold_rows = []
    for k, (train, test) in enumerate(splits):
        tr, te = rows[train], rows[test]
        fold_of[test] = k
        for cls in BASELINES:
            model = cls().fit(past[tr], target[tr])
            pred[model.name][test], direction[model.name][test] = model.predict(past[te])
        for name, net in nets.items():
            net.fit_windows(x_all[tr], target[tr])
            ret, p_up = net.predict_windows(x_all[te])
            pred[name][test], direction[name][test] = ret, np.sign(p_up - 0.5)
        for m in names:
            s = scores(pred[m][test], direction[m][test], target[te])
            fold_rows.append({"fold": k, "model": m, "train_start": close[tr[0]], "train_end": close[tr[-1]],
                              "test_start": close[te[0]], "test_end": close[te[-1]], "n_train": len(tr),
                              "n_test": len(te), "mse": s["mse"], "mae": s["mae"], "hit_rate": s["hit_rate"]})
    tested = fold_of >= 0
    actual = target[rows][tested]
    overall = pd.DataFrame({m: scores(pred[m][tested], direction[m][tested], actual) for m in names}).T
    overall["n"] = overall["n"].astype(int)
    zero_mse = overall.loc["zero", "mse"]
    overall["r2_oos"] = 1.0 - overall["mse"] / zero_mse if zero_mse > 0 else np.nan
    overall.index.name = "model"
    index = close[rows[tested]]
    predictions = pd.DataFrame({"actual": actual, "fold": fold_of[tested],
                                **{m: pred[m][tested] for m in names}}, index=index)
    directions = pd.DataFrame({m: direction[m][tested] for m in names}, index=index)
    return WalkForwardReport(
        overall=overall, folds=pd.DataFrame(fold_rows), predictions=predictions, directions=directions,
        verdict=verdict(overall, list(nets)), models=tuple(nets), horizon=h, n_folds=len(splits), purge=p,
        embargo=e, lookback=lookback, seed=seed, features=tuple(feats.columns),
    )
