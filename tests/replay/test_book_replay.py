"""The replay serves order books: depth diffs, book tickers, REST depth from its own book, faults, laps."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from book_helpers import Truth, events
from websockets.exceptions import ConnectionClosed

from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot
from quantify.model.booksync import BookSync
from quantify.model.trades import ServerShutdown
from quantify.replay.config import ReplayConfig, default_files
from quantify.replay.depth import ServedBooks
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.venues.binance.parse import FrameParser, depth_snapshot_from_answer
from quantify.venues.binance.recordings import book_sample_files, read_frames, sample_files, usdm_sample_files

#: Seconds any single network wait may take (generous: shared CI machines are slow).
TIMEOUT = 60.0
SPOT_BOOK = book_sample_files()[:2]
USDM_BOOK = book_sample_files()[2:]
PERP = "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def usdm_tape() -> Tape:
    return Tape([usdm_sample_files()[0], *USDM_BOOK])


@pytest.fixture(scope="module")
def spot_tape() -> Tape:
    return Tape([*sample_files()[:2], *SPOT_BOOK])


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[ReplayThread] = []

    def start(tape: Tape, **kwargs: Any) -> ReplayThread:
        config = ReplayConfig(files=tuple(tape.files), speed=0, chunk_events=50, **kwargs)
        thread = ReplayThread(server=ReplayServer(config, tape=tape)).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


def recorded(files: list[Path], stream: str) -> list[str]:
    """The recorded lines of one stream, in the recording's order."""
    return [text for path in files for _, text in read_frames(path) if f'"stream":"{stream}"' in text[:60]]


def truth(files: list[Path]) -> Truth:
    """The reference book of a recording (``tests/book_helpers.py``)."""
    return Truth(events(files))


def last_u(files: list[Path]) -> int:
    return truth(files).diffs[-1].last_id


async def keep_book(server: ReplayThread, path: str, streams: list[str], rule: str, *, limit: int,
                    until: Any, snapshot_first: bool = True, on_diff: Any = None) -> tuple[BookSync, int]:
    """A client keeping a book with :class:`BookSync` over one WebSocket and REST, until update id ``until``
    (or until ``until(diff, sync)`` says so); it reconnects when the connection is lost.

    ``snapshot_first``: fetch the first snapshot before subscribing (it is then the recorded one, and the
    whole recording is checked against the venue's ``bookTicker``); else when the book asks for one.
    """
    rest = "/fapi/v1/depth" if rule == "usdm" else "/api/v3/depth"
    parser = FrameParser()
    sync = BookSync("BTCUSDT", rule)
    received = 0
    deadline = time.monotonic() + TIMEOUT
    async with httpx.AsyncClient(base_url=server.rest_url, timeout=TIMEOUT) as http:

        async def snapshot() -> DepthSnapshot:
            r = await http.get(rest, params={"symbol": "BTCUSDT", "limit": limit})
            assert r.status_code == 200, r.text
            return depth_snapshot_from_answer(r.json(), "BTCUSDT", limit)

        first = await snapshot() if snapshot_first else None
        url = f"{server.ws_url}{path}?streams={'/'.join(streams)}"
        done = False
        while not done and time.monotonic() < deadline:
            async with websockets.connect(url, max_size=None, close_timeout=2) as ws:
                try:
                    while time.monotonic() < deadline:
                        ev = parser.parse(await asyncio.wait_for(ws.recv(), TIMEOUT))
                        if type(ev) is DepthDiff:
                            received += 1
                            sync.on_diff(ev, 0)
                            if first is not None:
                                sync.on_snapshot(first, 0)
                                first = None
                            if on_diff is not None:
                                on_diff(ev, sync)
                            if (until(ev, sync) if callable(until) else ev.last_id >= until):
                                done = True
                                break
                        elif type(ev) is BookTicker:
                            sync.on_ticker(ev)
                        elif type(ev) is ServerShutdown:
                            break  # switch connections at once, as the ingestion does
                        if sync.wants_snapshot and first is None:
                            sync.on_snapshot(await snapshot(), 0)
                except ConnectionClosed:
                    pass
            if not done:
                sync.on_disconnect(0)
    assert not parser.malformed
    return sync, received


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 3 * TIMEOUT))


