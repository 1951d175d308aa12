"""Sans-I/O parsing of Binance WebSocket frames (spot and USD-M): text in, typed events out.

Nothing here touches a socket. :class:`FrameParser` takes the text of one
frame (combined-stream ``{"stream": ..., "data": ...}`` or a raw-stream event)
and returns one event: a :class:`~quantify.model.trades.Trade`, a depth diff, book ticker or
depth snapshot (:mod:`quantify.model.book`), a mark price or liquidation
(:mod:`quantify.model.perp`, parsed by :mod:`.perp_parse`), a :class:`Kline`, a
:class:`~quantify.model.trades.ServerShutdown`, a :class:`SubscriptionReply`, or ``None`` for frames
that are well-formed but of no interest. Malformed frames
are counted per reason and logged with a sample; they never raise.

Combined-stream trade frames, nearly every frame the ingestion sees, take a
fast path (msgspec decodes and type-checks them in one pass); every other
frame, and any the fast path does not accept exactly, takes the general path
(orjson plus explicit checks), which defines the result.

Prices and quantities arrive as decimal strings with at most 8 decimals.
They are kept as float64: for values below 2**53 / 1e8 (about 9e7),
``round(x * 1e8)`` recovers the exact decimal, which is how candle volumes
reproduce Binance's figures digit for digit.

Spot and USD-M futures frames share this format; USD-M trade events also
carry ``X`` (``MARKET``, ``INSURANCE_FUND``, ``ADL``, ...), read as
``Trade.is_market``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Annotated, Any, Final, NamedTuple

import msgspec
import orjson

from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot, Level
from quantify.model.perp import Liquidation, MarkPrice
from quantify.model.trades import MAX_ID, MAX_TIME_MS, ServerShutdown, Trade
from quantify.venues.binance.perp_parse import liquidation_from_event, mark_price_from_event

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "Event",
    "FrameParser",
    "Kline",
    "SubscriptionReply",
    "book_ticker_from_event",
    "depth_diff_from_event",
    "depth_snapshot_from_answer",
    "trade_from_event",
]

logger = logging.getLogger(__name__)

#: Frames above this size are rejected as malformed (Binance's are < 4 KiB
#: for trades; depth snapshots of a combined stream stay far below).
DEFAULT_MAX_FRAME_BYTES = 1 << 20

class Kline(NamedTuple):
    """A ``@kline_<interval>`` event; decimal fields stay strings (exact).

    ``first_trade_id`` and ``last_trade_id`` are Binance's ``f`` and ``L``: the
    first and last trade of the bar so far (-1 when the event has none).
    """

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    taker_buy_volume: str
    taker_buy_quote_volume: str
    closed: bool
    event_time: int
    first_trade_id: int = -1
    last_trade_id: int = -1


class SubscriptionReply(NamedTuple):
    """Reply to a ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` request."""

    id: Any
    result: Any
    error: dict[str, Any] | None


Event = (Trade | Kline | ServerShutdown | SubscriptionReply | DepthDiff | BookTicker | DepthSnapshot
         | MarkPrice | Liquidation)


def _levels(rows: Any) -> list[Level]:
    """``[["61837.63", "3.788"], ...]`` as ``[(61837.63, 3.788), ...]``; finite, non-negative."""
    if type(rows) is not list:
        raise TypeError("price levels must be a list of [price, qty] pairs")
    out = [(float(p), float(q)) for p, q in rows]
    for p, q in out:
        if not 0 < p < _INF or not 0 <= q < _INF:  # NaN fails both comparisons
            raise ValueError(f"a price level must be a positive finite price and a non-negative quantity: {p!r}, {q!r}")
    return out


_INF = float("inf")


def _id(value: Any, name: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ID:
        raise ValueError(f"{name} must be an integer id, got {value!r}")
    return value


def depth_diff_from_event(data: dict[str, Any]) -> DepthDiff:
    """Build a :class:`~quantify.model.book.DepthDiff` from a decoded ``depthUpdate`` event.

    USD-M events carry ``pu`` (the previous event's ``u``); spot ones do not (-1).
    """
    etime = data["E"]
    if type(etime) is not int or not 0 <= etime <= MAX_TIME_MS:
        raise ValueError(f"event time out of range: {etime!r}")
    symbol = data["s"]
    if type(symbol) is not str:
        raise TypeError("'s' must be a string")
    first, last = _id(data["U"], "U"), _id(data["u"], "u")
    if first > last:
        raise ValueError(f"U {first} > u {last}")
    prev = data.get("pu", -1)
    if prev != -1:
        prev = _id(prev, "pu")
    return DepthDiff(symbol, first, last, prev, etime, _levels(data["b"]), _levels(data["a"]))


def book_ticker_from_event(data: dict[str, Any]) -> BookTicker:
    """Build a :class:`~quantify.model.book.BookTicker` from a decoded ``bookTicker`` event."""
    symbol = data["s"]
    if type(symbol) is not str:
        raise TypeError("'s' must be a string")
    (b, bq), (a, aq) = _levels([[data["b"], data["B"]], [data["a"], data["A"]]])
    etime = data.get("E", -1)
    if type(etime) is not int or not -1 <= etime <= MAX_TIME_MS:
        raise ValueError(f"event time out of range: {etime!r}")
    return BookTicker(symbol, _id(data["u"], "u"), b, bq, a, aq, etime)


def depth_snapshot_from_answer(data: dict[str, Any], symbol: str = "", limit: int = 0) -> DepthSnapshot:
    """Build a :class:`~quantify.model.book.DepthSnapshot` from a decoded REST depth answer."""
    return DepthSnapshot(_id(data["lastUpdateId"], "lastUpdateId"), _levels(data["bids"]),
                         _levels(data["asks"]), symbol, limit)


def trade_from_event(data: dict[str, Any]) -> Trade:
    """Build a :class:`Trade` from a decoded ``trade`` or ``aggTrade`` event.

    Raises ``KeyError``, ``TypeError`` or ``ValueError`` when a field is
    missing or of the wrong type.
    """
    kind = data["e"]
    if kind == "trade":
        tid = first = last = data["t"]
    elif kind == "aggTrade":
        tid = data["a"]
        first = data["f"]
        last = data["l"]
    else:
        raise ValueError(f"not a trade event: {kind!r}")
    symbol = data["s"]
    ttime = data["T"]
    etime = data.get("E", ttime)
    maker = data["m"]
    price = data["p"]
    qty = data["q"]
    if (
        type(tid) is not int or type(first) is not int or type(last) is not int
        or type(ttime) is not int or type(etime) is not int or type(maker) is not bool
        or type(symbol) is not str
    ):
        raise TypeError("trade ids and times must be integers, 'm' a boolean, 's' a string")
    if type(price) is not str or type(qty) is not str:
        raise TypeError("price and quantity must be decimal strings")
    if not (0 <= tid <= _MAX_ID and 0 <= first <= _MAX_ID and 0 <= last <= _MAX_ID
            and 0 <= ttime <= MAX_TIME_MS and 0 <= etime <= MAX_TIME_MS):
        raise ValueError(f"trade id or time out of range: {tid!r}, {ttime!r}, {etime!r}")
    p, q = float(price), float(qty)
    if p - p or q - q:  # NaN or infinite: x - x is NaN (truthy) for those, 0.0 otherwise
        raise ValueError(f"price and quantity must be finite, got {price!r} and {qty!r}")
    # tuple.__new__ skips the NamedTuple's Python-level constructor: this
    # runs once per trade received.
    return _new_tuple(Trade, (
        symbol, tid, p, q, ttime, maker, first, last, data.get("X", "MARKET") == "MARKET", etime,
    ))


_new_tuple = tuple.__new__

_MAX_ID: Final = MAX_ID
_Id = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID)]
_TimeMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]


# The hot path: combined-stream trade and aggTrade frames, decoded and
# type-checked by msgspec in one C pass (half the time of orjson plus the
# checks above). Anything it does not accept exactly takes the general path,
# which is the reference: same events, and it counts what is malformed.


class _WireTrade(msgspec.Struct, tag_field="e", tag="trade", gc=False):
    E: _TimeMs
    s: str
    t: _Id
    p: str
    q: str
    T: _TimeMs
    m: bool
    X: str = "MARKET"


class _WireAggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", gc=False):
    E: _TimeMs
    s: str
    a: _Id
    p: str
    q: str
    f: _Id
    l: _Id  # noqa: E741 (Binance's field name)
    T: _TimeMs
    m: bool
    X: str = "MARKET"


class _WireCombined(msgspec.Struct, gc=False):
    stream: str
    data: _WireTrade | _WireAggTrade


_decode_combined = msgspec.json.Decoder(_WireCombined).decode
_WIRE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, ValueError)


def _fast_trade(frame: str | bytes) -> Trade | None:
    """The trade of a well-formed combined-stream frame; ``None`` for anything else."""
    if not frame.isascii():
        # msgspec skips unknown fields without checking their UTF-8, orjson refuses the frame:
        # leave non-ASCII (rare, and never a Binance trade frame) to the general path.
        return None
    try:
        d = _decode_combined(frame).data
        p, q = float(d.p), float(d.q)
    except _WIRE_ERRORS:
        return None
    if p - p or q - q:  # not finite: the general path rejects it
        return None
    if isinstance(d, _WireTrade):
        return _new_tuple(Trade, (d.s, d.t, p, q, d.T, d.m, d.t, d.t, d.X == "MARKET", d.E))
    return _new_tuple(Trade, (d.s, d.a, p, q, d.T, d.m, d.f, d.l, d.X == "MARKET", d.E))


# Book frames take a fast path of their own (a combined-stream ``@depth`` or ``@bookTicker``
# frame, typed by msgspec); anything it does not accept exactly goes the general way.


class _WireDepth(msgspec.Struct, gc=False):
    e: str
    E: _TimeMs
    s: str
    U: _Id
    u: _Id
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    pu: Annotated[int, msgspec.Meta(ge=-1, le=_MAX_ID)] = -1


class _WireDepthCombined(msgspec.Struct, gc=False):
    stream: str
    data: _WireDepth


class _WireTicker(msgspec.Struct, gc=False):
    u: _Id
    s: str
    b: str
    B: str
    a: str
    A: str
    E: Annotated[int, msgspec.Meta(ge=-1, le=MAX_TIME_MS)] = -1
    e: str = "bookTicker"


class _WireTickerCombined(msgspec.Struct, gc=False):
    stream: str
    data: _WireTicker


_decode_depth = msgspec.json.Decoder(_WireDepthCombined).decode
_decode_ticker = msgspec.json.Decoder(_WireTickerCombined).decode


def _fast_levels(rows: list[tuple[str, str]]) -> list[Level] | None:
    out = [(float(p), float(q)) for p, q in rows]
    for p, q in out:
        if not 0 < p < _INF or not 0 <= q < _INF:
            return None
    return out


#: Stream kinds of the book fast path, as they follow the symbol in a combined stream's name.
_BOOK_KINDS: Final = ("@depth", "@bookTicker")
_BOOK_KINDS_BYTES: Final = tuple(k.encode() for k in _BOOK_KINDS)


def _fast_book(frame: str | bytes, head: str | bytes) -> DepthDiff | BookTicker | None:
    """The depth diff or book ticker of a well-formed combined-stream frame; ``None`` for anything else."""
    if not frame.isascii():
        return None
    is_depth = "@depth" in head if isinstance(head, str) else b"@depth" in head
    try:
        if is_depth:
            d = _decode_depth(frame).data
            if d.e != "depthUpdate" or d.U > d.u:
                return None
            bids, asks = _fast_levels(d.b), _fast_levels(d.a)
            if bids is None or asks is None:
                return None
            return _new_tuple(DepthDiff, (d.s, d.U, d.u, d.pu, d.E, bids, asks))
        t = _decode_ticker(frame).data
        b, bq, a, aq = float(t.b), float(t.B), float(t.a), float(t.A)
        if t.e != "bookTicker" or not (0 < b < _INF and 0 <= bq < _INF and 0 < a < _INF and 0 <= aq < _INF):
            return None
        return _new_tuple(BookTicker, (t.s, t.u, b, bq, a, aq, t.E))
    except _WIRE_ERRORS:
        return None


def _kline_from_event(data: dict[str, Any]) -> Kline:
    k = data["k"]
    return Kline(
        k["s"], k["i"], int(k["t"]), int(k["T"]), k["o"], k["h"], k["l"], k["c"], k["v"],
        k["q"], int(k["n"]), k["V"], k["Q"], bool(k["x"]), int(data.get("E", k["T"])),
        int(k.get("f", -1)), int(k.get("L", -1)),
    )


class FrameParser:
    """Parse Binance WebSocket frames; count and log malformed ones.

    Parameters
    ----------
    max_frame_bytes : int
        Frames longer than this are counted as ``oversized`` and dropped.

    Attributes
    ----------
    malformed : collections.Counter
        Count of rejected frames by reason (``json``, ``fields``, ``oversized``).
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.malformed: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    @property
    def malformed_total(self) -> int:
        """Number of frames rejected so far."""
        return sum(self.malformed.values())

    def _reject(self, reason: str, frame: str | bytes, exc: BaseException | None = None) -> None:
        self.malformed[reason] += 1
        sample = frame[:200] if isinstance(frame, str) else frame[:200].decode("utf-8", "replace")
        if reason not in self.samples:
            self.samples[reason] = sample
        # Log the first of each reason, then every 1000th, so a storm stays readable.
        if self.malformed[reason] % 1000 == 1:
            logger.warning(
                "malformed frame (%s, %d so far): %s%s", reason, self.malformed[reason],
                sample, f" [{exc}]" if exc else "",
            )

    def reject_oversized(self, detail: str) -> None:
        """Count a frame refused as too big before it reached :meth:`parse` (by the WebSocket layer)."""
        self._reject("oversized", detail)

    def parse(self, frame: str | bytes) -> Event | None:
        """Return the event carried by ``frame``, or ``None``.

        ``None`` means the frame was either of a kind QuantiFy does not use
        or malformed; malformed frames are counted in
        :attr:`malformed`.
        """
        if len(frame) > self.max_frame_bytes:
            self._reject("oversized", frame)
            return None
        # '{"stream":"btcusdt@depth@100ms","data":...': the stream's kind follows its first "@". One
        # memchr and a prefix test instead of searching the head for each book kind: 0.2-0.4 µs less a
        # trade frame (benchmarks/RESULTS.md). Either fast path hands what it refuses to the general one.
        if isinstance(frame, bytes):
            at = frame.find(b"@", 0, 64)
            book = at >= 0 and frame.startswith(_BOOK_KINDS_BYTES, at)
        else:
            at = frame.find("@", 0, 64)
            book = at >= 0 and frame.startswith(_BOOK_KINDS, at)
        event: Event | None = _fast_book(frame, frame[:64]) if book else _fast_trade(frame)
        if event is not None:
            return event
        return self._parse_any(frame)

    def _parse_any(self, frame: str | bytes) -> Event | None:
        """The general path: every kind of frame, malformed ones counted."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self._reject("json", frame, exc)
            return None
        if type(msg) is not dict:
            self._reject("fields", frame)
            return None
        data = msg.get("data", msg) if "stream" in msg else msg
        if type(data) is not dict:
            self._reject("fields", frame)
            return None
        kind = data.get("e")
        try:
            if kind == "trade" or kind == "aggTrade":
                return trade_from_event(data)
            if kind == "depthUpdate":
                return depth_diff_from_event(data)
            if kind == "bookTicker" or (kind is None and "u" in data and "B" in data and "A" in data):
                return book_ticker_from_event(data)  # spot's bookTicker has no "e"
            if kind is None and "lastUpdateId" in data:
                return depth_snapshot_from_answer(data)
            if kind == "kline":
                return _kline_from_event(data)
            if kind == "markPriceUpdate":
                return mark_price_from_event(data)
            if kind == "forceOrder":
                return liquidation_from_event(data)
            if kind == "serverShutdown":
                return ServerShutdown(int(data.get("E", 0)))
            if kind is None and "id" in data and ("result" in data or "error" in data):
                return SubscriptionReply(data["id"], data.get("result"), data.get("error"))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            self._reject("fields", frame, exc)
            return None
        return None
