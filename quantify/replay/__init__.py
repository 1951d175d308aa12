"""The replay server: a Binance-compatible exchange simulator serving recorded data.

Used by ``quantify demo``, ``quantify replay``, the tests and users without
access to Binance. It speaks Binance's wire protocol (WebSocket streams and
the REST endpoints the ingestion uses), so the ingestion service talks to it
through the same code path as to the real exchange; only the URLs differ.
"""

from __future__ import annotations

from quantify.replay.server import ReplayConfig, ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread

__all__ = ["ReplayConfig", "ReplayServer", "ReplayThread", "Tape"]
