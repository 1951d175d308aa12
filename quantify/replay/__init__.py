"""The replay server: a Binance-compatible exchange simulator serving recorded data.

Used by ``quantify demo``, ``quantify replay``, the tests and users without
access to Binance. It speaks Binance's wire protocol (WebSocket streams and
the REST endpoints the ingestion uses), spot and USD-M futures side by side
on one port, so the ingestion service talks to it
through the same code path as to the real exchange; only the URLs differ.

USD-M perpetuals: ``<sym>@markPrice@1s``/``@markPrice`` serve recorded
``markPriceUpdate`` events as recorded, or *synthetic* marks made from the
trades where none are recorded; ``<sym>@forceOrder`` serves *synthetic*
liquidations; REST ``fundingRate`` serves real settlements from funding files
(the bundled XRPUSDT 2021 history) and *synthetic* ones for the recordings'
symbols, ``premiumIndex`` the marks, ``openInterest``/``openInterestHist``
*synthetic* open interest (:mod:`quantify.replay.perp_tape`,
:mod:`quantify.replay.fapi_perp`). Binance's messages cannot say so:
:meth:`ReplayServer.synthetic`, its ``stats`` and ``quantify replay``'s
start-up line do.
"""

from __future__ import annotations

from quantify.replay.config import ReplayConfig, default_files, funding_sample_files, usdm_sample_files
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread

__all__ = ["ReplayConfig", "ReplayServer", "ReplayThread", "Tape", "default_files",
           "funding_sample_files", "usdm_sample_files"]
