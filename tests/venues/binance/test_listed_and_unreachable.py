"""The REST client's symbol list (exchangeInfo), its errors in words, and its reachability observer."""

from __future__ import annotations

import asyncio
import socket

import httpx
import orjson
import pytest

from quantify.exceptions import RestError
from quantify.venues.base import describe_error
from quantify.venues.binance import SPOT, USDM

LISTED = ["BTCUSDT", "ETHUSDT", "BTCUSDC"]


def _exchange(requests: list[httpx.Request]) -> httpx.MockTransport:
    """A Binance-like exchangeInfo: ``symbols=[...]`` with an unknown one is -1121, as on Binance."""

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        asked = request.url.params.get("symbols")
        names = LISTED if asked is None else orjson.loads(asked)
        if any(n not in LISTED for n in names):
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        return httpx.Response(200, json={"timezone": "UTC", "serverTime": 1,
                                          "symbols": [{"symbol": n, "status": "TRADING"} for n in names]})

    return httpx.MockTransport(handle)


def _listed(venue, symbols, requests):
    async def go():
        async with venue.rest("http://exchange.test", transport=_exchange(requests)) as rest:
            return await rest.listed_symbols(symbols, retries=0)

    return asyncio.run(go())


def test_spot_asks_for_the_symbols_then_for_everything_when_one_is_unknown() -> None:
    requests: list[httpx.Request] = []
    assert _listed(SPOT, ["BTCUSDT", "ETHUSDT"], requests) == {"BTCUSDT", "ETHUSDT"}
    assert [r.url.params.get("symbols") for r in requests] == ['["BTCUSDT","ETHUSDT"]']
    requests.clear()
    assert _listed(SPOT, ["BTCUSDX"], requests) == set(LISTED)
    assert [dict(r.url.params) for r in requests] == [{"symbols": '["BTCUSDX"]'}, {"showPermissionSets": "false"}]


def test_usdm_lists_everything_in_one_request() -> None:
    requests: list[httpx.Request] = []
    assert _listed(USDM, ["BTCUSDT"], requests) == set(LISTED)
    assert [(r.url.path, dict(r.url.params)) for r in requests] == [("/fapi/v1/exchangeInfo", {})]


def test_errors_in_words() -> None:
    refused = OSError("All connection attempts failed")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert describe_error(httpx.ConnectError("All connection attempts failed")) == "All connection attempts failed"
    wrapped = httpx.ConnectError("All connection attempts failed")
    wrapped.__cause__ = refused
    assert describe_error(wrapped) == "connection refused"
    assert describe_error(socket.gaierror(-2, "Name or service not known")) == \
        "cannot resolve the host name (Name or service not known)"
    assert describe_error(TimeoutError("timed out during opening handshake")) == \
        "no answer in time (timed out during opening handshake)"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "api.binance.invalid"])
def test_an_unreachable_host_is_observed_at_the_first_attempt_and_named(host: str) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        base = f"http://{host.format(port=closed.getsockname()[1])}"
        seen: list[BaseException | None] = []

        async def go() -> None:
            async with SPOT.rest(base, observer=seen.append) as rest:
                await rest.server_time(retries=1)

        with pytest.raises(RestError) as err:
            asyncio.run(go())
    assert len(seen) == 2 and all(isinstance(e, httpx.TransportError) for e in seen)
    expected = "connection refused" if "127.0.0.1" in host else "cannot resolve the host name"
    assert expected in describe_error(seen[0])
    assert err.value.status == 0 and base in str(err.value) and expected in str(err.value)
