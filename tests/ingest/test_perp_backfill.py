"""Backfill of a perpetual's funding settlements and open interest over REST.

The exchange is an ``httpx.MockTransport`` implementing Binance's documented
semantics (``startTime``/``endTime`` inclusive, ascending, the first
``limit`` rows from ``startTime`` when more lie in the range):
``/fapi/v1/fundingRate`` serves the 91 real 2021 XRPUSDT settlements shipped in
``quantify/data/usdm-2021-xrpusdt.funding.csv``; ``openInterestHist`` serves
constructed 5-minute rows of the last 40 days before its clock (only 30 of
which it answers, as Binance).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

import quantify
from quantify.cli import main
from quantify.exceptions import WriterLocked
from quantify.ingest.perp_backfill import backfill_perp, run_backfill_perp
from quantify.store import WriterLock, open_store
from quantify.venues.binance import BinanceVenue

FUNDING_CSV = Path(quantify.__file__).parent / "data" / "usdm-2021-xrpusdt.funding.csv"
XRP = "binance-usdm:XRPUSDT"
#: The mock exchange's clock: 2024-08-09 00:00 UTC.
NOW_MS = 1_723_161_600_000
_5M = 300_000
_DAY = 86_400_000


@pytest.fixture(scope="module")
def settlements() -> pd.DataFrame:
    return pd.read_csv(FUNDING_CSV, dtype={"fundingRate": str})


class Exchange:
    """Binance's ``fundingRate``, ``openInterestHist``, ``time`` and ``exchangeInfo``, in memory."""

    def __init__(self, settlements: pd.DataFrame) -> None:
        self.funding = [{"symbol": s, "fundingTime": int(t), "fundingRate": r, "markPrice": ""}
                        for s, t, r in settlements[["symbol", "fundingTime", "fundingRate"]].itertuples(index=False)]
        first = NOW_MS - 40 * _DAY
        self.oi_times = list(range(first, NOW_MS + 1, _5M))
        self.requests: list[httpx.URL] = []

    def oi_row(self, t: int) -> dict[str, Any]:
        k = (t - self.oi_times[0]) // _5M
        return {"symbol": "BTCUSDT", "sumOpenInterest": f"{70000 + k * 0.125:.3f}",
                "sumOpenInterestValue": f"{4.2e9 + k * 7.5:.2f}", "timestamp": t}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        q = request.url.params
        path = request.url.path
        if path == "/fapi/v1/exchangeInfo":
            return httpx.Response(200, json={"symbols": [{"symbol": "XRPUSDT"}, {"symbol": "BTCUSDT"}]})
        if path == "/fapi/v1/time":
            return httpx.Response(200, json={"serverTime": NOW_MS})
        if q.get("symbol") not in ("XRPUSDT", "BTCUSDT"):
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        if path == "/fapi/v1/fundingRate":
            rows = [r for r in self.funding if r["symbol"] == q["symbol"]]
            return httpx.Response(200, content=orjson.dumps(self._window(rows, "fundingTime", q, 100, 1000)))
        if path == "/futures/data/openInterestHist":
            assert q["period"] == "5m"
            keep = [t for t in self.oi_times if t >= NOW_MS - 30 * _DAY]  # the latest 30 days only
            rows = [self.oi_row(t) for t in keep]
            return httpx.Response(200, content=orjson.dumps(self._window(rows, "timestamp", q, 30, 500)))
        return httpx.Response(404, json={"code": -1, "msg": "Not found."})

    @staticmethod
    def _window(rows: list[dict[str, Any]], field: str, q: httpx.QueryParams, default: int,
                most: int) -> list[dict[str, Any]]:
        limit = int(q.get("limit", default))
        assert 1 <= limit <= most
        lo, hi = q.get("startTime"), q.get("endTime")
        sel = [r for r in rows if (lo is None or r[field] >= int(lo)) and (hi is None or r[field] <= int(hi))]
        return sel[:limit] if lo is not None else sel[-limit:]


@pytest.fixture
def exchange(settlements: pd.DataFrame) -> Exchange:
    return Exchange(settlements)


def transport(exchange: Exchange) -> httpx.MockTransport:
    return httpx.MockTransport(exchange.handle)


class _Interrupt(Exception):
    pass


def interrupted_after(exchange: Exchange, answered: int) -> httpx.MockTransport:
    """The exchange, then a failure (a dropped connection, a crash) after ``answered`` answers."""
    def handle(request: httpx.Request) -> httpx.Response:
        if len(exchange.requests) >= answered:
            raise _Interrupt(f"interrupted after {answered} requests")
        return exchange.handle(request)

    return httpx.MockTransport(handle)


def assert_equals_csv(got: pd.DataFrame, settlements: pd.DataFrame) -> None:
    assert list(got.columns) == ["funding_rate", "mark_price"]
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, settlements.fundingTime.to_numpy())
    np.testing.assert_array_equal(got.funding_rate.to_numpy(), settlements.fundingRate.astype(float).to_numpy())
    assert got.mark_price.isna().all()  # Binance gives no mark for settlements this old


