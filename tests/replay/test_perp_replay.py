"""The replay serves USD-M perpetual streams: recorded and synthetic mark prices, synthetic liquidations."""

from __future__ import annotations

import asyncio
import gzip
import itertools
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from quantify.model.perp import Liquidation, MarkPrice
from quantify.replay.config import ReplayConfig
from quantify.replay.perp_tape import FORCE, FUNDING_INTERVAL_MS, MARK, funding_rate, next_funding_time
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.venues import venue_of
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.recordings import sample_files, usdm_sample_files

TIMEOUT = 60.0
DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
PERP_FILE = DATA / "usdm-2023-btcusdt_20230405.perp.gz"
PERP = "binance-usdm:BTCUSDT"


def recorded_marks() -> list[str]:
    """The ``data`` parts of the recording's markPriceUpdate lines, as recorded text."""
    out = []
    with gzip.open(PERP_FILE, "rt") as lines:
        for line in lines:
            text = line.split(" ", 1)[1].rstrip("\n")
            if '"markPriceUpdate"' in text:
                out.append(text[text.index('"data":') + 7:-1])
    return out


async def _collect(url: str, count: int | None, idle: float) -> list[str]:
    out: list[str] = []
    async with websockets.connect(url, max_size=None, max_queue=None, close_timeout=2) as ws:
        try:
            while count is None or len(out) < count:
                msg = await asyncio.wait_for(ws.recv(), idle)
                out.append(msg if isinstance(msg, str) else msg.decode())
        except TimeoutError:
            pass
    return out


def collect(url: str, count: int | None = None, idle: float = 10.0) -> list[str]:
    """The first ``count`` messages ``url`` sends (or all until it is quiet for ``idle`` seconds), as text."""
    return asyncio.run(asyncio.wait_for(_collect(url, count, idle), TIMEOUT))


@pytest.fixture(scope="module")
def perp_tape() -> Tape:
    return Tape([PERP_FILE])


@pytest.fixture(scope="module")
def pair_tape() -> Tape:
    """USD-M BTCUSDT trades (no marks) beside spot BTCUSDT trades of the same minutes."""
    return Tape([sample_files()[0], usdm_sample_files()[0]])


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


def test_recorded_marks_round_trip_exactly(perp_tape: Tape, serve: Any) -> None:
    server = serve(perp_tape)
    want = recorded_marks()
    got = collect(f"{server.ws_url}/market/ws/btcusdt@markPrice@1s", len(want))
    assert len(want) == 514
    assert got == want  # the recorded bytes: p, i, P, r, T and E as recorded
    marks = [orjson.loads(w) for w in want]
    parser = FrameParser()
    parsed = [parser.parse(g) for g in got]
    assert all(isinstance(m, MarkPrice) for m in parsed) and parser.malformed_total == 0
    assert [m.funding_rate for m in parsed] == [float(w["r"]) for w in marks]  # type: ignore[union-attr]
    assert {m["T"] for m in marks} == {1680652800000, 1680681600000}  # crosses the 00:00 settlement
    assert server.stats["synthetic"] == {PERP: ["forceOrder", "fundingRate", "openInterest"]}  # marks recorded


