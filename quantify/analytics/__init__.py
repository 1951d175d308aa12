"""Pure analytics over pandas/numpy: candles, pairs, stationarity, volatility, scans.

Nothing here knows about Binance's wire protocol, ArcticDB or widgets.
"""

from __future__ import annotations

from quantify.analytics._results import Result

__all__ = ["Result"]
