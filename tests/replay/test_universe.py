"""The synthetic universe (:mod:`quantify.replay.universe`) and the replay's connection limit per IP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from quantify.replay.tape import Tape
from quantify.replay.universe import ID_SHIFT, synthetic_symbol, universe_frames

TIMEOUT = 20.0


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture(scope="module")
def tape() -> Tape:
    return Tape((), frames=universe_frames(3, seconds=20))


def test_names_are_marked_synthetic_and_sized_to_the_universe() -> None:
    assert synthetic_symbol(0, 3) == "SYN001USDT"
    assert synthetic_symbol(299, 300) == "SYN300USDT"
    assert synthetic_symbol(0, 1200) == "SYN0001USDT"
    with pytest.raises(ValueError, match="n must be"):
        universe_frames(0)


def test_each_instrument_is_the_recording_shifted(tape: Tape) -> None:
    assert list(tape.symbols) == ["SYN001USDT", "SYN002USDT", "SYN003USDT"]
    assert all(s.synthetic for s in tape.symbols.values())
    first, third = tape.symbols["SYN001USDT"], tape.symbols["SYN003USDT"]
    assert first.n == third.n > 100
    assert third.ids == [t + 2 * ID_SHIFT for t in first.ids]
    assert third.times == [t + 2 for t in first.times]
    assert [p - q for p, q in zip(third.price_units, first.price_units)] == [2 * 10**first.price_scale] * first.n
    assert third.qtys == first.qtys
    # every instrument has its book, snapshot included, shifted like its trades
    assert set(tape.books) == set(tape.symbols)
    snap1, snap3 = tape.books["SYN001USDT"].snapshot, tape.books["SYN003USDT"].snapshot
    assert snap1 is not None and snap3 is not None
    assert snap3.last_update_id == snap1.last_update_id + 2 * ID_SHIFT


def test_served_streams_rest_depth_and_exchange_info(replay) -> None:
    server = replay(speed=0, synthetic_universe=2, universe_seconds=20)
    streams = "syn002usdt@trade/syn002usdt@bookTicker/syn002usdt@depth@100ms"

    async def read() -> list[dict[str, Any]]:
        async with websockets.connect(server.ws_url + "/stream?streams=" + streams, max_size=None,
                                      max_queue=None, close_timeout=2) as ws:
            return [orjson.loads(await ws.recv()) for _ in range(300)]

    messages = run(read())
    kinds = {m["stream"] for m in messages}
    assert kinds == set(streams.split("/"))
    assert {m["data"]["s"] for m in messages} == {"SYN002USDT"}
    info = httpx.get(server.rest_url + "/api/v3/exchangeInfo").json()
    assert [(s["symbol"], s["synthetic"]) for s in info["symbols"]] == [("SYN001USDT", True), ("SYN002USDT", True)]
    depth = httpx.get(server.rest_url + "/api/v3/depth", params={"symbol": "SYN002USDT", "limit": 5})
    assert depth.status_code == 200 and len(depth.json()["bids"]) == 5
    trades = httpx.get(server.rest_url + "/api/v3/historicalTrades", params={"symbol": "SYN002USDT"}).json()
    assert trades and all(ID_SHIFT < t["id"] < 2 * ID_SHIFT + 4 * 10**9 for t in trades)
    assert server.server.stats["synthetic_universe"] == 2
    assert "SYNTHETIC universe of 2 instruments" in server.server.describe_symbols()


def test_connections_past_the_limit_per_ip_get_429_with_retry_after(replay) -> None:
    server = replay(speed=0, max_connections_per_5_minutes=3)

    async def open_four() -> int:
        for _ in range(3):
            async with websockets.connect(server.ws_url + "/ws/btcusdt@trade", close_timeout=2):
                pass
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(server.ws_url + "/ws/btcusdt@trade", close_timeout=2):
                pass
        response = info.value.response
        assert 250 <= int(response.headers["Retry-After"]) <= 301
        return response.status_code

    assert run(open_four()) == 429
    assert server.server.stats["connections_rejected"] == 1
