"""OKX v5 public WebSocket: sans-I/O parsing of the ``trades`` channel, and recorded sessions.

Nothing here touches a socket. :class:`OkxParser` takes the text of one
message of ``wss://ws.okx.com:8443/ws/v5/public`` and returns the trades it
carries as venue-neutral :class:`~quantify.model.trades.Trade` records (the same
records the Binance parser yields, so ingestion, the store and analytics take
them unchanged). A ``trades`` push looks like::

    {"arg": {"channel": "trades", "instId": "BTC-USDT"},
     "data": [{"instId": "BTC-USDT", "tradeId": "338476307", "px": "30236",
               "sz": "0.0002", "side": "buy", "ts": "1652459224818"}]}

Every other message is recognised and counted, never raised on: event
replies (``{"event": "subscribe", "arg": ...}``, ``{"event": "error", "code":
..., "msg": ...}``) in :attr:`OkxParser.events`, pushes of other channels
(``tickers``, ``books``) and the ``pong`` keep-alive reply in
:attr:`OkxParser.ignored`, malformed messages per reason in
:attr:`OkxParser.malformed` (as :class:`quantify.venues.binance.parse.FrameParser`
does).

Mapping to :class:`~quantify.model.trades.Trade`:

=================  ==========================================================
``symbol``         the instrument key ``okx:<instId>`` (:class:`~quantify.model.instrument.Instrument`)
``trade_id``       ``int(tradeId)``; ``first_id = last_id = trade_id``
``price``, ``qty`` ``float(px)``, ``float(sz)`` (see the exactness note below)
``time``           ``int(ts)``, ms since the epoch; ``event_time`` the same
``is_buyer_maker`` ``side == "sell"``: OKX's ``side`` is the *taker's* side, so
                   a taker sell means the buyer was the resting (maker) order
``is_market``      True (the public channel carries no other kind)
=================  ==========================================================

Why ``side`` is the taker's side: OKX documents it as the trade direction of
the ``trades`` channel (https://www.okx.com/docs-v5/en/#websocket-api-public-channel);
adapters built on those docs read it as the aggressor's side (nautilus-okx,
rustrade-data's ``okx/trade.rs``). The recorded session settles it: each
``buy`` printed at or above the best ask of the recorded ``books`` just before
it (46 of 46), each ``sell`` at or below the best bid (25 of 25), which only
a taker buy lifting the offer and a taker sell hitting the bid do (checked
by ``tests/venues/test_okx.py``).

Since the 2022 recording OKX may aggregate the fills of one taker order at
one price into one item with a ``count`` field (``tradeId`` the last fill's).
Such an item is one :class:`~quantify.model.trades.Trade` here: its size is
right, but a candle's ``trades`` counts it once, not ``count`` times.

Prices and sizes arrive as decimal strings. They are kept as float64: for
values below 2**53 / 1e8 (about 9e7) with at most 8 decimals, ``round(x *
1e8)`` recovers the exact decimal, as for Binance. ``sz`` of a derivative is a
number of contracts (OKX's unit), not of the base currency.

Venue facts that a venue interface can use are module constants:
:data:`DEFAULT_WS_URL`, :func:`subscribe_message`, :data:`CONSECUTIVE_IDS`
(False: OKX trade ids increase per instrument but are not promised to be
consecutive, so a jump is no proof of lost data and id-gap detection does not
apply), :data:`PING`/:data:`PONG`.

Recorded sessions (cryptofeed's ``sample_data/OKX.ws.*`` format: a first line
with the URL, then ``<local time, s>: <JSON>`` per message received, and
``<URL> <- <time>: <JSON>`` for what the client sent) are read by
:func:`read_trades`; :func:`is_session` tells them from Binance recordings of
the same line format by their content.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

import orjson
import pandas as pd

from quantify.exceptions import FeedError
from quantify.model.instrument import Instrument
from quantify.model.trades import MAX_TIME_MS, Trade, trades_to_frame
from quantify.venues.binance.recordings import detect_format, read_frames

__all__ = [
    "CONSECUTIVE_IDS",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_WS_URL",
    "PING",
    "PONG",
    "TRADES_CHANNEL",
    "VENUE",
    "OkxParser",
    "instrument_of",
    "is_session",
    "read_trades",
    "subscribe_message",
]

logger = logging.getLogger(__name__)

#: The venue name of :mod:`quantify.model.instrument` (instrument keys ``okx:<instId>``).
VENUE: Final = "okx"

#: OKX v5 public WebSocket (market data, no login).
DEFAULT_WS_URL: Final = "wss://ws.okx.com:8443/ws/v5/public"

#: The channel whose pushes carry trades.
TRADES_CHANNEL: Final = "trades"

#: Trade ids increase per instrument but are not promised to be consecutive:
#: a jump between two ids is no evidence of a lost trade (unlike Binance's ``t``
#: and ``a``), so id-gap detection and gap backfill by id do not apply.
CONSECUTIVE_IDS: Final = False

#: The keep-alive text a client sends, and the server's reply: plain text, not
#: JSON (OKX's docs, "Connect"; the recording holds neither).
PING: Final = "ping"
PONG: Final = "pong"

#: Messages above this size are rejected as malformed (a ``books`` snapshot of
#: 400 levels a side is about 30 KiB; trades pushes are a few hundred bytes).
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20

_MAX_ID: Final = 2**63 - 1
# What OKX's decimal strings look like; stricter than float(), which also takes
# "nan", "1e5", " 1" and "1_0".
_DECIMAL = re.compile(r"\d{1,30}(?:\.\d{1,30})?")
_DIGITS = re.compile(r"\d{1,19}")
#: instId -> instrument key, bounded: instIds are checked by Instrument.parse, but
#: a hostile feed could still name many.
_MAX_CACHED_KEYS: Final = 4096


def instrument_of(inst_id: str) -> Instrument:
    """The :class:`~quantify.model.instrument.Instrument` of an OKX ``instId``.

    ``BTC-USDT`` is spot, ``BTC-USDT-SWAP`` a perpetual, ``BTC-USD-220527`` a
    delivery future. Raises ``ValueError`` naming the id for anything else
    (options, for one, are not supported).
    """
    return Instrument.parse(f"{VENUE}:{inst_id}")


def subscribe_message(inst_ids: Iterable[str], channel: str = TRADES_CHANNEL) -> str:
    """The text to send to subscribe to ``channel`` for each of ``inst_ids``.

    ``{"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USDT"}, ...]}``;
    OKX answers each arg with an ``{"event": "subscribe", "arg": ...}`` reply
    (or an ``{"event": "error", ...}``). Raises ``ValueError`` naming an
    ``instId`` that is no OKX instrument, or when none is given.
    """
    ids = [instrument_of(i).symbol for i in inst_ids]
    if not ids:
        raise ValueError("no instIds given; pass e.g. ['BTC-USDT']")
    args = [{"channel": channel, "instId": i} for i in ids]
    return orjson.dumps({"op": "subscribe", "args": args}).decode()


class OkxParser:
    """Parse OKX v5 public WebSocket messages; count what is not a trade.

    Parameters
    ----------
    max_frame_bytes : int
        Messages longer than this are counted as ``oversized`` and dropped.

    Attributes
    ----------
    malformed : collections.Counter
        Rejected messages by reason: ``json`` (not JSON), ``fields`` (a
        message or trade of the wrong shape or type), ``instrument`` (an
        ``instId`` that is no supported OKX instrument), ``oversized``.
    events : collections.Counter
        Event replies by ``event`` (``subscribe``, ``unsubscribe``, ``error``, ...).
    ignored : collections.Counter
        Well-formed messages of no interest: pushes by channel (``tickers``,
        ``books``), ``pong``, and JSON objects of no known shape (``other``).
    last_error : dict or None
        The latest ``{"event": "error", ...}`` reply (``code``, ``msg``).
    samples : dict
        The first rejected message (200 characters) of each malformed reason.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.malformed: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.last_error: dict[str, Any] | None = None
        self.samples: dict[str, str] = {}
        self._keys: dict[str, str] = {}

    @property
    def malformed_total(self) -> int:
        """Number of messages rejected so far."""
        return sum(self.malformed.values())

    def _reject(self, reason: str, frame: str | bytes, exc: BaseException | None = None) -> list[Trade]:
        self.malformed[reason] += 1
        sample = frame[:200] if isinstance(frame, str) else frame[:200].decode("utf-8", "replace")
        self.samples.setdefault(reason, sample)
        # The first of each reason, then every 1000th, so a storm stays readable.
        if self.malformed[reason] % 1000 == 1:
            logger.warning("malformed OKX message (%s, %d so far): %s%s", reason,
                           self.malformed[reason], sample, f" [{exc}]" if exc else "")
        return []

    def parse(self, frame: str | bytes) -> list[Trade]:
        """Return the trades carried by ``frame`` (empty for every other message).

        A ``trades`` push yields its trades in the order sent; a push with
        one bad trade is rejected whole (counted in :attr:`malformed`).
        Never raises.
        """
        if len(frame) > self.max_frame_bytes:
            return self._reject("oversized", frame)
        if frame == PONG or frame == b"pong":
            self.ignored[PONG] += 1
            return []
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return self._reject("json", frame, exc)
        if type(msg) is not dict:
            return self._reject("fields", frame)
        event = msg.get("event")
        if event is not None:
            return self._event(event, msg, frame)
        arg = msg.get("arg")
        if arg is None:
            self.ignored["other"] += 1
            logger.debug("OKX message of no known shape: %.200s", frame)
            return []
        if type(arg) is not dict or type(arg.get("channel")) is not str:
            return self._reject("fields", frame)
        channel = arg["channel"]
        if channel != TRADES_CHANNEL:
            self.ignored[channel] += 1
            return []
        data = msg.get("data")
        if type(data) is not list:
            return self._reject("fields", frame)
        try:
            return [self._trade(item, arg) for item in data]
        except _InstrumentError as exc:
            return self._reject("instrument", frame, exc)
        except (KeyError, TypeError, ValueError) as exc:
            return self._reject("fields", frame, exc)

    def _event(self, event: Any, msg: dict[str, Any], frame: str | bytes) -> list[Trade]:
        if type(event) is not str:
            return self._reject("fields", frame)
        self.events[event] += 1
        if event == "error":
            self.last_error = {"code": msg.get("code"), "msg": msg.get("msg")}
            logger.warning("OKX error reply: code %s: %s", msg.get("code"), msg.get("msg"))
        else:
            logger.debug("OKX %s reply: %s", event, msg.get("arg"))
        return []

    def _key(self, inst_id: str) -> str:
        key = self._keys.get(inst_id)
        if key is None:
            try:
                key = instrument_of(inst_id).key
            except (TypeError, ValueError) as exc:
                raise _InstrumentError(str(exc)) from exc
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[inst_id] = key
        return key

    def _trade(self, item: Any, arg: dict[str, Any]) -> Trade:
        """One ``data`` item as a :class:`Trade`; raises KeyError, TypeError or ValueError."""
        if type(item) is not dict:
            raise TypeError(f"a trade is an object, got {item!r:.80}")
        inst_id = item.get("instId", arg.get("instId"))
        if type(inst_id) is not str or inst_id != arg.get("instId", inst_id):
            raise ValueError(f"trade instId {inst_id!r} does not match the channel's {arg.get('instId')!r}")
        tid, px, sz, side, ts = item["tradeId"], item["px"], item["sz"], item["side"], item["ts"]
        if (type(tid) is not str or type(px) is not str or type(sz) is not str
                or type(ts) is not str or type(side) is not str):
            raise TypeError("tradeId, px, sz, side and ts must be strings")
        if not (_DIGITS.fullmatch(tid) and _DIGITS.fullmatch(ts)):
            raise ValueError(f"tradeId {tid!r} and ts {ts!r} must be decimal integers")
        if not (_DECIMAL.fullmatch(px) and _DECIMAL.fullmatch(sz)):
            raise ValueError(f"px {px!r} and sz {sz!r} must be decimal numbers")
        if side != "buy" and side != "sell":
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        trade_id, time = int(tid), int(ts)
        if trade_id > _MAX_ID or time > MAX_TIME_MS:
            raise ValueError(f"tradeId {tid} or ts {ts} out of range")
        key = self._key(inst_id)
        return Trade(key, trade_id, float(px), float(sz), time, side == "sell",
                     trade_id, trade_id, True, time)


