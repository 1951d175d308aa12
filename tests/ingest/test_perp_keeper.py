"""PerpKeeper and PerpPoller without sockets: what is kept, when funding is due, how polls pace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.ingest.feeds import VenueFeed
from quantify.ingest.perps import POLL_BUDGET_SHARE, PerpKeeper, PerpPoller, perp_frames
from quantify.model.perp import FundingSettlement, Liquidation, MarkPrice, OpenInterest
from quantify.venues import venue

USDM = "binance-usdm:BTCUSDT"
HOUR = 3_600_000
T0 = 1680652800000  # 2023-04-05 00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def mark(e: int, t: int = T0, rate: float = 1e-4) -> MarkPrice:
    return MarkPrice("BTCUSDT", e, 28_000.0 + e % 1000, 28_001.0, 28_000.5, rate, t)


def liquidation(t: int) -> Liquidation:
    return Liquidation("BTCUSDT", t + 5, t, "SELL", "LIMIT", "IOC", 0.01, 27_000.0, 27_100.0, "FILLED", 0.01,
                       0.01)


def keeper(clock: Clock | None = None, **kw: Any) -> tuple[PerpKeeper, VenueFeed]:
    cfg = IngestConfig(symbols=("BTCUSDT", USDM), perps="all", funding_delay=5.0, **kw)
    v = venue("binance-usdm")
    return PerpKeeper(cfg, owns=lambda key: True, clock=clock or Clock()), VenueFeed(v, v.parser(1 << 20))


def test_marks_and_liquidations_are_kept_once_in_order() -> None:
    k, feed = keeper()
    assert k.keys == [USDM] and k.ignored == ("BTCUSDT",)
    assert [k.on_mark(feed, mark(T0 - 3000 + i * 1000)) for i in range(3)] == [True] * 3
    assert not k.on_mark(feed, mark(T0 - 2000))  # a rotation's overlap sends it again
    assert not k.on_mark(feed, MarkPrice("ETHUSDT", T0, 1, 1, 1, 0, T0))  # not a perpetual of the run
    assert k.on_liquidation(feed, liquidation(T0)) and not k.on_liquidation(feed, liquidation(T0))
    batch = k.take()
    assert sorted(batch) == ["liquidations", "mark"] and len(batch["mark"][USDM]) == 3
    assert k.take() == {}
    k.restore(batch)  # the store refused: back before what came since
    k.on_mark(feed, mark(T0 + 1000))
    again = k.take()
    assert [m.event_time for m in again["mark"][USDM]] == [T0 - 3000, T0 - 2000, T0 - 1000, T0 + 1000]
    frames = perp_frames(again)
    assert list(frames["mark"][USDM]["mark_price"]) == [m.mark_price for m in again["mark"][USDM]]
    status = k.status()[USDM]
    assert (status.marks_received, status.liquidations_received, status.duplicates_dropped) == (4, 1, 2)


def test_resume_drops_what_the_store_holds() -> None:
    k, feed = keeper()
    k.resume(USDM, mark_ms=T0, liquidation_ms=T0, funding_ms=T0 - 8 * HOUR)
    assert not k.on_mark(feed, mark(T0)) and k.on_mark(feed, mark(T0 + 1000))
    assert not k.on_liquidation(feed, liquidation(T0))
    assert k.status()[USDM].last_funding_time is not None


def test_funding_is_due_once_the_marks_move_to_the_next_settlement() -> None:
    clock = Clock()
    k, feed = keeper(clock)
    k.on_mark(feed, mark(T0 - 1000, T0))
    assert k.funding_due(USDM) is None
    k.on_mark(feed, mark(T0 + 1000, T0 + 8 * HOUR))  # the 00:00 settlement passed
    assert k.funding_due(USDM) is None  # funding_delay not over
    clock.now += 5.0
    assert k.funding_due(USDM) == (T0, T0 - 1000)  # nothing stored: from just before it
    assert not k.on_funding(USDM, [])  # not listed yet: asked again later
    k.retry_funding_later(USDM)
    assert k.funding_due(USDM) is None
    clock.now += 5.0
    assert k.on_funding(USDM, [FundingSettlement("BTCUSDT", T0 + 4, 2.754e-05, 28_150.0)])
    assert k.funding_due(USDM) is None
    assert [s.funding_time for s in k.take()["funding"][USDM]] == [T0 + 4]
    # the next settlement: fetched from the last one stored + 1 ms
    k.on_mark(feed, mark(T0 + 8 * HOUR + 1000, T0 + 16 * HOUR))
    clock.now += 5.0
    assert k.funding_due(USDM) == (T0 + 8 * HOUR, T0 + 5)


class FakeRest:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail

    async def open_interest(self, symbol: str, *, retries: int | None = None) -> OpenInterest:
        self.calls.append(("openInterest", symbol))
        if self.fail:
            raise RestError("GET /fapi/v1/openInterest: 500")
        return OpenInterest(symbol, T0, 1234.5)

    async def funding_rate(self, symbol: str, start_ms: int | None = None, **kw: Any) -> list[FundingSettlement]:
        self.calls.append(("fundingRate", start_ms))
        if self.fail:
            raise RestError("GET /fapi/v1/fundingRate: 500")
        return [FundingSettlement(symbol, T0 + 4, 2.754e-05)]


def run_poller(poller: PerpPoller, seconds: float) -> None:
    async def main() -> None:
        task = asyncio.ensure_future(poller.run())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_poller_asks_open_interest_every_interval_and_funding_when_due() -> None:
    clock = Clock()
    k, feed = keeper(clock, open_interest_interval=60.0)
    feed.perp_rest = rest = FakeRest()  # type: ignore[assignment]
    k.on_mark(feed, mark(T0 - 1000, T0))
    k.on_mark(feed, mark(T0 + 1000, T0 + 8 * HOUR))
    clock.now += 10.0
    run_poller(PerpPoller(k, feed, k.config, tick=0.01), 0.2)
    assert rest.calls == [("fundingRate", T0 - 1000), ("openInterest", "BTCUSDT")]  # once each
    batch = k.take()
    assert [r.open_interest for r in batch["open_interest"][USDM]] == [1234.5]
    assert len(batch["funding"][USDM]) == 1 and k.status()[USDM].open_interest == 1234.5


def test_failed_polls_are_counted_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    k, feed = keeper(clock, open_interest_interval=60.0)
    feed.perp_rest = FakeRest(fail=True)  # type: ignore[assignment]
    k.on_mark(feed, mark(T0 - 1000, T0))
    k.on_mark(feed, mark(T0 + 1000, T0 + 8 * HOUR))
    clock.now += 10.0
    with caplog.at_level("WARNING", logger="quantify.ingest.perps"):
        run_poller(PerpPoller(k, feed, k.config, tick=0.01), 0.2)
    assert k.status()[USDM].poll_errors == 2  # fundingRate, then openInterest; then backed off
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    assert k.funding_due(USDM) is not None  # still due: retried after the backoff


def test_many_perpetuals_stretch_the_open_interest_interval() -> None:
    k, feed = keeper(open_interest_interval=60.0)
    poller = PerpPoller(k, feed, k.config)
    assert poller.interval(1) == 60.0
    # 300 perpetuals at weight 1 every 60 s: 300 a minute, above a tenth of USD-M's 2,400
    assert poller.interval(300) == pytest.approx(60.0 * 300 / (2400 * POLL_BUDGET_SHARE))
