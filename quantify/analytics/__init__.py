"""Pure analytics over pandas/numpy: candles, pairs, stationarity, volatility, scans, microstructure, perpetuals.

Nothing here knows about Binance's wire protocol, ArcticDB or widgets. The
candle functions and the timeframe table live in the model layer
(:mod:`quantify.model.bars`, :mod:`quantify.model.timeframes`), shared with the
store, the replay and the alerts; they are re-exported here as the public API.
"""

from __future__ import annotations

from quantify.analytics._results import Result
from quantify.analytics.asof_join import asof
from quantify.analytics.backtest import BacktestResult, backtest_pairs
from quantify.analytics.basis import BASIS_COLUMNS, basis, premium_index
from quantify.analytics.book_features import (
    QUOTE_COLUMNS,
    depth_within,
    imbalance,
    microprice,
    mid,
    ofi,
    quoted_spread,
)
from quantify.analytics.carry import CarryBacktestResult, carry_backtest
from quantify.analytics.drawdown import DrawdownResult, drawdown, paper_equity, trailing_drawdown, underwater
from quantify.analytics.forecast import (
    LSTMForecaster,
    TransformerForecaster,
    WalkForwardReport,
    forecast_features,
    forecast_target,
    purged_splits,
    walk_forward,
)
from quantify.analytics.funding import FundingCarryResult, funding_carry, funding_zscore
from quantify.analytics.johansen import JohansenResult, johansen
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
from quantify.analytics.microstructure import KyleLambdaResult, VPINResult, kyle_lambda, vpin
from quantify.analytics.pairs import PAIR_ZSCORE_COLUMNS, pair_zscore
from quantify.analytics.regimes import (
    REGIME_FEATURES,
    RegimeResult,
    filter_regimes,
    fit_regimes,
    regime_features,
)
from quantify.analytics.risk import VAR_METHODS, VaRResult, pnl_of, rolling_var, value_at_risk
from quantify.analytics.risk_parity import RiskParityResult, risk_parity
from quantify.analytics.rolling import (
    HedgeRatioResult,
    hedge_ratio,
    rolling_corr,
    rolling_hedge_ratio,
    spread,
    zscore,
)
from quantify.analytics.scan import benjamini_hochberg, scan_pairs
from quantify.analytics.sizing import KellyResult, VolTargetResult, kelly, vol_target
from quantify.analytics.stationarity import ADFResult, CointResult, adf, coint
from quantify.analytics.trade_costs import (
    MarkoutResult,
    effective_spread,
    markouts,
    realized_spread,
    trade_sign,
)
from quantify.analytics.var_backtest import VaRBacktestResult, var_backtest
from quantify.analytics.volatility import (
    DAYS_PER_YEAR,
    garman_klass,
    historical_volatility,
    parkinson,
    realized_volatility,
)
from quantify.model.bars import CANDLE_COLUMNS, merge_candles, resample
from quantify.model.timeframes import TIMEFRAMES, timeframe_to_offset

__all__ = [
    "BASIS_COLUMNS",
    "CANDLE_COLUMNS",
    "DAYS_PER_YEAR",
    "PAIR_ZSCORE_COLUMNS",
    "QUOTE_COLUMNS",
    "REGIME_FEATURES",
    "TIMEFRAMES",
    "VAR_METHODS",
    "ADFResult",
    "BacktestResult",
    "CarryBacktestResult",
    "CointResult",
    "DrawdownResult",
    "FundingCarryResult",
    "HalfLifeResult",
    "HedgeRatioResult",
    "HurstResult",
    "JohansenResult",
    "KalmanResult",
    "KellyResult",
    "KyleLambdaResult",
    "LSTMForecaster",
    "MarkoutResult",
    "RegimeResult",
    "Result",
    "RiskParityResult",
    "TransformerForecaster",
    "VPINResult",
    "VaRBacktestResult",
    "VaRResult",
    "VolTargetResult",
    "WalkForwardReport",
    "adf",
    "asof",
    "backtest_pairs",
    "basis",
    "benjamini_hochberg",
    "carry_backtest",
    "coint",
    "depth_within",
    "drawdown",
    "effective_spread",
    "filter_regimes",
    "fit_regimes",
    "forecast_features",
    "forecast_target",
    "funding_carry",
    "funding_zscore",
    "garman_klass",
    "half_life",
    "hedge_ratio",
    "historical_volatility",
    "hurst",
    "imbalance",
    "johansen",
    "kalman_hedge",
    "kelly",
    "kyle_lambda",
    "markouts",
    "merge_candles",
    "microprice",
    "mid",
    "ofi",
    "pair_zscore",
    "paper_equity",
    "parkinson",
    "pnl_of",
    "premium_index",
    "purged_splits",
    "quoted_spread",
    "realized_spread",
    "realized_volatility",
    "regime_features",
    "resample",
    "risk_parity",
    "rolling_corr",
    "rolling_hedge_ratio",
    "rolling_var",
    "scan_pairs",
    "spread",
    "timeframe_to_offset",
    "trade_sign",
    "trailing_drawdown",
    "underwater",
    "value_at_risk",
    "var_backtest",
    "vol_target",
    "vpin",
    "walk_forward",
    "zscore",
]
