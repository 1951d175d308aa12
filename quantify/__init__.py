"""QuantiFy: a Jupyter-native research environment for crypto statistical arbitrage.

Binance trades stream into an ArcticDB store (``quantify ingest``, or
``%load_ext quantify`` in a notebook); this package reads them back as ticks
and candles and analyses them::

    import quantify as qf
    store = qf.open_store()
    bars = store.ohlcv("BTCUSDT", "1m", start="-6h")
"""

from __future__ import annotations

from quantify import analytics
from quantify.analytics import *  # noqa: F403  (re-exported public analytics names)
from quantify.exceptions import QuantifyError
from quantify.store import Store, open_store

__version__ = "0.1.0"

__all__ = sorted(["QuantifyError", "Store", "__version__", "analytics", "open_store", *analytics.__all__])
