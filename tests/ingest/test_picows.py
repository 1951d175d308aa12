"""The picows receive path's listener, and how a run picks its WebSocket client.

The paths end to end (reconnects, rotation, ``serverShutdown``, oversized
frames, the endpoint board) are the service's tests, run on each client
through the ``ws_client`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest
from picows import WSCloseCode, WSMsgType
from picows.picows import _make_test_ws_frame

from quantify.cli import build_parser
from quantify.config import WS_CLIENTS, IngestConfig, ingest_config_from_env
from quantify.ingest._picows import _Listener


class FakeTransport:
    """What the listener touches of a picows transport."""

    def __init__(self) -> None:
        self.is_close_frame_sent = False
        self.closes: list[tuple[Any, bytes]] = []
        self.disconnects = 0

    def send_close(self, code: Any, message: bytes = b"") -> None:
        self.closes.append((code, message))
        self.is_close_frame_sent = True

    def disconnect(self, graceful: bool = True) -> None:
        self.disconnects += 1


def frame(kind: WSMsgType, payload: bytes, fin: bool = True) -> Any:
    return _make_test_ws_frame(kind, payload, fin, False)


def listener() -> tuple[_Listener, list[bytes], FakeTransport]:
    got: list[bytes] = []
    return _Listener(got.append, link=None), got, FakeTransport()  # type: ignore[arg-type]


def test_whole_and_fragmented_messages_reach_the_handler_in_order() -> None:
    lst, got, transport = listener()
    lst.on_ws_frame(transport, frame(WSMsgType.TEXT, b'{"a":1}'))
    lst.on_ws_frame(transport, frame(WSMsgType.TEXT, b'{"b":', fin=False))
    lst.on_ws_frame(transport, frame(WSMsgType.CONTINUATION, b"2", fin=False))
    lst.on_ws_frame(transport, frame(WSMsgType.CONTINUATION, b"}"))
    lst.on_ws_frame(transport, frame(WSMsgType.BINARY, b'{"c":3}'))
    assert got == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert transport.closes == [] and transport.disconnects == 0


def test_nothing_is_delivered_once_the_close_frame_is_sent() -> None:
    # picows refused a frame above max_frame_size: it sent 1009 and would hand the frame on with the next data
    lst, got, transport = listener()
    transport.send_close(WSCloseCode.MESSAGE_TOO_BIG, b"too big")
    lst.on_ws_frame(transport, frame(WSMsgType.TEXT, b"x" * 200))
    assert got == []


def test_a_close_from_the_server_is_answered_then_the_connection_dropped() -> None:
    lst, got, transport = listener()
    close = frame(WSMsgType.CLOSE, WSCloseCode.GOING_AWAY.value.to_bytes(2, "big") + b"bye")
    lst.on_ws_frame(transport, close)
    assert transport.closes == [(WSCloseCode.GOING_AWAY, b"bye")]  # the server's code and reason, echoed
    assert transport.disconnects == 1 and got == []


def test_the_client_comes_from_the_config_the_environment_or_the_command_line() -> None:
    assert IngestConfig().ws_client == WS_CLIENTS[0] == "picows"
    assert IngestConfig(ws_client="websockets").ws_client == "websockets"
    with pytest.raises(ValueError, match="ws_client must be one of picows, websockets, got 'aiohttp'"):
        IngestConfig(ws_client="aiohttp")
    assert ingest_config_from_env({"QUANTIFY_WS_CLIENT": "websockets"}).ws_client == "websockets"
    assert ingest_config_from_env({"QUANTIFY_WS_CLIENT": "websockets"}, ws_client="picows").ws_client == "picows"
    args = build_parser().parse_args(["ingest", "--ws-client", "websockets"])
    assert args.ws_client == "websockets"
    assert build_parser().parse_args(["ingest"]).ws_client is None  # the environment's, or the default
