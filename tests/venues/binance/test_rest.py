"""The REST client's handling of ``Retry-After`` (on an in-memory transport; no network)."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from quantify.exceptions import RestError
from quantify.venues.binance.rest import MAX_RETRY_AFTER, BinanceRest, RestConfig, _retry_after


@pytest.mark.parametrize("value, seconds", [
    (None, 1.0), ("", 1.0), ("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", 1.0), ("nan", 1.0),
    ("inf", float("inf")), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_retry_after_values(value: str | None, seconds: float) -> None:
    assert _retry_after(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 <= _retry_after(later) <= 91


# ids fixed: a test id holding the date would differ between the parallel workers' collections
@pytest.mark.parametrize("value", ["inf", "1e9", str(MAX_RETRY_AFTER + 1),
                                   email.utils.formatdate(time.time() + 86_400, usegmt=True)],
                         ids=["inf", "1e9", "over-the-limit", "a-day-later-http-date"])
def test_a_ban_longer_than_the_limit_fails_at_once(value: str) -> None:
    """Before, ``inf`` slept forever, a date raised ValueError and ``1e9`` slept 30 years."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(418, headers={"retry-after": value}, json={"code": -1003, "msg": "banned"})

    async def main() -> None:
        async with BinanceRest(RestConfig(), transport=httpx.MockTransport(handler)) as rest:
            with pytest.raises(RestError, match="rate limited") as info:
                await asyncio.wait_for(rest.get("/api/v3/time"), 5)
            assert info.value.status == 418 and info.value.retry_after > MAX_RETRY_AFTER

    asyncio.run(main())
    assert len(calls) == 1
