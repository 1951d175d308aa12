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
judged on the books the writer keeps, through :meth:`AlertEngine.book_batch`;
the perpetual rules (``funding_above``, ``funding_below``, ``liquidation_burst``)
on the marks and liquidations it stores, through :meth:`AlertEngine.perp_batch`,
and ``basis_z`` on the bars of a perpetual and its spot market. ``drawdown``
watches a paper position (one instrument held long, or a pairs strategy) on bars.
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
    PERPETUAL_KINDS,
    SEVERITIES,
    Rule,
    corr_breakdown,
    gap,
    make_rule,
    pct_move,
    price_above,
    price_below,
    price_crosses,
    stale,
    vol_breakout,
    zscore,
)
from quantify.model.rules_book import book_stale, imbalance_beyond, spread_above
from quantify.model.rules_perp import basis_z, funding_above, funding_below, liquidation_burst
from quantify.model.rules_regime import regime_change
from quantify.model.rules_risk import drawdown
from quantify.store.alerts import HISTORY_COLUMNS, AlertBook

__all__ = [
    "BOOK_KINDS",
    "DEFAULT_RETRY",
    "HISTORY_COLUMNS",
    "KINDS",
    "MAX_BARS",
    "MAX_TICK_WINDOW",
    "PERPETUAL_KINDS",
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
    "basis_z",
    "book_stale",
    "corr_breakdown",
    "drawdown",
    "funding_above",
    "funding_below",
    "gap",
    "imbalance_beyond",
    "liquidation_burst",
    "make_rule",
    "pct_move",
    "price_above",
    "price_below",
    "price_crosses",
    "regime_change",
    "spread_above",
    "stale",
    "vol_breakout",
    "zscore",
]
