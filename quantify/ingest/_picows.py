"""The picows receive path: frames parsed in Cython, handed to the receiver's per-frame handler.

websockets parses each frame in Python (about 3-4 µs a frame, 40 % of the
time a trade costs at full speed); picows parses them in Cython and calls a
listener's ``on_ws_frame`` for each, from the transport's ``data_received``,
without a coroutine switch per frame. :func:`picows_connection` keeps
what the websockets path gives (:meth:`Receiver._websockets_connection
<quantify.ingest.receiver.Receiver._websockets_connection>`):

- a reconnect loop with websockets' own backoff generator and retry
  decision (:func:`websockets.client.process_exception`; an HTTP 500, 502,
  503 or 504 answer to the upgrade is retried as websockets retries it);
- every attempt given up after ``connect_timeout`` seconds (TCP, TLS and
  the WebSocket handshake together);
- server pings answered (picows' auto-pong) and a dead connection found:
  picows pings after :data:`PING_IDLE` s without data and drops the
  connection when no pong came within :data:`PING_TIMEOUT` s, as websockets'
  keepalive does;
- a frame above ``max_frame_bytes`` refused by picows (close code 1009,
  ``max_frame_size``) and reported to the link, which counts it;
- a close frame from the server answered, then the connection dropped;
- the event loop running between reads of at most :data:`RECEIVE_BUFFER`
  (the socket's receive buffer), as it does between websockets' reads.

The connection's bookkeeping (the endpoint board, reconnect counts,
rotation) is the receiver's, through the :class:`Link` it passes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from picows import (
    WSCloseCode,
    WSFrame,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    ws_connect,
)
from websockets.client import process_exception

__all__ = ["PING_IDLE", "PING_TIMEOUT", "Closable", "Link", "picows_connection"]

logger = logging.getLogger(__name__)

#: Seconds without a frame before picows pings the server (websockets' default ``ping_interval``).
PING_IDLE = 20.0
#: Seconds a ping may wait for its pong before the connection counts as dead (websockets' ``ping_timeout``).
PING_TIMEOUT = 20.0
#: Seconds a closing handshake may take before the socket is dropped (the websockets path's ``close_timeout``).
CLOSE_TIMEOUT = 2.0
#: Bytes of the socket's receive buffer (the kernel doubles it). picows hands every frame of one read to
#: the listener before the event loop runs again, and grows its read buffer while reads fill it: at full
#: speed one read held up to 84,000 frames (a second of work, the writer's flushes and every timer
#: waiting). A 128 KiB buffer bounds a read to about 1,100 trade frames, as websockets' 256 KiB reads.
RECEIVE_BUFFER = 128 * 1024
#: HTTP answers to the upgrade that are worth retrying (server or proxy trouble), as websockets decides.
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})

_TEXT, _BINARY, _CLOSE, _CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE, WSMsgType.CONTINUATION


class Closable(Protocol):
    """A connection a rotation can close (websockets' ``ClientConnection``, :class:`PicowsConnection`)."""

    async def close(self) -> Any:
        """Close the connection (the closing handshake, bounded in time)."""


class Link(Protocol):
    """What :func:`picows_connection` reports to (the receiver's per-URL bookkeeping)."""

    url: str

    def failed(self, exc: Exception, decide: Callable[[Exception], Exception | None] = ...,
               ) -> Exception | None: ...

    def opened(self, conn: Closable) -> None: ...

    def oversized(self, reason: str) -> None: ...

    def finish(self) -> bool: ...

    def reconnecting(self) -> None: ...


class PicowsConnection:
    """A picows transport, closable by a rotation like a websockets connection."""

    def __init__(self, transport: WSTransport) -> None:
        self.transport = transport

    async def close(self) -> None:
        """Send a close frame, wait up to :data:`CLOSE_TIMEOUT` s for the server's, then drop the socket."""
        transport = self.transport
        if transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), CLOSE_TIMEOUT)
        except TimeoutError:
            pass
        except Exception:  # what ended the connection is raised to its receive loop as well
            logger.debug("connection ended with an error while closing", exc_info=True)
        finally:
            transport.disconnect(graceful=False)


