"""The gap filler's REST lookups, on an in-memory venue REST client (no network)."""

from __future__ import annotations

import asyncio

from quantify.config import IngestConfig
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.gaps import GapFiller
from quantify.ingest.stats import IngestStats
from quantify.model.trades import Trade
from quantify.venues import venue

T0 = 1_700_000_000_000


def trade(i: int) -> Trade:
    return Trade("BTCUSDT", i, 1.0, 1.0, T0 + i, False, i, i, True, T0 + i)


class FakeRest:
    """Serves ids ``first..last`` by ``fromId``, at most ``limit`` (as the venue caps it)."""

    def __init__(self, first: int, last: int, cap: int) -> None:
        self.first, self.last, self.cap = first, last, cap
        self.requests: list[tuple[int, int]] = []

    async def trades_from(self, symbol: str, from_id: int, *, aggregate: bool, limit: int = 1000) -> list[Trade]:
        assert limit <= self.cap, f"asked for {limit} > the venue's {self.cap}"
        self.requests.append((from_id, limit))
        start = max(from_id, self.first)
        return [trade(i) for i in range(start, min(start + limit, self.last + 1))]


def test_head_probe_recovers_everything_when_the_oldest_trade_is_after_the_lookup() -> None:
    """USD-M pages are 500: a first frame 999 ids after start needs two pages, the older one short."""
    first, head = 10_000, 10_999
    rest = FakeRest(first, 20_000, cap=500)
    buf = SymbolBuffer("BTCUSDT", None, start_ms=T0)
    buf.add(trade(head))
    filler = GapFiller({"BTCUSDT": buf}, rest, IngestStats(), IngestConfig(symbols=("binance-usdm:BTCUSDT",)),
                       venue=venue("binance-usdm"))
    asyncio.run(filler._probe_head(buf, aggregate=False))
    assert [t.trade_id for t in buf.take()] == list(range(first, head + 1))
    assert all(limit <= 500 for _, limit in rest.requests)


def test_tail_check_pages_follow_each_other_and_respect_the_venue_limit() -> None:
    rest = FakeRest(0, 1_234, cap=500)
    buf = SymbolBuffer("BTCUSDT", 0)
    buf.add(trade(0))
    filler = GapFiller({"BTCUSDT": buf}, rest, IngestStats(), IngestConfig(symbols=("binance-usdm:BTCUSDT",)),
                       venue=venue("binance-usdm"))
    full = [asyncio.run(filler._check_tail(buf, aggregate=False)) for _ in range(3)]
    assert full == [True, True, False]  # two full pages of 500, then the last 234
    assert [t.trade_id for t in buf.take()] == list(range(0, 1_235))


class OmittingRest(FakeRest):
    """Leaves ``omitted`` ids out of its answers, as Binance USD-M does with insurance-fund and ADL trades."""

    def __init__(self, first: int, last: int, cap: int, omitted: set[int]) -> None:
        super().__init__(first, last, cap)
        self.omitted = omitted

    async def trades_from(self, symbol: str, from_id: int, *, aggregate: bool, limit: int = 1000) -> list[Trade]:
        self.requests.append((from_id, limit))
        ids = [i for i in range(max(from_id, self.first), self.last + 1) if i not in self.omitted]
        return [trade(i) for i in ids[:limit]]


def test_ids_rest_never_serves_are_given_up_at_once_not_after_the_gap_timeout() -> None:
    """A lost insurance-fund trade: REST's answer from its id starts after it; the symbol moves on."""
    rest = OmittingRest(0, 2_000, cap=500, omitted={100, 700})
    buf = SymbolBuffer("BTCUSDT", 0)
    for i in (*range(0, 100), *range(101, 300), *range(900, 1000)):  # 100 lost with the frames after it
        buf.add(trade(i))
    config = IngestConfig(symbols=("binance-usdm:BTCUSDT",), backfill_delay=0.0, gap_timeout=3600.0)
    filler = GapFiller({"BTCUSDT": buf}, rest, IngestStats(), config, venue=venue("binance-usdm"))

    async def until_whole() -> None:
        task = asyncio.ensure_future(filler.run())
        for _ in range(100):
            await asyncio.sleep(0.1)
            if not buf.gaps:
                break
        task.cancel()

    asyncio.run(until_whole())
    stored = [t.trade_id for t in buf.take()]
    assert stored == [i for i in range(0, 1000) if i not in {100, 700}]
    assert not buf.gaps and buf.trades_lost == 2 and buf.next_id == 1000
