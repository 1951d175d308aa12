"""The replay server: a Binance-compatible exchange simulator serving recorded data.

Used by ``quantify demo``, ``quantify replay``, the tests and users without
access to Binance. It speaks Binance's wire protocol (WebSocket streams and
the REST endpoints the ingestion uses), spot and USD-M futures side by side
on one port, so the ingestion service talks to it
through the same code path as to the real exchange; only the URLs differ.
"""

from __future__ import annotations

from quantify.replay.config import ReplayConfig, default_files, usdm_sample_files
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread

__all__ = ["ReplayConfig", "ReplayServer", "ReplayThread", "Tape", "default_files",
           "usdm_sample_files"]
