"""WebSocket connections of the replay server: per-connection state, subscriptions and control messages.

:class:`Client` is one connection's state (route, streams, cursor, tasks);
:func:`resolve` turns its streams into what the server sends it;
:func:`control` answers Binance's control messages (``SUBSCRIBE``,
``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``, ``GET_PROPERTY``)
with Binance's error codes and messages, the same on spot and USD-M paths.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection

from quantify.replay.book_streams import EventTape
from quantify.replay.routes import WsRoute, stream_tier
from quantify.replay.tape import SPOT, Tape

__all__ = ["MAX_STREAMS_PER_CONNECTION", "Client", "control", "resolve", "ws_error"]

logger = logging.getLogger(__name__)

#: Binance: at most 1024 streams per connection.
MAX_STREAMS_PER_CONNECTION = 1024

#: ``<symbol>@<kind>...``, or ``!<kind>...``: every symbol's stream (``!markPrice@arr@1s``, ``!bookTicker``)
_STREAM_NAME = re.compile(r"[A-Za-z0-9_.\-]+(@[A-Za-z0-9_]+)+|![A-Za-z0-9_]+(@[A-Za-z0-9_]+)*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_]{1,36}")
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"


class Client:
    """State of one WebSocket connection."""

    def __init__(self, conn: ServerConnection, route: WsRoute, now: float) -> None:
        self.conn = conn
        self.route = route
        self.combined = route.combined
        self.streams: dict[str, None] = {}  # ordered set
        self.trade_syms: set[int] = set()
        self.agg_syms: set[int] = set()
        #: Book index -> the roles wanted (:data:`~quantify.replay.book_tape.DEPTH`, ...).
        self.book_roles: dict[int, set[int]] = {}
        #: Books whose first depth event this connection was sent.
        self.book_started: set[int] = set()
        self.cursor = 0
        self.wake = asyncio.Event()
        self.opened = now
        self.messages: collections.deque[float] = collections.deque()
        self.tasks: list[asyncio.Task[None]] = []
        self.closing = False

    @property
    def active(self) -> bool:
        return bool(self.trade_syms or self.agg_syms or self.book_roles)


def resolve(client: Client, tape: Tape, tapes_of: Mapping[str, Sequence[EventTape]]) -> None:
    """Set what ``client``'s streams carry: trade and aggregate symbols, and roles of event tapes.

    ``tapes_of`` maps an instrument key to its event tapes (book, marks,
    liquidations; ``binance-usdm:!markPrice`` for ``!markPrice@arr...``). A
    stream on the wrong tier, of an unknown symbol or kind carries nothing.
    """
    trade: set[int] = set()
    agg: set[int] = set()
    books: dict[int, set[int]] = {}
    route = client.route
    for name in client.streams:
        sym_name, _, kind = name.partition("@")
        if route.tier is not None and stream_tier(name) != route.tier:
            logger.debug("stream %s carries no data here", name)
            continue
        if kind in ("trade", "aggTrade"):
            sym = tape.symbol(sym_name.upper(), route.venue) if sym_name.islower() else None
            if sym is None:
                logger.debug("stream %s carries no data here", name)
            elif kind == "trade":
                trade.add(sym.index)
            else:
                agg.add(sym.index)
            continue
        key = sym_name.upper() if route.venue == SPOT else f"{route.venue}:{sym_name.upper()}"
        if sym_name.startswith("!"):  # every symbol's stream (!markPrice@arr@1s)
            key, sym_name = f"{route.venue}:{sym_name}", sym_name.lower()
        found = [(t, t.stream_role(name)) for t in tapes_of.get(key, ())] if sym_name.islower() else []
        roles = [(t.index, role) for t, role in found if role is not None]
        if not roles:
            logger.debug("stream %s carries no data here", name)
            continue
        books.setdefault(roles[0][0], set()).add(roles[0][1])
    client.trade_syms, client.agg_syms, client.book_roles = trade, agg, books


def control(
    client: Client, message: str | bytes,
    subscribe: Callable[[Client, Sequence[str]], None],
    unsubscribe: Callable[[Client, Sequence[str]], None],
) -> dict[str, Any]:
    """Answer one control message (``SUBSCRIBE``, ...) of ``client``; never raises.

    ``subscribe``/``unsubscribe`` apply a valid (un)subscription.
    """
    try:
        msg = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        return ws_error(3, f"Invalid JSON: {exc}", None)
    if type(msg) is not dict:
        return ws_error(2, "Invalid request: expected an object", None)
    req_id = msg.get("id")
    if not (
        req_id is None or (type(req_id) is int and 0 <= req_id < 2**63)
        or (type(req_id) is str and _REQUEST_ID.fullmatch(req_id))
    ):
        return ws_error(2, "Invalid request: request ID must be an unsigned integer", None)
    method = msg.get("method")
    if method is None:
        return ws_error(2, "Invalid request: missing field `method`", req_id)
    params = msg.get("params", [])
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if type(params) is not list or not all(type(p) is str for p in params):
            return ws_error(2, "Invalid request: params must be an array of strings", req_id)
        bad = [p for p in params if not _STREAM_NAME.fullmatch(p)]
        if bad:
            return ws_error(2, f"Invalid request: invalid stream name `{bad[0][:64]}`", req_id)
        if method == "SUBSCRIBE":
            if len({**client.streams, **dict.fromkeys(params)}) > MAX_STREAMS_PER_CONNECTION:
                return ws_error(
                    2, "Invalid request: too many streams; max 1024 per connection", req_id
                )
            subscribe(client, params)
        else:
            unsubscribe(client, params)
        return {"result": None, "id": req_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(client.streams), "id": req_id}
    if method == "SET_PROPERTY":
        if type(params) is not list or len(params) != 2 or params[0] != "combined":
            return ws_error(0, "Unknown property", req_id)
        if type(params[1]) is not bool:
            return ws_error(1, "Invalid value type: expected Boolean", req_id)
        client.combined = params[1]
        return {"result": None, "id": req_id}
    if method == "GET_PROPERTY":
        if type(params) is not list or params != ["combined"]:
            return ws_error(0, "Unknown property", req_id)
        return {"result": client.combined, "id": req_id}
    shown = method if type(method) is str else orjson.dumps(method).decode()
    return ws_error(
        2, f"Invalid request: unknown variant `{shown[:64]}`, expected one of {_METHODS}",
        req_id,
    )


def ws_error(code: int, msg: str, req_id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": req_id}
