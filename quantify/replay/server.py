"""A Binance-compatible replay server on loopback, serving recorded trades and order books.

:class:`ReplayServer` speaks Binance's spot and USD-M futures market-data
protocols closely enough for Binance's own client libraries, side by side on
one port: spot WebSocket ``/ws/<stream>`` (raw events), ``/stream?streams=a/b``
(combined ``{"stream", "data"}``), USD-M ``/market/ws/<stream>`` and
``/market/stream?streams=...`` (Binance's 2026 routed paths; ``/public/...``
accepted, ``/private/...`` refused: see :mod:`quantify.replay.routes`),
``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``/``SET_PROPERTY``/
``GET_PROPERTY`` requests, and REST ``/api/v3/...`` (:mod:`quantify.replay.rest`)
and ``/fapi/v1/...`` (:mod:`quantify.replay.fapi`). Spot and USD-M ``BTCUSDT``
are different instruments with their own trades. It is the default data
source offline and the test double of the ingestion service.

Order books: ``<sym>@depth@100ms`` and ``<sym>@bookTicker`` (spot),
``<sym>@depth@0ms``, ``<sym>@depth@100ms`` and ``<sym>@bookTicker`` (USD-M, on
``/public``) serve the recorded book events (:mod:`quantify.replay.book_tape`),
and ``/api/v3/depth``, ``/fapi/v1/depth`` answer snapshots of the replay's
own book at the replay position (:mod:`quantify.replay.depth`). Streams a
recording does not hold (spot ``@depth`` at 1 s, partial books ``@depth5``
...) are accepted and carry nothing.

Perpetuals (USD-M, on ``/market``): ``<sym>@markPrice@1s`` and
``<sym>@markPrice`` (3 s; every symbol's at once: ``!markPrice@arr@1s``,
``!markPrice@arr``) serve a recording's ``markPriceUpdate`` events as
recorded, or synthetic ones made each second from the trades where the
recording has none; ``<sym>@forceOrder`` serves synthetic liquidations
(recordings hold none), seeded by ``seed`` (:mod:`quantify.replay.perp_tape`).
They ride on the trades' timeline like book events;
:meth:`ReplayServer.synthetic` lists what is made up.

Timing: trades are released at their recorded trade time ``T`` scaled by
``speed``; the replay clock starts when the first client subscribes, and a
client that subscribes later gets events from that moment on. ``speed=0``
releases them as fast as clients read; the furthest point any client has been
sent is then the clock. REST serves only trades already released. Book
events ride on the trades' timeline: each is sent just before the first
trade recorded after it (so between two trades they wait for the next one).

Throughput: events are pre-encoded once per lap and format as complete
WebSocket frames (:class:`~quantify.replay.tape.Tape`) and written to the
transport in bulk, many frames per ``write()``, with backpressure from the
transport's write buffer; websockets' ``send()`` is used for nothing on the
data path (it halves the rate a client can receive).

Faults (all off by default, and on both markets' connections, depth ones
included): periodic abrupt drops, corrupted frames, ``serverShutdown``
announcements, refused handshakes, forced HTTP 429s (also callable at run
time); dropped depth diffs (``drop_depth``) and stale depth snapshots
(``stale_snapshot``). :attr:`ReplayServer.stats` counts each one injected.
:class:`ReplayThread` runs a server in a daemon thread for synchronous
callers and tests.

Examples
--------
>>> with ReplayThread(ReplayConfig(speed=0)) as server:  # doctest: +SKIP
...     print(server.ws_url, server.rest_url)
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from quantify.replay._wsframes import garbled, ws_text_frame
from quantify.replay.book_streams import BookStream, EventTape
from quantify.replay.config import DEFAULT_CHUNK_EVENTS, DEFAULT_HOST, DEFAULT_SPEED, ReplayConfig
from quantify.replay.connections import MAX_STREAMS_PER_CONNECTION, Client, control, resolve
from quantify.replay.depth import ServedBooks
from quantify.replay.fapi import UsdmRestApi
from quantify.replay.perp_tape import PerpTape
from quantify.replay.rest import RestApi
from quantify.replay.routes import WsRoute, is_loopback, response, stream_tier, url_host, ws_route
from quantify.replay.tape import SPOT, Tape
from quantify.replay.universe import universe_frames
from quantify.venues.binance.perp_files import read_funding_rows

__all__ = [
    "DEFAULT_CHUNK_EVENTS",
    "DEFAULT_HOST",
    "DEFAULT_SPEED",
    "MAX_STREAMS_PER_CONNECTION",
    "ReplayConfig",
    "ReplayServer",
]

logger = logging.getLogger(__name__)

#: Binance pings every 20 s and drops a client silent for a minute.
PING_INTERVAL = 20.0
PING_TIMEOUT = 60.0
#: Transport write-buffer high-water mark; above it the pump waits.
WRITE_BUFFER_HIGH = 1 << 19

_FAULT_KINDS = ("drop", "corrupt", "shutdown", "refused", "429", "drop_depth")
#: The window of Binance's connection limit per IP.
_CONNECTION_WINDOW = 300.0


class ReplayServer:
    """Serve recorded Binance trades over WebSocket and REST on one port.

    Parameters
    ----------
    config : ReplayConfig, optional
        Settings; the default replays the bundled sample in real time on a
        free loopback port.
    tape : Tape, optional
        The recordings of ``config.files`` already loaded (saves reloading
        them when starting many servers, as tests do).

    Raises
    ------
    FeedError
        If a recording cannot be read or holds no trades.

    Notes
    -----
    Use ``async with ReplayServer(config) as server:`` in asyncio code, or
    a :class:`~quantify.replay.thread.ReplayThread` from synchronous code.
    Fault triggers (:meth:`drop_connections`, ...) must be called on the
    server's event loop; :class:`ReplayThread` forwards them thread-safely.
    """

    def __init__(self, config: ReplayConfig | None = None, *, tape: Tape | None = None) -> None:
        self.config = config or ReplayConfig()
        c = self.config
        if tape is not None and tape.files != c.all_files:
            raise ValueError(f"tape holds {tape.files}, config names {c.all_files}")
        if tape is None and c.synthetic_universe:
            tape = Tape((), frames=universe_frames(c.synthetic_universe, c.universe_seconds))
        self.tape = tape or Tape(c.files, usdm_files=c.usdm_files)
        #: The replay's own books, which REST depth answers come from.
        self.books = ServedBooks(self.tape, loop=c.loop, stale_fraction=c.stale_snapshot, seed=c.seed)
        self.rest = RestApi(self.tape, loop=c.loop, weight_limit=c.weight_limit, books=self.books)
        self.rest.forced_429 = c.force_429
        self.fapi = UsdmRestApi(self.tape, loop=c.loop, weight_limit=c.usdm_weight_limit,
                                forced=self.rest._forced, books=self.books,
                                funding_rows=[r for f in c.funding_files for r in read_funding_rows(f)])
        liquidations = self.tape.liquidations(c.seed)
        #: Every event tape riding on the trades, by index: books, then marks, then liquidations.
        all_marks = [self.tape.all_marks] if self.tape.all_marks is not None else []
        self._book_tapes: list[EventTape] = [*self.tape.books.values(), *self.tape.marks.values(), *all_marks,
                                             *liquidations.values()]
        self._tapes_of: dict[str, list[EventTape]] = {}
        for event_tape in self._book_tapes:
            self._tapes_of.setdefault(event_tape.key, []).append(event_tape)
        self._rng = random.Random(self.config.seed)
        self._server: Server | None = None
        self._clients: set[Client] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._clock_start: float | None = None  # loop time when the first client subscribed
        self._position = 0  # speed 0: furthest slot sent to any client
        self._refuse_until = 0.0
        #: Client IP -> times (monotonic) of its connections in the last 5 minutes.
        self._attempts: dict[str, collections.deque[float]] = {}
        self._port = 0
        self._frames_sent = 0
        self._bytes_sent = 0
        self._connections = 0
        #: Handshakes refused by the connection limit per IP.
        self.rejected_connections = 0
        self._faults = dict.fromkeys(_FAULT_KINDS, 0)

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; returns once the port is bound."""
        if self._server is not None:
            raise RuntimeError("replay server already started")
        c = self.config
        if not is_loopback(c.host):
            logger.warning("replay server listening on non-loopback host %s: reachable from other "
                           "machines, with no authentication", c.host or "'' (every interface)")
        self._server = await serve(
            self._handle, c.host, c.port, process_request=self._process_request,
            compression=None, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
            close_timeout=2, max_size=1 << 16, write_limit=WRITE_BUFFER_HIGH,
            server_header="quantify-replay",
        )
        self._port = self._server.sockets[0].getsockname()[1]
        if c.drop_every > 0:
            self._tasks.append(asyncio.create_task(self._drop_timer()))
        logger.info(
            "replay server on %s (%s; speed %s%s)", self.ws_url, self.describe_symbols(),
            c.speed or "max", ", looping" if c.loop else "",
        )

    def describe_symbols(self) -> str:
        """The symbols served, for start-up lines: listed, or the synthetic universe's range."""
        names = list(self.tape.symbols)
        made_up = [k for k, s in self.tape.symbols.items() if s.synthetic]
        if not made_up:
            return ", ".join(names)
        return (f"SYNTHETIC universe of {len(made_up)} instruments {made_up[0]}..{made_up[-1]}, "
                "made from the recorded spot BTCUSDT of 2024-08-08")

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for client in list(self._clients):
            self._stop_client_tasks(client)
            # A client that stopped reading would hold the close handshake
            # forever (websockets drains the write buffer before its timeout).
            # Likewise a client that answered our close frame but keeps its socket open.
            if client.conn.state is not State.OPEN or (
                client.conn.transport.get_write_buffer_size() > 0
            ):
                client.conn.transport.abort()
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            except TimeoutError:
                for client in list(self._clients):
                    client.conn.transport.abort()
                await self._server.wait_closed()
            self._server = None
        logger.info("replay server stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port listened on (known after :meth:`start`)."""
        return self._port

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL, e.g. ``ws://127.0.0.1:9443`` (append ``/ws/...``)."""
        return f"ws://{url_host(self.config.host)}:{self._port}"

    @property
    def rest_url(self) -> str:
        """Base REST URL, e.g. ``http://127.0.0.1:9443``."""
        return f"http://{url_host(self.config.host)}:{self._port}"

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: frames and bytes sent, trades replayed per symbol, connections, faults.

        ``faults`` counts what was injected: ``drop`` (connections dropped),
        ``corrupt`` (frames), ``shutdown``, ``refused``, ``429``,
        ``drop_depth`` (depth frames not sent) and ``stale_snapshot`` (stale
        REST depth answers); ``depth_answers`` counts every depth answer.
        ``synthetic`` names what the replay makes up (:meth:`synthetic`).
        """
        pos = self.position()
        return {
            "frames_sent": self._frames_sent,
            "bytes_sent": self._bytes_sent,
            "trades_replayed": {
                name: self.tape.replayed_trades(sym, pos) for name, sym in self.tape.symbols.items()
            },
            "connections": self._connections,
            "connections_open": len(self._clients),
            "connections_rejected": self.rejected_connections,
            "synthetic_universe": sum(s.synthetic for s in self.tape.symbols.values()),
            "faults": {**self._faults, "429": self.rest.forced_rejected,
                       "stale_snapshot": self.books.stale_answers},
            "depth_answers": self.books.answers,
            "rest_requests": self.rest.requests + self.fapi.requests,
            "rest_rate_limited": self.rest.rejected_429 + self.fapi.rejected_429,
            "synthetic": self.synthetic(),
            "started": self._clock_start is not None,
            "replay_time": self.now_ms(),
            "position": pos,
        }

    def synthetic(self) -> dict[str, list[str]]:
        """What the replay serves that no recording holds, by instrument.

        ``markPrice`` (where no marks are recorded), ``forceOrder``, and on
        REST ``fundingRate`` (the settlements made from the marks),
        ``openInterest`` (with ``openInterestHist``). Binance's messages have
        no field for it: this is the label (:mod:`quantify.replay.perp_tape`
        and :mod:`quantify.replay.fapi_perp` say how each is made).
        """
        out: dict[str, list[str]] = {}
        for event_tape in self._book_tapes:
            if isinstance(event_tape, PerpTape) and event_tape.synthetic:
                out.setdefault(event_tape.key, []).append(event_tape.kind)
        for key in self.tape.marks:
            out.setdefault(key, []).extend(("fundingRate", "openInterest"))
        return out

    # ---- replay clock ----------------------------------------------------------

    def _start_clock(self) -> None:
        if self._clock_start is None:
            self._clock_start = asyncio.get_running_loop().time()
            logger.info("replay clock started")

    def position(self) -> int:
        """Number of slots (trades of all symbols, over all laps) released so far."""
        if self._clock_start is None:
            return 0
        if self.config.speed == 0:
            return self._position
        return self.tape.position_at(self._replay_ms(), self.config.loop)

    def _replay_ms(self) -> float:
        assert self._clock_start is not None
        elapsed = asyncio.get_running_loop().time() - self._clock_start
        return self.tape.first_time + elapsed * self.config.speed * 1000.0

    def now_ms(self) -> int:
        """The replay clock in ms since the epoch (the first trade's time until it starts)."""
        if self._clock_start is None:
            return self.tape.first_time
        if self.config.speed == 0:
            pos = self._position
            return self.tape.time_of(pos - 1) if pos else self.tape.first_time
        return int(self._replay_ms())

    # ---- fault triggers --------------------------------------------------------

    def drop_connections(self) -> int:
        """Close every WebSocket connection abruptly (no close frame); return how many.

        With ``refuse_for`` set, new handshakes are refused for that long.
        """
        dropped = 0
        for client in list(self._clients):
            self._stop_client_tasks(client)
            client.conn.transport.abort()
            dropped += 1
        self._faults["drop"] += dropped
        logger.info("dropped %d connection(s)", dropped)
        if self.config.refuse_for > 0:
            self.refuse_connections(self.config.refuse_for)
        return dropped

    def send_server_shutdown(self) -> int:
        """Send ``serverShutdown`` to every connection, close each ``shutdown_grace`` s later."""
        clients = [c for c in self._clients if not c.closing]
        for client in clients:
            self._announce_shutdown(client)
        return len(clients)

    def refuse_connections(self, seconds: float) -> None:
        """Answer WebSocket handshakes with HTTP 503 for the next ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)

    def force_429(self, count: int) -> None:
        """Answer the next ``count`` REST requests with HTTP 429 and ``Retry-After: 1``."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        self.rest.forced_429 += count

    async def _drop_timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.drop_every)
            self.drop_connections()

    def _announce_shutdown(self, client: Client) -> None:
        client.closing = True
        ms = self.now_ms()
        self._write(client, [ws_text_frame(orjson.dumps({"e": "serverShutdown", "E": ms}))])
        self._faults["shutdown"] += 1
        logger.info("sent serverShutdown to %s", client.conn.remote_address)
        client.tasks.append(asyncio.create_task(self._close_later(client)))

    async def _close_later(self, client: Client) -> None:
        await asyncio.sleep(self.config.shutdown_grace)
        for task in client.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self._close(client, 1001, "server shutdown")

    async def _shutdown_timer(self, client: Client) -> None:
        await asyncio.sleep(self.config.shutdown_after)
        if not client.closing:
            self._announce_shutdown(client)

    # ---- HTTP: REST and handshake gate -------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        # an origin-form target: path, then the query after the first "?" (urlsplit would read
        # "//[x" as a network location and raise)
        path, _, query = request.path.partition("?")
        route = ws_route(path, query)
        if route is not None:
            if route.tier == "private":
                body = orjson.dumps({"code": -1, "msg": "User data streams are not served by "
                                     "the replay (no accounts)"})
                return response(403, body, [("Content-Type", "application/json")])
            if time.monotonic() < self._refuse_until:
                self._faults["refused"] += 1
                return response(503, b"Service Unavailable\n", [("Content-Type", "text/plain")])
            if len(route.streams) > MAX_STREAMS_PER_CONNECTION:
                body = orjson.dumps({"code": -1, "msg": "Too many streams; max 1024 per connection"})
                return response(400, body, [("Content-Type", "application/json")])
            return self._admit_connection(conn)
        # Everything else is REST (unknown paths get a 404 from RestApi).
        client = conn.remote_address[0] if conn.remote_address else "?"
        api = self.fapi if self.fapi.serves(path) else self.rest
        res = api.handle(path, query, client, self.position(), self.now_ms())
        headers = [("Content-Type", "application/json;charset=UTF-8"), *res.headers.items()]
        return response(res.status, res.body, headers)

    def _admit_connection(self, conn: ServerConnection) -> Response | None:
        """None, or HTTP 429 past ``max_connections_per_5_minutes`` connections of the client's IP."""
        limit = self.config.max_connections_per_5_minutes
        if not limit:
            return None
        ip = conn.remote_address[0] if conn.remote_address else "?"
        now = time.monotonic()
        times = self._attempts.setdefault(ip, collections.deque())
        while times and times[0] <= now - _CONNECTION_WINDOW:
            times.popleft()
        if len(times) >= limit:
            self.rejected_connections += 1
            retry = max(1, int(times[0] + _CONNECTION_WINDOW - now) + 1)
            logger.info("refused a connection from %s: %d connections in 5 minutes (limit %d)",
                        ip, len(times), limit)
            body = orjson.dumps({"code": -1003, "msg": f"Too many connections; max {limit} per 5 minutes "
                                 f"per IP. Retry after {retry} s."})
            return response(429, body, [("Content-Type", "application/json"), ("Retry-After", str(retry))])
        times.append(now)
        return None

    # ---- WebSocket connections ---------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        path, _, query = (conn.request.path if conn.request else "/ws").partition("?")
        route = ws_route(path, query) or WsRoute(SPOT, None, False, [])
        streams = route.streams
        loop = asyncio.get_running_loop()
        client = Client(conn, route, loop.time())
        self._clients.add(client)
        self._connections += 1
        logger.debug("connection from %s: %s", conn.remote_address, path)
        try:
            if streams:
                self._subscribe(client, streams)
            client.tasks.append(asyncio.create_task(self._pump(client)))
            if self.config.shutdown_after > 0:
                client.tasks.append(asyncio.create_task(self._shutdown_timer(client)))
            async for message in conn:
                if not self._admit_message(client, loop.time()):
                    self._stop_client_tasks(client)
                    await self._close(client, 1008, "Too many requests")
                    break
                reply = control(client, message, self._subscribe, self._unsubscribe)
                self._write(client, [ws_text_frame(orjson.dumps(reply))])
        except ConnectionClosed:
            pass
        finally:
            self._stop_client_tasks(client)
            self._clients.discard(client)
            self.books.forget(id(client))
            logger.debug("connection from %s closed", conn.remote_address)

    async def _close(self, client: Client, code: int, reason: str) -> None:
        """Close with a close frame, or abruptly if the client does not read."""
        try:
            await asyncio.wait_for(client.conn.close(code, reason), 5.0)
        except TimeoutError:
            client.conn.transport.abort()

    def _stop_client_tasks(self, client: Client) -> None:
        current = asyncio.current_task()
        for task in client.tasks:
            if task is not current:
                task.cancel()

    def _admit_message(self, client: Client, now: float) -> bool:
        limit = self.config.max_messages_per_second
        if not limit:
            return True
        q = client.messages
        q.append(now)
        while q and q[0] <= now - 1.0:
            q.popleft()
        return len(q) <= limit

    def _write(self, client: Client, frames: list[bytes]) -> None:
        transport = client.conn.transport
        # Once a close frame went either way, data frames would break the protocol.
        if client.conn.state is not State.OPEN or transport.is_closing():
            return
        data = b"".join(frames)
        transport.write(data)
        self._frames_sent += len(frames)
        self._bytes_sent += len(data)

    def _subscribe(self, client: Client, streams: Sequence[str]) -> None:
        was_active = client.active
        first = self._clock_start is None
        route = client.route
        for name in streams:
            if route.tier is not None and name not in client.streams:
                tier = stream_tier(name)
                if tier != route.tier:
                    logger.warning("stream %s belongs on /%s/..., not %s/...: it delivers "
                                   "nothing here, as on Binance", name, tier, route.base)
            client.streams[name] = None
        self._start_clock()
        self._resolve(client)
        if client.active and not was_active:
            # The first subscriber gets the recording from its start; later ones
            # join the running clock, like on a live exchange.
            client.cursor = 0 if first else self.position()
        client.wake.set()

    def _unsubscribe(self, client: Client, streams: Sequence[str]) -> None:
        for name in streams:
            client.streams.pop(name, None)
        self._resolve(client)

    def _resolve(self, client: Client) -> None:
        resolve(client, self.tape, self._tapes_of)

    # ---- the data path -----------------------------------------------------------

    async def _pump(self, client: Client) -> None:
        """Write due events to one client, many frames per write."""
        tape, cfg = self.tape, self.config
        n = tape.n
        loop = asyncio.get_running_loop()
        conn = client.conn
        while conn.state is State.OPEN:
            if not client.active or client.closing:
                client.wake.clear()
                await client.wake.wait()
                continue
            if cfg.speed == 0:
                end = client.cursor + cfg.chunk_events
                if not cfg.loop:
                    end = min(end, n)
            else:
                end = self.position()
            if client.cursor >= end:
                delay: float | None = None
                if cfg.speed > 0 and (cfg.loop or client.cursor < n):
                    assert self._clock_start is not None
                    due = (tape.time_of(client.cursor) - tape.first_time) / (cfg.speed * 1000.0)
                    delay = min(max(self._clock_start + due - loop.time(), 0.0) + 1e-4, 1.0)
                client.wake.clear()
                try:
                    await asyncio.wait_for(client.wake.wait(), delay)
                except TimeoutError:
                    pass
                continue
            start = client.cursor
            lap_end = (start // n + 1) * n
            stop = min(end, start + cfg.chunk_events, lap_end)
            frames = self._frames_between(client, start, stop)
            client.cursor = stop
            if cfg.speed == 0 and stop > self._position:
                self._position = stop
            if frames:
                self._write(client, frames)
                if conn.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                    await conn.drain()
            await asyncio.sleep(0)

    def _frames_between(self, client: Client, start: int, stop: int) -> list[bytes]:
        n = self.tape.n
        lap, j0 = divmod(start, n)
        j1 = j0 + (stop - start)
        slot_symbol = self.tape.slot_symbol
        out: list[bytes] = []
        trade_syms, agg_syms = client.trade_syms, client.agg_syms
        if trade_syms:
            trades = self.tape.frames(lap, "trade", client.combined)
        if agg_syms:
            aggs = self.tape.frames(lap, "aggTrade", client.combined)
        books = [BookStream(self._book_tapes[i], lap, client.combined, roles, self._note_first(client))
                 for i, roles in client.book_roles.items()]
        if not books and bool(trade_syms) != bool(agg_syms):
            # one kind of trade frame and no book: the slots' frames as they stand (the common case)
            frames, wanted = (trades, trade_syms) if trade_syms else (aggs, agg_syms)
            if len(wanted) == len(self.tape.symbols):
                out = [f for f in frames[j0:j1] if f is not None]
            else:
                out = [frames[j] for j in range(j0, j1)  # type: ignore[misc]
                       if slot_symbol[j] in wanted and frames[j] is not None]
            return self._corrupt(out)
        drop = self._depth_dropper()
        for j in range(j0, j1):
            for book in books:
                if book.starts[j] < book.starts[j + 1]:
                    book.frames_at(j, out, drop)
            s = slot_symbol[j]
            if s in trade_syms:
                out.append(trades[j])  # type: ignore[arg-type]
            if s in agg_syms:
                frame = aggs[j]
                if frame is not None:
                    out.append(frame)
        if j1 == n:  # the book events after the lap's last trade
            for book in books:
                book.frames_at(n, out, drop)
        return self._corrupt(out)

    def _corrupt(self, out: list[bytes]) -> list[bytes]:
        """``out`` with the ``corrupt_fraction`` fault applied (in place)."""
        fraction = self.config.corrupt_fraction
        if fraction > 0:
            rnd = self._rng.random
            for i, frame in enumerate(out):
                if rnd() < fraction:
                    out[i] = self._garbage(frame)
        return out

    def _note_first(self, client: Client) -> Callable[[EventTape, int], None]:
        def note(book: EventTape, first_id: int) -> None:
            if book.index not in client.book_started:
                client.book_started.add(book.index)
                self.books.sent_first(book.key, id(client), first_id)
        return note

    def _depth_dropper(self) -> Callable[[], bool] | None:
        fraction = self.config.drop_depth
        if fraction <= 0:
            return None
        rnd = self._rng.random

        def drop() -> bool:
            if rnd() < fraction:
                self._faults["drop_depth"] += 1
                return True
            return False
        return drop

    def _garbage(self, frame: bytes) -> bytes:
        """A broken version of ``frame``: truncated JSON or fields of the wrong type."""
        self._faults["corrupt"] += 1
        return garbled(frame, self._rng)
