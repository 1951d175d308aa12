"""Counters the ingestion service keeps (published as :class:`quantify.model.status.WriterStatus`)."""

from __future__ import annotations

import bisect
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from quantify.model.latency import LatencyHistogram

__all__ = ["LATENCY_BUCKETS", "IngestStats"]

#: Upper bounds (seconds) of the receipt-to-stored latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
    #: Seconds from receipt of a batch's newest trade to the end of its append, recent batches
    #: (see :meth:`observe_latency`, which also counts every one in :attr:`LATENCY_BUCKETS`).
    store_latency: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    _latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    _latency_sum: float = 0.0
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

    def observe_latency(self, seconds: float) -> None:
        """Count one batch's receipt-to-stored latency (the one place it is observed)."""
        self.store_latency.append(seconds)
        self._latency_buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def latency_histogram(self) -> LatencyHistogram:
        """Every latency observed since the start, in :data:`LATENCY_BUCKETS` (cumulative)."""
        counts = self._latency_buckets
        return LatencyHistogram(bounds=LATENCY_BUCKETS, cumulative=tuple(itertools.accumulate(counts[:-1])),
                                count=sum(counts), sum=self._latency_sum)

    def latency_ms(self) -> dict[str, float | None]:
        """p50/p99 receipt-to-stored latency in ms over recent batches."""
        if not self.store_latency:
            return {"p50": None, "p99": None}
        arr = np.fromiter(self.store_latency, dtype=float)
        return {"p50": float(np.percentile(arr, 50) * 1e3), "p99": float(np.percentile(arr, 99) * 1e3)}
