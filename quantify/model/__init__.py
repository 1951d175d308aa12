"""The market-data model: instruments, times, and the definitions every layer shares.

The bottom layer of QuantiFy: it imports nothing else of the package (but
:mod:`quantify.exceptions`), and every other layer builds on it.
"""

from __future__ import annotations

from quantify.model.instrument import (
    DEFAULT_VENUE,
    VENUES,
    Instrument,
    InstrumentLike,
    Market,
    instrument_key,
    parse_instruments,
)
from quantify.model.status import InstrumentStatus, StoreStatus, WriterState, WriterStatus
from quantify.model.times import TimeLike, parse_time

__all__ = [
    "DEFAULT_VENUE", "VENUES", "Instrument", "InstrumentLike", "InstrumentStatus", "Market",
    "StoreStatus", "TimeLike", "WriterState", "WriterStatus", "instrument_key", "parse_instruments", "parse_time",
]
