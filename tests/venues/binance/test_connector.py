"""Binance's own client library (binance-connector) consumes the replay server."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import orjson
import pytest
import websockets

pytest.importorskip("binance")

from binance.spot import Spot
from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient

TIMEOUT = 20.0


async def drain(url: str, count: int) -> None:
    """Read ``count`` frames with a fast client (the replay clock follows it at speed 0)."""
    async with websockets.connect(url, max_queue=None, close_timeout=2) as ws:
        for _ in range(count):
            await ws.recv()


def test_websocket_stream_client_receives_trades(replay):
    # speed 20, not 0: websocket-client reads all buffered frames when it closes
    server = replay(speed=20)
    messages: list[dict] = []
    enough = threading.Event()

    def on_message(_client: object, message: str) -> None:
        if len(messages) <= 100:
            messages.append(orjson.loads(message))
        else:
            enough.set()

    client = SpotWebsocketStreamClient(stream_url=server.ws_url, on_message=on_message)
    try:
        client.trade(symbol="btcusdt")
        assert enough.wait(TIMEOUT)
    finally:
        client.stop()
    assert messages[0] == {"result": None, "id": messages[0]["id"]}
    trades = [m for m in messages if m.get("e") == "trade"]
    assert [t["t"] for t in trades[:100]] == list(range(3735683259, 3735683359))
    assert all(t["s"] == "BTCUSDT" for t in trades)


def test_combined_websocket_stream_client(replay):
    server = replay(speed=20)
    messages: list[dict] = []
    enough = threading.Event()

    def on_message(_client: object, message: str) -> None:
        messages.append(orjson.loads(message))
        if len(messages) >= 50:
            enough.set()

    client = SpotWebsocketStreamClient(stream_url=server.ws_url, on_message=on_message,
                                       is_combined=True)
    try:
        client.agg_trade(symbol="ethusdt")
        assert enough.wait(TIMEOUT)
    finally:
        client.stop()
    data = [m for m in messages if "stream" in m]
    assert data and all(m["stream"] == "ethusdt@aggTrade" for m in data)
    assert all(m["data"]["e"] == "aggTrade" for m in data)


def test_spot_rest_client(replay):
    server = replay(speed=0)
    # let the replay run to the end so that REST has trades to serve
    asyncio.run(asyncio.wait_for(drain(server.ws_url + "/ws/btcusdt@trade", 19_904), TIMEOUT))
    rest = Spot(base_url=server.rest_url, timeout=TIMEOUT)
    assert rest.ping() == {}
    assert abs(rest.time()["serverTime"] - 1723161905800) < 1000
    aggs = rest.agg_trades("BTCUSDT")
    assert len(aggs) == 500 and aggs[-1]["l"] == 3735703162
    assert all(set(a) == {"a", "p", "q", "f", "l", "T", "m", "M"} for a in aggs)
    bars = rest.klines("BTCUSDT", "1m")
    assert len(bars) == 12 and all(len(b) == 12 for b in bars)
    assert sum(b[8] for b in bars) == 19_904
    assert sum(Decimal(b[5]) for b in bars) > 0
    info = rest.exchange_info(symbol="BTCUSDT")
    assert info["symbols"][0]["status"] == "TRADING"
    page = rest.agg_trades("BTCUSDT", fromId=aggs[0]["a"], limit=3)
    assert [a["a"] for a in page] == [aggs[0]["a"], aggs[0]["a"] + 1, aggs[0]["a"] + 2]


def test_spot_rest_client_sees_binance_errors(replay):
    from binance.error import ClientError

    server = replay(speed=0)
    rest = Spot(base_url=server.rest_url, timeout=TIMEOUT)
    with pytest.raises(ClientError) as info:
        rest.klines("NOPEUSDT", "1m")
    assert info.value.status_code == 400 and info.value.error_code == -1121
    server.force_429(1)
    with pytest.raises(ClientError) as info:
        rest.ping()
    assert info.value.status_code == 429 and info.value.error_code == -1003
    time.sleep(0)  # the next request goes through
    assert rest.ping() == {}
