"""The replay's USD-M perpetual REST endpoints: fundingRate, premiumIndex, openInterest, openInterestHist,
and a funding backfill against them."""

from __future__ import annotations

import asyncio
import csv
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import websockets

import quantify
from quantify.cli import main
from quantify.ingest.perp_backfill import run_backfill_perp
from quantify.replay.config import ReplayConfig
from quantify.replay.fapi import FAPI_WEIGHTS, UsdmRestApi
from quantify.replay.fapi_perp import PerpAnswers
from quantify.replay.perp_tape import FUNDING_INTERVAL_MS, MARK
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.venues.binance.perp_files import read_funding_rows
from quantify.venues.binance.recordings import sample_files, usdm_sample_files

DATA = Path(quantify.__file__).parent / "data"
FUNDING_CSV = DATA / "usdm-2021-xrpusdt.funding.csv"
PERP_FILE = DATA / "usdm-2023-btcusdt_20230405.perp.gz"
XRP = "binance-usdm:XRPUSDT"
_DAY = 86_400_000


def csv_rows() -> list[dict[str, Any]]:
    with open(FUNDING_CSV) as fh:
        return [{"symbol": r["symbol"], "fundingTime": int(r["fundingTime"]), "fundingRate": r["fundingRate"],
                 "markPrice": ""} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def pair_tape() -> Tape:
    return Tape([sample_files()[0], usdm_sample_files()[0]])


@pytest.fixture(scope="module")
def perp_tape() -> Tape:
    return Tape([PERP_FILE])


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[ReplayThread] = []

    def start(tape: Tape, **kwargs: Any) -> ReplayThread:
        config = ReplayConfig(files=tuple(tape.files), speed=0, **kwargs)
        thread = ReplayThread(server=ReplayServer(config, tape=tape)).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


def get(server: ReplayThread, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.rest_url + path, params=params, timeout=30)


def test_funding_rate_answers_the_csv_settlements_exactly(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape)
    want = csv_rows()
    assert len(want) == 91
    res = get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", startTime=0, limit=1000)
    assert res.status_code == 200 and res.json() == want
    assert res.headers["X-MBX-USED-WEIGHT-1M"] == str(FAPI_WEIGHTS["/fapi/v1/fundingRate"])
    assert b'"fundingRate":"0.00010000"' in res.content  # the file's strings, not floats
    # default limit 100 -> all 91; no times: the latest `limit`; startTime: the first `limit` from it
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT").json() == want
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", limit=5).json() == want[-5:]
    t = want[10]["fundingTime"]
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", startTime=t, limit=3).json() == want[10:13]
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", startTime=t + 1, limit=3).json() == want[11:14]
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", startTime=t,
               endTime=want[12]["fundingTime"]).json() == want[10:13]
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", endTime=t, limit=2).json() == want[9:11]
    assert len(get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", limit=5000).json()) == 91  # clamped
    bad = get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", startTime=t, endTime=t - 1)
    assert bad.status_code == 400 and bad.json()["code"] == -1023
    assert get(server, "/fapi/v1/fundingRate", symbol="NOPEUSDT").json()["code"] == -1121
    assert get(server, "/fapi/v1/fundingRate", symbol="XRPUSDT", foo=1).json()["code"] == -1104


def test_xrpusdt_is_listed_for_its_funding(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape)
    symbols = {s["symbol"]: s for s in get(server, "/fapi/v1/exchangeInfo").json()["symbols"]}
    assert set(symbols) == {"BTCUSDT", "XRPUSDT"}
    assert symbols["XRPUSDT"]["contractType"] == "PERPETUAL" and symbols["XRPUSDT"]["status"] == "TRADING"
    # no marks: its premium index and open interest are unknown
    assert get(server, "/fapi/v1/premiumIndex", symbol="XRPUSDT").json()["code"] == -1121
    assert get(server, "/fapi/v1/openInterest", symbol="XRPUSDT").json()["code"] == -1121


def test_synthetic_settlements_follow_the_marks(perp_tape: Tape) -> None:
    """The recorded capture crosses 2023-04-05 00:00: one settlement, at the last mark's rate before it."""
    answers = PerpAnswers(perp_tape)
    marks = perp_tape.marks["binance-usdm:BTCUSDT"].payloads(0, MARK)
    settle = 1680652800000
    before = [m for m in marks if m["E"] <= settle][-1]
    rows = answers.settlements("BTCUSDT", perp_tape.last_time)
    assert rows == [{"symbol": "BTCUSDT", "fundingTime": settle, "fundingRate": before["r"],
                     "markPrice": before["p"]}]
    assert answers.settlements("BTCUSDT", settle - 1) == []  # not before the replay clock reaches it
    # looping: a settlement every 8 hours the replay plays through
    looping = PerpAnswers(perp_tape, loop=True)
    later = looping.settlements("BTCUSDT", settle + 3 * FUNDING_INTERVAL_MS)
    assert [r["fundingTime"] for r in later] == [settle + k * FUNDING_INTERVAL_MS for k in range(4)]


def test_premium_index_is_the_mark_at_the_replay_position(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape, loop=False)
    marks = pair_tape.marks["binance-usdm:BTCUSDT"].payloads(0, MARK)
    before = get(server, "/fapi/v1/premiumIndex", symbol="BTCUSDT").json()  # clock not started: the first mark
    assert before["markPrice"] == marks[0]["p"] and before["nextFundingTime"] == marks[0]["T"]
    # play everything: the last mark

    async def drain() -> None:
        async with websockets.connect(f"{server.ws_url}/market/ws/btcusdt@markPrice@1s") as ws:
            for _ in range(len(marks)):
                await ws.recv()

    asyncio.run(asyncio.wait_for(drain(), 60))
    res = get(server, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
    last = marks[-1]
    assert res.json() == {"symbol": "BTCUSDT", "markPrice": last["p"], "indexPrice": last["i"],
                          "estimatedSettlePrice": last["P"], "lastFundingRate": last["r"],
                          "interestRate": "0.00010000", "nextFundingTime": last["T"], "time": res.json()["time"]}
    assert res.json()["time"] >= last["E"]
    every = get(server, "/fapi/v1/premiumIndex")
    assert [p["symbol"] for p in every.json()] == ["BTCUSDT"]
    used = int(every.headers["X-MBX-USED-WEIGHT-1M"]) - int(res.headers["X-MBX-USED-WEIGHT-1M"])
    assert used == 10  # every symbol at once weighs 10


def test_open_interest_is_deterministic_and_hist_keeps_30_days(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape)
    now = get(server, "/fapi/v1/time").json()["serverTime"]
    answer = get(server, "/fapi/v1/openInterest", symbol="BTCUSDT")
    one = answer.json()
    assert set(one) == {"openInterest", "symbol", "time"} and float(one["openInterest"]) > 0
    assert get(server, "/fapi/v1/openInterest", symbol="BTCUSDT").json() == one  # the clock has not moved
    hist = get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="1h")
    used = int(hist.headers["X-MBX-USED-WEIGHT-1M"]) - int(answer.headers["X-MBX-USED-WEIGHT-1M"])
    assert used == 1  # the second openInterest; openInterestHist weighs 0 (Binance counts its requests instead)
    rows = hist.json()
    assert len(rows) == 30 and rows[-1]["timestamp"] == now // 3_600_000 * 3_600_000  # default limit 30
    assert all(b["timestamp"] - a["timestamp"] == 3_600_000 for a, b in itertools.pairwise(rows))
    assert set(rows[0]) == {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
    # 30 days: from the first 5-minute boundary within them, pages of at most 500
    old = get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m", startTime=0, limit=1000).json()
    earliest = -(-(now - 30 * _DAY) // 300_000) * 300_000
    assert len(old) == 500 and old[0]["timestamp"] == earliest
    assert get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m",
               startTime=0, endTime=now - 31 * _DAY).json() == []
    again = get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m", startTime=0).json()
    assert again == old[:30]
    day = get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="1d", limit=500).json()
    assert len(day) == 30 and all(r["timestamp"] % _DAY == 0 for r in day)
    assert get(server, "/futures/data/openInterestHist", symbol="BTCUSDT", period="3m").json()["code"] == -1120


def test_backfill_funding_against_the_replay(pair_tape: Tape, serve: Any, lmdb_uri: str) -> None:
    server = serve(pair_tape)
    want = csv_rows()
    store = open_store(lmdb_uri, create=True)

    class Interrupted(Exception):
        pass

    class Interrupting(httpx.AsyncBaseTransport):
        """The replay over HTTP, then a dropped connection after ``answers`` answers."""

        def __init__(self, answers: int) -> None:
            self.inner, self.left = httpx.AsyncHTTPTransport(), answers

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if self.left == 0:
                raise Interrupted("connection lost")
            self.left -= 1
            return await self.inner.handle_async_request(request)

    with pytest.raises(Interrupted):
        run_backfill_perp(store, XRP, kind="funding", limit=20, rest_url=server.rest_url,
                          transport=Interrupting(2), progress=False)
    assert len(store.funding(XRP)) == 40  # each page stored as it arrived
    res = run_backfill_perp(store, XRP, kind="funding", limit=20, rest_url=server.rest_url, progress=False)
    assert res.resumed and res.complete and (res.rows, res.added, res.pages) == (51, 51, 3)
    assert res.weight == res.requests == 3 and server.stats["rest_rate_limited"] == 0
    got = store.funding(XRP)
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, [r["fundingTime"] for r in want])
    np.testing.assert_array_equal(got.funding_rate.to_numpy(), [float(r["fundingRate"]) for r in want])
    assert got.mark_price.isna().all()
    # the command as its help prints it: nothing new, nothing stored twice
    assert main(["backfill", XRP, "--kind", "funding", "--store", lmdb_uri, "--rest-url", server.rest_url,
                 "--no-progress"]) == 0
    assert len(open_store(lmdb_uri).funding(XRP)) == 91


