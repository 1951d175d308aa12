"""URL routing of the replay server: which market and path tier a request is for.

One port serves Binance spot and USD-M futures side by side:

Spot (``stream.binance.com`` style), as before:
    ``/ws``, ``/ws/<stream>[/<stream>...]`` raw events and
    ``/stream?streams=a/b`` combined events; REST ``/api/v3/...``.

USD-M futures (``fstream.binance.com`` style, with Binance's 2026 routed paths):
    Binance split ``fstream.binance.com`` into three routed entry points,
    each in ``ws`` mode (streams in the path, ``/<tier>/ws/<stream>/...``)
    and ``stream`` mode (``/<tier>/stream?streams=...``, combined events):

    ``/public``
        high-frequency public market data: ``@trade`` (see the note),
        ``@depth...``, ``@bookTicker`` (depth and book ticker recorded but not
        served by the replay yet: the connection is accepted and delivers
        nothing for them).
    ``/market``
        regular market data: ``@aggTrade``, ``@markPrice``, ``@kline_...``,
        tickers, ``@forceOrder``.
    ``/private``
        user data (listenKey and events): refused, there are no accounts.

    A stream subscribed on the wrong tier fails silently on Binance (the
    subscription is acknowledged and nothing arrives); the replay does the
    same and logs a warning naming the tier the stream belongs on.
    REST: ``/fapi/v1/...`` (see :mod:`quantify.replay.fapi`).

Notes
-----
Binance's change notice ("Important WebSocket Change Notice — Base URL Split
& Migration", developers.binance.com, USDⓈ-M futures WebSocket market
streams) names ``@depth`` as public and ``@aggTrade``/``@markPrice`` as market
data but lists no tier for ``@trade``; third-party clients built for the split
(rustrade-data's Binance futures module; maxt's entry-point table) put the raw
``@trade`` stream, which the matching engine pushes on change like depth and
book ticker, under ``/public``. The replay serves it there, as the venue adapter
(:mod:`quantify.venues.binance`) subscribes it: :data:`USDM_STREAM_TIERS` is
the one table to change.
"""

from __future__ import annotations

import http
from dataclasses import dataclass
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.http11 import Response

from quantify.config import is_loopback
from quantify.replay.tape import SPOT, USDM

__all__ = ["USDM_STREAM_TIERS", "USDM_TIERS", "WsRoute", "is_loopback", "response", "stream_tier", "url_host",
           "ws_route"]

#: The routed path tiers of USD-M futures WebSocket streams.
USDM_TIERS = ("public", "market", "private")

#: USD-M stream kind (the part after ``@``, up to a ``_`` or a second ``@``) -> its tier.
USDM_STREAM_TIERS = {
    "depth": "public",
    "bookTicker": "public",
    "trade": "public",
    "aggTrade": "market",
    "markPrice": "market",
    "kline": "market",
    "continuousKline": "market",
    "miniTicker": "market",
    "ticker": "market",
    "forceOrder": "market",
    "compositeIndex": "market",
    "contractInfo": "market",
    "assetIndex": "market",
}


@dataclass(frozen=True)
class WsRoute:
    """A WebSocket URL, understood.

    Attributes
    ----------
    venue : str
        ``"binance"`` (spot) or ``"binance-usdm"``.
    tier : str or None
        The USD-M path tier (``"public"``, ``"market"``, ``"private"``); None for spot.
    combined : bool
        Whether events are wrapped as ``{"stream", "data"}``.
    streams : list of str
        Streams named in the URL, in order, without duplicates.
    """

    venue: str
    tier: str | None
    combined: bool
    streams: list[str]

    @property
    def base(self) -> str:
        """The path prefix of this route (``""`` for spot, ``"/market"`` ...)."""
        return f"/{self.tier}" if self.tier else ""


def stream_tier(stream: str) -> str:
    """The USD-M path tier ``stream`` (``btcusdt@depth@100ms``) belongs on."""
    if stream.startswith("!"):  # every symbol's stream: !markPrice@arr@1s, !bookTicker
        kind = stream[1:].partition("@")[0]
    else:
        kind = stream.partition("@")[2].partition("@")[0].partition("_")[0]
    if kind.startswith("depth"):  # depth5, depth10, depth20
        kind = "depth"
    return USDM_STREAM_TIERS.get(kind, "market")


def ws_route(path: str, query: str) -> WsRoute | None:
    """The WebSocket route of a URL path and query, or None if it is not a WebSocket path."""
    venue, tier, rest = SPOT, None, path
    first, _, tail = path.lstrip("/").partition("/")
    if first in USDM_TIERS:
        venue, tier, rest = USDM, first, "/" + tail
    if rest == "/ws" or rest.startswith("/ws/"):
        names = rest[4:].split("/")
        combined = False
    elif rest == "/stream":
        names = []
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if key == "streams":
                names.extend(value.split("/"))
        combined = True
    elif tier is not None and rest in ("/", ""):
        names, combined = [], False
    else:
        return None
    streams = list(dict.fromkeys(unquote(n) for n in names if n))
    return WsRoute(venue, tier, combined, streams)


def response(status: int, body: bytes, headers: list[tuple[str, str]]) -> Response:
    """An HTTP response that closes the connection."""
    all_headers = Headers(headers)
    all_headers["Content-Length"] = str(len(body))
    all_headers["Connection"] = "close"
    return Response(status, http.HTTPStatus(status).phrase, all_headers, body)


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host
