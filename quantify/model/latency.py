"""A latency histogram as a status carries it: cumulative counts per upper bound.

:class:`LatencyHistogram` is the writer's receipt-to-stored latency since it
started, in the form Prometheus histograms take (``le`` buckets, cumulative,
plus the count and the sum of every observation), so that ``quantify status
--json`` and the metrics server (:mod:`quantify.ingest.metrics`) show the
same numbers. The observations are counted by
:meth:`quantify.ingest.stats.IngestStats.observe_latency`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quantify.model._status_fields import to_float, to_int

__all__ = ["LatencyHistogram"]


@dataclass(frozen=True)
class LatencyHistogram:
    """Observations (seconds) counted in buckets.

    Attributes
    ----------
    bounds : tuple of float
        The buckets' upper bounds in seconds, increasing (the ``+Inf`` bucket is implied).
    cumulative : tuple of int
        Observations at or below each bound (Prometheus' ``le`` semantics).
    count : int
        Every observation (the ``+Inf`` bucket).
    sum : float
        The sum of every observation, seconds.
    """

    bounds: tuple[float, ...] = ()
    cumulative: tuple[int, ...] = ()
    count: int = 0
    sum: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The published form: ``{"le": [...], "cumulative": [...], "count": n, "sum": s}``."""
        return {"le": list(self.bounds), "cumulative": list(self.cumulative), "count": self.count, "sum": self.sum}

    @classmethod
    def from_dict(cls, data: Any) -> LatencyHistogram:
        """Read the published form; anything malformed reads as an empty histogram."""
        if not isinstance(data, Mapping):
            return cls()
        bounds, cumulative = data.get("le"), data.get("cumulative")
        if not isinstance(bounds, list) or not isinstance(cumulative, list) or len(bounds) != len(cumulative):
            return cls(count=to_int(data.get("count")), sum=to_float(data.get("sum")))
        return cls(bounds=tuple(to_float(b) for b in bounds), cumulative=tuple(to_int(c) for c in cumulative),
                   count=to_int(data.get("count")), sum=to_float(data.get("sum")))
