"""Forecasting inputs built from past bars only: lagged returns, realised volatility, momentum.

Every feature at bar ``t`` is a function of bars ``0..t`` (their close, and
high, low and volume when given); the label of bar ``t`` is the log return
from its close to the close ``horizon`` bars later. A feature never reads a
later bar, so changing bars after ``t`` changes no feature up to ``t`` (the
look-ahead test in ``tests/analytics/test_forecast_features.py`` perturbs
them and checks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics.rolling import zscore

__all__ = ["forecast_features", "forecast_target"]


def _closes(bars: Any, func: str, minimum: int) -> tuple[pd.Series, pd.DataFrame | None]:
    """The validated close prices of ``bars`` (a Series of closes or a candle frame), and the frame."""
    frame: pd.DataFrame | None = None
    if isinstance(bars, pd.DataFrame):
        frame = _validate.check_frame(bars, func, ("close",), name="bars")
        close = _validate.series(frame["close"], "close", func, nan="refuse", minimum=minimum)
    else:
        close = _validate.series(bars, "bars", func, nan="refuse", minimum=minimum)
    _validate.check_positive_prices(func, "close", close.to_numpy())
    return close, frame


def _check_horizon(horizon: Any) -> int:
    return _validate.check_int(horizon, "horizon", 1, what="an integer number of bars")


def forecast_features(bars: Any, *, lags: int = 5, vol_window: int = 20) -> pd.DataFrame:
    """Features of each bar from that bar and the bars before it.

    Parameters
    ----------
    bars : Series or DataFrame
        Close prices, or candles with a ``close`` column (``store.ohlcv``,
        :func:`quantify.datasets.candles_2018_ohlcv`); ``high``/``low`` and
        ``volume`` columns, when present, add a range and a volume feature.
        Positive, no NaN, in time order.
    lags : int, default 5
        Number of lagged one-bar log returns (``ret_1`` the latest).
    vol_window : int, default 20
        Bars of the realised volatility, the momentum and the volume z-score.

    Returns
    -------
    DataFrame
        On the index of ``bars``, columns ``ret_1 .. ret_<lags>``, ``vol``,
        ``mom``, then ``range`` (with high and low) and ``volume_z`` (with
        volume); NaN in the warm-up rows whose windows are not yet full.

    Raises
    ------
    ValueError
        On a NaN, infinite or non-positive price, a bad parameter, or fewer
        than ``max(lags, vol_window) + 1`` bars.
    TypeError
        If ``bars`` or a parameter has the wrong type.

    Notes
    -----
    With :math:`r_t = \\ln(c_t / c_{t-1})`: ``ret_k`` is :math:`r_{t-k+1}`;
    ``vol`` the sample standard deviation (ddof 1) of :math:`r` over the
    ``vol_window`` bars ending at :math:`t`; ``mom`` :math:`\\ln(c_t /
    c_{t-w})`; ``range`` :math:`\\ln(h_t / l_t)`; ``volume_z`` the rolling
    z-score (:func:`~quantify.analytics.zscore`) of :math:`\\ln(1 + v_t)`.
    Each uses bars up to and including :math:`t` only; a window holding a
    constant volume gives NaN there. Windows count rows, not time: a bar
    missing from ``bars`` is not filled (reindex and forward-fill first to
    treat it as a bar without a trade).
    """
    lags = _validate.check_int(lags, "lags", 1, what="an integer number of bars")
    vol_window = _validate.check_window(vol_window, name="vol_window")
    close, frame = _closes(bars, "forecast_features", max(lags, vol_window) + 1)
    logc = np.log(close)
    ret = logc.diff()
    out = {f"ret_{k}": ret.shift(k - 1) for k in range(1, lags + 1)}
    out["vol"] = ret.rolling(vol_window, min_periods=vol_window).std()
    out["mom"] = logc - logc.shift(vol_window)
    if frame is not None and {"high", "low"} <= set(frame.columns):
        high = _validate.series(frame["high"], "high", "forecast_features", nan="refuse")
        low = _validate.series(frame["low"], "low", "forecast_features", nan="refuse")
        _validate.check_positive_prices("forecast_features", "high", high.to_numpy())
        _validate.check_positive_prices("forecast_features", "low", low.to_numpy())
        out["range"] = np.log(high / low)
    if frame is not None and "volume" in frame.columns:
        volume = _validate.series(frame["volume"], "volume", "forecast_features", nan="refuse")
        if (volume.to_numpy() < 0).any():
            raise ValueError("forecast_features: volume must be >= 0")
        out["volume_z"] = zscore(np.log1p(volume), vol_window)
    return pd.DataFrame(out, index=close.index)


def forecast_target(bars: Any, horizon: int = 1) -> pd.Series:
    """The label of each bar: the log return from its close to the close ``horizon`` bars later.

    Parameters
    ----------
    bars : Series or DataFrame
        Close prices or candles with a ``close`` column, as :func:`forecast_features`.
    horizon : int, default 1
        Bars ahead.

    Returns
    -------
    Series
        :math:`\\ln(c_{t+h} / c_t)` named ``target``; NaN for the last ``horizon`` bars.

    Raises
    ------
    ValueError
        On a bad price or horizon, or fewer than ``horizon + 1`` bars.
    TypeError
        If ``bars`` has the wrong type.
    """
    h = _check_horizon(horizon)
    close, _ = _closes(bars, "forecast_target", h + 1)
    logc = np.log(close)
    return (logc.shift(-h) - logc).rename("target")