class _InstrumentError(ValueError):
    """An instId that :func:`instrument_of` refuses (counted apart from bad fields)."""


# -- recorded sessions -------------------------------------------------------------

#: How many received messages :func:`is_session` looks at before deciding.
_SNIFF_MESSAGES: Final = 20


def is_session(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a recorded OKX v5 session (gzip or not).

    The file must have the recorded-session line format (cryptofeed's
    ``<time>: <JSON>``) and its first JSON-object message must be of OKX's
    shape: an ``event`` reply or a push with an ``arg``. Binance's messages
    carry neither key. Raises :class:`~quantify.exceptions.FeedError` only
    for an unreadable file.
    """
    try:
        if detect_format(path) != "cryptofeed":
            return False
    except FeedError:
        return False
    for n, (_, frame) in enumerate(read_frames(path)):
        if n >= _SNIFF_MESSAGES:
            break
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            continue
        if type(msg) is dict:
            return "arg" in msg or "event" in msg
    return False


def read_trades(path: str | os.PathLike[str], parser: OkxParser | None = None) -> dict[str, pd.DataFrame]:
    """Read every trade of a recorded OKX session, per instrument key, as tick frames.

    Keys are instrument keys (``okx:BTC-USDT``, ``okx:BTC-USD-220527``);
    frames have the columns of :data:`quantify.model.trades.TICK_COLUMNS`,
    sorted by trade id with duplicates dropped (a reconnecting client may
    receive a trade twice). Lines the client sent (``<-``) are skipped;
    messages that are not trades are counted in ``parser``.
    """
    parser = parser or OkxParser()
    by_key: dict[str, list[Trade]] = {}
    for _, frame in read_frames(path):
        for trade in parser.parse(frame):
            by_key.setdefault(trade.symbol, []).append(trade)
    out = {}
    for key, trades in by_key.items():
        frame = trades_to_frame(trades).sort_values("trade_id", kind="stable")
        out[key] = frame[~frame["trade_id"].duplicated()]
    return out