def test_three_second_stream_and_combined_frames(perp_tape: Tape, serve: Any) -> None:
    server = serve(perp_tape)
    want = [orjson.loads(w) for w in recorded_marks()]
    count = sum((w["E"] // 1000) % 3 == 0 for w in want)
    got = [orjson.loads(m) for m in collect(f"{server.ws_url}/market/stream?streams=btcusdt@markPrice", count)]
    assert {g["stream"] for g in got} == {"btcusdt@markPrice"}
    assert [g["data"] for g in got] == [w for w in want if (w["E"] // 1000) % 3 == 0]


def test_marks_ride_on_the_trades_timeline(perp_tape: Tape, serve: Any) -> None:
    server = serve(perp_tape)
    count = 514 + perp_tape.symbols[PERP].n_aggs
    got = [orjson.loads(m)["data"] for m in
           collect(f"{server.ws_url}/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s", count)]
    marks = [e for e in got if e["e"] == "markPriceUpdate"]
    assert len(marks) == 514 and len(got) > 514
    last_trade = 0
    for i, event in enumerate(got):
        if event["e"] == "aggTrade":
            last_trade = event["T"]
            continue
        # sent after every trade up to its time, before any later one
        assert last_trade <= event["E"]
        nxt = next((e for e in got[i:] if e["e"] == "aggTrade"), None)
        assert nxt is None or nxt["T"] > event["E"]


def test_wrong_tier_delivers_no_marks(perp_tape: Tape, serve: Any) -> None:
    server = serve(perp_tape)
    assert collect(f"{server.ws_url}/public/ws/btcusdt@markPrice@1s", idle=0.5) == []


def test_recorded_marks_in_later_laps(perp_tape: Tape) -> None:
    mark = perp_tape.marks[PERP]
    lap0, lap1 = (mark.payloads(k, MARK) for k in (0, 1))
    sym = perp_tape.symbols[PERP]
    f = sym.lap_prices.factor(1)
    for a, b in zip(lap0, lap1):
        assert b["E"] == a["E"] + perp_tape.lap_ms
        assert b["T"] % FUNDING_INTERVAL_MS == 0
        assert (b["T"] > b["E"]) == (a["T"] > a["E"])  # Binance's T lags the settlement by some ms
        assert b["T"] - next_funding_time(b["E"]) == a["T"] - next_funding_time(a["E"])
        assert b["r"] == a["r"]
        assert len(b["p"]) - b["p"].index(".") == len(a["p"]) - a["p"].index(".")
        assert float(b["p"]) == pytest.approx(float(a["p"]) * f, abs=1e-8)


def test_synthetic_marks_follow_the_trades(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape)
    perp, spot = pair_tape.symbols[PERP], pair_tape.symbols["BTCUSDT"]
    count = (perp.times[-1] // 1000) - (perp.times[0] // 1000)
    got = [orjson.loads(m) for m in collect(f"{server.ws_url}/market/ws/btcusdt@markPrice@1s", count)]
    assert len(got) == count
    assert all(b["E"] - a["E"] == 1000 for a, b in itertools.pairwise(got))
    total = 0.0
    for k, event in enumerate(got):
        r = bisect_right(perp.times, event["E"]) - 1
        rs = bisect_right(spot.times, event["E"]) - 1
        assert set(event) == {"e", "E", "s", "p", "i", "P", "r", "T"}
        assert float(event["p"]) == float(perp.prices[r]) and len(event["p"].partition(".")[2]) == 8
        assert float(event["i"]) == float(spot.prices[rs]) and event["P"] == event["i"]
        assert event["T"] == next_funding_time(event["E"]) == 1723161600000
        total += (float(event["p"]) - float(event["i"])) / float(event["i"])
        assert event["r"] == f"{funding_rate(total / (k + 1)):.8f}"
    assert server.stats["synthetic"] == {PERP: ["markPrice", "forceOrder", "fundingRate", "openInterest"]}


def test_funding_formula() -> None:
    assert funding_rate(0.0) == pytest.approx(0.0001)  # inside the clamp: the interest rate
    assert funding_rate(0.0003) == pytest.approx(0.0001)
    assert funding_rate(0.002) == pytest.approx(0.002 - 0.0005)
    assert funding_rate(-0.002) == pytest.approx(-0.002 + 0.0005)
    assert funding_rate(0.5) == 0.0075 and funding_rate(-0.5) == -0.0075
    assert next_funding_time(1723161599999) == 1723161600000
    assert next_funding_time(1723161600000) == 1723161600000 + FUNDING_INTERVAL_MS


def test_synthetic_liquidations(pair_tape: Tape, serve: Any) -> None:
    server = serve(pair_tape, seed=5)
    count = len(pair_tape.liquidations(5)[PERP].payloads(0, FORCE))
    got = [orjson.loads(m) for m in collect(f"{server.ws_url}/market/ws/btcusdt@forceOrder", count)]
    assert len(got) == count > 10, "some large trades become liquidations"
    perp = pair_tape.symbols[PERP]
    by_time = {t: r for r, t in enumerate(perp.times)}
    seconds = [e["o"]["T"] // 1000 for e in got]
    assert len(set(seconds)) == len(seconds)  # at most one per second
    for event in got:
        o = event["o"]
        assert set(event) == {"e", "E", "o"} and event["e"] == "forceOrder"
        assert set(o) == {"s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"}
        assert o["s"] == "BTCUSDT" and o["o"] == "LIMIT" and o["f"] == "IOC" and o["X"] == "FILLED"
        assert o["q"] == o["l"] == o["z"] and 0 <= event["E"] - o["T"] < 100
        assert o["T"] in by_time
        ap, p = float(o["ap"]), float(o["p"])
        assert (p < ap) if o["S"] == "SELL" else (p > ap)
    parser = FrameParser()  # what the ingestion reads them with
    parsed = [parser.parse(orjson.dumps(e)) for e in got]
    assert all(isinstance(x, Liquidation) for x in parsed) and parser.malformed_total == 0
    # deterministic with the seed, different with another
    again = [orjson.loads(m) for m in collect(f"{serve(pair_tape, seed=5).ws_url}/market/ws/btcusdt@forceOrder",
                                              count)]
    other = pair_tape.liquidations(6)[PERP].payloads(0, FORCE)
    assert again == got and other != got


def test_every_symbols_marks_in_one_array(serve: Any) -> None:
    usdm_only = Tape(usdm_sample_files())  # BTCUSDT and ETHUSDT perpetuals
    server = serve(usdm_only)
    btc, eth = (usdm_only.marks[f"binance-usdm:{s}"].payloads(0, MARK) for s in ("BTCUSDT", "ETHUSDT"))
    seconds = sorted({e["E"] // 1000 for e in btc + eth})

    async def subscribed() -> list[Any]:
        async with websockets.connect(f"{server.ws_url}/market/ws", max_size=None) as ws:
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["!markPrice@arr@1s"], "id": 1}))
            assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
            return [orjson.loads(await ws.recv()) for _ in seconds]

    got = asyncio.run(asyncio.wait_for(subscribed(), TIMEOUT))
    assert all(isinstance(g, list) for g in got)
    assert [e for g in got for e in g] == sorted(btc + eth, key=lambda e: (e["E"] // 1000, e["s"] != "BTCUSDT"))
    assert [{e["E"] // 1000 for e in g} for g in got] == [{s} for s in seconds]


def test_synthetic_events_in_later_laps(pair_tape: Tape) -> None:
    """Lap 1 shifts the times like the trades and takes its prices from the lap's trade prices."""
    lap_ms = pair_tape.lap_ms
    perp, spot = pair_tape.symbols[PERP], pair_tape.symbols["BTCUSDT"]
    marks = pair_tape.marks[PERP]
    m0, m1 = marks.payloads(0, MARK), marks.payloads(1, MARK)
    assert len(m0) == len(m1) and all(b["E"] == a["E"] + lap_ms for a, b in zip(m0, m1, strict=True))
    texts, spot_texts = perp.lap_prices.texts(1), spot.lap_prices.texts(1)
    for event in m1:
        e0 = event["E"] - lap_ms
        assert float(event["p"]) == float(texts[bisect_right(perp.times, e0) - 1])
        assert float(event["i"]) == float(spot_texts[bisect_right(spot.times, e0) - 1])
        assert event["T"] == next_funding_time(event["E"])
    liquidations = pair_tape.liquidations(0)[PERP]
    l0, l1 = liquidations.payloads(0, FORCE), liquidations.payloads(1, FORCE)
    assert len(l0) == len(l1)
    for a, b in zip(l0, l1, strict=True):
        assert b["E"] == a["E"] + lap_ms and b["o"]["T"] == a["o"]["T"] + lap_ms
        assert b["o"]["q"] == a["o"]["q"] and b["o"]["S"] == a["o"]["S"]
        rows = [r for r, t in enumerate(perp.times) if t == a["o"]["T"] and perp.qtys[r] == a["o"]["q"]]
        assert {perp.prices[r] for r in rows} >= {a["o"]["ap"]} and b["o"]["ap"] in {texts[r] for r in rows}


def test_the_venue_adapters_perpetual_urls_get_marks_and_liquidations(pair_tape: Tape, serve: Any) -> None:
    """What the ingestion subscribes (Venue.perp_stream_urls) arrives, and its parser reads every frame."""
    server = serve(pair_tape)
    (url,) = venue_of(PERP).perp_stream_urls(server.ws_url, ["BTCUSDT"], 1024)
    assert "/market/stream?streams=" in url
    marks = len(pair_tape.marks[PERP].payloads(0, MARK))
    liquidations = len(pair_tape.liquidations(0)[PERP].payloads(0, FORCE))
    parser = FrameParser()
    events = [parser.parse(m) for m in collect(url, marks + liquidations)]
    assert parser.malformed_total == 0
    assert sum(isinstance(e, MarkPrice) for e in events) == marks
    assert sum(isinstance(e, Liquidation) for e in events) == liquidations
