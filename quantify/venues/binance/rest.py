"""Binance REST client for market data (spot and USD-M): trades by id, within the weight budget.

An asyncio client over ``httpx`` (the transport is injectable, so tests run
against the replay server or an in-memory transport). It

- keeps to the API's request-weight budget (spot: 6,000 per minute per IP;
  USD-M futures: 2,400): it tracks the weight of its own requests and reads
  ``X-MBX-USED-WEIGHT-1M`` from every response, and waits for the window to
  roll over before a request would exceed the budget;
- on ``429``/``418`` waits the server's ``Retry-After`` before trying again
  (ignoring it is how IPs get banned), or gives up at once when it asks for
  more than :data:`MAX_RETRY_AFTER` (an IP ban lasts minutes to days);
- never follows redirects (a redirect off the configured host is an error);
- gives a host that does not answer ``connect_timeout`` seconds (4), then
  retries with capped, jittered backoff; tells an ``observer`` after every
  attempt whether the host answered (the ingestion service shows it in
  ``status``, and says at once when it cannot reach the host);
- translates failures into :class:`~quantify.exceptions.RestError`;
- fetches USD-M perpetual data: funding history (paced within its own
  500-requests-per-5-minutes limit), premium index, open interest now and
  its 30-day history (:meth:`BinanceRest.funding_rate` and the methods after it);
- lists the venue's symbols (:meth:`BinanceRest.listed_symbols`, from
  ``exchangeInfo``) so that a mistyped symbol is refused at start.

Spot and USD-M futures serve the same market-data endpoints under different
prefixes (``/api/v3``, ``/fapi/v1``) with different weights: a
:class:`BinanceApi` (:data:`SPOT_API`, :data:`USDM_API`) holds them.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from quantify.exceptions import RestError
from quantify.model.book import DepthSnapshot
from quantify.model.perp import FundingSettlement, MarkPrice, OpenInterest
from quantify.model.trades import Trade
from quantify.venues.base import describe_error
from quantify.venues.binance.parse import depth_snapshot_from_answer
from quantify.venues.binance.perp_parse import (
    funding_from_rows,
    open_interest_from_answer,
    open_interest_hist_from_rows,
    premium_index_from_answer,
)

__all__ = [
    "DEFAULT_REST_URL", "FUNDING_REQUESTS_PER_5MIN", "MAX_RETRY_AFTER", "OPEN_INTEREST_PERIODS", "SPOT_API", "USDM_API", "USDM_WEIGHTS", "WEIGHTS",
    "BinanceApi", "BinanceRest", "RestConfig", "RestObserver",
]

logger = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://api.binance.com"

#: Longest ``Retry-After`` (seconds) a request waits out; beyond it, it fails at once.
MAX_RETRY_AFTER = 300.0

#: Called after every attempt: ``None`` when the host answered (any HTTP status),
#: else the transport error (refused, unresolvable, TLS, timeout).
RestObserver = Callable[[BaseException | None], None]

#: Request weights of the spot endpoints QuantiFy calls (Binance spot API docs).
WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/aggTrades": 4,
    "/api/v3/historicalTrades": 25,
    "/api/v3/trades": 25,
    "/api/v3/klines": 2,
}

#: Request weights of the USD-M futures endpoints QuantiFy calls. Binance's
#: USD-M market-data docs (developers.binance.com, derivatives /
#: usds-margined-futures / market-data / rest-api): "Compressed/Aggregate
#: Trades List, GET /fapi/v1/aggTrades, Request Weight 20"; Old Trades
#: Lookup (``historicalTrades``) 20; Recent Trades (``trades``) 5;
#: ``exchangeInfo``, ``time``, ``ping`` 1; ``klines`` by ``limit``: 1 below
#: 100, 2 below 500, 5 up to 1,000 (QuantiFy asks for 1,000), 10 above.
USDM_WEIGHTS = {
    "/fapi/v1/ping": 1,
    "/fapi/v1/time": 1,
    "/fapi/v1/exchangeInfo": 1,
    "/fapi/v1/aggTrades": 20,
    "/fapi/v1/historicalTrades": 20,
    "/fapi/v1/trades": 5,
    "/fapi/v1/klines": 5,
    # Perpetual data (USD-M market-data docs): premiumIndex 1 with a symbol (10 without);
    # openInterest 1; openInterestHist 0 (limited to 1,000 requests per 5 minutes per IP
    # instead); fundingRate is not weighed but shares 500 requests per 5 minutes per IP with
    # fundingInfo (FUNDING_REQUESTS_PER_5MIN): counted as 1 here and paced by that limit too.
    "/fapi/v1/premiumIndex": 1,
    "/fapi/v1/openInterest": 1,
    "/futures/data/openInterestHist": 0,
    "/fapi/v1/fundingRate": 1,
}

#: ``/fapi/v1/fundingRate`` (with ``fundingInfo``): 500 requests per 5 minutes per IP.
FUNDING_REQUESTS_PER_5MIN = 500
#: ``/futures/data/openInterestHist``: 1,000 requests per 5 minutes per IP; only the last 30 days are kept.
OPEN_INTEREST_HIST_REQUESTS_PER_5MIN = 1000
OPEN_INTEREST_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


#: GET /api/v3/depth weight by ``limit`` (spot docs, "Order book": 1-100: 5, 101-500: 25,
#: 501-1000: 50, 1001-5000: 250), as (largest limit, weight).
SPOT_DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
#: GET /fapi/v1/depth weight by ``limit`` (USD-M docs, "Order Book": 5, 10, 20, 50: 2; 100: 5;
#: 500: 10; 1000: 20); USD-M accepts only these limits.
USDM_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))
USDM_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


@dataclass(frozen=True)
class BinanceApi:
    """One Binance market-data API: path prefix, endpoint weights, weight budget per minute.

    ``limits`` holds the largest ``limit`` of endpoints that accept fewer than
    1,000 rows per request (USD-M ``historicalTrades``: 500).
    ``info_by_symbols``: ``exchangeInfo`` takes ``symbols=["A","B"]`` (spot;
    USD-M always answers every symbol).
    """

    prefix: str
    weights: Mapping[str, int] = field(hash=False)
    weight_limit: int
    limits: Mapping[str, int] = field(default_factory=dict, hash=False)
    info_by_symbols: bool = False
    #: ``depth`` weight by limit: (largest limit, weight), ascending.
    depth_weights: tuple[tuple[int, int], ...] = SPOT_DEPTH_WEIGHTS
    #: The limits ``depth`` accepts (empty: any from 1 to the largest of ``depth_weights``).
    depth_limits: tuple[int, ...] = ()

    def depth_weight(self, limit: int) -> int:
        """The request weight of a depth snapshot of ``limit`` levels; ``ValueError`` for a limit refused."""
        if self.depth_limits and limit not in self.depth_limits:
            raise ValueError(f"{self.prefix}/depth takes limit in {', '.join(map(str, self.depth_limits))}, "
                             f"not {limit!r}")
        for largest, weight in self.depth_weights:
            if 1 <= limit <= largest:
                return weight
        raise ValueError(f"{self.prefix}/depth takes limit 1 to {self.depth_weights[-1][0]}, not {limit!r}")

    def max_limit(self, endpoint: str) -> int:
        """The most rows one request of ``endpoint`` (``"historicalTrades"``) returns."""
        return self.limits.get(endpoint, 1000)

    def path(self, endpoint: str) -> str:
        """``"aggTrades"`` -> ``"/fapi/v1/aggTrades"``."""
        return f"{self.prefix}/{endpoint}"

    def weight(self, endpoint: str) -> int:
        """Request weight of ``endpoint`` (a name such as ``historicalTrades``, or a full path)."""
        path = endpoint if endpoint.startswith("/") else self.path(endpoint)
        return self.weights.get(path, 1)


#: Binance spot (``https://api.binance.com``).
SPOT_API = BinanceApi("/api/v3", WEIGHTS, 6000, info_by_symbols=True)
#: Binance USD-M futures (``https://fapi.binance.com``): its own budget, 2,400 per minute.
#: Old Trades Lookup returns at most 500 trades a request ("limit: Default 100; max 500").
USDM_API = BinanceApi("/fapi/v1", USDM_WEIGHTS, 2400, {"historicalTrades": 500},
                      depth_weights=USDM_DEPTH_WEIGHTS, depth_limits=USDM_DEPTH_LIMITS)


@dataclass(frozen=True)
class RestConfig:
    """Settings of :class:`BinanceRest`.

    ``weight_limit`` ``None`` means the API's own budget (``api.weight_limit``).
    """

    base_url: str = DEFAULT_REST_URL
    weight_limit: int | None = None
    #: Keep this fraction of the budget free for other clients on the same IP.
    weight_headroom: float = 0.2
    timeout: float = 10.0
    #: Seconds to wait for a TCP (and TLS) connection: an unreachable host is known this soon.
    connect_timeout: float = 4.0
    max_retries: int = 8
    api: BinanceApi = SPOT_API

    @property
    def budget(self) -> int:
        """Weight per minute this client may use (before headroom)."""
        return self.api.weight_limit if self.weight_limit is None else self.weight_limit


class BinanceRest:
    """Asynchronous Binance market-data REST client.

    Parameters
    ----------
    config : RestConfig
        Base URL and budget.
    transport : httpx.AsyncBaseTransport, optional
        Replaces the network (tests).
    observer : callable, optional
        Told after every attempt whether the host answered (:data:`RestObserver`).
    """

    def __init__(self, config: RestConfig = RestConfig(), *, transport: httpx.AsyncBaseTransport | None = None,
                 observer: RestObserver | None = None) -> None:
        self.config = config
        self.api = config.api
        self.observer = observer
        self._client = httpx.AsyncClient(
            base_url=config.base_url, follow_redirects=False, transport=transport,
            timeout=httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)),
            headers={"User-Agent": "quantify"},
        )
        self.used_weight = 0
        self._window = int(time.time() // 60)
        self.requests = 0
        self.rate_limited = 0
        #: Request weight of every attempt so far (retries included), across budget windows.
        self.weight_spent = 0
        self._paced_times: dict[str, collections.deque[float]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _await_budget(self, weight: int) -> None:
        budget = self.config.budget * (1 - self.config.weight_headroom)
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

    def _observe(self, error: BaseException | None) -> None:
        if self.observer is not None:
            self.observer(error)

    async def get(self, path: str, params: dict[str, Any] | None = None, *, retries: int | None = None,
                  weight: int | None = None) -> Any:
        """GET ``path`` with ``params``; return the decoded JSON body.

        Retries on 429/418 (after ``Retry-After``), 5xx and connection errors,
        up to ``retries`` times (default ``max_retries``), waiting a capped,
        jittered, doubling delay; raises :class:`RestError` otherwise. Every
        wait is a plain ``asyncio.sleep``: cancelling the caller stops it at once.
        """
        if weight is None:
            weight = self.api.weight(path)
        max_retries = self.config.max_retries if retries is None else retries
        delay = 0.5
        for attempt in range(max_retries + 1):
            await self._await_budget(weight)
            self.requests += 1
            self.weight_spent += weight
            try:
                response = await self._client.get(path, params=params)
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TransportError):
                    self._observe(exc)
                if attempt == max_retries:
                    raise RestError(f"GET {self.config.base_url}{path} failed: {describe_error(exc)}") from exc
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 30)
                continue
            self._observe(None)
            used = response.headers.get("x-mbx-used-weight-1m")
            if used and used.isdigit():
                self.used_weight = max(self.used_weight, int(used))
            if response.status_code in (429, 418):
                self.rate_limited += 1
                retry_after = _retry_after(response.headers.get("retry-after"))
                if attempt == max_retries or retry_after > MAX_RETRY_AFTER:
                    raise RestError(f"GET {path}: rate limited (HTTP {response.status_code}, "
                                    f"Retry-After {retry_after:.0f} s)", status=response.status_code,
                                    retry_after=retry_after)
                logger.warning("REST %s answered %d; waiting %.0f s (Retry-After)", path,
                               response.status_code, retry_after)
                await asyncio.sleep(retry_after)
                continue
            if response.status_code >= 500:
                if attempt == max_retries:
                    raise RestError(f"GET {path}: HTTP {response.status_code}", status=response.status_code)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
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
        """Up to ``limit`` trades of ``symbol`` with id >= ``from_id``.

        ``aggregate`` selects ``aggTrades`` (ids are aggregate ids) instead of
        ``historicalTrades``. USD-M REST rows carry no trade type (``X``):
        their trades come back with ``is_market`` True unless a row says otherwise.
        """
        params = {"symbol": symbol, "fromId": from_id, "limit": limit}
        if aggregate:
            return _agg_trades(symbol, await self.get(self.api.path("aggTrades"), params))
        rows = await self.get(self.api.path("historicalTrades"), params)
        return [
            Trade(symbol, r["id"], float(r["price"]), float(r["qty"]), r["time"], r["isBuyerMaker"],
                  r["id"], r["id"], r.get("X", "MARKET") == "MARKET", r["time"])
            for r in rows
        ]

    async def agg_trades_between(self, symbol: str, start_ms: int, end_ms: int, *, limit: int = 1000) -> list[Trade]:
        """Aggregate trades of ``symbol`` with ``start_ms <= T <= end_ms`` (Binance: at most 1 h apart)."""
        rows = await self.get(self.api.path("aggTrades"),
                              {"symbol": symbol, "startTime": start_ms, "endTime": end_ms, "limit": limit})
        return _agg_trades(symbol, rows)

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int, *,
                     limit: int = 1000) -> list[list[Any]]:
        """Kline rows (Binance's arrays: open time, o, h, l, c, volume, close time, quote volume, trades, ...)."""
        return await self.get(self.api.path("klines"), {
            "symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms, "limit": limit,
        })

    async def depth(self, symbol: str, limit: int = 1000, *, retries: int | None = None) -> DepthSnapshot:
        """A depth snapshot of ``symbol``, ``limit`` levels a side (weight by limit: :meth:`BinanceApi.depth_weight`)."""
        weight = self.api.depth_weight(limit)
        body = await self.get(self.api.path("depth"), {"symbol": symbol, "limit": limit}, retries=retries,
                              weight=weight)
        try:
            return depth_snapshot_from_answer(body, symbol, limit)
        except (KeyError, TypeError, ValueError) as exc:
            raise RestError(f"GET {self.api.path('depth')}: not a depth snapshot ({exc})") from exc

    def _require_perpetuals(self, endpoint: str) -> None:
        if self.api.prefix != USDM_API.prefix:
            raise ValueError(f"{endpoint} is a USD-M futures endpoint; {self.config.base_url} "
                             f"speaks {self.api.prefix}")

    async def _paced(self, path: str, per_5min: int) -> None:
        """Wait so that requests to ``path`` stay within ``per_5min`` per rolling 5 minutes."""
        sent = self._paced_times.setdefault(path, collections.deque())
        now = time.monotonic()
        while sent and now - sent[0] > 300:
            sent.popleft()
        if len(sent) >= per_5min:
            wait = 300 - (now - sent[0]) + 0.05
            logger.info("REST %s: %d requests in 5 minutes; waiting %.1f s", path, len(sent), wait)
            await asyncio.sleep(wait)
        sent.append(time.monotonic())

    async def funding_rate(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None,
                           limit: int = 1000, *, retries: int | None = None) -> list[FundingSettlement]:
        """Funding settlements of a USD-M ``symbol`` from ``start_ms`` (inclusive), ascending, at most ``limit``.

        Without ``start_ms``/``end_ms`` Binance answers the latest ``limit``
        settlements; with more than ``limit`` in the range, the first ``limit``
        from ``start_ms``. Paced within 500 requests per 5 minutes.
        """
        self._require_perpetuals("fundingRate")
        if not 1 <= limit <= 1000:
            raise ValueError(f"fundingRate takes limit 1 to 1000, not {limit!r}")
        path = self.api.path("fundingRate")
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        await self._paced(path, FUNDING_REQUESTS_PER_5MIN)
        body = await self.get(path, params, retries=retries)
        try:
            return funding_from_rows(body, symbol)
        except (KeyError, TypeError, ValueError) as exc:
            raise RestError(f"GET {path}: not a fundingRate answer ({exc})") from exc

    async def premium_index(self, symbol: str, *, retries: int | None = None) -> MarkPrice:
        """Mark price, index price and funding of a USD-M ``symbol`` now (``/fapi/v1/premiumIndex``)."""
        self._require_perpetuals("premiumIndex")
        path = self.api.path("premiumIndex")
        body = await self.get(path, {"symbol": symbol}, retries=retries)
        try:
            return premium_index_from_answer(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise RestError(f"GET {path}: not a premiumIndex answer ({exc})") from exc

    async def open_interest(self, symbol: str, *, retries: int | None = None) -> OpenInterest:
        """Open interest of a USD-M ``symbol`` now, in contracts (``/fapi/v1/openInterest``)."""
        self._require_perpetuals("openInterest")
        path = self.api.path("openInterest")
        body = await self.get(path, {"symbol": symbol}, retries=retries)
        try:
            return open_interest_from_answer(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise RestError(f"GET {path}: not an openInterest answer ({exc})") from exc

    async def open_interest_hist(self, symbol: str, period: str = "5m", start_ms: int | None = None,
                                 end_ms: int | None = None, limit: int = 500, *,
                                 retries: int | None = None) -> list[OpenInterest]:
        """Open interest and its value every ``period`` (``/futures/data/openInterestHist``).

        Binance keeps only the last 30 days: older history must have been
        polled and stored while it was there.
        """
        self._require_perpetuals("openInterestHist")
        if period not in OPEN_INTEREST_PERIODS:
            raise ValueError(f"period must be one of {', '.join(OPEN_INTEREST_PERIODS)}, not {period!r}")
        if not 1 <= limit <= 500:
            raise ValueError(f"openInterestHist takes limit 1 to 500, not {limit!r}")
        path = "/futures/data/openInterestHist"
        params: dict[str, Any] = {"symbol": symbol, "period": period, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        await self._paced(path, OPEN_INTEREST_HIST_REQUESTS_PER_5MIN)
        body = await self.get(path, params, retries=retries)
        try:
            return open_interest_hist_from_rows(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise RestError(f"GET {path}: not an openInterestHist answer ({exc})") from exc

    async def server_time(self, *, retries: int | None = None) -> int:
        """The exchange's clock, ms since the epoch."""
        return int((await self.get(self.api.path("time"), retries=retries))["serverTime"])

    async def exchange_info(self, symbol: str | None = None) -> dict[str, Any]:
        """The ``exchangeInfo`` document (of one symbol if given)."""
        return await self.get(self.api.path("exchangeInfo"), {"symbol": symbol} if symbol else None)

    async def listed_symbols(self, symbols: Sequence[str] = (), *, retries: int | None = None) -> frozenset[str]:
        """Symbols the venue lists: all of ``symbols`` if it lists them all, else every listed symbol.

        Spot asks ``exchangeInfo?symbols=[...]`` first (weight 20): when
        every symbol is listed that one small answer suffices; an unknown one
        makes Binance answer ``-1121 Invalid symbol`` without saying which,
        and the full list (weight 20, without permission sets) is fetched
        to tell. USD-M answers every symbol at once (weight 1).
        """
        path = self.api.path("exchangeInfo")
        if symbols and self.api.info_by_symbols:
            query = "[" + ",".join(f'"{s}"' for s in symbols) + "]"
            try:
                body = await self.get(path, {"symbols": query}, retries=retries)
            except RestError as exc:
                if exc.code != -1121:
                    raise
            else:
                return frozenset(_symbol_names(body))
        params = {"showPermissionSets": "false"} if self.api.info_by_symbols else None
        return frozenset(_symbol_names(await self.get(path, params, retries=retries)))


def _symbol_names(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        raise RestError("exchangeInfo: no symbol list in the answer")
    return [str(s["symbol"]) for s in body["symbols"] if isinstance(s, dict) and "symbol" in s]




def _agg_trades(symbol: str, rows: list[dict[str, Any]]) -> list[Trade]:
    return [
        Trade(symbol, r["a"], float(r["p"]), float(r["q"]), r["T"], r["m"], r["f"], r["l"], True, r["T"])
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
