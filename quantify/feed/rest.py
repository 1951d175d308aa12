"""Binance REST client for market data: trades by id, within the weight budget.

An asyncio client over ``httpx`` (the transport is injectable, so tests run
against the replay server or an in-memory transport). It

- keeps to Binance's request-weight budget (6,000 per minute per IP): it
  tracks the weight of its own requests and reads ``X-MBX-USED-WEIGHT-1M``
  from every response, and waits for the window to roll over before a
  request would exceed the budget;
- on ``429``/``418`` waits the server's ``Retry-After`` before trying again
  (ignoring it is how IPs get banned), or gives up at once when it asks for
  more than :data:`MAX_RETRY_AFTER` (an IP ban lasts minutes to days);
- never follows redirects (a redirect off the configured host is an error);
- translates failures into :class:`~quantify.exceptions.RestError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from quantify.exceptions import RestError
from quantify.feed.parse import Trade

__all__ = ["DEFAULT_REST_URL", "MAX_RETRY_AFTER", "WEIGHTS", "BinanceRest", "RestConfig"]

logger = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://api.binance.com"

#: Longest ``Retry-After`` (seconds) a request waits out; beyond it, it fails at once.
MAX_RETRY_AFTER = 300.0

#: Request weights of the endpoints QuantiFy calls (Binance spot API docs).
WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/aggTrades": 4,
    "/api/v3/historicalTrades": 25,
    "/api/v3/trades": 25,
    "/api/v3/klines": 2,
}


@dataclass(frozen=True)
class RestConfig:
    """Settings of :class:`BinanceRest`."""

    base_url: str = DEFAULT_REST_URL
    weight_limit: int = 6000
    #: Keep this fraction of the budget free for other clients on the same IP.
    weight_headroom: float = 0.2
    timeout: float = 10.0
    max_retries: int = 8


class BinanceRest:
    """Asynchronous Binance market-data REST client.

    Parameters
    ----------
    config : RestConfig
        Base URL and budget.
    transport : httpx.AsyncBaseTransport, optional
        Replaces the network (tests).
    """

    def __init__(self, config: RestConfig = RestConfig(), *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._client = httpx.AsyncClient(
            base_url=config.base_url, timeout=config.timeout, follow_redirects=False,
            transport=transport, headers={"User-Agent": "quantify"},
        )
        self.used_weight = 0
        self._window = int(time.time() // 60)
        self.requests = 0
        self.rate_limited = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _await_budget(self, weight: int) -> None:
        budget = self.config.weight_limit * (1 - self.config.weight_headroom)
        while True:
            window = int(time.time() // 60)
            if window != self._window:
                self._window, self.used_weight = window, 0
            if self.used_weight + weight <= budget:
                self.used_weight += weight
                return
            wait = 60 - time.time() % 60 + 0.05
            logger.info("REST weight budget used (%d); waiting %.1f s", self.used_weight, wait)
            await asyncio.sleep(wait)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` with ``params``; return the decoded JSON body.

        Retries on 429/418 (after ``Retry-After``), 5xx and connection errors,
        up to ``max_retries`` times; raises :class:`RestError` otherwise.
        """
        weight = WEIGHTS.get(path, 1)
        delay = 0.5
        for attempt in range(self.config.max_retries + 1):
            await self._await_budget(weight)
            self.requests += 1
            try:
                response = await self._client.get(path, params=params)
            except httpx.HTTPError as exc:
                if attempt == self.config.max_retries:
                    raise RestError(f"GET {path} failed: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            used = response.headers.get("x-mbx-used-weight-1m")
            if used and used.isdigit():
                self.used_weight = max(self.used_weight, int(used))
            if response.status_code in (429, 418):
                self.rate_limited += 1
                retry_after = _retry_after(response.headers.get("retry-after"))
                if attempt == self.config.max_retries or retry_after > MAX_RETRY_AFTER:
                    raise RestError(f"GET {path}: rate limited (HTTP {response.status_code}, "
                                    f"Retry-After {retry_after:.0f} s)", status=response.status_code,
                                    retry_after=retry_after)
                logger.warning("REST %s answered %d; waiting %.0f s (Retry-After)", path,
                               response.status_code, retry_after)
                await asyncio.sleep(retry_after)
                continue
            if response.status_code >= 500:
                if attempt == self.config.max_retries:
                    raise RestError(f"GET {path}: HTTP {response.status_code}", status=response.status_code)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            if response.is_redirect:
                raise RestError(
                    f"GET {path}: refusing to follow a redirect to {response.headers.get('location')!r}",
                    status=response.status_code,
                )
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                raise RestError(f"GET {path}: body is not JSON", status=response.status_code) from exc
            if response.status_code >= 400:
                code = body.get("code") if isinstance(body, dict) else None
                msg = body.get("msg") if isinstance(body, dict) else response.text[:200]
                raise RestError(f"GET {path}: {msg} (HTTP {response.status_code}, code {code})",
                                status=response.status_code, code=code)
            return body
        raise AssertionError("unreachable")

    async def trades_from(self, symbol: str, from_id: int, *, aggregate: bool, limit: int = 1000) -> list[Trade]:
        """Up to ``limit`` trades of ``symbol`` with id ≥ ``from_id``.

        ``aggregate`` selects ``/api/v3/aggTrades`` (ids are aggregate ids)
        instead of ``/api/v3/historicalTrades``.
        """
        params = {"symbol": symbol, "fromId": from_id, "limit": limit}
        if aggregate:
            rows = await self.get("/api/v3/aggTrades", params)
            return [
                Trade(symbol, r["a"], float(r["p"]), float(r["q"]), r["T"], r["m"], r["f"], r["l"], True, r["T"])
                for r in rows
            ]
        rows = await self.get("/api/v3/historicalTrades", params)
        return [
            Trade(symbol, r["id"], float(r["price"]), float(r["qty"]), r["time"], r["isBuyerMaker"],
                  r["id"], r["id"], True, r["time"])
            for r in rows
        ]


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date; RFC 9110).

    Missing or unreadable: 1. Negative or past: 0. It may be ``inf``: the
    caller refuses anything above :data:`MAX_RETRY_AFTER` rather than sleep.
    """
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 1.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return 1.0 if math.isnan(seconds) else max(seconds, 0.0)