def test_a_whole_funding_backfill_in_one_page(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape)
    store = open_store("mem://perp-replay-funding")
    res = run_backfill_perp(store, XRP, kind="funding", rest_url=server.rest_url, progress=False)
    assert res.complete and (res.rows, res.added, res.pages, res.requests, res.weight) == (91, 91, 1, 1, 1)
    assert orjson.loads(orjson.dumps(list(store.funding(XRP).funding_rate))) == [
        float(r["fundingRate"]) for r in csv_rows()]


def test_settlements_of_the_bundled_tape_and_of_every_symbol(pair_tape: Tape, serve: Any) -> None:
    """The 2024 tape's marks end at 23:59:59: one synthetic settlement, 2024-08-09 00:00, at their last rate."""
    answers = PerpAnswers(pair_tape, csv_rows())
    last = pair_tape.marks["binance-usdm:BTCUSDT"].payloads(0, MARK)[-1]
    settle = 1723161600000
    assert answers.settlements("BTCUSDT", settle) == [
        {"symbol": "BTCUSDT", "fundingTime": settle, "fundingRate": last["r"], "markPrice": last["p"]}]
    server = serve(pair_tape)
    every = get(server, "/fapi/v1/fundingRate", startTime=0, limit=1000).json()
    assert every == csv_rows()  # the replay clock is before 00:00 until the spot trades reach it
    assert [r["fundingTime"] for r in every] == sorted(r["fundingTime"] for r in every)


