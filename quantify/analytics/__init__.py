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
from quantify.analytics.rolling import (
    HedgeRatioResult,
    hedge_ratio,
    rolling_corr,
    rolling_hedge_ratio,
    spread,
    zscore,
)
from quantify.analytics.kalman import (
    KalmanResult,
    kalman_hedge,
)
from quantify.analytics.meanrev import (
    HalfLifeResult,
    HurstResult,
    half_life,
    hurst,
)
from quantify.analytics.stationarity import (
    ADFResult,
    CointResult,
    JohansenResult,
    adf,
    coint,
    johansen,
)

__all__ = [
    "ADFResult",
    "CANDLE_COLUMNS",
    "CointResult",
    "JohansenResult",
    "TIMEFRAMES",
    "HalfLifeResult",
    "HedgeRatioResult",
    "HurstResult",
    "KalmanResult",
    "Result",
    "adf",
    "coint",
    "half_life",
    "hedge_ratio",
    "hurst",
    "johansen",
    "kalman_hedge",
    "merge_candles",
    "resample",
    "rolling_corr",
    "rolling_hedge_ratio",
    "spread",
    "timeframe_to_offset",
    "zscore",
]
