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
- Unknown query parameters are error -1104, as on Binance's spot API.
- The weight window is a fixed minute (``weight_window`` seconds) per client
  IP; a rejected request costs no weight.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qsl

import numpy as np
import orjson

from quantify.model.bars import bars_of_units, limbs_to_ints
from quantify.model.timeframes import KLINE_INTERVALS
from quantify.replay.tape import SPOT, SymbolTape, Tape, format_units
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

_D = 86_400_000
_MONDAY_OFFSET = 4 * _D  # 1970-01-01 was a Thursday; weekly bars open on Mondays

_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 500
_HOUR = 3_600_000
_LONG = re.compile(r"[0-9]{1,20}")
_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "DAI")


class _KlineUnits(NamedTuple):
    """A symbol tape's trades as arrays for the bar kernel (lap 0, local index order)."""

    price_units: np.ndarray
    qty_units: np.ndarray
    makers: np.ndarray
    market: np.ndarray


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


class _BadRequest(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def kline_open(t: int, interval: str) -> int:
    """Open time of the ``interval`` bar holding time ``t`` (ms, UTC)."""
    step = KLINE_INTERVALS[interval]
    if interval == "1M":
        d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    if interval == "1w":
        return (t - _MONDAY_OFFSET) // step * step + _MONDAY_OFFSET
    return t // step * step


def _kline_next(open_ms: int, interval: str) -> int:
    if interval == "1M":
        d = dt.datetime.fromtimestamp(open_ms / 1000, dt.UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + KLINE_INTERVALS[interval]


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

    def __init__(
        self, tape: Tape, *, loop: bool = False, weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        weight_window: float = 60.0, clock: Callable[[], float] = time.time,
        forced: ForcedFaults | None = None,
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
        self.requests = 0
        self.rejected_429 = 0  # over the weight budget
        self._weights: dict[str, tuple[int, int]] = {}  # ip -> (window number, used)
        self._agg_times = {
            s.key: [s.times[f] for f in s.agg_first] for s in tape.symbols.values()
        }
        self._kline_units: dict[str, _KlineUnits] = {}  # symbol key -> arrays, on first use

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
        return self.weights.get(path)

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
            params = self._params(query)
            body: Any = self._route(path, params, pos, now_ms)
        except _BadRequest as exc:
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

    @staticmethod
    def _params(query: str) -> dict[str, str]:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in params:
                raise _BadRequest(-1101, "Duplicate values for a parameter detected.")
            params[key] = value
        return params

    @staticmethod
    def _check_known(params: dict[str, str], known: tuple[str, ...]) -> None:
        extra = [k for k in params if k not in known]
        if extra:
            read = len(params) - len(extra)
            raise _BadRequest(
                -1104, f"Not all sent parameters were read; read '{read}' parameter(s) "
                f"but was sent '{len(params)}'.",
            )

    @staticmethod
    def _long(params: dict[str, str], name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if value == "":
            raise _BadRequest(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        if not _LONG.fullmatch(value) or int(value) > 2**63 - 1:
            raise _BadRequest(
                -1100, f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        return int(value)

    def _limit(self, params: dict[str, str], endpoint: str = "") -> int:
        default, maximum = self.limits.get(endpoint, (_DEFAULT_LIMIT, _MAX_LIMIT))
        limit = self._long(params, "limit")
        if limit is None:
            return default
        if limit < 1:
            raise _BadRequest(-1130, "Data sent for parameter 'limit' is not valid.")
        return min(limit, maximum)

    def _symbol(self, params: dict[str, str]) -> SymbolTape:
        name = params.get("symbol")
        if not name:
            raise _BadRequest(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if not _SYMBOL.fullmatch(name):
            raise _BadRequest(
                -1100, "Illegal characters found in parameter 'symbol'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        sym = self.tape.symbol(name, self.venue)
        if sym is None:
            raise _BadRequest(-1121, "Invalid symbol.")
        return sym

    # ---- routing ---------------------------------------------------------------

    def _route(self, path: str, params: dict[str, str], pos: int, now_ms: int) -> Any:
        endpoint = path.removeprefix(self.prefix)
        if endpoint == "ping":
            self._check_known(params, ())
            return {}
        if endpoint == "time":
            self._check_known(params, ())
            return {"serverTime": now_ms}
        if endpoint == "exchangeInfo":
            return self._exchange_info(params, now_ms)
        if endpoint == "aggTrades":
            return self._agg_trades(params, pos)
        if endpoint == "historicalTrades":
            return self._historical_trades(params, pos)
        if endpoint == "trades":
            self._check_known(params, ("symbol", "limit"))
            sym = self._symbol(params)
            limit = self._limit(params, "trades")
            end = self.tape.replayed_trades(sym, pos)
            return self._trade_rows(sym, end, limit, backwards=True)
        if endpoint == "klines":
            return self._klines(params, pos, now_ms)
        raise AssertionError(path)  # pragma: no cover - self.weights lists every path

    # ---- exchangeInfo ----------------------------------------------------------

    def _exchange_info(self, params: dict[str, str], now_ms: int) -> Any:
        self._check_known(params, ("symbol", "symbols", "permissions", "showPermissionSets",
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
                raise _BadRequest(-1100, "Illegal characters found in parameter 'symbols'; "
                                  "legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\")*)]$'.")
            for name in listed:
                if self.tape.symbol(name) is None:
                    raise _BadRequest(-1121, "Invalid symbol.")
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
            "symbols": [self._symbol_info(s) for s in syms],
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
        """Tick and step size: the finest increments seen in the recording."""
        p_dec = max(len(p.partition(".")[2].rstrip("0")) for p in sym.prices)
        q_dec = max(len(q.partition(".")[2].rstrip("0")) for q in sym.qtys)
        ps, qs = sym.price_scale, sym.qty_scale
        return format_units(10 ** (ps - p_dec), ps, ps), format_units(10 ** (qs - q_dec), qs, qs)

    def _symbol_info(self, sym: SymbolTape) -> dict[str, Any]:
        base, quote = self._split_symbol(sym.symbol)
        ps, qs = sym.price_scale, sym.qty_scale
        tick, step = self._increments(sym)
        return {
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
            "permissionSets": [["SPOT"]],
        }

    # ---- trades ----------------------------------------------------------------

    def _trade_row(self, sym: SymbolTape, k: int) -> dict[str, Any]:
        lap, r = divmod(k, sym.n)
        row: dict[str, Any] = {
            "id": sym.ids[r] + lap * sym.id_span,
            "price": sym.prices[r],
            "qty": sym.qtys[r],
            "quoteQty": sym.quote_str(sym.price_units[r], sym.qty_units[r]),
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
        self._check_known(params, ("symbol", "limit", "fromId"))
        sym = self._symbol(params)
        limit = self._limit(params, "historicalTrades")
        from_id = self._long(params, "fromId")
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
        self._check_known(params, ("symbol", "fromId", "startTime", "endTime", "limit"))
        sym = self._symbol(params)
        limit = self._limit(params, "aggTrades")
        from_id = self._long(params, "fromId")
        start = self._long(params, "startTime")
        end = self._long(params, "endTime")
        if start is not None and end is not None and end - start > _HOUR:
            raise _BadRequest(-1127, "More than 1 hours between startTime and endTime.")
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
        self._check_known(params, ("symbol", "interval", "startTime", "endTime", "limit",
                                   "timeZone"))
        sym = self._symbol(params)
        interval = params.get("interval")
        if not interval:
            raise _BadRequest(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in self.intervals:
            raise _BadRequest(-1120, "Invalid interval.")
        limit = self._limit(params, "klines")
        start = self._long(params, "startTime")
        end = self._long(params, "endTime")
        replayed = self.tape.replayed_trades(sym, pos)
        if replayed == 0 or (start is not None and end is not None and start > end):
            return []
        lo = kline_open(sym.times[0], interval)
        last_trade_time = self._trade_time(sym, replayed - 1)
        hi = kline_open(max(now_ms, last_trade_time), interval)
        if end is not None:
            hi = min(hi, kline_open(end, interval))
        opens: list[int] = []
        if start is not None:
            b = kline_open(start, interval)
            if b < start:
                b = _kline_next(b, interval)
            b = max(b, lo)
            while b <= hi and len(opens) < limit:
                opens.append(b)
                b = _kline_next(b, interval)
        else:
            b = hi
            while b >= lo and len(opens) < limit:
                opens.append(b)
                b = kline_open(b - 1, interval)
            opens.reverse()
        return self._kline_rows(sym, interval, opens, replayed)

    def _trade_time(self, sym: SymbolTape, k: int) -> int:
        lap, r = divmod(k, sym.n)
        return sym.times[r] + lap * self.tape.lap_ms

    def _units_of(self, sym: SymbolTape) -> _KlineUnits:
        units = self._kline_units.get(sym.key)
        if units is None:
            units = _KlineUnits(
                np.array(sym.price_units, dtype=np.int64),
                np.array(sym.qty_units, dtype=np.int64),
                np.array(sym.makers, dtype=bool),
                np.array(sym.market, dtype=bool),
            )
            self._kline_units[sym.key] = units
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
        edges = [*opens, _kline_next(opens[-1], interval)]  # the opens are consecutive bars
        ks = np.array([min(self._trade_index_at(sym, e), replayed) for e in edges], dtype=np.int64)
        units = self._units_of(sym)
        r = np.arange(ks[0], ks[-1], dtype=np.int64) % sym.n  # absolute index -> lap-0 row
        market = units.market[r]
        if not market.all():  # insurance-fund/ADL trades (USD-M) are not in Binance's klines
            kept = np.concatenate(([0], np.cumsum(market)))
            bounds = kept[ks - ks[0]]
            r = r[market]
        else:
            bounds = ks - ks[0]
        bars = bars_of_units(bounds, units.price_units[r], units.qty_units[r], units.makers[r])
        quote = limbs_to_ints(bars.quote_volume)
        buy_quote = limbs_to_ints(bars.taker_buy_quote_volume)
        prices = sym.prices
        qscale = sym.price_scale + sym.qty_scale
        # a bar without trades is flat at the previous close (none before: the first price)
        prev = self._close_before(sym, int(ks[0]))
        out: list[list[Any]] = []
        for b, open_ms in enumerate(opens):
            if bars.open_row[b] < 0:
                o = h = lo = c = prev
            else:
                o = prices[r[bars.open_row[b]]]
                h = prices[r[bars.high_row[b]]]
                lo = prices[r[bars.low_row[b]]]
                c = prev = prices[r[bars.close_row[b]]]
            out.append([
                open_ms, o, h, lo, c, sym.qty_str(int(bars.volume[b])), edges[b + 1] - 1,
                format_units(quote[b], qscale, 8), int(bars.trades[b]),
                sym.qty_str(int(bars.taker_buy_volume[b])), format_units(buy_quote[b], qscale, 8),
                "0",
            ])
        return out

    @staticmethod
    def _close_before(sym: SymbolTape, k0: int) -> str:
        """Price of the last ``MARKET`` trade before absolute index ``k0`` (or the first price)."""
        n = sym.n
        k = k0 - 1
        while k >= 0 and not sym.market[k % n]:
            k -= 1
        return sym.prices[k % n] if k >= 0 else sym.prices[0]