# ---- streams ---------------------------------------------------------------------------


def test_the_bundled_books_are_served_by_default() -> None:
    assert set(book_sample_files()) <= set(default_files())
    assert all(p.exists() for p in book_sample_files())


def test_depth_and_ticker_frames_are_the_recorded_ones_between_the_trades(serve, usdm_tape) -> None:
    server = serve(usdm_tape)
    depth, ticker = recorded(USDM_BOOK, "btcusdt@depth@0ms"), recorded(USDM_BOOK, "btcusdt@bookTicker")
    url = server.ws_url + "/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade"

    async def go() -> list[str]:
        async with websockets.connect(url, max_size=None, close_timeout=2) as ws:
            out: list[str] = []
            books = 0
            while books < len(depth) + len(ticker):
                text = await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert isinstance(text, str)
                out.append(text)
                books += '"@trade"' not in text and "@trade" not in text[:40]
            return out

    got = run(go())
    book_frames = [t for t in got if "@trade" not in t[:40]]
    # byte for byte the recorded lines, in the recording's order
    assert [t for t in book_frames if "@depth@0ms" in t[:40]] == depth
    assert [t for t in book_frames if "@bookTicker" in t[:40]] == ticker
    assert book_frames == [t for _, t in sorted(
        (r, t) for p in USDM_BOOK for r, t in read_frames(p) if t.startswith('{"stream"'))]
    # on the trades' timeline: a depth event comes after the trades before its time (up to the few ms
    # by which the recording's own order of book events disagrees with their times)
    last_trade = 0
    early = []
    for text in got:
        data = orjson.loads(text)["data"]
        if data["e"] == "trade":
            last_trade = data["T"]
        elif data["e"] == "depthUpdate":
            early.append(last_trade - data["E"])
    assert max(early) < 100 and sum(e > 0 for e in early) < len(early) / 10


@pytest.mark.slow
def test_raw_spot_depth_frames_are_the_recorded_events(serve, spot_tape) -> None:
    server = serve(spot_tape)
    depth = [orjson.loads(t)["data"] for t in recorded(SPOT_BOOK, "btcusdt@depth@100ms")]

    async def go() -> list[Any]:
        async with websockets.connect(server.ws_url + "/ws/btcusdt@depth@100ms", max_size=None,
                                      close_timeout=2) as ws:
            return [orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in depth]

    assert run(go()) == depth


def test_usdm_depth_100ms_merges_the_0ms_events_of_each_window(usdm_tape) -> None:
    book = usdm_tape.books[PERP]
    assert book.streams == ["btcusdt@depth@0ms", "btcusdt@bookTicker", "btcusdt@depth@100ms"]
    events = book.lap(0)
    fast = [orjson.loads(p) for r, p in zip(events.roles, events.payloads) if r == 0]
    slow = [orjson.loads(p) for r, p in zip(events.roles, events.payloads) if r == 2]
    assert len(slow) < len(fast)
    assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(slow))  # a chain of its own
    assert slow[0]["U"] == fast[0]["U"] and slow[-1]["u"] == fast[-1]["u"]
    assert len({e["E"] // 100 for e in slow}) == len(slow)


# ---- a client keeping a book -----------------------------------------------------------------


def test_usdm_client_book_matches_every_book_ticker(serve, usdm_tape) -> None:
    server = serve(usdm_tape)
    ref = truth(USDM_BOOK)
    sync, received = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"],
                                   "usdm", limit=1000, until=ref.diffs[-1].last_id))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0
    assert led.ticker_checks > 300
    assert received == sum(type(ev) is DepthDiff for _, ev in events(USDM_BOOK))


