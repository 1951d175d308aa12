"""The status of one perpetual's live data, as a writer publishes it.

:class:`PerpStatus` is to a perpetual's mark price, liquidations, open
interest and funding what :class:`~quantify.model.status.InstrumentStatus`
is to its trades: what this run received and stored of each kind, the
latest mark (time, price, the funding rate that will settle and when), the
latest polled open interest and the last stored settlement, plus the
duplicates dropped (connection overlaps) and the failed polls. ``from_dict``
is tolerant like every status record: unknown keys are ignored, missing
ones defaulted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from quantify.model._status_fields import opt_float as _opt_float
from quantify.model._status_fields import opt_time as _opt_time
from quantify.model._status_fields import to_int as _int

__all__ = ["PerpStatus"]

_TIMES = ("last_mark_time", "next_funding_time", "last_funding_time")
_FLOATS = ("mark_price", "funding_rate", "open_interest")


@dataclass(frozen=True)
class PerpStatus:
    """One perpetual's live data this run (see the module docstring).

    Attributes
    ----------
    instrument : str
        The instrument key (``binance-usdm:BTCUSDT``).
    marks_received, marks_stored : int
        Mark-price updates received (journal recovery included, duplicates
        not) and stored this run.
    liquidations_received, liquidations_stored : int
        Liquidation orders likewise (Binance pushes at most one per second).
    open_interest_stored, funding_stored : int
        Polled open-interest rows and funding settlements stored this run.
    duplicates_dropped : int
        Marks and liquidations received twice (a rotation's overlap) and dropped.
    poll_errors : int
        Open-interest and funding requests that failed (retried).
    last_mark_time : pandas.Timestamp or None
        Event time of the latest mark.
    mark_price, funding_rate : float or None
        The latest mark and the funding rate it announces.
    next_funding_time : pandas.Timestamp or None
        When that rate settles.
    open_interest : float or None
        The latest polled open interest (contracts).
    last_funding_time : pandas.Timestamp or None
        The last settlement stored.
    """

    instrument: str
    marks_received: int = 0
    marks_stored: int = 0
    liquidations_received: int = 0
    liquidations_stored: int = 0
    open_interest_stored: int = 0
    funding_stored: int = 0
    duplicates_dropped: int = 0
    poll_errors: int = 0
    last_mark_time: pd.Timestamp | None = None
    mark_price: float | None = None
    funding_rate: float | None = None
    next_funding_time: pd.Timestamp | None = None
    open_interest: float | None = None
    last_funding_time: pd.Timestamp | None = None

    def to_dict(self) -> dict[str, Any]:
        """The published form (times as ISO text, the instrument left to the enclosing key)."""
        out = dataclasses.asdict(self)
        out.pop("instrument")
        for name in _TIMES:
            ts = out[name]
            out[name] = None if ts is None else ts.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], instrument: str) -> PerpStatus:
        """Read a published perpetual status; unknown keys ignored, missing ones defaulted."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "instrument" or f.name not in data:
                continue
            raw = data[f.name]
            if f.name in _TIMES:
                values[f.name] = _opt_time(raw)
            elif f.name in _FLOATS:
                values[f.name] = _opt_float(raw)
            else:
                values[f.name] = _int(raw)
        return cls(instrument=instrument, **values)

    def to_row(self) -> dict[str, Any]:
        """The row of a status table (``qf.status()`` in a notebook)."""
        return {"perpetual": self.instrument, "mark": self.mark_price, "mark time (UTC)": _clock(self.last_mark_time),
                "funding rate": self.funding_rate, "next funding (UTC)": _clock(self.next_funding_time),
                "open interest": self.open_interest, "marks": self.marks_stored,
                "liquidations": self.liquidations_stored, "settlements": self.funding_stored,
                "poll errors": self.poll_errors}

    def summary(self) -> str:
        """One line: ``binance-usdm:BTCUSDT perp · mark 28,301.5 at ... · funding 0.0100 % at ... · ...``."""
        mark = "no mark yet" if self.mark_price is None else (
            f"mark {self.mark_price:,.8g} at {_clock(self.last_mark_time)}")
        funding = "" if self.funding_rate is None else (
            f" · funding {self.funding_rate * 100:.4f} % at {_clock(self.next_funding_time)}")
        oi = "" if self.open_interest is None else f" · open interest {self.open_interest:,.8g}"
        return (f"{self.instrument} perp · {mark}{funding}{oi} · {self.marks_stored:,} marks, "
                f"{self.liquidations_stored:,} liquidations, {self.open_interest_stored:,} open interest, "
                f"{self.funding_stored:,} settlements stored · poll errors {self.poll_errors}")


def _clock(ts: pd.Timestamp | None) -> str:
    return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")
