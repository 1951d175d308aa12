"""Binance USD-M futures REST market data (``/fapi/v1/...``) over a replay tape, sans I/O.

:class:`UsdmRestApi` is :class:`~quantify.replay.rest.RestApi` with USD-M's
rules, over the tape's USD-M symbols (spot and USD-M ``BTCUSDT`` are
different instruments with separate id sequences):

- Endpoints ``ping``, ``time``, ``exchangeInfo`` (USD-M shape:
  ``contractType: PERPETUAL``, ``marginAsset``, ...), ``aggTrades``,
  ``historicalTrades``, ``trades``, ``klines``.
- Request weights and limits of Binance's USD-M documentation: ``ping``,
  ``time``, ``exchangeInfo`` 1; ``trades`` 5 (limit 500, at most 1000);
  ``historicalTrades`` 20 (limit 100, at most 500); ``aggTrades`` 20 (limit
  500, at most 1000); ``klines`` 1, 2, 5 or 10 for a limit in [1, 100),
  [100, 500), [500, 1000], above 1000 (limit 500, at most 1500). The budget
  is 2400 per minute per IP, counted apart from the spot budget (on Binance
  they are different hosts).
- Only ``MARKET`` trades are served by ``trades``/``historicalTrades`` and
  counted in klines and aggregates: insurance-fund and ADL trades (``X`` not
  ``MARKET``) are left out, as on Binance; the WebSocket ``@trade`` stream
  carries them as recorded.
- Klines have no ``1s`` interval.
- ``depth`` (the replay's own book, :mod:`quantify.replay.depth`): limits 5,
  10, 20, 50, 100, 500 (default), 1000, weights 2, 2, 2, 2, 5, 10, 20; any
  other limit is error -1130. The answer carries ``E`` and ``T``.
- Perpetual data (:mod:`quantify.replay.fapi_perp`): ``fundingRate`` (real
  settlements from funding files, synthetic ones for the tape's symbols),
  ``premiumIndex`` (the mark events at the replay position; weight 10
  without ``symbol``), synthetic ``openInterest`` and
  ``/futures/data/openInterestHist`` (the last 30 days of the replay clock).
  The weights are the client's table (``USDM_WEIGHTS``); ``fundingRate``
  is also limited to 500 requests and ``openInterestHist`` to 1,000 per 5
  minutes per IP, as on Binance (HTTP 429, ``Retry-After``). ``exchangeInfo``
  also lists the symbols known from funding files only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson

from quantify.model.timeframes import KLINE_INTERVALS
from quantify.replay._decimals import format_units
from quantify.replay._params import check_known
from quantify.replay.fapi_perp import FUTURES_DATA_PREFIX, PerpAnswers
from quantify.replay.rest import RestApi, RestResponse
from quantify.replay.tape import USDM, SymbolTape
from quantify.venues.binance.rest import (
    FUNDING_REQUESTS_PER_5MIN,
    OPEN_INTEREST_HIST_REQUESTS_PER_5MIN,
    USDM_API,
    USDM_WEIGHTS,
    BinanceApi,
)

__all__ = ["FAPI_WEIGHTS", "REQUESTS_PER_5MIN", "USDM_WEIGHT_LIMIT", "UsdmRestApi"]

#: Request weight a client IP may use per minute on USD-M futures.
USDM_WEIGHT_LIMIT = USDM_API.weight_limit

#: Request weights of the USD-M endpoints served (``klines`` varies with ``limit``): the venue's own table.
FAPI_WEIGHTS = USDM_WEIGHTS

#: Endpoints Binance limits by requests per 5 minutes per IP (beside, or instead of, their weight).
REQUESTS_PER_5MIN = {"/fapi/v1/fundingRate": FUNDING_REQUESTS_PER_5MIN,
                     "/futures/data/openInterestHist": OPEN_INTEREST_HIST_REQUESTS_PER_5MIN}
_FIVE_MINUTES = 300.0

#: The perpetual endpoints, answered by :class:`~quantify.replay.fapi_perp.PerpAnswers`.
_PERP_ENDPOINTS = ("fundingRate", "premiumIndex", "openInterest", "openInterestHist")

#: Far-future delivery date Binance gives perpetual contracts (2100-12-25).
_PERPETUAL_DELIVERY = 4133404800000


def _kline_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


class UsdmRestApi(RestApi):
    """Answer Binance USD-M futures ``/fapi/v1`` market-data requests from a tape.

    Parameters are those of :class:`~quantify.replay.rest.RestApi`; the
    default ``weight_limit`` is USD-M's 2400. Pass the spot API's ``forced``
    counters so that forced 429s count over both markets.
    """

    venue: ClassVar[str] = USDM
    prefix: ClassVar[str] = "/fapi/v1/"
    weights: ClassVar[Mapping[str, int]] = FAPI_WEIGHTS
    limits: ClassVar[Mapping[str, tuple[int, int]]] = {
        "trades": (500, 1000),
        "historicalTrades": (100, 500),
        "aggTrades": (500, 1000),
        "klines": (500, 1500),
    }
    intervals: ClassVar[tuple[str, ...]] = tuple(i for i in KLINE_INTERVALS if i != "1s")
    api: ClassVar[BinanceApi] = USDM_API
    depth_default: ClassVar[int] = 500

    def __init__(self, *args: Any, weight_limit: int = USDM_WEIGHT_LIMIT,
                 funding_rows: Iterable[Mapping[str, Any]] = (), **kwargs: Any) -> None:
        super().__init__(*args, weight_limit=weight_limit, **kwargs)
        #: The perpetual endpoints (funding, premium index, open interest).
        self.perp = PerpAnswers(self.tape, funding_rows, loop=self.loop)
        self._counted: dict[tuple[str, str], tuple[int, int]] = {}  # (ip, path) -> (5-minute window, requests)

    def handle(self, path: str, query: str, client: str, pos: int, now_ms: int) -> RestResponse:
        """:meth:`RestApi.handle`, and HTTP 429 past an endpoint's requests per 5 minutes
        (``fundingRate`` 500, ``openInterestHist`` 1,000), with ``Retry-After`` to the next window."""
        limit = REQUESTS_PER_5MIN.get(path)
        if limit is None:
            return super().handle(path, query, client, pos, now_ms)
        now = self.clock()
        window = int(now // _FIVE_MINUTES)
        w_no, count = self._counted.get((client, path), (window, 0))
        if w_no != window:
            count = 0
        if count >= limit:
            self.requests += 1
            self.rejected_429 += 1
            retry = max(1, int((window + 1) * _FIVE_MINUTES - now + 0.999))
            msg = (f"Too many requests; current limit of IP({client}) is {limit} requests per 5 minutes "
                   f"for {path}.")
            return RestResponse(429, {"Retry-After": str(retry)}, orjson.dumps({"code": -1003, "msg": msg}))
        res = super().handle(path, query, client, pos, now_ms)
        if res.status != 429:
            self._counted[(client, path)] = (window, count + 1)
        return res

    @classmethod
    def serves(cls, path: str) -> bool:
        """Whether ``path`` is a USD-M REST path (``/fapi/v1/...``, ``/futures/data/...``)."""
        return path.startswith((cls.prefix, FUTURES_DATA_PREFIX))

    def _weight(self, path: str, query: str) -> int | None:
        if path == "/fapi/v1/premiumIndex":  # 10 for every symbol at once
            symbols = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "symbol"]
            return self.weights[path] if symbols else 10
        if path != "/fapi/v1/klines":
            return super()._weight(path, query)
        limit = 500
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "limit" and value.isdigit() and len(value) < 20:
                limit = int(value)
        return _kline_weight(limit)

    def _route(self, path: str, params: dict[str, str], pos: int, now_ms: int) -> Any:
        endpoint = path.rpartition("/")[2]
        if endpoint in _PERP_ENDPOINTS:
            return self.perp.answer(endpoint, params, now_ms)
        return super()._route(path, params, pos, now_ms)

    # ---- trades: MARKET trades only ----------------------------------------------

    def _trade_row(self, sym: SymbolTape, k: int) -> dict[str, Any]:
        row = super()._trade_row(sym, k)
        row.pop("isBestMatch", None)
        return row

    def _trade_rows(self, sym: SymbolTape, edge: int, limit: int, *, backwards: bool,
                    end: int | None = None) -> list[dict[str, Any]]:
        n = sym.n
        out: list[dict[str, Any]] = []
        if backwards:
            k = edge - 1
            while k >= 0 and len(out) < limit:
                if sym.market[k % n]:
                    out.append(self._trade_row(sym, k))
                k -= 1
            out.reverse()
            return out
        assert end is not None
        k = edge
        while k < end and len(out) < limit:
            if sym.market[k % n]:
                out.append(self._trade_row(sym, k))
            k += 1
        return out

    # ---- exchangeInfo ----------------------------------------------------------

    def _exchange_info(self, params: dict[str, str], now_ms: int) -> Any:
        check_known(params, ())
        syms = [self.tape.symbols[k] for k in sorted(self._keys())]
        assets = sorted({a for s in syms for a in self._split_symbol(s.symbol)[1:] if a})
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.weight_limit},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "0"}
                       for a in assets],
            "symbols": sorted([*(self._symbol_info(s) for s in syms), *self._funding_only_info()],
                              key=lambda info: info["symbol"]),
        }

    def _funding_only_info(self) -> list[dict[str, Any]]:
        """Symbols known from funding files only: listed with XRPUSDT's increments on Binance
        (tick 0.0001, step 0.1), onboarded at their first settlement."""
        return [self._listing(name, 4, 1, "0.0001", "0.1", self.perp.file_funding[name][0]["fundingTime"])
                for name in self.perp.funding_only()]

    def _symbol_info(self, sym: SymbolTape, *, permission_sets: bool = True) -> dict[str, Any]:
        """USD-M symbols carry no permission sets (``permission_sets`` is spot's)."""
        tick, step = self._increments(sym)
        return self._listing(sym.symbol, sym.price_scale, sym.qty_scale, tick, step, sym.times[0])

    def _listing(self, symbol: str, ps: int, qs: int, tick: str, step: str, onboard: int) -> dict[str, Any]:
        base, quote = self._split_symbol(symbol)
        return {
            "symbol": symbol,
            "pair": symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": _PERPETUAL_DELIVERY,
            "onboardDate": onboard,
            "status": "TRADING",
            "baseAsset": base,
            "quoteAsset": quote,
            "marginAsset": quote,
            "pricePrecision": ps,
            "quantityPrecision": qs,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick,
                 "maxPrice": format_units(10 ** (ps + 6), ps, ps), "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step,
                 "maxQty": format_units(1000 * 10**qs, qs, qs), "stepSize": step},
                {"filterType": "MARKET_LOT_SIZE", "minQty": step,
                 "maxQty": format_units(100 * 10**qs, qs, qs), "stepSize": step},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }
