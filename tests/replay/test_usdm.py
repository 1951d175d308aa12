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

from quantify.feed.recordings import sample_files
from quantify.replay.config import ReplayConfig, usdm_sample_files
from quantify.replay.server import ReplayServer
from quantify.replay.tape import SPOT, USDM, Tape, detect_market
from quantify.replay.thread import ReplayThread

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
        for line in gzip.open(path, "rt"):
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


def test_usdm_market_stream_delivers_exactly_the_recording(both):
    expected = recorded(usdm_sample_files(), "BTCUSDT")
    url = both.ws_url + "/market/stream?streams=btcusdt@trade"
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
        got = run(collect(both.ws_url + "/public/stream?streams=btcusdt@trade", 5, idle=1.0))
    assert got == []
    assert any("belongs on /market/" in r.getMessage() for r in caplog.records)
    # depth on /public is accepted, not served yet
    assert run(collect(both.ws_url + "/public/ws/btcusdt@depth@100ms", 5, idle=0.5)) == []


def test_private_path_is_refused(both):
    with pytest.raises(InvalidStatus) as err:
        run(collect(both.ws_url + "/private/ws?listenKey=x", 1))
    assert err.value.response.status_code == 403


def test_spot_and_usdm_btcusdt_are_separate(both):
    spot = run(collect(both.ws_url + "/ws/btcusdt@trade", 10))
    usdm = run(collect(both.ws_url + "/market/ws/btcusdt@trade", 10))
    assert spot[0]["t"] == SPOT_BTC_FIRST and "M" in spot[0] and "X" not in spot[0]
    # (the second client joins the running clock, so it starts later in the recording)
    assert USDM_BTC_FIRST <= usdm[0]["t"] <= USDM_BTC_LAST and usdm[0]["X"] == "MARKET"
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
    assert [x["symbol"] for x in usdm_info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert usdm_info["symbols"][0]["contractType"] == "PERPETUAL"
    assert usdm_info["rateLimits"][0]["limit"] == 2400
