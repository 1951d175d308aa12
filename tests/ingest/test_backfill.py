"""REST backfill of a time range against the replay server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
import websockets

from quantify.analytics import resample
from quantify.exceptions import WriterLocked
from quantify.ingest.backfill import backfill, run_backfill
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import WriterLock, open_store
from quantify.store.merge import klines
from quantify.venues.binance.recordings import read_trades, sample_files

START, END = "2024-08-08 23:50", "2024-08-09 00:04"  # the sample runs 23:54:15 .. 00:05:05
TOTAL = 19_904 + 14_515


async def _drain(url: str, count: int) -> None:
    async with websockets.connect(url, max_queue=None, close_timeout=2) as ws:
        for _ in range(count):
            await ws.recv()


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayThread]:
    """A replay server that has released the whole sample (REST serves only released trades)."""
    with ReplayThread(ReplayConfig(speed=0)) as server:
        asyncio.run(asyncio.wait_for(
            _drain(server.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade", TOTAL), 60))
        assert server.stats["trades_replayed"] == {"BTCUSDT": 19_904, "ETHUSDT": 14_515}
        yield server


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    frames = [read_trades(p)["BTCUSDT"] for p in sample_files() if "btcusdt" in p.name]
    return pd.concat(frames).sort_values("trade_id")


def _in_range(ticks: pd.DataFrame, start: str = START, end: str = END) -> pd.DataFrame:
    t0, t1 = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    return ticks[(ticks.index >= t0) & (ticks.index < t1)]


def _rest(replay: ReplayThread) -> str:
    return replay.rest_url


def test_trades_of_a_range_equal_the_recording(replay, btc) -> None:
    store = open_store("mem://backfill-trades")
    res = run_backfill(store, "BTCUSDT", START, END, kind="trades", rest_url=_rest(replay),
                       progress=False)
    assert res.complete and not res.resumed
    got = store.ticks("BTCUSDT")
    want = _in_range(btc)
    assert res.rows == res.added == len(want) == len(got)
    np.testing.assert_array_equal(got.trade_id, want.trade_id)
    np.testing.assert_array_equal(got.price, want.price)
    np.testing.assert_array_equal(got.index.asi8, want.index.asi8)
    # a finished range is not fetched again
    again = run_backfill(store, "BTCUSDT", START, END, kind="trades", rest_url=_rest(replay),
                         progress=False)
    assert again.complete and again.pages == 0 and again.added == 0


def test_agg_trades_cover_every_trade_once(replay, btc) -> None:
    store = open_store("mem://backfill-agg")
    res = run_backfill(store, "BTCUSDT", START, END, kind="aggTrades", rest_url=_rest(replay),
                       progress=False)
    assert res.complete
    agg = store.ticks("BTCUSDT")
    assert (np.diff(agg.trade_id.to_numpy()) == 1).all()
    assert (agg.first_id.to_numpy()[1:] == agg.last_id.to_numpy()[:-1] + 1).all()
    want = _in_range(btc)
    assert (agg.first_id.iloc[0], agg.last_id.iloc[-1]) == (want.trade_id.iloc[0], want.trade_id.iloc[-1])
    assert int((agg.last_id - agg.first_id + 1).sum()) == len(want)


def test_range_past_the_servers_clock_is_incomplete_then_resumes(replay) -> None:
    store = open_store("mem://backfill-open")
    res = run_backfill(store, "ETHUSDT", START, "2024-08-09 01:00", kind="trades",
                       rest_url=_rest(replay), progress=False)
    assert not res.complete and res.rows == 14_515
    assert res.reached is not None and res.reached < pd.Timestamp("2024-08-09 00:06", tz="UTC")
    res2 = run_backfill(store, "ETHUSDT", START, "2024-08-09 01:00", kind="trades",
                        rest_url=_rest(replay), progress=False)
    assert res2.resumed and res2.added == 0 and len(store.ticks("ETHUSDT")) == 14_515


class _Interrupt(Exception):
    pass


class _FailingTransport(httpx.AsyncBaseTransport):
    """Real HTTP to the replay, then an interruption after ``after`` requests."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.sent = 0
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > self.after:
            raise _Interrupt(f"interrupted after {self.after} requests")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("kind", ["trades", "aggTrades"])
