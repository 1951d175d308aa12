"""Batch listeners: what runs in the writer thread after every append.

A listener is called with ``{instrument key: tick frame}`` just stored (id
order, no duplicate, each trade exactly once across calls). The service
itself knows nothing of candles or alerts: the entry points (``quantify
ingest``, ``quantify demo``, the IPython extension, the benchmarks) compose
the listeners with :func:`standard_listeners` and hand them to
:class:`~quantify.ingest.service.IngestService`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from quantify.alerts import AlertEngine
from quantify.config import IngestConfig
from quantify.store import Store
from quantify.store.candles import CandleAggregator

__all__ = ["BatchListener", "standard_listeners"]

logger = logging.getLogger(__name__)


@runtime_checkable
class BatchListener(Protocol):
    """Called in the writer thread with the frames of each append.

    Optional methods the service calls when present:

    ``start(store)``
        Once, after journal recovery and before streaming, to catch up on
        trades stored while the listener was not running.
    ``catch_up(key)``
        Sharded stores: instead of ``start``, once per instrument this
        worker owns.
    ``book_batch(quotes, ledger, stale_seconds)``
        After every flush of a run with order books (see
        :class:`~quantify.ingest.writer.Writer`).
    ``perp_batch(marks, liquidations)``
        After every append of perpetual data that stored marks or
        liquidations: ``{instrument key: frame}`` of each (the layouts of
        :mod:`quantify.model.perp`), each mark and liquidation once across
        calls, in time order. A listener without it is not called (the
        default is to do nothing).
    ``close()``
        Once, after the final flush.
    ``stats() -> dict``
        Counters published in the writer's status (``WriterStatus.listeners``),
        keys prefixed by the listener's concern (``alerts_``, ``candle_``).

    An exception from a call is logged and counted, never fatal.
    """

    def __call__(self, frames: Mapping[str, pd.DataFrame]) -> None: ...


def standard_listeners(store: Store, config: IngestConfig) -> list[BatchListener]:
    """The listeners a writer of ``store`` runs: 1m candles always, alerts if ``config.alerts``.

    Alerts are not evaluated by workers of a sharded (S3) store: alert history
    and checkpoints are single-writer records that several workers would
    overwrite.
    """
    listeners: list[BatchListener] = [CandleAggregator(store)]  # continuous 1m candles
    if config.alerts:
        if store.uri.scheme in ("s3", "s3s"):
            logger.info("alerts are not evaluated by workers of a sharded store")
        else:
            listeners.insert(0, AlertEngine(store))
    return listeners


def listener_stats(listeners: list[Any]) -> dict[str, Any]:
    """The merged ``stats()`` of ``listeners``; a failing one is skipped (stats are informative)."""
    out: dict[str, Any] = {}
    for listener in listeners:
        stats = getattr(listener, "stats", None)
        if stats is not None:
            try:
                out.update(stats())
            except Exception:  # never fail status for a listener's statistics
                logger.debug("stats of %r failed", listener, exc_info=True)
    return out
