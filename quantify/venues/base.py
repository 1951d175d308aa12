"""The venue seam: one interface per exchange API, everything exchange-specific behind it.

A :class:`Venue` is a frozen description of one market-data API (Binance
spot, Binance USD-M futures, OKX, ...) plus the factories ingestion needs:

- its name (the ``venue`` of :class:`~quantify.model.instrument.Instrument`:
  ``"binance"``, ``"binance-usdm"``, ``"okx"``), its default WebSocket and
  REST base URLs, the stream kinds it offers and its streams-per-connection
  limit;
- :meth:`Venue.stream_urls`: the WebSocket URLs carrying a set of symbols'
  streams (combined-stream paths, routing, connection limits);
- :meth:`Venue.parser`: a sans-I/O frame parser producing venue-neutral
  events (:class:`~quantify.model.trades.Trade`,
  :class:`~quantify.model.trades.ServerShutdown`; anything else is ignored
  by ingestion);
- :meth:`Venue.rest`: a REST client (:class:`VenueRest`) with the venue's
  weight budget and endpoint weights;
- :attr:`Venue.consecutive_ids`: whether trade ids increase by exactly one
  per trade of a symbol, which is what gap detection relies on;
- :meth:`Venue.read_trades` / :meth:`Venue.read_frames`: its recorded-file
  readers.

Nothing here opens a socket; the ingestion layer drives the I/O.
"""

from __future__ import annotations

import abc
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import httpx
import pandas as pd

from quantify.model.book import DepthSnapshot
from quantify.model.instrument import Instrument
from quantify.model.perp import FundingSettlement, OpenInterest
from quantify.model.trades import Trade

__all__ = ["FrameParserLike", "PerpRest", "Venue", "VenueRest", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """A transport error in words: ``connection refused``, ``cannot resolve the host name``, ``no answer in time``.

    httpx and websockets wrap the socket's error (``All connection attempts
    failed``); the innermost ``OSError`` says what happened.
    """
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in reversed(chain):
        if isinstance(e, socket.gaierror):
            return f"cannot resolve the host name ({e.strerror or e})"
        if isinstance(e, ssl.SSLError):
            return f"TLS error ({e.reason or e})"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, OSError) and e.errno is not None:
            return e.strerror or str(e)
    for e in chain:
        if isinstance(e, (TimeoutError, httpx.TimeoutException)):
            return f"no answer in time ({str(e) or 'timed out'})"
    return str(exc) or type(exc).__name__


class FrameParserLike(Protocol):
    """What ingestion needs of a venue's frame parser (sans I/O)."""

    malformed: Any
    """Counter of rejected frames by reason."""

    def parse(self, frame: str | bytes) -> object | None:
        """The event of one frame (a ``Trade``, a ``ServerShutdown``, ...) or ``None``."""

    def reject_oversized(self, detail: str) -> None:
        """Count a frame the WebSocket layer refused as too big."""

    @property
    def malformed_total(self) -> int:
        """Frames rejected so far."""


