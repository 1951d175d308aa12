"""Per-symbol ordering: trades leave in id order, with no gap and no duplicate.

Binance ids (``t`` for trades, ``a`` for aggregate trades) increase by one per
symbol, so a jump is lost data and a repeat is a duplicate (a reconnect or a
rotation overlap). :class:`SymbolBuffer` accepts trades in any order from
the stream, the journal and REST backfill, and releases only the contiguous
run that continues the last stored id. Trades beyond a gap wait until the gap
is filled (or given up after a timeout, when it is recorded as unfilled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from quantify.model.trades import Trade

__all__ = ["Gap", "SymbolBuffer"]


@dataclass
class Gap:
    """Missing ids ``first..last`` (inclusive) of a symbol."""

    first: int
    last: int
    found_at: float
    requested: bool = False

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class SymbolBuffer:
    """Order the trades of one symbol by id.

    Parameters
    ----------
    symbol : str
        The symbol.
    next_id : int or None
        The id the store expects next (last stored id + 1), or ``None`` for a
        symbol with nothing stored yet.
    start_ms : int or None
        For a symbol with nothing stored: the exchange time at which ingestion
        started. The first trade received then only opens a *head probe*:
        trades wait until :meth:`resolve_head` has found, over REST, the trades
        since ``start_ms`` that came before it (a first frame lost to a
        corrupt or dropped message). ``None``: the first trade seen starts
        the symbol.
    """

    __slots__ = (
        "duplicates",
        "gaps",
        "gaps_filled",
        "gaps_found",
        "gaps_unfilled",
        "head",
        "head_found_at",
        "held",
        "last_seen",
        "next_id",
        "ready",
        "received",
        "start_ms",
        "symbol",
        "trades_lost",
    )

    def __init__(self, symbol: str, next_id: int | None = None, start_ms: int | None = None) -> None:
        self.symbol = symbol
        self.start_ms = start_ms
        #: First id received while the head probe is open, else ``None``.
        self.head: int | None = None
        self.head_found_at = 0.0
        self.next_id = next_id
        self.last_seen = None if next_id is None else next_id - 1
        self.ready: list[Trade] = []
        self.held: dict[int, Trade] = {}
        self.gaps: list[Gap] = []
        #: Trades of the stream given to this buffer (the receiver counts them; not backfill or the journal).
        self.received = 0
        self.duplicates = 0
        self.gaps_found = 0
        self.gaps_filled = 0
        self.gaps_unfilled = 0
        self.trades_lost = 0

    def add(self, trade: Trade) -> None:
        """Accept one trade from any source."""
        tid = trade.trade_id
        nxt = self.next_id
        if nxt is None:
            if self.start_ms is None:
                self.next_id = nxt = tid
                self.last_seen = tid - 1
            else:
                self._hold_before_head(trade)
                return
        if tid == nxt and not self.held:
            self.ready.append(trade)
            self.next_id = tid + 1
            if tid > self.last_seen:  # type: ignore[operator]
                self.last_seen = tid
            return
        if tid < nxt or tid in self.held:
            self.duplicates += 1
            return
        last_seen = cast(int, self.last_seen)  # set by the first trade
        if tid > last_seen + 1:
            self.gaps.append(Gap(last_seen + 1, tid - 1, time.monotonic()))
            self.gaps_found += 1
        if tid > last_seen:
            self.last_seen = tid
        if tid == nxt:
            self.ready.append(trade)
            self.next_id = nxt = tid + 1
            self._drain()
        else:
            self.held[tid] = trade
        self._settle_gaps()

    def _hold_before_head(self, trade: Trade) -> None:
        tid = trade.trade_id
        if self.head is None:
            self.head, self.last_seen = tid, tid
            self.head_found_at = time.monotonic()
            self.held[tid] = trade
            return
        if tid in self.held or tid < self.head:
            self.duplicates += 1
            return
        if tid > self.last_seen + 1:  # type: ignore[operator]
            self.gaps.append(Gap(self.last_seen + 1, tid - 1, time.monotonic()))  # type: ignore[operator]
            self.gaps_found += 1
        self.last_seen = max(self.last_seen, tid)  # type: ignore[type-var]
        self.held[tid] = trade

    def resolve_head(self, earlier: list[Trade]) -> int:
        """Close the head probe with REST trades before the first one received.

        Those at or after ``start_ms`` (and below the first received id) are
        kept; the symbol then starts at the earliest of them. Returns how many
        were added. Call with ``[]`` to give up and start at the first
        received trade.
        """
        if self.head is None or self.next_id is not None:
            return 0
        kept = [t for t in earlier if t.trade_id < self.head and t.time >= (self.start_ms or 0)]
        kept.sort(key=lambda t: t.trade_id)
        # Keep only the run that reaches the first received trade without a hole.
        run: list[Trade] = []
        for t in reversed(kept):
            expected = run[-1].trade_id - 1 if run else self.head - 1
            if t.trade_id != expected:
                break
            run.append(t)
        for t in run:
            self.held[t.trade_id] = t
        self.next_id = run[-1].trade_id if run else self.head
        self.head = None
        self._drain()
        self._settle_gaps()
        return len(run)

    def _drain(self) -> None:
        held, nxt = self.held, self.next_id
        while nxt in held:
            self.ready.append(held.pop(nxt))
            nxt += 1  # type: ignore[operator]
        self.next_id = nxt

    def _settle_gaps(self) -> None:
        """Drop gaps that are filled, or trimmed by trades that arrived in them."""
        if not self.gaps:
            return
        nxt = self.next_id
        kept = []
        for gap in self.gaps:
            if gap.last < nxt:  # type: ignore[operator]
                self.gaps_filled += 1
                continue
            if gap.first < nxt:  # type: ignore[operator]
                gap.first = nxt  # type: ignore[assignment]
            kept.append(gap)
        self.gaps = kept

    def fill(self, trades: list[Trade]) -> int:
        """Add the trades that fall into open gaps (REST backfill); return how many."""
        if not self.gaps or self.next_id is None:
            return 0
        filled = 0
        lo, hi = self.gaps[0].first, self.gaps[-1].last
        for trade in trades:
            tid = trade.trade_id
            if lo <= tid <= hi and tid >= self.next_id and tid not in self.held:  # type: ignore[operator]
                if any(g.first <= tid <= g.last for g in self.gaps):
                    self.add(trade)
                    filled += 1
        return filled

    def give_up(self, gap: Gap) -> None:
        """Accept that ``gap`` cannot be filled: skip its ids and move on."""
        if gap not in self.gaps:
            return
        self.gaps.remove(gap)
        self.gaps_unfilled += 1
        missing = [i for i in range(gap.first, gap.last + 1) if i not in self.held]
        self.trades_lost += len(missing)
        if self.next_id is not None and self.next_id >= gap.first:
            self.next_id = max(self.next_id, gap.last + 1)
            self._drain()
            self._settle_gaps()

    def take(self) -> list[Trade]:
        """Remove and return the trades ready to store, in id order."""
        ready, self.ready = self.ready, []
        return ready

    @property
    def pending(self) -> int:
        """Trades received but not yet released (waiting behind a gap)."""
        return len(self.held)
