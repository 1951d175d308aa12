"""QuantiFy: a Jupyter-native research environment for crypto statistical arbitrage.

Binance trades stream into an ArcticDB store (``quantify ingest``, or
``%load_ext quantify`` in a notebook); this package reads them back as ticks
and candles and analyses them::

    import quantify as qf
    store = qf.open_store()
    bars = store.ohlcv("BTCUSDT", "1m", start="-6h")
    qf.coint(bars.close, store.ohlcv("ETHUSDT", "1m", start="-6h").close)

The analytics functions (``qf.resample``, ``qf.hedge_ratio``, ``qf.coint``,
``qf.scan_pairs``, ...; see :mod:`quantify.analytics`) are imported on first
use, so the command line and the ingestion service start without loading
statsmodels and numba.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from quantify.exceptions import QuantifyError
from quantify.store import Store, open_store
from quantify.store.status import status

__version__ = "0.1.0"

# Logs go where the application sends them (the CLI configures logging); with no
# handler configured, as in a notebook, background work must not reach the cells
# through logging's last-resort stderr handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "QuantifyError", "Store", "StoreCloses", "__version__", "analytics", "datasets", "load_ipython_extension", "open_store",
    "status", "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext quantify``: start streaming in the background (see :mod:`quantify.ipython`)."""
    from quantify.ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext quantify``: stop streaming, flushing every received trade."""
    from quantify.ipython import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "StoreCloses":
        from quantify.cluster import StoreCloses

        return StoreCloses
    if name in ("analytics", "widgets", "alerts", "datasets"):
        return importlib.import_module(f"quantify.{name}")
    analytics = importlib.import_module("quantify.analytics")
    if name in analytics.__all__:
        return getattr(analytics, name)
    raise AttributeError(f"module 'quantify' has no attribute {name!r}")


def __dir__() -> list[str]:
    # only the public names: not the helpers this module imports (importlib, Any, annotations)
    analytics = importlib.import_module("quantify.analytics")
    return sorted(set(__all__) | set(analytics.__all__) | {"widgets", "alerts", "datasets"})
