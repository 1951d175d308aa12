"""USD-M futures on the replay server: routed WebSocket paths, /fapi/v1 REST, market detection."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from quantify.replay.config import ReplayConfig
from quantify.replay.server import ReplayServer
from quantify.replay.tape import SPOT, USDM, Tape, detect_market
from quantify.replay.thread import ReplayThread
from quantify.venues.binance.recordings import sample_files, usdm_sample_files

TIMEOUT = 20.0
DATA = Path(__file__).parent.parent / "data"
MIXED_USDM = DATA / "mixed-2023-usdm_btcusdt_20230405.trades.gz"
SPOT_BTC_FIRST = 3735683259
USDM_BTC_FIRST, USDM_BTC_LAST = 5266583935, 5266605247


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def recorded(paths: list[Path], symbol: str) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        with gzip.open(path, "rt") as lines:
            for line in lines:
                data = orjson.loads(line.split(" ", 1)[1])["data"]
                if data["s"] == symbol:
                    out.append(data)
    return sorted(out, key=lambda e: e["t"])


async def collect(url: str, count: int, idle: float = 0.0) -> list[Any]:
    """The next ``count`` messages; with ``idle``, whatever arrives within ``idle`` seconds."""
    out = []
    async with websockets.connect(url, max_size=None, max_queue=None, close_timeout=2) as ws:
        try:
            while len(out) < count:
                msg = await (asyncio.wait_for(ws.recv(), idle) if idle else ws.recv())
                out.append(orjson.loads(msg))
        except TimeoutError:
            pass
    return out


@pytest.fixture(scope="module")
def both_tape() -> Tape:
    """The bundled spot sample and the bundled USD-M sample on one tape."""
    return Tape([*sample_files(), *usdm_sample_files()])


@pytest.fixture
def both(both_tape: Tape) -> Iterator[ReplayThread]:
    config = ReplayConfig(files=tuple(both_tape.files), speed=0)
    with ReplayThread(server=ReplayServer(config, tape=both_tape)) as thread:
        yield thread


def test_markets_are_detected_from_content_and_name(both_tape, tmp_path):
    assert all(both_tape.markets[p] == SPOT for p in sample_files())
    assert all(both_tape.markets[p] == USDM for p in usdm_sample_files())
    assert set(both_tape.symbols) == {"BTCUSDT", "ETHUSDT", "binance-usdm:BTCUSDT",
                                      "binance-usdm:ETHUSDT"}
    # a file whose trades carry neither X nor M is told by its name
    plain = b'1 {"stream":"btcusdt@trade","data":{"e":"trade","E":2,"T":2,"s":"BTCUSDT","t":7,' \
            b'"p":"1.0","q":"1.0","m":true}}\n'
    for name, venue in (("x_usdm.gz", USDM), ("x_futures.txt", USDM), ("x.txt", SPOT)):
        (tmp_path / name).write_bytes(plain)
        assert Tape([tmp_path / name]).markets[tmp_path / name] == venue
    # the explicit override wins
    forced = Tape([], usdm_files=[tmp_path / "x.txt"])
    assert set(forced.symbols) == {"binance-usdm:BTCUSDT"}
    assert detect_market("a_usdm.gz", {SPOT}) == SPOT  # content beats the name


def test_usdm_public_stream_delivers_exactly_the_recording(both):
    expected = recorded(usdm_sample_files(), "BTCUSDT")
    url = both.ws_url + "/public/stream?streams=btcusdt@trade"
    messages = run(collect(url, len(expected)))
    assert all(m["stream"] == "btcusdt@trade" for m in messages)
    assert [m["data"] for m in messages] == expected
    assert [m["data"]["t"] for m in messages] == list(range(USDM_BTC_FIRST, USDM_BTC_LAST + 1))
    stats = both.stats["trades_replayed"]
    assert stats["binance-usdm:BTCUSDT"] == len(expected)


def test_usdm_raw_ws_path_and_agg_trades(both):
    events = run(collect(both.ws_url + "/market/ws/ethusdt@aggTrade", 50))
    assert all(e["e"] == "aggTrade" and e["s"] == "ETHUSDT" and "M" not in e for e in events)
    assert events[0]["f"] == recorded(usdm_sample_files(), "ETHUSDT")[0]["t"]


def test_stream_on_the_wrong_path_delivers_nothing(both, caplog):
    with caplog.at_level(logging.WARNING, logger="quantify.replay.server"):
        got = run(collect(both.ws_url + "/market/stream?streams=btcusdt@trade", 5, idle=1.0))
    assert got == []
    assert any("belongs on /public/" in r.getMessage() for r in caplog.records)
    # depth on /public is accepted, not served yet
    assert run(collect(both.ws_url + "/public/ws/btcusdt@depth@100ms", 5, idle=0.5)) == []


def test_private_path_is_refused(both):
    with pytest.raises(InvalidStatus) as err:
        run(collect(both.ws_url + "/private/ws?listenKey=x", 1))
    assert err.value.response.status_code == 403


def test_spot_and_usdm_btcusdt_are_separate(both_tape):
    # Looping: at speed 0 the first client runs the clock past the end of the (shorter)
    # USD-M recording; the second client then joins the next loop.
    config = ReplayConfig(files=tuple(both_tape.files), speed=0, loop=True)
    with ReplayThread(server=ReplayServer(config, tape=both_tape)) as both:
        _check_separate(both)


def _check_separate(both: ReplayThread) -> None:
    spot = run(collect(both.ws_url + "/ws/btcusdt@trade", 10))
    usdm = run(collect(both.ws_url + "/public/ws/btcusdt@trade", 10))
    assert spot[0]["t"] == SPOT_BTC_FIRST and "M" in spot[0] and "X" not in spot[0]
    # (the second client joins the running clock, so it starts later in the recording)
    # (a later loop continues the ids past the recording's last one)
    assert usdm[0]["t"] >= USDM_BTC_FIRST and usdm[0]["X"] == "MARKET"
    rest = both.rest_url
    s = httpx.get(f"{rest}/api/v3/historicalTrades", params={"symbol": "BTCUSDT", "fromId": 0,
                                                              "limit": 1}).json()
    u = httpx.get(f"{rest}/fapi/v1/historicalTrades", params={"symbol": "BTCUSDT", "fromId": 0,
                                                               "limit": 1}).json()
    assert s[0]["id"] == SPOT_BTC_FIRST and s[0]["isBestMatch"] is True
    assert u[0]["id"] == USDM_BTC_FIRST and "isBestMatch" not in u[0]
    spot_info = httpx.get(f"{rest}/api/v3/exchangeInfo").json()
    usdm_info = httpx.get(f"{rest}/fapi/v1/exchangeInfo").json()
    assert [x["symbol"] for x in spot_info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    # XRPUSDT: the bundled funding history's symbol (ReplayConfig.funding_files), listed for it
    assert [x["symbol"] for x in usdm_info["symbols"]] == ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
    assert usdm_info["symbols"][0]["contractType"] == "PERPETUAL"
    assert usdm_info["rateLimits"][0]["limit"] == 2400


# ---- /fapi/v1 REST, sans I/O --------------------------------------------------------------

INSURANCE_ID, INSURANCE_T = 3535191080, 1680652874400


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def mixed_tape() -> Tape:
    """The 2023 USD-M BTCUSDT capture (one INSURANCE_FUND trade)."""
    return Tape([MIXED_USDM])


def fapi(tape: Tape, path: str, **params: Any) -> Any:
    from urllib.parse import urlencode

    from quantify.replay.fapi import UsdmRestApi

    api = UsdmRestApi(tape, clock=FakeClock())
    res = api.handle(f"/fapi/v1/{path}", urlencode(params), "1.2.3.4", tape.n, tape.last_time)
    assert res.status == 200, res.body
    return orjson.loads(res.body)


def test_mixed_2023_file_is_detected_as_usdm(mixed_tape):
    assert mixed_tape.markets[MIXED_USDM] == USDM
    assert list(mixed_tape.symbols) == ["binance-usdm:BTCUSDT"]


def test_historical_trades_page_by_from_id_and_skip_non_market(mixed_tape):
    events = recorded([MIXED_USDM], "BTCUSDT")
    market_ids = [e["t"] for e in events if e["X"] == "MARKET"]
    assert len(market_ids) == len(events) - 1
    got: list[int] = []
    from_id = events[0]["t"]
    while True:
        page = fapi(mixed_tape, "historicalTrades", symbol="BTCUSDT", fromId=from_id, limit=500)
        if not page:
            break
        assert len(page) <= 500 and "isBestMatch" not in page[0]
        got.extend(r["id"] for r in page)
        from_id = page[-1]["id"] + 1
    assert got == market_ids and INSURANCE_ID not in got
    # the default limit is 100, the maximum 500
    assert len(fapi(mixed_tape, "historicalTrades", symbol="BTCUSDT")) == 100
    assert len(fapi(mixed_tape, "historicalTrades", symbol="BTCUSDT", limit=9999)) == 500
    recent = fapi(mixed_tape, "trades", symbol="BTCUSDT", limit=1000)
    assert [r["id"] for r in recent] == market_ids[-1000:]


def test_agg_trades_page_by_from_id(mixed_tape):
    events = recorded([MIXED_USDM], "BTCUSDT")
    rows: list[dict[str, Any]] = []
    from_id = 0
    while True:
        page = fapi(mixed_tape, "aggTrades", symbol="BTCUSDT", fromId=from_id, limit=1000)
        if not page:
            break
        rows.extend(page)
        from_id = page[-1]["a"] + 1
    assert [r["a"] for r in rows] == list(range(rows[0]["a"], rows[0]["a"] + len(rows)))
    covered = [t for r in rows for t in range(r["f"], r["l"] + 1)]
    assert covered == [e["t"] for e in events if e["X"] == "MARKET"]
    assert all("M" not in r for r in rows)


def test_klines_leave_out_non_market_trades(mixed_tape):
    events = recorded([MIXED_USDM], "BTCUSDT")
    minute = INSURANCE_T // 60_000 * 60_000
    in_minute = [e for e in events if minute <= e["T"] < minute + 60_000]
    market = [e for e in in_minute if e["X"] == "MARKET"]
    assert len(market) == len(in_minute) - 1
    (bar,) = fapi(mixed_tape, "klines", symbol="BTCUSDT", interval="1m", startTime=minute,
                  limit=1)
    assert bar[0] == minute and bar[8] == len(market)
    from decimal import Decimal

    assert Decimal(bar[5]) == sum(Decimal(e["q"]) for e in market)
    assert bar[1] == market[0]["p"] and bar[4] == market[-1]["p"]


def test_fapi_weights_and_budget(mixed_tape):
    from quantify.replay.fapi import UsdmRestApi

    api = UsdmRestApi(mixed_tape, clock=FakeClock())
    used = [
        int(api.handle(path, query, "ip", 0, 0).headers["X-MBX-USED-WEIGHT-1M"])
        for path, query in [
            ("/fapi/v1/ping", ""), ("/fapi/v1/time", ""), ("/fapi/v1/exchangeInfo", ""),
            ("/fapi/v1/trades", "symbol=BTCUSDT"), ("/fapi/v1/historicalTrades", "symbol=BTCUSDT"),
            ("/fapi/v1/aggTrades", "symbol=BTCUSDT"),
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1m&limit=99"),
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1m&limit=100"),
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1m"),
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1m&limit=1500"),
        ]
    ]
    steps = [b - a for a, b in zip([0, *used], used)]
    assert steps == [1, 1, 1, 5, 20, 20, 1, 2, 5, 10]
    assert api.weight_limit == 2400
    assert api.handle("/fapi/v1/klines", "symbol=BTCUSDT&interval=1s", "ip", 0, 0).status == 400
    assert api.handle("/api/v3/ping", "", "ip", 0, 0).status == 404
    while (res := api.handle("/fapi/v1/aggTrades", "symbol=BTCUSDT", "ip", 0, 0)).status == 200:
        pass
    assert res.status == 429 and "2400" in orjson.loads(res.body)["msg"]


# ---- faults and Binance's own client ----------------------------------------------------


def test_faults_apply_to_usdm_connections(both_tape):
    # looping: the second connection joins after the first ran the clock past the USD-M recording
    config = ReplayConfig(files=tuple(both_tape.files), speed=0, loop=True, corrupt_fraction=0.5, seed=3)
    with ReplayThread(server=ReplayServer(config, tape=both_tape)) as server:
        url = server.ws_url + "/public/stream?streams=btcusdt@trade"
        frames = run(collect_raw(url, 200))
        bad = sum(1 for f in frames if not _is_trade(f))
        assert 50 < bad < 150
        assert server.stats["faults"]["corrupt"] >= bad

        async def dropped() -> bool:
            async with websockets.connect(url, max_queue=None, close_timeout=2) as ws:
                await ws.recv()
                server.drop_connections()
                try:
                    while True:
                        await ws.recv()
                except websockets.ConnectionClosed as exc:
                    return exc.rcvd is None  # no close frame: an abrupt drop
        assert run(dropped())
        assert server.stats["faults"]["drop"] >= 1


async def collect_raw(url: str, count: int) -> list[str | bytes]:
    async with websockets.connect(url, max_size=None, max_queue=None, close_timeout=2) as ws:
        return [await ws.recv() for _ in range(count)]


def _is_trade(frame: str | bytes) -> bool:
    try:
        data = orjson.loads(frame)["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False
    return type(data.get("t")) is int and type(data.get("p")) is str and data.get("m") in (True, False)
