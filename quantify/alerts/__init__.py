"""Alerts: rules evaluated by the ingestion writer, history in the store, delivery channels.

::

    import quantify as qf
    from quantify import alerts

    store = qf.open_store()
    book = alerts.AlertBook(store)            # store.alerts
    rid = book.add(alerts.zscore("BTCUSDT", "ETHUSDT", 2.5, timeframe="1m", window=120,
                                 cooldown="15m", severity="high"))
    book.history(severity="high")

The writer evaluates rules as a batch listener of the ingestion service::

    service.add_batch_listener(alerts.AlertEngine(service.store))

Order-book rules (``spread_above``, ``imbalance_beyond``, ``book_stale``) are
judged on the books the writer keeps, through :meth:`AlertEngine.book_batch`.
"""

from __future__ import annotations

from quantify.alerts.channels import (
    DEFAULT_RETRY,
    CallbackChannel,
    Channel,
    Dispatcher,
    LoggingChannel,
    RetryPolicy,
    WebhookChannel,
)
from quantify.alerts.engine import AlertEngine
from quantify.model.rules import (
    BOOK_KINDS,
    KINDS,
    MAX_BARS,
    MAX_TICK_WINDOW,
    SEVERITIES,
    Rule,
    book_stale,
    corr_breakdown,
    gap,
    imbalance_beyond,
    make_rule,
    pct_move,
    price_above,
    price_below,
    price_crosses,
    spread_above,
    stale,
    vol_breakout,
    zscore,
)
from quantify.store.alerts import HISTORY_COLUMNS, AlertBook

__all__ = [
    "BOOK_KINDS",
    "DEFAULT_RETRY",
    "HISTORY_COLUMNS",
    "KINDS",
    "MAX_BARS",
    "MAX_TICK_WINDOW",
    "SEVERITIES",
    "AlertBook",
    "AlertEngine",
    "CallbackChannel",
    "Channel",
    "Dispatcher",
    "LoggingChannel",
    "RetryPolicy",
    "Rule",
    "WebhookChannel",
    "book_stale",
    "corr_breakdown",
    "gap",
    "imbalance_beyond",
    "make_rule",
    "pct_move",
    "price_above",
    "price_below",
    "price_crosses",
    "spread_above",
    "stale",
    "vol_breakout",
    "zscore",
]
