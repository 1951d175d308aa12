"""Small PyTorch forecasters of the next return and its direction: an LSTM and a Transformer.

PyTorch is optional (``pip install -e .[ml]``): it is imported when a
forecaster is fitted, never by ``import quantify``. Both forecasters read a
window of the last ``lookback`` rows of :func:`~quantify.analytics.forecast_features`,
standardised with the training rows' mean and deviation, and are trained on
CPU with a seed, on one thread by default, so a fit is reproducible.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from quantify.analytics import _validate

__all__ = ["LSTMForecaster", "TransformerForecaster"]

ML_EXTRA_HINT = "pip install -e .[ml] (or pip install 'quantify[ml]')"


def load_torch() -> ModuleType:
    """The private torch module of the forecasters, or ImportError naming the extra to install."""
    try:
        from quantify.analytics.forecast import _torch
    except ImportError as exc:
        raise ImportError(f"the LSTM and Transformer forecasters need PyTorch: {ML_EXTRA_HINT}") from exc
    return _torch


def windows(values: np.ndarray, lookback: int) -> np.ndarray:
    """``(n, lookback, features)``: row ``t`` holds rows ``t - lookback + 1 .. t``; NaN before a full window."""
    n, f = values.shape
    out = np.full((n, lookback, f), np.nan)
    if n >= lookback:
        out[lookback - 1 :] = sliding_window_view(values, lookback, axis=0).transpose(0, 2, 1)
    return out


class _NetForecaster:
    """Shared fitting of the two networks; subclasses build the network."""

    name = "net"

    def __init__(self, *, lookback: int, epochs: int, batch_size: int, lr: float, weight_decay: float,
                 direction_weight: float, seed: int, threads: int | None) -> None:
        self.lookback = _validate.check_int(lookback, "lookback", 1, what="an integer number of bars")
        self.epochs = _validate.check_int(epochs, "epochs", 1)
        self.batch_size = _validate.check_int(batch_size, "batch_size", 1)
        self.lr = _validate.check_number(lr, "lr", positive=True)
        self.weight_decay = _validate.check_number(weight_decay, "weight_decay", nonneg=True)
        self.direction_weight = _validate.check_number(direction_weight, "direction_weight", nonneg=True)
        self.seed = _validate.check_int(seed, "seed", 0)
        self.threads = None if threads is None else _validate.check_int(threads, "threads", 1)
        self._net: Any = None
        self._scale: tuple[np.ndarray, np.ndarray, float, float] | None = None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def _build(self, torch_mod: ModuleType, n_features: int) -> Any:
        raise NotImplementedError

    # -- windows in, arrays out (what the walk-forward calls) --------------------------------------
    def fit_windows(self, x: np.ndarray, y: np.ndarray) -> _NetForecaster:
        """Fit on windows ``x`` of shape ``(rows, lookback, features)`` and their targets ``y``."""
        tm = load_torch()
        if x.ndim != 3 or x.shape[1] != self.lookback or len(x) != len(y) or len(y) < 2:
            raise ValueError(f"{type(self).__name__}.fit needs windows of shape (rows >= 2, {self.lookback}, "
                             f"features) and one target per window; got {x.shape} and {len(y)} targets")
        mu = x.reshape(-1, x.shape[2]).mean(axis=0)
        sd = x.reshape(-1, x.shape[2]).std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        y_mu = float(y.mean())
        y_sd = float(y.std()) or 1.0
        self._scale = (mu, sd, y_mu, y_sd)
        with tm.threads(self.threads):
            tm.seed_everything(self.seed)
            net = self._build(tm, x.shape[2])
            self._net = tm.train(net, (x - mu) / sd, (y - y_mu) / y_sd, epochs=self.epochs,
                                 batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                                 direction_weight=self.direction_weight, seed=self.seed)
        return self

    def predict_windows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted returns and probabilities of an up move for windows ``x``."""
        if self._net is None or self._scale is None:
            raise ValueError(f"{type(self).__name__} is not fitted: call fit first")
        tm = load_torch()
        mu, sd, y_mu, y_sd = self._scale
        with tm.threads(self.threads):
            z, p_up = tm.predict(self._net, (x - mu) / sd)
        return z * y_sd + y_mu, p_up

    # -- frames in, frames out --------------------------------------------------------------------
    def fit(self, features: pd.DataFrame, target: pd.Series) -> _NetForecaster:
        """Fit on the rows where a full window of finite features and a finite target exist.

        Parameters
        ----------
        features : DataFrame
            :func:`~quantify.analytics.forecast_features` (or any numeric frame, rows in time order).
        target : Series
            :func:`~quantify.analytics.forecast_target` on the same index.

        Returns
        -------
        self

        Raises
        ------
        ImportError
            Without PyTorch (``pip install -e .[ml]``).
        ValueError
            If fewer than two rows can be used, or the indexes differ.
        """
        x, rows = self._frame_windows(features)
        t = _validate.as_series(target, "target")
        if len(t) != len(features) or (isinstance(target, pd.Series) and not t.index.equals(features.index)):
            raise ValueError(f"{type(self).__name__}.fit: features and target must share one index")
        y = t.to_numpy()
        ok = rows & np.isfinite(y)
        return self.fit_windows(x[ok], y[ok])

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Columns ``return`` and ``p_up`` on the rows of ``features`` that hold a full window."""
        x, rows = self._frame_windows(features)
        ret, p_up = self.predict_windows(x[rows])
        return pd.DataFrame({"return": ret, "p_up": p_up}, index=features.index[rows])

    def _frame_windows(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(features, pd.DataFrame):
            raise TypeError(f"features must be a DataFrame, got {type(features).__name__}")
        values = features.to_numpy(dtype=np.float64)
        x = windows(values, self.lookback)
        return x, np.isfinite(x).all(axis=(1, 2))


class LSTMForecaster(_NetForecaster):
    """An LSTM forecaster of the next return and its direction (PyTorch, CPU).

    Parameters
    ----------
    lookback : int, default 16
        Rows of features in each input window (the bar itself and the ones before it).
    hidden : int, default 16
        Width of the LSTM's hidden state.
    layers : int, default 1
        Stacked LSTM layers.
    epochs : int, default 8
        Passes over the training rows.
    batch_size : int, default 256
    lr : float, default 2e-3
        Adam's learning rate.
    weight_decay : float, default 1e-4
    direction_weight : float, default 1.0
        Weight of the up/down cross-entropy beside the return's squared error.
    seed : int, default 0
        Seeds the weights and the batch order: the same seed gives the same fit.
    threads : int or None, default 1
        Torch threads while fitting and predicting (restored after); None leaves torch's setting.

    Notes
    -----
    The loss is :math:`\\operatorname{mean}(\\hat z - z)^2 + w\\,\\mathrm{BCE}(\\hat\\ell, 1[r > 0])`
    with :math:`z` the return standardised by the training rows and the BCE
    taken over rows with a non-zero return; the direction called is up when
    :math:`\\sigma(\\hat\\ell) > 1/2`. No dropout, no early stopping: a small
    network, a few epochs.
    """

    name = "lstm"

    def __init__(self, *, lookback: int = 16, hidden: int = 16, layers: int = 1, epochs: int = 8,
                 batch_size: int = 256, lr: float = 2e-3, weight_decay: float = 1e-4,
                 direction_weight: float = 1.0, seed: int = 0, threads: int | None = 1) -> None:
        super().__init__(lookback=lookback, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, direction_weight=direction_weight, seed=seed, threads=threads)
        self.hidden = _validate.check_int(hidden, "hidden", 1)
        self.layers = _validate.check_int(layers, "layers", 1)

    def _build(self, torch_mod: ModuleType, n_features: int) -> Any:
        return torch_mod.LSTMNet(n_features, self.hidden, self.layers)


class TransformerForecaster(_NetForecaster):
    """A Transformer-encoder forecaster of the next return and its direction (PyTorch, CPU).

    Parameters
    ----------
    lookback : int, default 16
        Rows of features in each input window.
    d_model : int, default 16
        Width of the embedding (a multiple of ``heads``).
    heads : int, default 2
        Attention heads.
    layers : int, default 1
        Encoder layers.
    epochs, batch_size, lr, weight_decay, direction_weight, seed, threads
        As :class:`LSTMForecaster`.

    Notes
    -----
    Each window's rows are embedded linearly, given a learned position
    vector, passed through the encoder (no dropout; every row of the window
    is already in the past, so no causal mask is needed) and read out at the
    last position. Loss and direction as :class:`LSTMForecaster`.
    """

    name = "transformer"

    def __init__(self, *, lookback: int = 16, d_model: int = 16, heads: int = 2, layers: int = 1,
                 epochs: int = 8, batch_size: int = 256, lr: float = 2e-3, weight_decay: float = 1e-4,
                 direction_weight: float = 1.0, seed: int = 0, threads: int | None = 1) -> None:
        super().__init__(lookback=lookback, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, direction_weight=direction_weight, seed=seed, threads=threads)
        self.d_model = _validate.check_int(d_model, "d_model", 1)
        self.heads = _validate.check_int(heads, "heads", 1)
        self.layers = _validate.check_int(layers, "layers", 1)
        if self.d_model % self.heads:
            raise ValueError(f"d_model must be a multiple of heads, got d_model={d_model!r}, heads={heads!r}")

    def _build(self, torch_mod: ModuleType, n_features: int) -> Any:
        return torch_mod.TransformerNet(n_features, self.lookback, self.d_model, self.heads, self.layers)