@pytest.mark.slow
def test_usdm_client_on_the_derived_100ms_stream_stays_in_sync(serve, usdm_tape) -> None:
    server = serve(usdm_tape)
    ref = truth(USDM_BOOK)
    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@100ms", "btcusdt@bookTicker"],
                            "usdm", limit=1000, until=ref.diffs[-1].last_id))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0 and led.ticker_checks > 100


@pytest.mark.slow
def test_spot_client_book_matches_book_tickers(serve, spot_tape) -> None:
    server = serve(spot_tape)
    ref = truth(SPOT_BOOK)
    # a bounded run: the first third of the recording (the whole one: 1,072 ids, see test_book.py)
    until = ref.diffs[len(ref.diffs) // 3].last_id
    sync, _ = run(keep_book(server, "/stream", ["btcusdt@depth@100ms", "btcusdt@bookTicker"], "spot",
                            limit=5000, until=until))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0
    assert led.ticker_checks > 300


# ---- REST depth -------------------------------------------------------------------------------


def test_rest_depth_is_the_reference_book_at_that_moment(serve, usdm_tape) -> None:
    server = serve(usdm_tape)
    ref = truth(USDM_BOOK)
    answers: list[dict[str, Any]] = []

    def fetch_mid_stream(diff: DepthDiff, sync: BookSync) -> None:
        if diff.last_id in (ref.diffs[300].last_id, ref.diffs[2000].last_id):
            r = httpx.get(server.rest_url + "/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000},
                          timeout=TIMEOUT)
            assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(20 * (len(answers) + 2))
            answers.append(r.json())

    run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms"], "usdm", limit=1000, until=ref.diffs[-1].last_id,
                  on_diff=fetch_mid_stream))
    assert len(answers) == 2
    for body in answers:
        assert set(body) == {"lastUpdateId", "E", "T", "bids", "asks"}
        reference = ref.snapshot(body["lastUpdateId"])
        assert [(float(p), float(q)) for p, q in body["bids"]] == reference.bids
        assert [(float(p), float(q)) for p, q in body["asks"]] == reference.asks
        assert all(len(p.partition(".")[2]) == 2 and len(q.partition(".")[2]) == 3 for p, q in body["bids"])
    # mid-stream answers are at or after what that client was sent (the replay's position)
    assert ref.diffs[300].last_id <= answers[0]["lastUpdateId"] < answers[1]["lastUpdateId"]


def test_rest_depth_weights_limits_and_errors(serve, spot_tape, usdm_tape) -> None:
    spot = serve(spot_tape)
    with httpx.Client(base_url=spot.rest_url, timeout=TIMEOUT) as http:
        r = http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "5"
        body = r.json()
        assert set(body) == {"lastUpdateId", "bids", "asks"} and len(body["bids"]) == len(body["asks"]) == 100
        assert body["lastUpdateId"] == truth(SPOT_BOOK).snap.last_update_id  # nothing served: the recorded one
        r = http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(5 + 250)
        assert len(r.json()["bids"]) == 1000  # the recorded snapshot's levels
        used = 5 + 250
        for limit, weight in ((1, 5), (101, 25), (1000, 50), (9999, 250)):  # above 5000: truncated to 5000
            r = http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": limit})
            used += weight
            assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(used)
            assert len(r.json()["asks"]) == min(limit, 1000)
        r = http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 0})
        assert r.status_code == 400 and r.json()["code"] == -1130
        assert http.get("/api/v3/depth", params={"symbol": "NOPEUSDT"}).json()["code"] == -1121
        assert http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "x": 1}).json()["code"] == -1104
    # at the end of the recording: levels beyond the recorded snapshot's range that diffs touched are in
    end = spot.server.books.answer("BTCUSDT", 5000, spot_tape.n, 0)
    assert len(end["bids"]) > 1000 and float(end["bids"][-1][0]) < truth(SPOT_BOOK).snap.bids[-1][0]
    perp = serve(usdm_tape)
    with httpx.Client(base_url=perp.rest_url, timeout=TIMEOUT) as http:
        r = http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5})
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "2" and len(r.json()["bids"]) == 5
        r = http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 7})
        assert r.status_code == 400 and r.json()["code"] == -1130
        perp.force_429(1)
        assert http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT"}).status_code == 429