class _Listener(WSListener):  # type: ignore[misc]
    """Hands each data frame's payload to ``handle``; answers a close frame; reassembles fragments."""

    def __init__(self, handle: Callable[[bytes], None], link: Link) -> None:
        super().__init__()
        self.handle = handle
        self.link = link
        self.connected = False
        self._parts: list[bytes] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.connected = True
        self.link.opened(PicowsConnection(transport))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _TEXT or msg_type is _BINARY or msg_type is _CONTINUATION:
            if transport.is_close_frame_sent:
                # Closing: after refusing a frame above max_frame_size, picows hands that frame on
                # when more data comes (its parser state has moved past the check); like websockets,
                # deliver nothing once the close frame is sent.
                return
            if frame.fin and msg_type is not _CONTINUATION:
                self.handle(frame.get_payload_as_bytes())
                return
            # Binance sends whole messages; a fragmented one is put together here, as websockets does.
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                message, self._parts = b"".join(self._parts), []
                self.handle(message)
        elif msg_type is _CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


def _decide(exc: Exception) -> Exception | None:
    """websockets' retry decision, with picows' refused upgrade read as websockets' ``InvalidStatus``."""
    if isinstance(exc, WSInvalidStatusError) and exc.response is not None \
            and exc.response.status in RETRYABLE_STATUS:
        return None
    return process_exception(exc)


async def _open(url: str, listener: _Listener, max_frame_bytes: int, timeout: float) -> WSTransport:
    """One attempt: the connection of ``listener`` to ``url``, handshake done, within ``timeout`` s."""
    async with asyncio.timeout(timeout):
        transport, _ = await ws_connect(
            lambda: listener, url, max_frame_size=max_frame_bytes, websocket_handshake_timeout=timeout,
            enable_auto_ping=True, auto_ping_idle_timeout=PING_IDLE, auto_ping_reply_timeout=PING_TIMEOUT,
            enable_auto_pong=True, max_redirects=0, logger_name=logger.getChild("picows"))
    if not listener.connected:  # the peer hung up during the handshake
        raise ConnectionResetError("connection closed during the WebSocket handshake")
    return transport


async def picows_connection(url: str, handle: Callable[[bytes], None], link: Link, *, max_frame_bytes: int,
                            connect_timeout: float, delays: Callable[[], Iterator[float]]) -> None:
    """Receive on ``url`` with picows, reconnecting, until ``link`` says the connection was retired.

    Parameters
    ----------
    url : str
        The stream URL (``ws://`` or ``wss://``).
    handle : callable
        Called with each message's payload (undecoded bytes), in order.
    link : Link
        The receiver's bookkeeping of the URL (board, rotation, counters).
    max_frame_bytes : int
        Frames above this size are refused (close code 1009) and reported
        to ``link.oversized``; the connection is then re-opened.
    connect_timeout : float
        Seconds one attempt may take (TCP, TLS, handshake).
    delays : callable
        Returns the delays of one outage (websockets' ``backoff``); a
        successful connection starts the next outage afresh.

    Raises
    ------
    Exception
        A failed attempt websockets' retry decision calls fatal; an
        exception raised by ``handle`` (picows closes the connection with
        1011 and hands it back here).
    """
    pending: Iterator[float] | None = None
    while True:
        try:
            transport = await _open(url, _Listener(handle, link), max_frame_bytes, connect_timeout)
        except Exception as exc:
            fatal = link.failed(exc, _decide)
            if fatal is exc:
                raise
            if fatal is not None:
                raise fatal from exc
            if pending is None:
                pending = delays()
            delay = next(pending)
            logger.info("connect failed; reconnecting in %.1f seconds: %s", delay, exc)
            await asyncio.sleep(delay)
            continue
        pending = None
        try:
            try:
                await transport.wait_disconnected()
            except WSProtocolError:
                pass  # picows refused a frame and closed with its code: read below
            handshake = transport.close_handshake
            sent = handshake.sent if handshake is not None else None
            if sent is not None and sent.code == WSCloseCode.MESSAGE_TOO_BIG:
                link.oversized(sent.reason)
        finally:
            if not transport.is_disconnected:  # cancelled (the service stops): close, as websockets would
                if not transport.is_close_frame_sent:
                    transport.send_close(WSCloseCode.OK)
                transport.disconnect()
            retiring = link.finish()
        if retiring:
            return
        link.reconnecting()