def test_funding_history_read_back_equals_the_csv(exchange, settlements) -> None:
    store = open_store("mem://perp-backfill-all")
    res = run_backfill_perp(store, XRP, kind="funding", transport=transport(exchange), progress=False)
    assert res.complete and not res.resumed
    assert (res.rows, res.added, res.pages, res.requests, res.weight) == (91, 91, 1, 1, 1)
    assert res.start == pd.Timestamp(int(settlements.fundingTime.iloc[0]), unit="ms", tz="UTC")
    assert res.reached == pd.Timestamp(int(settlements.fundingTime.iloc[-1]), unit="ms", tz="UTC")
    assert_equals_csv(store.funding(XRP), settlements)
    assert exchange.requests[0].params["limit"] == "1000" and exchange.requests[0].params["startTime"] == "0"
    assert "91 rows fetched, 91 added, 1 pages, 1 requests (weight 1)" in res.summary()
    # nothing new: one request from the last stored settlement + 1 ms, nothing added
    again = run_backfill_perp(store, XRP, kind="funding", transport=transport(exchange), progress=False)
    assert again.resumed and again.complete and (again.rows, again.added, again.pages) == (0, 0, 1)
    assert exchange.requests[-1].params["startTime"] == str(int(settlements.fundingTime.iloc[-1]) + 1)


def test_pages_of_20(exchange, settlements) -> None:
    store = open_store("mem://perp-backfill-20")
    res = run_backfill_perp(store, XRP, kind="funding", limit=20, transport=transport(exchange), progress=False)
    assert res.complete and (res.rows, res.added, res.pages) == (91, 91, 5)  # 20, 20, 20, 20, 11
    starts = [int(u.params["startTime"]) for u in exchange.requests]
    times = settlements.fundingTime.to_numpy()
    assert starts == [0, *(int(t) + 1 for t in times[19:80:20])]
    assert_equals_csv(store.funding(XRP), settlements)


@pytest.mark.parametrize("start", [None, "2021-11-01"])
def test_an_interrupted_backfill_resumes_with_nothing_twice_nothing_lost(exchange, settlements, lmdb_uri,
                                                                         start) -> None:
    store = open_store(lmdb_uri, create=True)
    with pytest.raises(_Interrupt):
        run_backfill_perp(store, XRP, kind="funding", start=start, limit=20,
                          transport=interrupted_after(exchange, 2), progress=False)
    assert len(store.funding(XRP)) == 40  # each page was stored as it arrived
    sent = len(exchange.requests)
    res = run_backfill_perp(store, XRP, kind="funding", start=start, limit=20, transport=transport(exchange),
                            progress=False)
    assert res.resumed and res.complete and (res.rows, res.added, res.pages) == (51, 51, 3)
    assert int(exchange.requests[sent].params["startTime"]) == int(settlements.fundingTime.iloc[39]) + 1
    assert_equals_csv(store.funding(XRP), settlements)


