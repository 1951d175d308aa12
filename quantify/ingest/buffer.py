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

from quantify.feed.parse import Trade

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
        symbol with nothing stored yet (the first trade seen starts it).
    """

    __slots__ = ("symbol", "next_id", "last_seen", "ready", "held", "gaps",
                 "duplicates", "gaps_found", "gaps_filled", "gaps_unfilled", "trades_lost")

    def __init__(self, symbol: str, next_id: int | None = None) -> None:
        self.symbol = symbol
        self.next_id = next_id
        self.last_seen = None if next_id is None else next_id - 1
        self.ready: list[Trade] = []
        self.held: dict[int, Trade] = {}
        self.gaps: list[Gap] = []
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
            self.next_id = nxt = tid
            self.last_seen = tid - 1
        if tid == nxt and not self.held:
            self.ready.append(trade)
            self.next_id = tid + 1
            if tid > self.last_seen:  # type: ignore[operator]
                self.last_seen = tid
            return
        if tid < nxt or tid in self.held:
            self.duplicates += 1
            return
        last_seen = self.last_seen  # type: ignore[assignment]
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
        if not self.gaps:
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
