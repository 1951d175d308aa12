"""Binance's public REST market-data endpoints over a replay tape, sans I/O.

:class:`RestApi` answers spot ``GET /api/v3/...`` requests given the path, the
query string, the client's address and the replay position; the replay
server moves the bytes. It serves only trades that have already been
replayed, like a live exchange, and applies Binance's request-weight budget
and error bodies. Its subclass :class:`~quantify.replay.fapi.UsdmRestApi`
answers USD-M futures ``/fapi/v1/...`` over the USD-M symbols of the same tape.

Notes
-----
Where Binance's documentation leaves a rule open, this module picks one and
says so:

- ``klines``: bars with ``openTime >= startTime`` and ``openTime <= endTime``;
  ``limit`` above 1000 is clamped to 1000 (Binance clamps too), below 1 is
  error -1130. Bars run from the symbol's first trade to the bar holding the
  replay clock; a bar without trades is flat at the previous close.
- ``aggTrades``: ``fromId`` may be combined with ``startTime``/``endTime``
  (the later bound wins); ``startTime`` alone means ``[startTime,
  startTime + 1 h]``, ``endTime`` alone ``[endTime - 1 h, endTime]``.
- ``depth``: the replay's own book at the replay position
  (:mod:`quantify.replay.depth`); ``limit`` 1 to 5000 (default 100; above
  5000 clamped, as Binance truncates), weight 5, 25, 50 or 250 for a limit up
  to 100, 500, 1000, 5000. A recording without a snapshot gets error -1000
  (HTTP 400) saying its book cannot be known.
- Unknown query parameters are error -1104, as on Binance's spot API.
- The weight window is a fixed minute (``weight_window`` seconds) per client
  IP; a rejected request costs no weight.

Parameter validation (Binance's error codes) is in :mod:`quantify.replay._params`,
kline bar boundaries and rows in :mod:`quantify.replay._klines`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qsl

import numpy as np
import orjson

from quantify.model.timeframes import KLINE_INTERVALS
from quantify.replay._decimals import format_units, tick_units
from quantify.replay._klines import KlineUnits, kline_next, kline_open, kline_opens, kline_rows
from quantify.replay._params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadRequest,
    check_known,
    parse_limit,
    parse_long,
    parse_query,
    symbol_name,
)
from quantify.replay.depth import BookUnknown, ServedBooks
from quantify.replay.tape import SPOT, SymbolTape, Tape
from quantify.venues.binance.rest import SPOT_API, BinanceApi
from quantify.venues.binance.rest import WEIGHTS as ENDPOINT_WEIGHTS

__all__ = [
    "DEFAULT_WEIGHT_LIMIT",
    "ENDPOINT_WEIGHTS",
    "RestApi",
    "RestResponse",
    "kline_open",
]

#: Request weight a client IP may use per minute (Binance spot: 6000).
#: ``ENDPOINT_WEIGHTS`` is the client's table: one source for both sides.
DEFAULT_WEIGHT_LIMIT = 6000

_HOUR = 3_600_000
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "DAI")


class RestResponse(NamedTuple):
    """An HTTP response: status, extra headers, JSON body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


class ForcedFaults:
    """Forced-429 counters, shared by the spot and USD-M APIs of one server."""

    def __init__(self) -> None:
        self.pending = 0
        self.rejected = 0


