"""Binance: spot (``binance``) and USD-M futures (``binance-usdm``), one protocol, two APIs.

Both speak the same WebSocket event format (:mod:`.parse`), the same REST
market-data endpoints under different prefixes and weights (:mod:`.rest`)
and the same recorded-file formats (:mod:`.recordings`). What differs:

========================  ==================================  ==========================================
                          spot (:data:`SPOT`)                 USD-M futures (:data:`USDM`)
========================  ==================================  ==========================================
WebSocket                 ``wss://stream.binance.com:9443``   ``wss://fstream.binance.com``, routed paths
combined stream           ``/stream?streams=...``             ``/public/stream?...`` (``@trade``,
                                                              ``@depth*``, ``@bookTicker``),
                                                              ``/market/stream?...`` (``@aggTrade``)
depth diffs               ``@depth@100ms``, ``U`` = prev ``u``+1  ``@depth@0ms``/``@100ms``, ``pu`` chain
depth snapshot (REST)     ``/api/v3/depth``, limit <= 5,000     ``/fapi/v1/depth``, limit <= 1,000
perpetual streams         none                                ``@markPrice@1s``, ``@forceOrder`` on ``/market``
perpetual REST            none                                ``fundingRate``, ``premiumIndex``, ``openInterest``,
                                                              ``/futures/data/openInterestHist``
streams per connection    1,024                               200
REST                      ``https://api.binance.com/api/v3``  ``https://fapi.binance.com/fapi/v1``
weight budget             6,000 per minute                    2,400 per minute
========================  ==================================  ==========================================

USD-M routing. Binance split ``fstream.binance.com`` into three routed
entry points ("Important WebSocket Change Notice - Base URL Split &
Migration", developers.binance.com, derivatives / usds-margined-futures /
websocket-market-streams; announced in "Binance Futures Upgrades USDⓈ-M
Futures WebSocket URL Architecture", legacy URLs "permanently retired on
2026-04-23"): ``/public`` for high-frequency public data (``@bookTicker``,
``@depth*`` and the raw ``@trade`` stream the matching engine pushes),
``/market`` for regular market data (``@aggTrade``, ``@markPrice``,
``@kline_*``, tickers, ``@forceOrder``; the notice's own example is
``wss://fstream.binance.com/market/stream?streams=bnbusdt@aggTrade/btcusdt@markPrice``)
and ``/private`` for user data. "Connections that do not include a routed
path will only receive data from the Public endpoint": a stream on the
wrong path stays silent, so each kind goes on its documented path. The
USD-M "Websocket Market Streams" page gives the limit of 200 streams per
connection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from quantify.venues.base import Venue
from quantify.venues.binance import recordings
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.rest import SPOT_API, USDM_API, BinanceApi, BinanceRest, RestConfig, RestObserver

__all__ = ["SPOT", "USDM", "BinanceVenue"]


@dataclass(frozen=True)
class BinanceVenue(Venue):
    """A Binance market-data API (spot or USD-M futures).

    Attributes
    ----------
    api : BinanceApi
        REST prefix, endpoint weights and budget.
    routes : tuple of (str, str)
        Stream kind -> WebSocket path prefix (``("trade", "/public")``); empty:
        combined streams at the root (spot).
    """

    api: BinanceApi = SPOT_API
    routes: tuple[tuple[str, str], ...] = ()

    def _base(self, ws_base: str | None) -> str:
        base = (ws_base or self.ws_url).rstrip("/")
        for suffix in ("/stream", "/ws"):
            base = base.removesuffix(suffix)
        for _, route in self.routes:
            base = base.removesuffix(route)
        return base

    def stream_url_prefix(self, ws_base: str | None, kind: str) -> str:
        """The combined-stream URL up to ``?streams=`` for ``kind`` streams."""
        if kind not in self.book_kinds and kind not in self.perp_kinds:
            self.check_kind(kind)
        route = dict(self.routes).get(kind, "")
        return f"{self._base(ws_base)}{route}/stream"

    def stream_urls(self, ws_base: str | None, symbols: Sequence[str], kind: str,
                    per_connection: int) -> list[str]:
        """Combined-stream URLs, ``<symbol>@<kind>`` each, the venue's limit per connection."""
        if per_connection < 1:
            raise ValueError(f"per_connection must be at least 1, got {per_connection!r}")
        prefix = self.stream_url_prefix(ws_base, kind)
        names = [f"{s.lower()}@{kind}" for s in symbols]
        size = min(per_connection, self.max_streams_per_connection)
        return [f"{prefix}?streams={'/'.join(names[i:i + size])}" for i in range(0, len(names), size)]

    def book_stream_urls(self, ws_base: str | None, symbols: Sequence[str], per_connection: int) -> list[str]:
        """``<symbol>@<depth kind>`` and ``<symbol>@bookTicker`` per symbol, both on one connection.

        The depth kind is the venue's first (spot ``depth@100ms``, USD-M
        ``depth@0ms``); ``bookTicker`` carries the update id of the depth
        event that contains it and arrives before it, on the same connection.
        """
        if per_connection < 2:
            raise ValueError(f"per_connection must be at least 2 for order books, got {per_connection!r}")
        depth, ticker = self.book_kinds[0], "bookTicker"
        prefix = self.stream_url_prefix(ws_base, depth)
        if prefix != self.stream_url_prefix(ws_base, ticker):
            raise ValueError(f"{self.name}: {depth} and {ticker} are routed apart")
        per_symbol = min(per_connection, self.max_streams_per_connection) // 2
        out = []
        for i in range(0, len(symbols), per_symbol):
            names = [f"{s.lower()}@{k}" for s in symbols[i:i + per_symbol] for k in (depth, ticker)]
            out.append(f"{prefix}?streams={'/'.join(names)}")
        return out

    def perp_stream_urls(self, ws_base: str | None, symbols: Sequence[str], per_connection: int) -> list[str]:
        """``<symbol>@markPrice@1s`` and ``<symbol>@forceOrder`` per symbol, both on one connection.

        USD-M routes both to ``/market``; a spot venue has none
        (``ValueError``).
        """
        if not self.perp_kinds:
            raise ValueError(f"{self.name} has no perpetual streams (mark price, liquidations): "
                             "they are on binance-usdm")
        if per_connection < len(self.perp_kinds):
            raise ValueError(f"per_connection must be at least {len(self.perp_kinds)} for perpetual streams, "
                             f"got {per_connection!r}")
        prefix = self.stream_url_prefix(ws_base, self.perp_kinds[0])
        if any(self.stream_url_prefix(ws_base, k) != prefix for k in self.perp_kinds):
            raise ValueError(f"{self.name}: {', '.join(self.perp_kinds)} are routed apart")
        per_symbol = min(per_connection, self.max_streams_per_connection) // len(self.perp_kinds)
        out = []
        for i in range(0, len(symbols), per_symbol):
            names = [f"{s.lower()}@{k}" for s in symbols[i:i + per_symbol] for k in self.perp_kinds]
            out.append(f"{prefix}?streams={'/'.join(names)}")
        return out

    def check_depth_limit(self, limit: int) -> int:
        self.api.depth_weight(limit)  # raises for a limit the endpoint refuses
        return limit

    def parser(self, max_frame_bytes: int) -> FrameParser:
        return FrameParser(max_frame_bytes)

    def rest(self, base_url: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
             observer: RestObserver | None = None, **options: Any) -> BinanceRest:
        """A :class:`BinanceRest`; ``options`` are further :class:`RestConfig` fields."""
        config = RestConfig(base_url=base_url or self.rest_url, api=self.api, **options)
        return BinanceRest(config, transport=transport, observer=observer)

    def perp_rest(self, base_url: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
                  observer: RestObserver | None = None) -> BinanceRest:
        """:meth:`rest`, for a venue with perpetuals (USD-M); spot raises ``ValueError`` naming binance-usdm."""
        if not self.perp_kinds:
            raise ValueError(f"{self.name} has no perpetual futures (funding, open interest): they are on "
                             "binance-usdm, e.g. binance-usdm:BTCUSDT")
        return self.rest(base_url, transport=transport, observer=observer)

    def trades_weight(self, aggregate: bool) -> int:
        return self.api.weight("aggTrades" if aggregate else "historicalTrades")

    def trades_limit(self, aggregate: bool) -> int:
        return self.api.max_limit("aggTrades" if aggregate else "historicalTrades")

    def read_frames(self, path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
        return recordings.read_frames(path)

    def read_trades(self, path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
        return recordings.read_trades(path)


#: Binance spot: plain ``BTCUSDT`` instruments.
SPOT = BinanceVenue(
    name="binance", ws_url="wss://stream.binance.com:9443", rest_url="https://api.binance.com",
    stream_kinds=("trade", "aggTrade"), max_streams_per_connection=1024,
    weight_limit=SPOT_API.weight_limit, api=SPOT_API,
    book_kinds=("depth@100ms", "bookTicker"), book_rule="spot",
)

#: Binance USD-M futures: ``binance-usdm:BTCUSDT`` instruments.
USDM = BinanceVenue(
    name="binance-usdm", ws_url="wss://fstream.binance.com", rest_url="https://fapi.binance.com",
    stream_kinds=("trade", "aggTrade"), max_streams_per_connection=200,
    weight_limit=USDM_API.weight_limit, api=USDM_API,
    routes=(("trade", "/public"), ("aggTrade", "/market"), ("depth@0ms", "/public"),
            ("depth@100ms", "/public"), ("bookTicker", "/public"), ("markPrice@1s", "/market"),
            ("forceOrder", "/market")),
    book_kinds=("depth@0ms", "depth@100ms", "bookTicker"), book_rule="usdm",
    perp_kinds=("markPrice@1s", "forceOrder"),
)