def test_a_cancelled_backfill_keeps_what_it_fetched(exchange, settlements, lmdb_uri) -> None:
    # what SIGINT/SIGTERM do under `quantify backfill`: cancel the run wherever it waits
    store = open_store(lmdb_uri, create=True)
    stalled = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        if len(exchange.requests) >= 3:
            stalled.set()
            await asyncio.Event().wait()
        return exchange.handle(request)

    async def cancelled() -> None:
        task = asyncio.ensure_future(backfill_perp(store, XRP, kind="funding", limit=20, progress=False,
                                                   transport=httpx.MockTransport(handle)))
        await asyncio.wait_for(stalled.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert len(store.funding(XRP)) == 60
    res = run_backfill_perp(store, XRP, kind="funding", limit=20, transport=transport(exchange), progress=False)
    assert res.resumed and res.rows == 31
    assert_equals_csv(store.funding(XRP), settlements)


def test_a_range_is_inclusive_exclusive_and_a_finished_one_is_not_fetched_again(exchange, settlements) -> None:
    store = open_store("mem://perp-backfill-range")
    times = settlements.fundingTime.to_numpy()
    start, end = (pd.Timestamp(int(times[i]), unit="ms", tz="UTC") for i in (10, 30))
    res = run_backfill_perp(store, XRP, kind="funding", start=start, end=end, transport=transport(exchange),
                            progress=False)
    assert res.complete and res.rows == 20 and res.start == start and res.end == end
    assert exchange.requests[0].params["endTime"] == str(int(times[30]) - 1)  # Binance's endTime is inclusive
    np.testing.assert_array_equal(store.funding(XRP).index.asi8 // 1_000_000, times[10:30])
    again = run_backfill_perp(store, XRP, kind="funding", start=start, end=end, transport=transport(exchange),
                              progress=False)
    assert again.complete and again.pages == 0 and len(exchange.requests) == 1


def test_open_interest_pages_of_500_within_the_30_days_binance_keeps(exchange) -> None:
    store = open_store("mem://perp-backfill-oi")
    key = "binance-usdm:BTCUSDT"
    res = run_backfill_perp(store, key, kind="open_interest", start="2024-07-01", end="2024-07-15",
                            transport=transport(exchange), progress=False)
    earliest = pd.Timestamp(NOW_MS - 30 * _DAY, unit="ms", tz="UTC")
    assert res.start == earliest and any("clipped" in n and "30 days" in n for n in res.notes)
    assert "note: start 2024-07-01 00:00:00+00:00 clipped to 2024-07-10 00:00:00+00:00" in res.summary()
    got = store.open_interest(key)
    want = [t for t in exchange.oi_times if earliest.value // 1_000_000 <= t < pd.Timestamp("2024-07-15").value // 1_000_000]
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, want)
    assert res.complete and res.rows == len(want) == 5 * 288 and res.pages == 3  # windows of 500 periods
    assert res.weight == 1  # server time; openInterestHist weighs 0 (its own limit paces it)
    rows = [exchange.oi_row(t) for t in want]
    np.testing.assert_array_equal(got.open_interest.to_numpy(), [float(r["sumOpenInterest"]) for r in rows])
    np.testing.assert_array_equal(got.open_interest_value.to_numpy(), [float(r["sumOpenInterestValue"]) for r in rows])
    # no start: from the last stored row to the server's clock
    more = run_backfill_perp(store, key, kind="open_interest", transport=transport(exchange), progress=False)
    assert more.resumed and more.complete and more.added == more.rows == 25 * 288 + 1
    assert len(store.open_interest(key)) == 30 * 288 + 1


def test_an_open_interest_range_older_than_30_days_is_refused(exchange) -> None:
    with pytest.raises(ValueError, match="keeps the last 30 days"):
        run_backfill_perp(open_store("mem://perp-backfill-old"), "binance-usdm:BTCUSDT", kind="open_interest",
                          start="2024-05-01", end="2024-06-01", transport=transport(exchange), progress=False)


@pytest.mark.parametrize("symbol, kwargs, match", [
    ("XRPUSDT", {}, "binance-usdm:XRPUSDT"),  # spot
    (XRP, {"kind": "mark"}, "kind"),
    (XRP, {"kind": "open_interest", "period": "7m"}, "period"),
    (XRP, {"limit": 1001}, "limit"),
    (XRP, {"start": "2021-12-01", "end": "2021-11-01"}, "not after"),
])
def test_bad_arguments(exchange, symbol, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        run_backfill_perp(open_store("mem://perp-backfill-bad"), symbol, transport=transport(exchange),
                          progress=False, **kwargs)
    assert not exchange.requests


def test_an_unlisted_symbol_is_refused_naming_the_closest(exchange) -> None:
    with pytest.raises(ValueError, match=r"does not list the symbol binance-usdm:XRPUSDX \(closest listed: "
                                         r"binance-usdm:XRPUSDT"):
        run_backfill_perp(open_store("mem://perp-backfill-unlisted"), "binance-usdm:XRPUSDX",
                          transport=transport(exchange), progress=False)


def test_backfill_refuses_while_a_writer_runs(exchange, lmdb_uri) -> None:
    store = open_store(lmdb_uri, create=True)
    with WriterLock(store.uri.uri, store.uri.path), pytest.raises(WriterLocked):
        run_backfill_perp(store, XRP, transport=transport(exchange), progress=False)


@pytest.fixture
def cli_exchange(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> Exchange:
    """``quantify backfill`` talking to the mock exchange (its REST client built on the mock transport)."""
    rest: Callable[..., Any] = BinanceVenue.rest

    def on_mock(self: BinanceVenue, base_url: str | None = None, **kwargs: Any) -> Any:
        return rest(self, base_url, **{**kwargs, "transport": transport(exchange)})

    monkeypatch.setattr(BinanceVenue, "rest", on_mock)
    return exchange


def test_backfill_command(cli_exchange, settlements, lmdb_uri, capsys) -> None:
    assert main(["backfill", XRP, "--kind", "funding", "--store", lmdb_uri]) == 0
    out = capsys.readouterr().out
    assert "binance-usdm:XRPUSDT funding" in out and "91 rows fetched, 91 added" in out and "complete" in out
    assert_equals_csv(open_store(lmdb_uri).funding(XRP), settlements)
    assert main(["backfill", "binance-usdm:BTCUSDT", "--kind", "open_interest", "--start", "2024-06-01",
                 "--end", "2024-07-11", "--store", lmdb_uri]) == 0
    assert "note: start 2024-06-01 00:00:00+00:00 clipped to 2024-07-10" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["backfill", "XRPUSDT", "--kind", "funding"], "binance-usdm:XRPUSDT"),
    (["backfill", XRP, "--kind", "trades"], "--start and --end are required"),
])
def test_backfill_command_usage_errors(argv, match, capsys) -> None:
    assert main([*argv, "--store", "mem://perp-backfill-cli"]) == 2
    assert match in capsys.readouterr().err