def test_interrupted_backfill_resumes_without_gap_or_duplicate(replay, btc, lmdb_uri, kind) -> None:
    store = open_store(lmdb_uri, create=True)
    with pytest.raises(_Interrupt):
        run_backfill(store, "BTCUSDT", START, END, kind=kind, rest_url=_rest(replay),
                     transport=_FailingTransport(after=6), flush_rows=2_000, progress=False)
    partial = store.ticks("BTCUSDT")
    assert 0 < len(partial)  # some pages were stored before the interruption
    res = run_backfill(store, "BTCUSDT", START, END, kind=kind, rest_url=_rest(replay),
                       flush_rows=2_000, progress=False)
    assert res.resumed and res.complete
    got = store.ticks("BTCUSDT")
    assert got.trade_id.is_unique and (np.diff(got.trade_id.to_numpy()) == 1).all()
    covered = int((got.last_id - got.first_id + 1).sum())
    assert covered == len(_in_range(btc))
    assert res.pages < 19  # continued at the saved cursor, not from the start


def test_retry_after_is_honoured(replay, btc) -> None:
    store = open_store("mem://backfill-429")
    replay.force_429(2)
    res = run_backfill(store, "BTCUSDT", START, END, kind="aggTrades", rest_url=_rest(replay),
                       progress=False)
    assert res.rate_limited == 2 and res.complete
    assert res.requests == res.pages + 1 + 2  # pages, the start lookup, two retries


def test_klines_equal_resampled_ticks(replay, btc) -> None:
    store = open_store("mem://backfill-klines")
    res = run_backfill(store, "BTCUSDT", START, END, kind="klines", rest_url=_rest(replay),
                       progress=False)
    assert res.complete
    k = klines(store, "BTCUSDT", "1m")
    ref = resample(btc, "1m")
    ref = ref[ref.index < pd.Timestamp(END, tz="UTC")]
    assert list(k.index) == list(ref.index)
    np.testing.assert_array_equal(k.trades.to_numpy(), ref.trades.to_numpy())
    np.testing.assert_allclose(k[["open", "high", "low", "close", "volume", "quote_volume"]],
                               ref[["open", "high", "low", "close", "volume", "quote_volume"]],
                               rtol=1e-12)


def test_backfill_refuses_while_a_writer_runs(replay, lmdb_uri) -> None:
    store = open_store(lmdb_uri, create=True)
    with WriterLock(store.uri.uri, store.uri.path), pytest.raises(WriterLocked):
        run_backfill(store, "BTCUSDT", START, END, rest_url=_rest(replay), progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "bars"}, "kind"),
    ({"interval": "7m"}, "interval"),
    ({"flush_rows": 0}, "flush_rows"),
])
def test_bad_arguments(replay, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        run_backfill(open_store("mem://backfill-bad"), "BTCUSDT", START, END,
                     rest_url=_rest(replay), progress=False, **kwargs)
    with pytest.raises(ValueError, match="not after"):
        run_backfill(open_store("mem://backfill-bad"), "BTCUSDT", END, START,
                     rest_url=_rest(replay), progress=False)


class _StallingTransport(httpx.AsyncBaseTransport):
    """Answers ``after`` requests, then never answers again (a wait a signal interrupts)."""

    def __init__(self, after: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.after = after
        self.sent = 0
        self.stalled = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > self.after:
            self.stalled.set()
            await asyncio.Event().wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_cancelled_backfill_stores_what_it_fetched_then_resumes(replay, btc, lmdb_uri) -> None:
    # what SIGINT/SIGTERM do under `quantify backfill`: cancel the run wherever it waits
    store = open_store(lmdb_uri, create=True)
    transport = _StallingTransport(after=4)  # the start lookup, then three pages of 1,000

    async def cancelled() -> None:
        task = asyncio.ensure_future(backfill(store, "BTCUSDT", START, END, kind="trades",
                                              rest_url=_rest(replay), transport=transport, progress=False))
        await asyncio.wait_for(transport.stalled.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    got = store.ticks("BTCUSDT")  # flush_rows is 50,000: only the cancellation stored these
    assert len(got) == 3_000 and (np.diff(got.trade_id.to_numpy()) == 1).all()
    res = run_backfill(store, "BTCUSDT", START, END, kind="trades", rest_url=_rest(replay), progress=False)
    assert res.resumed and res.complete and res.rows == len(_in_range(btc)) - 3_000
    assert len(store.ticks("BTCUSDT")) == len(_in_range(btc))


def test_an_unlisted_symbol_is_refused_naming_the_closest(replay) -> None:
    with pytest.raises(ValueError, match=r"does not list the symbol ETHUSDX \(closest listed: ETHUSDT"):
        run_backfill(open_store("mem://backfill-unlisted"), "ETHUSDX", START, END, rest_url=_rest(replay),
                     progress=False)
