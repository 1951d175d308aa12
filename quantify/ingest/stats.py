"""Counters the ingestion service keeps (published as :class:`quantify.model.status.WriterStatus`)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["IngestStats"]


@dataclass
class IngestStats:
    """Service-wide counters (per-symbol ones live in the symbol buffers)."""

    started: float = field(default_factory=time.time)
    frames: int = 0
    trades: int = 0
    stored: int = 0
    depth_diffs: int = 0
    book_tickers: int = 0
    quotes_stored: int = 0
    marks: int = 0
    liquidations: int = 0
    #: Marks, liquidations, open-interest rows and settlements stored.
    perp_stored: int = 0
    reconnects: int = 0
    server_shutdowns: int = 0
    rotations: int = 0
    journal_recovered: int = 0
    #: Marks and liquidations recovered from a predecessor's journal.
    perp_recovered: int = 0
    store_errors: int = 0
    appends: int = 0
    compactions: int = 0
    backfilled: int = 0
    rest_errors: int = 0
    #: Seconds from receipt of a batch's newest trade to the end of its append.
    store_latency: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    _rate_mark: tuple[float, int] = field(default_factory=lambda: (time.monotonic(), 0))
    ticks_per_second: float = 0.0

    def update_rate(self) -> float:
        """Recompute stored ticks per second since the previous call."""
        now = time.monotonic()
        then, stored = self._rate_mark
        if now - then >= 0.5:
            self.ticks_per_second = (self.stored - stored) / (now - then)
            self._rate_mark = (now, self.stored)
        return self.ticks_per_second

    def latency_ms(self) -> dict[str, float | None]:
        """p50/p99 receipt-to-stored latency in ms over recent batches."""
        if not self.store_latency:
            return {"p50": None, "p99": None}
        arr = np.fromiter(self.store_latency, dtype=float)
        return {"p50": float(np.percentile(arr, 50) * 1e3), "p99": float(np.percentile(arr, 99) * 1e3)}