def test_a_recording_without_snapshot_gives_no_book_but_its_diffs(serve, tmp_path: Path) -> None:
    lines = gzip.open(USDM_BOOK[0], "rt").read().splitlines(keepends=True)
    path = tmp_path / "usdm-btcusdt-nosnapshot.book.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(line for line in lines[:3000] if "lastUpdateId" not in line)
    trades = tmp_path / "usdm-btcusdt.trades.gz"
    with gzip.open(trades, "wt") as fh:
        fh.writelines(gzip.open(usdm_sample_files()[0], "rt").readlines()[:3000])
    tape = Tape([trades, path])
    server = serve(tape)
    r = httpx.get(server.rest_url + "/fapi/v1/depth", params={"symbol": "BTCUSDT"}, timeout=TIMEOUT)
    assert r.status_code == 400 and "no depth snapshot" in r.json()["msg"]

    async def first_diff() -> Any:
        async with websockets.connect(server.ws_url + "/public/ws/btcusdt@depth@0ms", close_timeout=2) as ws:
            return orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))

    assert run(first_diff())["e"] == "depthUpdate"


# ---- faults -----------------------------------------------------------------------------------


def test_dropped_diffs_show_as_gaps_and_the_client_resyncs(serve, usdm_tape) -> None:
    server = serve(usdm_tape, drop_depth=0.01, seed=3, loop=True)

    def resynced(diff: DepthDiff, sync: BookSync) -> bool:
        return sync.live and sync.ledger.resyncs >= 1 and sync.ledger.events > 100

    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"], "usdm",
                            limit=1000, until=resynced))
    dropped = server.stats["faults"]["drop_depth"]
    led = sync.ledger
    assert dropped >= 1 and 1 <= led.gaps <= dropped
    assert led.resyncs >= 1 and led.mismatches == led.crossed == 0


def test_stale_snapshots_are_seen_as_stale_and_fetched_again(serve, usdm_tape) -> None:
    # looping, so that the stream goes on until an answer fits, wherever the replay's position is
    server = serve(usdm_tape, stale_snapshot=0.5, seed=1, loop=True)

    def live_after_stale(diff: DepthDiff, sync: BookSync) -> bool:
        return sync.live and sync.ledger.stale_snapshots >= 1 and sync.ledger.events > 100

    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"], "usdm",
                            limit=1000, until=live_after_stale, snapshot_first=False))
    stale = server.stats["faults"]["stale_snapshot"]
    assert stale >= 1 and sync.ledger.stale_snapshots == stale
    assert sync.live and sync.ledger.mismatches == 0
    assert server.stats["depth_answers"] == sync.ledger.snapshots


@pytest.mark.slow
def test_dropped_connections_and_server_shutdowns_reach_depth_clients(serve, usdm_tape) -> None:
    server = serve(usdm_tape, loop=True)  # looping: the stream goes on after each reconnect
    seen = {"since": 0, "shutdowns": 0}

    def fault_then_done(diff: DepthDiff, sync: BookSync) -> bool:
        seen["since"] += 1
        led = sync.ledger
        if led.disconnects == 0 and seen["since"] == 300:
            assert server.drop_connections() == 1
        elif led.disconnects == 1 and seen["shutdowns"] == 0 and sync.live:
            seen["shutdowns"] = server.send_server_shutdown()
            assert seen["shutdowns"] == 1
        return led.disconnects == 2 and sync.live and led.events > 600

    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"], "usdm",
                            limit=1000, until=fault_then_done))
    faults = server.stats["faults"]
    assert faults["drop"] == 1 and faults["shutdown"] == 1
    led = sync.ledger
    # a reconnect joins the running clock: what was sent meanwhile is a gap, and the book resyncs
    assert led.disconnects == 2 and led.resyncs >= 1 and led.mismatches == 0 and sync.live


