"""Forecasting the next bar: features from past bars, purged walk-forward splits, baselines, networks.

The networks (:class:`LSTMForecaster`, :class:`TransformerForecaster`) need
PyTorch, the optional extra ``pip install -e .[ml]``; everything else here,
including a baselines-only :func:`walk_forward`, runs without it.
"""

from __future__ import annotations

from quantify.analytics.forecast.features import forecast_features, forecast_target
from quantify.analytics.forecast.nets import LSTMForecaster, TransformerForecaster
from quantify.analytics.forecast.report import WalkForwardReport
from quantify.analytics.forecast.splits import purged_splits
from quantify.analytics.forecast.walkforward import walk_forward

__all__ = [
    "LSTMForecaster",
    "TransformerForecaster",
    "WalkForwardReport",
    "forecast_features",
    "forecast_target",
    "purged_splits",
    "walk_forward",
]