class VenueRest(Protocol):
    """What ingestion and backfill need of a venue's REST client.

    Ids and times are the venue's own (trade or aggregate-trade ids; ms).
    Failures raise :class:`~quantify.exceptions.RestError`.
    """

    requests: int
    rate_limited: int

    async def trades_from(self, symbol: str, from_id: int, *, aggregate: bool, limit: int = 1000) -> list[Trade]:
        """Up to ``limit`` trades (or aggregate trades) with id >= ``from_id``, in id order."""

    async def agg_trades_between(self, symbol: str, start_ms: int, end_ms: int, *, limit: int = 1000) -> list[Trade]:
        """Aggregate trades with ``start_ms <= time <= end_ms`` (the window at most 1 h wide)."""

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int, *,
                     limit: int = 1000) -> list[list[Any]]:
        """Kline rows opening in ``[start_ms, end_ms]``."""

    async def depth(self, symbol: str, limit: int = 1000, *, retries: int | None = None) -> DepthSnapshot:
        """A depth snapshot of ``symbol`` with ``limit`` levels a side, within the weight budget."""

    async def server_time(self, *, retries: int | None = None) -> int:
        """The exchange's clock (ms)."""

    async def exchange_info(self, symbol: str | None = None) -> dict[str, Any]:
        """The venue's instrument metadata."""

    async def listed_symbols(self, symbols: Sequence[str] = (), *, retries: int | None = None) -> frozenset[str]:
        """The venue's listed symbols: at least those of ``symbols`` it lists, or all when one is unknown.

        ``retries`` (default: the client's own) bounds attempts on connection
        errors: 0 for a check at start that must answer within seconds.
        """

    async def aclose(self) -> None:
        """Close the connection pool."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class PerpRest(Protocol):
    """What a backfill (and the live polling) of perpetual-futures data needs of a venue's REST client.

    Binance USD-M's :class:`~quantify.venues.binance.rest.BinanceRest` is one
    (:meth:`Venue.perp_rest`). Times are ms since the epoch; ranges are
    inclusive at both ends, as the venue's own. Failures raise
    :class:`~quantify.exceptions.RestError`.
    """

    requests: int
    rate_limited: int
    #: Request weight spent so far (every attempt, across the venue's budget windows).
    weight_spent: int

    async def funding_rate(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None,
                           limit: int = 1000, *, retries: int | None = None) -> list[FundingSettlement]:
        """At most ``limit`` settlements from ``start_ms`` up to ``end_ms``, ascending."""

    async def open_interest(self, symbol: str, *, retries: int | None = None) -> OpenInterest:
        """Open interest of ``symbol`` now, in contracts (what a live poll stores)."""

    async def open_interest_hist(self, symbol: str, period: str = "5m", start_ms: int | None = None,
                                 end_ms: int | None = None, limit: int = 500, *,
                                 retries: int | None = None) -> list[OpenInterest]:
        """Open interest every ``period`` with ``start_ms <= time <= end_ms`` (the venue keeps 30 days)."""

    async def server_time(self, *, retries: int | None = None) -> int:
        """The exchange's clock (ms)."""

    async def listed_symbols(self, symbols: Sequence[str] = (), *, retries: int | None = None) -> frozenset[str]:
        """The venue's listed symbols (as :meth:`VenueRest.listed_symbols`)."""

    async def aclose(self) -> None:
        """Close the connection pool."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class Venue(abc.ABC):
    """One exchange API, as ingestion, backfill and the readers see it.

    Attributes
    ----------
    name : str
        The instrument venue name (``"binance"``, ``"binance-usdm"``).
    ws_url, rest_url : str
        Default WebSocket and REST base URLs (no path).
    stream_kinds : tuple of str
        Trade stream kinds offered (``"trade"``, ``"aggTrade"``).
    book_kinds : tuple of str
        Order-book stream kinds offered (``"depth@100ms"``, ``"bookTicker"``); the first
        depth kind is the default.
    perp_kinds : tuple of str
        Perpetual-futures stream kinds offered (``"markPrice@1s"``, ``"forceOrder"``);
        empty for a spot venue.
    book_rule : str
        The continuity rule of its depth diffs (:data:`quantify.model.booksync.RULES`).
    max_streams_per_connection : int
        The venue's limit of streams on one WebSocket connection.
    weight_limit : int
        REST request weight per minute per IP.
    consecutive_ids : bool
        Trade ids (and aggregate ids) of a symbol increase by one per trade,
        so a jump is lost data and gaps can be refilled by id.
    """

    name: str
    ws_url: str
    rest_url: str
    stream_kinds: tuple[str, ...]
    max_streams_per_connection: int
    weight_limit: int
    consecutive_ids: bool = True
    book_kinds: tuple[str, ...] = ()
    book_rule: str = "spot"
    perp_kinds: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name

    def check_kind(self, kind: str) -> str:
        """``kind`` if this venue offers it; else ``ValueError`` naming the ones it does."""
        if kind not in self.stream_kinds:
            raise ValueError(f"{self.name} offers the streams {', '.join(self.stream_kinds)}, not {kind!r}")
        return kind

    def check_book_kind(self, kind: str) -> str:
        """``kind`` if this venue streams it for order books; else ``ValueError`` naming the ones it does."""
        if kind not in self.book_kinds:
            offered = ", ".join(self.book_kinds) or "none"
            raise ValueError(f"{self.name} offers the order-book streams {offered}, not {kind!r}")
        return kind

    def instrument(self, symbol: str) -> Instrument:
        """The instrument of this venue's ``symbol`` (``"BTCUSDT"`` -> ``binance-usdm:BTCUSDT``)."""
        return Instrument.parse(f"{self.name}:{symbol}")

    @abc.abstractmethod
    def stream_urls(self, ws_base: str | None, symbols: Sequence[str], kind: str,
                    per_connection: int) -> list[str]:
        """WebSocket URLs carrying the ``kind`` streams of ``symbols`` (the venue's spelling).

        ``ws_base`` replaces :attr:`ws_url` (a replay server); at most
        ``min(per_connection, max_streams_per_connection)`` streams each.
        """

    def book_stream_urls(self, ws_base: str | None, symbols: Sequence[str], per_connection: int) -> list[str]:
        """WebSocket URLs carrying the order-book streams (depth diffs and best bid/offer) of ``symbols``.

        A symbol's streams share one connection, so their relative order is the venue's.
        """
        raise ValueError(f"{self.name} streams no order books")

    def perp_stream_urls(self, ws_base: str | None, symbols: Sequence[str], per_connection: int) -> list[str]:
        """WebSocket URLs carrying the :attr:`perp_kinds` streams of ``symbols`` (mark price, liquidations).

        A venue without perpetuals (spot) raises ``ValueError``.
        """
        raise ValueError(f"{self.name} has no perpetual streams (mark price, liquidations): "
                         "they are on binance-usdm")

    def check_depth_limit(self, limit: int) -> int:
        """``limit`` if the venue's REST depth snapshot takes it; else ``ValueError`` naming the ones it does."""
        raise ValueError(f"{self.name} serves no depth snapshots")

    @abc.abstractmethod
    def parser(self, max_frame_bytes: int) -> FrameParserLike:
        """A new sans-I/O frame parser (frames above ``max_frame_bytes`` rejected)."""

    @abc.abstractmethod
    def rest(self, base_url: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
             observer: Callable[[BaseException | None], None] | None = None, **options: Any) -> VenueRest:
        """A REST client on ``base_url`` (default :attr:`rest_url`) within the venue's budget.

        ``observer`` is told after every request attempt whether the host
        answered (``None``) or the transport error.
        """

    def perp_rest(self, base_url: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
                  observer: Callable[[BaseException | None], None] | None = None) -> PerpRest:
        """A REST client for perpetual-futures history (funding, open interest), as :meth:`rest`.

        Raises ``ValueError`` for a venue without perpetuals (spot), naming the one that has them.
        """
        raise ValueError(f"{self.name} has no perpetual futures (funding, open interest): they are on "
                         "binance-usdm, e.g. binance-usdm:BTCUSDT")

    @abc.abstractmethod
    def trades_weight(self, aggregate: bool) -> int:
        """REST weight of one request of trades by id (aggregate trades if ``aggregate``)."""

    @abc.abstractmethod
    def trades_limit(self, aggregate: bool) -> int:
        """The most trades (aggregate trades if ``aggregate``) one REST request by id returns."""

    @abc.abstractmethod
    def read_frames(self, path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
        """``(receive time ns, frame)`` of a recorded file (or a journal segment)."""

    @abc.abstractmethod
    def read_trades(self, path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
        """Every trade of a recorded file, per venue symbol, as tick frames."""