class RestApi:
    """Answer Binance REST market-data requests from a :class:`Tape`.

    Parameters
    ----------
    tape : Tape
        The recording being replayed.
    loop : bool
        Whether the replay repeats the tape (ids and times shift per lap).
    weight_limit : int
        Request weight per client IP per window; above it, HTTP 429.
    weight_window : float
        Length of the weight window in seconds (Binance: 60).
    clock : callable
        Wall clock in seconds (for the weight windows), injectable for tests.
    """

    #: Venue whose symbols are served, and the path prefix of its endpoints.
    venue: ClassVar[str] = SPOT
    prefix: ClassVar[str] = "/api/v3/"
    #: Endpoint path -> request weight.
    weights: ClassVar[Mapping[str, int]] = ENDPOINT_WEIGHTS
    #: ``limit`` per endpoint name: (default, maximum).
    limits: ClassVar[Mapping[str, tuple[int, int]]] = {}
    intervals: ClassVar[tuple[str, ...]] = tuple(KLINE_INTERVALS)
    #: The venue's API description (``depth`` weights and limits).
    api: ClassVar[BinanceApi] = SPOT_API
    #: ``depth``'s default ``limit``.
    depth_default: ClassVar[int] = 100

    def __init__(
        self, tape: Tape, *, loop: bool = False, weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        weight_window: float = 60.0, clock: Callable[[], float] = time.time,
        forced: ForcedFaults | None = None, books: ServedBooks | None = None,
    ) -> None:
        if weight_limit < 1:
            raise ValueError(f"weight_limit must be >= 1, got {weight_limit!r}")
        if weight_window <= 0:
            raise ValueError(f"weight_window must be > 0, got {weight_window!r}")
        self.tape = tape
        self.loop = loop
        self.weight_limit = weight_limit
        self.weight_window = weight_window
        self.clock = clock
        self._forced = forced or ForcedFaults()
        #: The replay's own books (``depth``); shared by the spot and USD-M APIs of a server.
        self.books = books or ServedBooks(tape, loop=loop)
        self.requests = 0
        self.rejected_429 = 0  # over the weight budget
        self._weights: dict[str, tuple[int, int]] = {}  # ip -> (window number, used)
        self._agg_times = {
            s.key: [s.times[f] for f in s.agg_first] for s in tape.symbols.values()
        }
        self._kline_units: dict[str, KlineUnits] = {}  # symbol key -> arrays, on first use

    @property
    def forced_429(self) -> int:
        """Requests still to be answered with a forced HTTP 429 (shared by both markets)."""
        return self._forced.pending

    @forced_429.setter
    def forced_429(self, count: int) -> None:
        self._forced.pending = count

    @property
    def forced_rejected(self) -> int:
        """Requests answered with a forced HTTP 429 so far."""
        return self._forced.rejected

    def _weight(self, path: str, query: str) -> int | None:
        """Request weight of ``path`` (None: not an endpoint of this API)."""
        if path == self.prefix + "depth":
            return self._depth_weight(query)
        return self.weights.get(path)

    def _depth_weight(self, query: str) -> int:
        limit = self.depth_default
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "limit" and value.isdigit() and len(value) < 20:
                limit = int(value)
        if not self.api.depth_limits:
            limit = min(max(limit, 1), self.api.depth_weights[-1][0])
        try:
            return self.api.depth_weight(limit)
        except ValueError:  # a refused limit costs the default's weight (and gets -1130)
            return self.api.depth_weight(self.depth_default)

    # ---- entry point -----------------------------------------------------------

    def handle(self, path: str, query: str, client: str, pos: int, now_ms: int) -> RestResponse:
        """Answer ``GET path?query`` from ``client`` with ``pos`` slots replayed.

        ``now_ms`` is the replay clock (served by ``/api/v3/time``; the last
        kline is the one holding it). Never raises on any input.
        """
        self.requests += 1
        now = self.clock()
        window = int(now // self.weight_window)
        w_no, used = self._weights.get(client, (window, 0))
        if w_no != window:
            used = 0
        weight = self._weight(path, query)
        if weight is None:
            return RestResponse(
                404, {"X-MBX-USED-WEIGHT-1M": str(used)}, b'{"code":-1,"msg":"Not found."}'
            )
        retry = max(1, int((window + 1) * self.weight_window - now + 0.999))
        if self._forced.pending > 0:
            self._forced.pending -= 1
            self._forced.rejected += 1
            return self._too_many(client, used, 1)
        if used + weight > self.weight_limit:
            self.rejected_429 += 1
            self._weights[client] = (window, used)
            return self._too_many(client, used, retry)
        used += weight
        self._weights[client] = (window, used)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)}
        try:
            params = parse_query(query)
            body: Any = self._route(path, params, pos, now_ms)
        except BadRequest as exc:
            return RestResponse(400, headers, orjson.dumps({"code": exc.code, "msg": exc.msg}))
        return RestResponse(200, headers, orjson.dumps(body))

    def _too_many(self, client: str, used: int, retry: int) -> RestResponse:
        msg = (
            f"Too many requests; current limit of IP({client}) is {self.weight_limit} "
            "requests per minute. Please use the websocket for live updates to avoid "
            "polling the API."
        )
        headers = {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used),
                   "Retry-After": str(retry)}
        return RestResponse(429, headers, orjson.dumps({"code": -1003, "msg": msg}))

    # ---- parameters ------------------------------------------------------------

    def _limit(self, params: dict[str, str], endpoint: str = "") -> int:
        default, maximum = self.limits.get(endpoint, (DEFAULT_LIMIT, MAX_LIMIT))
        return parse_limit(params, default, maximum)

    def _symbol(self, params: dict[str, str]) -> SymbolTape:
        name = symbol_name(params)
        sym = self.tape.symbol(name, self.venue)
        if sym is None:
            raise BadRequest(-1121, "Invalid symbol.")
        return sym

    # ---- routing ---------------------------------------------------------------

    def _route(self, path: str, params: dict[str, str], pos: int, now_ms: int) -> Any:
        endpoint = path.removeprefix(self.prefix)
        if endpoint == "ping":
            check_known(params, ())
            return {}
        if endpoint == "time":
            check_known(params, ())
            return {"serverTime": now_ms}
        if endpoint == "exchangeInfo":
            return self._exchange_info(params, now_ms)
        if endpoint == "aggTrades":
            return self._agg_trades(params, pos)
        if endpoint == "historicalTrades":
            return self._historical_trades(params, pos)
        if endpoint == "trades":
            check_known(params, ("symbol", "limit"))
            sym = self._symbol(params)
            limit = self._limit(params, "trades")
            end = self.tape.replayed_trades(sym, pos)
            return self._trade_rows(sym, end, limit, backwards=True)
        if endpoint == "klines":
            return self._klines(params, pos, now_ms)
        if endpoint == "depth":
            return self._depth(params, pos, now_ms)
        raise AssertionError(path)  # pragma: no cover - self.weights lists every path

    # ---- depth -----------------------------------------------------------------

    def _depth(self, params: dict[str, str], pos: int, now_ms: int) -> Any:
        """The replay's own book at the replay position (:mod:`quantify.replay.depth`)."""
        check_known(params, ("symbol", "limit"))
        name = symbol_name(params)
        key = name if self.venue == SPOT else f"{self.venue}:{name}"
        if self.tape.symbol(name, self.venue) is None and key not in self.tape.books:
            raise BadRequest(-1121, "Invalid symbol.")
        limits = self.api.depth_limits
        if limits:
            limit = parse_long(params, "limit")
            limit = self.depth_default if limit is None else limit
            if limit not in limits:
                raise BadRequest(-1130, "Data sent for parameter 'limit' is not valid.")
        else:
            limit = parse_limit(params, self.depth_default, self.api.depth_weights[-1][0])
        try:
            return self.books.answer(key, limit, pos, now_ms)
        except BookUnknown as exc:
            raise BadRequest(-1000, str(exc)) from None

    # ---- exchangeInfo ----------------------------------------------------------

    def _exchange_info(self, params: dict[str, str], now_ms: int) -> Any:
        check_known(params, ("symbol", "symbols", "permissions", "showPermissionSets",
                                   "symbolStatus"))
        names: list[str] | None = None
        if "symbol" in params:
            names = [self._symbol(params).symbol]
        elif "symbols" in params:
            try:
                listed = orjson.loads(params["symbols"])
            except orjson.JSONDecodeError:
                listed = None
            if type(listed) is not list or not listed or not all(type(x) is str for x in listed):
                raise BadRequest(-1100, "Illegal characters found in parameter 'symbols'; "
                                  "legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\")*)]$'.")
            for name in listed:
                if self.tape.symbol(name) is None:
                    raise BadRequest(-1121, "Invalid symbol.")
            names = listed
        syms = [self.tape.symbols[n] for n in (names or sorted(self._keys()))]
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.weight_limit},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s, permission_sets=params.get("showPermissionSets") != "false")
                        for s in syms],
        }

    def _keys(self) -> list[str]:
        """Tape keys of this API's venue."""
        return [k for k, s in self.tape.symbols.items() if s.venue == self.venue]

    @staticmethod
    def _split_symbol(symbol: str) -> tuple[str, str]:
        for q in _QUOTES:
            if symbol.endswith(q) and len(symbol) > len(q):
                return symbol[: -len(q)], q
        return symbol, ""

    @staticmethod
    def _increments(sym: SymbolTape) -> tuple[str, str]:
        """Tick and step size: the finest increments seen in the recording (looping laps
        round their scaled prices to this tick)."""
        ps, qs = sym.price_scale, sym.qty_scale
        return (format_units(sym.lap_prices.tick, ps, ps),
                format_units(tick_units(sym.qtys, qs), qs, qs))

    def _symbol_info(self, sym: SymbolTape, *, permission_sets: bool = True) -> dict[str, Any]:
        base, quote = self._split_symbol(sym.symbol)
        ps, qs = sym.price_scale, sym.qty_scale
        tick, step = self._increments(sym)
        info: dict[str, Any] = {
            "symbol": sym.symbol,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT_LIMIT"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick,
                 "maxPrice": format_units(10 ** (ps + 6), ps, ps), "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step,
                 "maxQty": format_units(9000 * 10**qs, qs, qs), "stepSize": step},
            ],
            "permissions": [],
        }
        if permission_sets:  # ``showPermissionSets=false`` leaves them out, as on Binance
            info["permissionSets"] = [["SPOT"]]
        if sym.synthetic:  # not a Binance field: the synthetic universe says what it is
            info["synthetic"] = True
        return info

    # ---- trades ----------------------------------------------------------------

    def _trade_row(self, sym: SymbolTape, k: int) -> dict[str, Any]:
        lap, r = divmod(k, sym.n)
        row: dict[str, Any] = {
            "id": sym.ids[r] + lap * sym.id_span,
            "price": sym.lap_prices.texts(lap)[r],
            "qty": sym.qtys[r],
            "quoteQty": sym.quote_str(int(sym.lap_prices.units(lap)[r]), sym.qty_units[r]),
            "time": sym.times[r] + lap * self.tape.lap_ms,
            "isBuyerMaker": sym.makers[r],
        }
        if sym.best_match:
            row["isBestMatch"] = True
        return row

    def _trade_rows(self, sym: SymbolTape, edge: int, limit: int, *, backwards: bool,
                    end: int | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of served trades: the last before local index ``edge``
        (``backwards``), or the first from ``edge`` on, before ``end``."""
        if backwards:
            return [self._trade_row(sym, k) for k in range(max(0, edge - limit), edge)]
        assert end is not None
        return [self._trade_row(sym, k) for k in range(edge, min(end, edge + limit))]

    def _historical_trades(self, params: dict[str, str], pos: int) -> Any:
        check_known(params, ("symbol", "limit", "fromId"))
        sym = self._symbol(params)
        limit = self._limit(params, "historicalTrades")
        from_id = parse_long(params, "fromId")
        end = self.tape.replayed_trades(sym, pos)
        if from_id is None:
            return self._trade_rows(sym, end, limit, backwards=True)
        start = self._trade_index_of_id(sym, from_id)
        return self._trade_rows(sym, start, limit, backwards=False, end=end)

    def _trade_index_of_id(self, sym: SymbolTape, trade_id: int) -> int:
        """Absolute local index of the first trade with id ``>= trade_id``."""
        if trade_id <= sym.ids[0]:
            return 0
        lap = (trade_id - sym.ids[0]) // sym.id_span
        if not self.loop and lap > 0:
            return sym.n
        return lap * sym.n + bisect_left(sym.ids, trade_id - lap * sym.id_span)

    def _trade_index_at(self, sym: SymbolTape, t: int) -> int:
        """Number of ``sym``'s trades (over all laps) with time ``< t``."""
        return self._index_at(sym.times, sym.n, t)

    def _index_at(self, times: list[int], n: int, t: int) -> int:
        first = self.tape.first_time
        if t <= first:
            return 0
        lap = (t - first) // self.tape.lap_ms
        if not self.loop and lap > 0:
            return n
        return lap * n + bisect_left(times, t - lap * self.tape.lap_ms)

    # ---- aggregate trades ------------------------------------------------------

    def _replayed_aggs(self, sym: SymbolTape, pos: int) -> int:
        kt = self.tape.replayed_trades(sym, pos)
        lap, r = divmod(kt, sym.n)
        return lap * sym.n_aggs + bisect_left(sym.agg_last, r)

    def _agg_row(self, sym: SymbolTape, g: int) -> dict[str, Any]:
        lap, a = divmod(g, sym.n_aggs)
        event = sym.agg_event(a, lap, self.tape.lap_ms)
        del event["e"], event["E"], event["s"]
        return event

    def _agg_trades(self, params: dict[str, str], pos: int) -> Any:
        check_known(params, ("symbol", "fromId", "startTime", "endTime", "limit"))
        sym = self._symbol(params)
        limit = self._limit(params, "aggTrades")
        from_id = parse_long(params, "fromId")
        start = parse_long(params, "startTime")
        end = parse_long(params, "endTime")
        if start is not None and end is not None and end - start > _HOUR:
            raise BadRequest(-1127, "More than 1 hours between startTime and endTime.")
        total = self._replayed_aggs(sym, pos)
        if sym.n_aggs == 0:
            return []
        times = self._agg_times[sym.key]
        if from_id is None and start is None and end is None:
            return [self._agg_row(sym, g) for g in range(max(0, total - limit), total)]
        if from_id is None:
            if start is None:
                assert end is not None
                start = end - _HOUR
            elif end is None:
                end = start + _HOUR
        g0 = 0 if from_id is None else max(0, from_id - sym.agg_base_id)
        if start is not None:
            g0 = max(g0, self._index_at(times, sym.n_aggs, start))
        g1 = total
        if end is not None:
            g1 = min(g1, self._index_at(times, sym.n_aggs, end + 1))
        return [self._agg_row(sym, g) for g in range(g0, min(g1, g0 + limit))]

    # ---- klines ----------------------------------------------------------------

    def _klines(self, params: dict[str, str], pos: int, now_ms: int) -> Any:
        check_known(params, ("symbol", "interval", "startTime", "endTime", "limit",
                                   "timeZone"))
        sym = self._symbol(params)
        interval = params.get("interval")
        if not interval:
            raise BadRequest(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in self.intervals:
            raise BadRequest(-1120, "Invalid interval.")
        limit = self._limit(params, "klines")
        start = parse_long(params, "startTime")
        end = parse_long(params, "endTime")
        replayed = self.tape.replayed_trades(sym, pos)
        if replayed == 0 or (start is not None and end is not None and start > end):
            return []
        lo = kline_open(sym.times[0], interval)
        last_trade_time = self._trade_time(sym, replayed - 1)
        hi = kline_open(max(now_ms, last_trade_time), interval)
        if end is not None:
            hi = min(hi, kline_open(end, interval))
        opens = kline_opens(lo, hi, start, limit, interval)
        return self._kline_rows(sym, interval, opens, replayed)

    def _trade_time(self, sym: SymbolTape, k: int) -> int:
        lap, r = divmod(k, sym.n)
        return sym.times[r] + lap * self.tape.lap_ms

    def _units_of(self, sym: SymbolTape) -> KlineUnits:
        units = self._kline_units.get(sym.key)
        if units is None:
            units = self._kline_units[sym.key] = KlineUnits.of(sym)
        return units

    def _kline_rows(
        self, sym: SymbolTape, interval: str, opens: list[int], replayed: int
    ) -> list[list[Any]]:
        """Binance kline rows of the consecutive bars opening at ``opens``.

        The bar kernel aggregates the exact integer units of the replayed
        ``MARKET`` trades; its sums are formatted as Binance's decimal strings
        and its open/high/low/close rows give back the recorded price strings.
        """
        if not opens:
            return []
        edges = [*opens, kline_next(opens[-1], interval)]  # the opens are consecutive bars
        ks = np.array([min(self._trade_index_at(sym, e), replayed) for e in edges], dtype=np.int64)
        return kline_rows(sym, self._units_of(sym), opens, edges, ks)
