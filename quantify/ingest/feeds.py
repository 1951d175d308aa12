"""One venue's share of an ingestion run: its connections' URLs, parser, buffers, journal, REST.

The service streams instruments of several venues at once (Binance spot
and USD-M in one store); each venue of the run gets a :class:`VenueFeed`,
which holds what is specific to it:

- the venue adapter (:class:`~quantify.venues.base.Venue`), its stream URLs
  for the run's instruments (with the configured base-URL overrides) and its
  own frame parser;
- its buffers, keyed by the venue's symbol (``BTCUSDT``, what its frames
  carry) for the receive loop; the service also keys the same buffers by
  instrument (``binance-usdm:BTCUSDT``), the name in the store;
- its journal (one per venue, so that recovery parses each frame with the
  parser of the venue it came from) and its REST clients (trades and
  snapshots; perpetual data, when the run polls it).

:class:`ParserTotals` and :class:`RestTotals` sum the counters of every
venue's parser and REST client, for status reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from quantify.config import IngestConfig
from quantify.ingest.buffer import SymbolBuffer
from quantify.ingest.journal import Journal
from quantify.model.instrument import Instrument
from quantify.venues import venue as venue_named
from quantify.venues.base import FrameParserLike, PerpRest, Venue, VenueRest

__all__ = ["ParserTotals", "RestTotals", "VenueFeed", "by_venue", "perp_instruments", "stream_urls",
           "venue_stream_urls"]


def by_venue(instruments: Iterable[Instrument]) -> dict[str, list[Instrument]]:
    """Group instruments by venue name, venues and instruments in first-seen order."""
    out: dict[str, list[Instrument]] = {}
    for inst in instruments:
        out.setdefault(inst.venue, []).append(inst)
    return out


def venue_stream_urls(config: IngestConfig, keys: Sequence[str] | None = None) -> list[tuple[Venue, str]]:
    """``(venue, URL)`` of every connection streaming ``keys`` (default: ``config.symbols``).

    The trade streams come first; then, on connections of their own, the
    order-book streams of those of ``keys`` that are in ``config.books``,
    then the perpetual streams (mark price, liquidations) of those in
    ``config.perps`` whose venue has them (:func:`perp_instruments`).
    """
    instruments = config.instruments if keys is None else tuple(Instrument.parse(k) for k in keys)
    out: list[tuple[Venue, str]] = []
    for name, insts in by_venue(instruments).items():
        v = venue_named(name)
        for url in v.stream_urls(config.ws_base(name), [i.symbol for i in insts], config.stream,
                                 config.streams_per_connection):
            out.append((v, url))
    books = {Instrument.parse(b).key for b in config.books}
    for name, insts in by_venue(i for i in instruments if i.key in books).items():
        v = venue_named(name)
        for url in v.book_stream_urls(config.ws_base(name), [i.symbol for i in insts],
                                      config.streams_per_connection):
            out.append((v, url))
    perps = {i.key for i in perp_instruments(config)}
    for name, insts in by_venue(i for i in instruments if i.key in perps).items():
        v = venue_named(name)
        for url in v.perp_stream_urls(config.ws_base(name), [i.symbol for i in insts],
                                      config.streams_per_connection):
            out.append((v, url))
    return out


def perp_instruments(config: IngestConfig) -> tuple[Instrument, ...]:
    """The instruments of ``config.perps`` whose venue streams perpetual data (spot ones left out)."""
    return tuple(i for i in (Instrument.parse(p) for p in config.perps) if venue_named(i.venue).perp_kinds)


def stream_urls(config: IngestConfig) -> list[str]:
    """Combined-stream URLs covering every instrument of ``config``, venue by venue.

    Each venue puts its streams on its own paths and limits streams per
    connection to ``min(config.streams_per_connection, its own limit)``.
    """
    return [url for _, url in venue_stream_urls(config)]


@dataclass
class VenueFeed:
    """What the service keeps per venue (see the module docstring)."""

    venue: Venue
    parser: FrameParserLike
    #: Venue symbol -> buffer (the receive loop's lookup; the same objects as the service's by key).
    buffers: dict[str, SymbolBuffer] = field(default_factory=dict)
    journal: Journal | None = None
    rest: VenueRest | None = None
    #: Its perpetual-data REST client (``Venue.perp_rest``), when the run polls perpetuals on it.
    perp_rest: PerpRest | None = None
    #: Exchange time when streaming started (REST), if known.
    start_ms: int | None = None
    #: Venue symbol -> instrument key (``BTCUSDT`` -> ``binance-usdm:BTCUSDT``), cached.
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.venue.name

    def key(self, symbol: str) -> str:
        """The instrument key of this venue's ``symbol``."""
        key = self.keys.get(symbol)
        if key is None:
            key = self.keys[symbol] = self.venue.instrument(symbol).key
        return key

    def last_seen(self) -> dict[str, int]:
        """Highest id received per instrument key (for the journal's segment bookkeeping)."""
        return {self.key(s): b.last_seen for s, b in self.buffers.items() if b.last_seen is not None}


class ParserTotals:
    """The malformed-frame counters of every venue's parser, summed (``FrameParser``'s attributes)."""

    def __init__(self, feeds: dict[str, VenueFeed]) -> None:
        self._feeds = feeds

    @property
    def malformed(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for feed in self._feeds.values():
            total.update(feed.parser.malformed)
        return total

    @property
    def malformed_total(self) -> int:
        return sum(feed.parser.malformed_total for feed in self._feeds.values())

    def by_venue(self) -> dict[str, dict[str, int]]:
        return {name: dict(feed.parser.malformed) for name, feed in self._feeds.items()}


class RestTotals:
    """Requests and rate-limit answers of every venue's REST client, summed."""

    def __init__(self, feeds: dict[str, VenueFeed]) -> None:
        self._feeds = feeds

    def _sum(self, attr: str) -> int:
        return sum(getattr(c, attr, 0) for f in self._feeds.values() for c in (f.rest, f.perp_rest)
                   if c is not None)

    @property
    def requests(self) -> int:
        return self._sum("requests")

    @property
    def rate_limited(self) -> int:
        return self._sum("rate_limited")
