"""Gap filling over REST: what the stream lost, found by trade id and fetched back.

Every 0.1 s :class:`GapFiller` looks at each symbol's
:class:`~quantify.ingest.buffer.SymbolBuffer`:

- a **gap** (ids missing between two received trades) waits
  ``backfill_delay`` so that neighbouring gaps gather, then one
  ``historicalTrades``/``aggTrades`` request (``fromId``, up to 1,000 ids;
  500 for USD-M ``historicalTrades``)
  fills as many as it spans; a gap still open after ``gap_timeout`` is given
  up and recorded as unfilled;
- a **head** (a new symbol's first trade, with trades since start possibly
  lost before it) is resolved by looking back up to 10,000 ids;
- a **quiet tail** (no new trade for ``tail_check_interval``) is checked for
  trades after the last one seen, since a lost last frame has no successor
  to reveal it. Tail checks of many quiet symbols use at most a quarter of
  the venue's request-weight budget.

One filler runs per venue of the run, over that venue's REST client (its
own weight budget: Binance spot 6,000 per minute, USD-M 2,400), on the
buffers of that venue's symbols. REST failures are counted in
``stats.rest_errors``, logged, and retried on the next pass; rate limits
(``429``/``Retry-After``) are honoured by the client
(:class:`~quantify.venues.binance.rest.BinanceRest`).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.stats import IngestStats
from quantify.model.trades import Trade
from quantify.venues import venue as venue_named
from quantify.venues.base import Venue, VenueRest

__all__ = ["GapFiller"]

logger = logging.getLogger(__name__)


class GapFiller:
    """Fill the gaps of live :class:`SymbolBuffer` objects over REST.

    Parameters
    ----------
    buffers : dict of str to SymbolBuffer
        The buffers of one venue's symbols (the venue's spelling, as REST
        wants it), read live (symbols come and go).
    rest : VenueRest
        That venue's REST client (its weight budget is shared with other callers).
    stats : IngestStats
        Where ``backfilled`` and ``rest_errors`` are counted.
    config : IngestConfig
        ``stream``, ``backfill_delay``, ``gap_timeout``, ``tail_check_interval``.
    venue : Venue, optional
        The venue (default Binance spot): its weight budget and the weight of
        a trades request pace the tail checks; its name prefixes log lines.
    """

    def __init__(self, buffers: dict[str, SymbolBuffer], rest: VenueRest, stats: IngestStats,
                 config: IngestConfig, *, venue: Venue | None = None) -> None:
        self.buffers = buffers
        self.rest = rest
        self.stats = stats
        self.config = config
        self.venue = venue or venue_named("binance")
        self._label = "" if self.venue.name == "binance" else f"{self.venue.name}:"

    def _tail_interval(self) -> float:
        """Seconds between tail checks of a quiet symbol: a quarter of the weight budget at most."""
        weight_per_second = self.venue.weight_limit / 60 * 0.25
        weight = self.venue.trades_weight(self.config.stream == "aggTrade")
        return max(self.config.tail_check_interval, len(self.buffers) * weight / weight_per_second)

    async def _check_tail(self, buf: SymbolBuffer, aggregate: bool) -> bool:
        """A gap at the tail shows no later trade to reveal it: ask REST what follows.

        Returns True when a full page came back: more probably follows (the
        stream is silent, e.g. after a restart once the venue stopped
        sending), so the caller checks again at once instead of waiting.
        """
        assert buf.last_seen is not None
        page = self.venue.trades_limit(aggregate)
        trades = await self._fetch(buf.symbol, buf.last_seen + 1, page, aggregate, "tail check")
        if trades is None:
            return False
        for trade in trades:
            buf.add(trade)
        if trades:
            self.stats.backfilled += len(trades)
            logger.info("%s%s: %d trades after id %d recovered by a tail check", self._label, buf.symbol,
                        len(trades), trades[0].trade_id - 1)
        return len(trades) >= page

    async def run(self) -> None:
        """Fill gaps, probe heads and check quiet tails, forever (cancel to stop)."""
        aggregate = self.config.stream == "aggTrade"
        seen: dict[str, tuple[int | None, float]] = {}
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for buf in list(self.buffers.values()):
                if buf.head is not None:
                    await self._probe_head(buf, aggregate)
                    continue
                last, since = seen.get(buf.symbol, (None, now))
                if buf.last_seen != last:
                    seen[buf.symbol] = (buf.last_seen, now)
                elif buf.last_seen is not None and not buf.gaps and now - since >= self._tail_interval():
                    seen[buf.symbol] = (buf.last_seen, now)
                    if await self._check_tail(buf, aggregate):
                        # a full page: the next pass asks for the following one
                        seen[buf.symbol] = (buf.last_seen, now - self._tail_interval())
                while buf.gaps and time.monotonic() - buf.gaps[0].found_at > self.config.gap_timeout:
                    gap = buf.gaps[0]
                    logger.warning("%s%s: giving up on ids %d..%d after %.0f s; recorded as unfilled",
                                   self._label, buf.symbol, gap.first, gap.last, self.config.gap_timeout)
                    buf.give_up(gap)
                if not buf.gaps or time.monotonic() - buf.gaps[0].found_at < self.config.backfill_delay:
                    continue
                # One request spans as many of the (usually small) gaps as it can;
                # waiting backfill_delay lets gaps gather so requests stay few.
                first = buf.gaps[0].first
                limit = max(1, min(self.venue.trades_limit(aggregate), buf.gaps[-1].last - first + 1))
                trades = await self._fetch(buf.symbol, first, limit, aggregate, "backfill")
                if trades is None:
                    continue
                filled = buf.fill(trades)
                self.stats.backfilled += filled
                if filled:
                    logger.info("%s%s: backfilled %d trades from id %d", self._label, buf.symbol, filled, first)
                if trades and trades[0].trade_id > first and buf.skip_unserved(first, trades[0].trade_id):
                    logger.warning("%s%s: REST serves no trade with ids %d..%d (on USD-M: insurance-fund or ADL "
                                   "trades, which only the stream carries); recorded as unfilled", self._label,
                                   buf.symbol, first, trades[0].trade_id - 1)

    async def _fetch(self, symbol: str, from_id: int, limit: int, aggregate: bool, what: str) -> list[Trade] | None:
        """Trades of ``symbol`` from ``from_id`` over REST; ``None`` (counted, logged) on failure."""
        try:
            return await self.rest.trades_from(symbol, from_id, aggregate=aggregate, limit=limit)
        except (RestError, httpx.HTTPError, KeyError, TypeError) as exc:
            self.stats.rest_errors += 1
            logger.warning("%s%s: %s from id %d failed: %s", self._label, symbol, what, from_id, exc)
            await asyncio.sleep(1.0)
            return None

    async def _probe_head(self, buf: SymbolBuffer, aggregate: bool) -> None:
        """Find trades since start that came before a new symbol's first frame."""
        head = buf.head
        assert head is not None
        if time.monotonic() - buf.head_found_at > self.config.gap_timeout:
            buf.resolve_head([])
            return
        earlier: list[Trade] = []
        upper = head  # ids below this are wanted
        page = self.venue.trades_limit(aggregate)  # 1,000, or 500 (USD-M historicalTrades)
        what = "lookup of trades before the first received"
        for _ in range(10_000 // page):  # at most 10,000 trades back
            from_id = max(0, upper - page)
            batch = await self._fetch(buf.symbol, from_id, min(page, upper - from_id) or 1, aggregate, what)
            if batch is None:
                return
            got = [t for t in batch if t.trade_id < upper]
            # The server's oldest trade may come after from_id: the page then ends
            # short of ``upper``; fetch forward until it is reached.
            for _ in range(10_000 // page):
                if not got or got[-1].trade_id >= upper - 1 or len(batch) < page:
                    break
                nxt = got[-1].trade_id + 1
                batch = await self._fetch(buf.symbol, nxt, min(page, upper - nxt), aggregate, what)
                if batch is None:
                    return
                got += [t for t in batch if t.trade_id < upper]
            earlier = got + earlier
            # Stop when the server has nothing older or we reached the start time.
            if from_id == 0 or not got or got[0].trade_id > from_id or got[0].time < (buf.start_ms or 0):
                break
            upper = got[0].trade_id
        added = buf.resolve_head(earlier)
        self.stats.backfilled += added
        if added:
            logger.info("%s%s: %d trades since start recovered before the first one received",
                        self._label, buf.symbol, added)
