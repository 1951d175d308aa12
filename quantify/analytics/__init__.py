"""Pure analytics over pandas/numpy: candles, pairs, stationarity, volatility, scans.

Nothing here knows about Binance's wire protocol, ArcticDB or widgets.
"""

from __future__ import annotations

from quantify.analytics._results import Result
from quantify.analytics.candles import (
    CANDLE_COLUMNS,
    TIMEFRAMES,
    merge_candles,
    resample,
    timeframe_to_offset,
)

__all__ = [
    "CANDLE_COLUMNS",
    "Result",
    "TIMEFRAMES",
    "merge_candles",
    "resample",
    "timeframe_to_offset",
]
