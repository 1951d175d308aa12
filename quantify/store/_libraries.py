"""Names of the ArcticDB libraries inside a QuantiFy store: private to the store package.

Code outside :mod:`quantify.store` reads and writes through :class:`~quantify.store.Store`'s
verbs, never through these names.
"""

from __future__ import annotations

from typing import Final

#: One ArcticDB symbol per instrument (its textual form): the tick frame, appended in trade-id order.
TICKS: Final = "ticks"
#: Loaded or backfilled exchange klines, one symbol per instrument and interval.
KLINES: Final = "klines"
#: The writer's continuously aggregated 1m candles, one symbol per instrument.
CANDLES_1M: Final = "candles_1m"
#: Writer status, leases, checkpoints.
META: Final = "_meta"
#: Alert rules, fired-alert history, acknowledgements, the engine's checkpoint.
ALERTS: Final = "alerts"
#: The best bid and offer after each applied depth event, one symbol per instrument.
QUOTES: Final = "quotes"
#: The depth diffs applied to the local book, one row per level, one symbol per instrument.
BOOK_DIFFS: Final = "book_diffs"
#: The book's top levels after overlays and every few seconds, one symbol per instrument.
BOOK_CHECKPOINTS: Final = "book_checkpoints"
#: The book's continuity events (gaps, resyncs, crossed books, ...), one symbol per instrument.
BOOK_LEDGER: Final = "book_ledger"
