"""The status of one instrument's order book, as a writer publishes it.

:class:`BookStatus` is to a book what
:class:`~quantify.model.status.InstrumentStatus` is to trades: the sync state
(``waiting``, ``live``, ``stale``), the last update id, seconds out of sync
now, quotes stored this run and the continuity ledger's counters (gaps,
resyncs, range refreshes, crossed books, bookTicker checks and mismatches,
stale snapshots, disconnects, seconds stale in total, gaps per million
updates). ``from_dict`` is tolerant like every status record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BookStatus"]


def _num(value: Any, kind: type) -> Any:
    try:
        return kind(value) if value is not None else kind()
    except (TypeError, ValueError):
        return kind()


@dataclass(frozen=True)
class BookStatus:
    """One order book's state and continuity (see the module docstring)."""

    instrument: str
    state: str = "waiting"
    update_id: int = -1
    stale_for: float = 0.0
    quotes_stored: int = 0
    events: int = 0
    gaps: int = 0
    resyncs: int = 0
    refreshes: int = 0
    crossed: int = 0
    mismatches: int = 0
    ticker_checks: int = 0
    ticker_unknown: int = 0
    stale_snapshots: int = 0
    snapshots: int = 0
    disconnects: int = 0
    duplicates: int = 0
    buffer_dropped: int = 0
    stale_seconds: float = 0.0
    gaps_per_million: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("instrument")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], instrument: str) -> BookStatus:
        """Read a published book status; unknown keys ignored, missing ones defaulted."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "instrument" or f.name not in data:
                continue
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            values[f.name] = _num(data[f.name], kind)
        return cls(instrument=instrument, **values)

    def summary(self) -> str:
        """One line: ``BTCUSDT book live · update 50093239224 · 1,234 quotes · gaps 0 · resyncs 0 · ...``."""
        stale = f" for {self.stale_for:.1f} s" if self.state != "live" and self.stale_for else ""
        return (f"{self.instrument} book {self.state}{stale} · update {self.update_id} · "
                f"{self.quotes_stored:,} quotes · gaps {self.gaps} · resyncs {self.resyncs} · "
                f"refreshes {self.refreshes} · stale {self.stale_seconds:.1f} s · "
                f"bookTicker {self.ticker_checks:,} checked, {self.mismatches} wrong")