def test_funding_requests_are_limited_per_5_minutes(pair_tape: Tape) -> None:
    now = [1_000_000.0]
    api = UsdmRestApi(pair_tape, clock=lambda: now[0], weight_limit=10**9, funding_rows=csv_rows())
    query = "symbol=XRPUSDT&limit=1"
    for _ in range(500):
        assert api.handle("/fapi/v1/fundingRate", query, "1.2.3.4", 0, pair_tape.first_time).status == 200
    over = api.handle("/fapi/v1/fundingRate", query, "1.2.3.4", 0, pair_tape.first_time)
    assert over.status == 429 and orjson.loads(over.body)["code"] == -1003
    assert int(over.headers["Retry-After"]) == 200  # to the next 5-minute window
    assert api.handle("/fapi/v1/fundingRate", query, "5.6.7.8", 0, pair_tape.first_time).status == 200  # per IP
    hist = "symbol=BTCUSDT&period=5m&limit=1"
    assert api.handle("/futures/data/openInterestHist", hist, "1.2.3.4", 0, pair_tape.first_time).status == 200
    now[0] += 200
    assert api.handle("/fapi/v1/fundingRate", query, "1.2.3.4", 0, pair_tape.first_time).status == 200


def test_a_data_binance_vision_funding_archive_beside_the_synthetic_settlements(pair_tape: Tape) -> None:
    vision = Path(__file__).parents[1] / "data" / "BTCUSDT-fundingRate-2023-04.csv"
    rows = read_funding_rows(vision)
    with open(vision) as fh:
        recorded = [(int(r["calc_time"]), r["last_funding_rate"]) for r in csv.DictReader(fh)]
    assert [(r["fundingTime"], r["fundingRate"]) for r in rows] == recorded
    answers = PerpAnswers(pair_tape, rows)
    settle = 1723161600000
    got = answers.funding_rate({"symbol": "BTCUSDT", "startTime": "0"}, settle)
    assert [(r["fundingTime"], r["fundingRate"]) for r in got[:-1]] == recorded  # the archive's strings
    assert got[-1]["fundingTime"] == settle and got[-1]["markPrice"]  # then the tape's own, synthetic