# ---- laps -------------------------------------------------------------------------------------


def test_a_book_kept_across_a_lap_boundary_sees_no_gap(serve, usdm_tape) -> None:
    server = serve(usdm_tape, loop=True)
    book = usdm_tape.books[PERP]
    ref = truth(USDM_BOOK)
    lap1 = book.id_span
    checks_at_boundary: list[int] = []

    def mark(diff: DepthDiff, sync: BookSync) -> None:
        if diff.last_id > ref.diffs[-1].last_id and not checks_at_boundary:
            checks_at_boundary.append(sync.ledger.ticker_checks)

    # into lap 1 (bounded): 400 events past the snapshot point of the lap
    until = ref.diffs[400].last_id
    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"], "usdm",
                            limit=1000, until=until + lap1, on_diff=mark))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0
    assert led.ticker_checks > checks_at_boundary[0]  # lap 1's tickers agree with the replay's book
    assert sync.book.update_id > ref.diffs[-1].last_id


def test_lap_prices_stay_distinct_ordered_and_near_the_scaled_price(spot_tape) -> None:
    book = spot_tape.books["BTCUSDT"]
    events = book.lap(1)
    assert events.roles[0] == 0 and events.anchors[0] == 0  # the synthetic event opens the lap
    mapping = book._price_map(1)
    scaled = [mapping[p] for p in sorted(mapping)]
    assert all(b > a for a, b in itertools.pairwise(scaled))  # one to one, in order: no level merges
    factor = book._factor(1) if book._factor else 1.0
    assert max(abs(m - p * factor) for p, m in mapping.items()) <= 3 * book.tick


@pytest.mark.slow
def test_a_spot_book_kept_over_three_laps_matches_every_book_ticker(serve, spot_tape) -> None:
    server = serve(spot_tape, loop=True)
    book = spot_tape.books["BTCUSDT"]
    ref = truth(SPOT_BOOK)
    sync, _ = run(keep_book(server, "/stream", ["btcusdt@depth@100ms", "btcusdt@bookTicker"], "spot", limit=5000,
                            until=ref.diffs[-1].last_id + 2 * book.id_span))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0
    assert led.ticker_checks == 3 * 1072  # every shared id of every lap


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
FULL = {
    "usdm-2024 BTCUSDT": ["usdm-2024/btcusdt_20240808.gz"],
    "mixed-2023 USD-M BTCUSDT": ["mixed-2023/usdm_btcusdt_20230404.dat.gz", "mixed-2023/usdm_btcusdt_20230405.dat.gz"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, files in FULL.items() if all((SHARED / f).exists() for f in files)])
def test_full_usdm_recordings_replayed_match_every_book_ticker(serve, name: str) -> None:
    files = [SHARED / f for f in FULL[name]]
    tape = Tape(files)
    server = serve(tape)
    ref = truth(files)
    sync, _ = run(keep_book(server, "/public/stream", ["btcusdt@depth@0ms", "btcusdt@bookTicker"], "usdm",
                            limit=1000, until=ref.diffs[-1].last_id))
    led = sync.ledger
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0 and led.ticker_checks > 300


@pytest.mark.slow
def test_the_replay_book_of_a_later_lap_is_the_same_however_it_is_reached(usdm_tape) -> None:
    walked, jumped = ServedBooks(usdm_tape, loop=True), ServedBooks(usdm_tape, loop=True)
    n = usdm_tape.n
    for pos in (n // 3, n - 1, n + 5, n + n // 2):
        walked.book(PERP, pos)
    a, b = walked.book(PERP, n + n // 2), jumped.book(PERP, n + n // 2)  # the second starts at lap 1
    assert a.update_id == b.update_id > last_u(USDM_BOOK) and a.side(True) == b.side(True) and a.side(False) == b.side(False)
