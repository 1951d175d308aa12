"""Pure analytics over pandas/numpy: candles, pairs, stationarity, volatility, scans, microstructure, perpetuals.

Nothing here knows about Binance's wire protocol, ArcticDB or widgets. The
candle functions and the timeframe table live in the model layer
(:mod:`quantify.model.bars`, :mod:`quantify.model.timeframes`), shared with the
store, the replay and the alerts; they are re-exported here as the public API.

Each public name is imported from its module on first use (PEP 562): a
notebook's first ``rolling_hedge_ratio`` loads the rolling kernels, not
statsmodels, scipy.stats and every other module here. Type checkers and
``help()`` see the same names through the imports under ``TYPE_CHECKING``;
``tests/test_public_api.py`` keeps them and :data:`_HOME` equal.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from quantify.analytics.parallel import ClosesSource
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
    from quantify.analytics.sweep import sweep_backtest
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

#: The module each public name lives in.
_HOME: dict[str, str] = {
    "adf": "quantify.analytics.stationarity",
    "ADFResult": "quantify.analytics.stationarity",
    "asof": "quantify.analytics.asof_join",
    "backtest_pairs": "quantify.analytics.backtest",
    "BacktestResult": "quantify.analytics.backtest",
    "basis": "quantify.analytics.basis",
    "BASIS_COLUMNS": "quantify.analytics.basis",
    "benjamini_hochberg": "quantify.analytics.scan",
    "ClosesSource": "quantify.analytics.parallel",
    "sweep_backtest": "quantify.analytics.sweep",
    "CANDLE_COLUMNS": "quantify.model.bars",
    "carry_backtest": "quantify.analytics.carry",
    "CarryBacktestResult": "quantify.analytics.carry",
    "coint": "quantify.analytics.stationarity",
    "CointResult": "quantify.analytics.stationarity",
    "DAYS_PER_YEAR": "quantify.analytics.volatility",
    "depth_within": "quantify.analytics.book_features",
    "drawdown": "quantify.analytics.drawdown",
    "DrawdownResult": "quantify.analytics.drawdown",
    "effective_spread": "quantify.analytics.trade_costs",
    "filter_regimes": "quantify.analytics.regimes",
    "fit_regimes": "quantify.analytics.regimes",
    "forecast_features": "quantify.analytics.forecast",
    "forecast_target": "quantify.analytics.forecast",
    "funding_carry": "quantify.analytics.funding",
    "funding_zscore": "quantify.analytics.funding",
    "FundingCarryResult": "quantify.analytics.funding",
    "garman_klass": "quantify.analytics.volatility",
    "half_life": "quantify.analytics.meanrev",
    "HalfLifeResult": "quantify.analytics.meanrev",
    "hedge_ratio": "quantify.analytics.rolling",
    "HedgeRatioResult": "quantify.analytics.rolling",
    "historical_volatility": "quantify.analytics.volatility",
    "hurst": "quantify.analytics.meanrev",
    "HurstResult": "quantify.analytics.meanrev",
    "imbalance": "quantify.analytics.book_features",
    "johansen": "quantify.analytics.johansen",
    "JohansenResult": "quantify.analytics.johansen",
    "kalman_hedge": "quantify.analytics.kalman",
    "KalmanResult": "quantify.analytics.kalman",
    "kelly": "quantify.analytics.sizing",
    "KellyResult": "quantify.analytics.sizing",
    "kyle_lambda": "quantify.analytics.microstructure",
    "KyleLambdaResult": "quantify.analytics.microstructure",
    "LSTMForecaster": "quantify.analytics.forecast",
    "MarkoutResult": "quantify.analytics.trade_costs",
    "markouts": "quantify.analytics.trade_costs",
    "merge_candles": "quantify.model.bars",
    "microprice": "quantify.analytics.book_features",
    "mid": "quantify.analytics.book_features",
    "ofi": "quantify.analytics.book_features",
    "pair_zscore": "quantify.analytics.pairs",
    "PAIR_ZSCORE_COLUMNS": "quantify.analytics.pairs",
    "paper_equity": "quantify.analytics.drawdown",
    "parkinson": "quantify.analytics.volatility",
    "pnl_of": "quantify.analytics.risk",
    "premium_index": "quantify.analytics.basis",
    "purged_splits": "quantify.analytics.forecast",
    "QUOTE_COLUMNS": "quantify.analytics.book_features",
    "quoted_spread": "quantify.analytics.book_features",
    "realized_spread": "quantify.analytics.trade_costs",
    "realized_volatility": "quantify.analytics.volatility",
    "REGIME_FEATURES": "quantify.analytics.regimes",
    "regime_features": "quantify.analytics.regimes",
    "RegimeResult": "quantify.analytics.regimes",
    "resample": "quantify.model.bars",
    "Result": "quantify.analytics._results",
    "risk_parity": "quantify.analytics.risk_parity",
    "RiskParityResult": "quantify.analytics.risk_parity",
    "rolling_corr": "quantify.analytics.rolling",
    "rolling_hedge_ratio": "quantify.analytics.rolling",
    "rolling_var": "quantify.analytics.risk",
    "scan_pairs": "quantify.analytics.scan",
    "spread": "quantify.analytics.rolling",
    "timeframe_to_offset": "quantify.model.timeframes",
    "TIMEFRAMES": "quantify.model.timeframes",
    "trade_sign": "quantify.analytics.trade_costs",
    "trailing_drawdown": "quantify.analytics.drawdown",
    "TransformerForecaster": "quantify.analytics.forecast",
    "underwater": "quantify.analytics.drawdown",
    "value_at_risk": "quantify.analytics.risk",
    "var_backtest": "quantify.analytics.var_backtest",
    "VAR_METHODS": "quantify.analytics.risk",
    "VaRBacktestResult": "quantify.analytics.var_backtest",
    "VaRResult": "quantify.analytics.risk",
    "vol_target": "quantify.analytics.sizing",
    "VolTargetResult": "quantify.analytics.sizing",
    "vpin": "quantify.analytics.microstructure",
    "VPINResult": "quantify.analytics.microstructure",
    "walk_forward": "quantify.analytics.forecast",
    "WalkForwardReport": "quantify.analytics.forecast",
    "zscore": "quantify.analytics.rolling",
}

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
    "ClosesSource",
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
    "sweep_backtest",
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


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Analytics(types.ModuleType):
    """This package, where a function wins over the submodule of the same name.

    The import system sets every loaded submodule as an attribute of its
    package; ``basis``, ``drawdown``, ``johansen``, ``risk_parity`` and
    ``var_backtest`` are each a function and the module defining it, and
    ``qf.basis`` must stay the function whichever was imported first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _HOME:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Analytics
