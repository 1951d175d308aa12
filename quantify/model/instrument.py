"""Instruments: what a trade, a candle or an alert is about.

An :class:`Instrument` is (venue, market, symbol), immutable and hashable,
with one textual form that users type everywhere (the command line,
``store.ticks(...)``, widgets, alert rules)::

    BTCUSDT                        Binance spot (the default venue)
    binance:BTCUSDT                the same, spelt out
    binance-usdm:BTCUSDT           Binance USD-M perpetual
    binance-usdm:BTCUSDT_250328    Binance USD-M delivery contract (expiry 2025-03-28)
    okx:BTC-USDT                   OKX spot
    okx:BTC-USDT-SWAP              OKX perpetual swap
    okx:BTC-USD-220527             OKX delivery future

``Instrument.parse`` reads that form; ``str(inst)`` writes it back, with the
venue left out for Binance spot so that every plain ``BTCUSDT`` of older
code, stores and rules keeps its meaning. The market follows from the venue
and the exchange's own symbol spelling (a Binance USD-M symbol with a
``_YYMMDD`` suffix is a delivery contract; an OKX instId ending ``-SWAP`` a
perpetual), so the text never needs a third part.

Venue names are those of the venue adapters (:mod:`quantify.venues`); this
module knows only their spelling rules, not their protocols.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_VENUE", "VENUES", "Instrument", "InstrumentLike", "Market", "instrument_key", "parse_instruments",
]


class Market(enum.StrEnum):
    """The kind of market an instrument trades in."""

    SPOT = "spot"
    PERPETUAL = "perpetual"
    DELIVERY = "delivery"


#: Plain symbols (no ``venue:``) mean Binance spot.
DEFAULT_VENUE: Final = "binance"

_BINANCE_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")
_BINANCE_DELIVERY = re.compile(r"[A-Z0-9]{2,20}_\d{6}")
_OKX_INST_ID = re.compile(r"[A-Z0-9]{1,12}-[A-Z0-9]{1,12}(-(SWAP|\d{6}))?")


def _binance_spot(symbol: str) -> Market | None:
    return Market.SPOT if _BINANCE_SYMBOL.fullmatch(symbol) else None


def _binance_usdm(symbol: str) -> Market | None:
    if _BINANCE_SYMBOL.fullmatch(symbol):
        return Market.PERPETUAL
    return Market.DELIVERY if _BINANCE_DELIVERY.fullmatch(symbol) else None


def _okx(symbol: str) -> Market | None:
    if not _OKX_INST_ID.fullmatch(symbol):
        return None
    if symbol.endswith("-SWAP"):
        return Market.PERPETUAL
    return Market.DELIVERY if symbol.count("-") == 2 else Market.SPOT


#: Venue name -> (its name for people, how its symbols look, the market a symbol means or None).
VENUES: Final = {
    "binance": ("Binance", "BTCUSDT", _binance_spot),
    "binance-usdm": ("Binance USD-M", "BTCUSDT or BTCUSDT_250328", _binance_usdm),
    "okx": ("OKX", "BTC-USDT, BTC-USDT-SWAP or BTC-USD-220527", _okx),
}


@dataclass(frozen=True, order=True, slots=True)
class Instrument:
    """One tradable instrument: ``venue``, ``market`` and the venue's own ``symbol``.

    Build one with :meth:`parse` (or :func:`parse_instruments`); the
    constructor checks that the three parts agree.

    Attributes
    ----------
    venue : str
        ``"binance"`` (spot), ``"binance-usdm"`` (USD-M futures) or ``"okx"``.
    market : Market
        Spot, perpetual or delivery; implied by ``venue`` and ``symbol``.
    symbol : str
        The venue's spelling, upper case (``BTCUSDT``, ``BTC-USDT-SWAP``).
    """

    venue: str
    market: Market
    symbol: str

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise ValueError(f"unknown venue {self.venue!r}; known: {', '.join(VENUES)}")
        label, example, market_of = VENUES[self.venue]
        market = market_of(self.symbol)
        if market is None:
            raise ValueError(f"{self.symbol!r} is not a {label} symbol (such as {example})")
        if Market(self.market) is not market:
            raise ValueError(f"{self.venue}:{self.symbol} is a {market.value} market, not {self.market}")
        object.__setattr__(self, "market", market)

    @classmethod
    def parse(cls, text: InstrumentLike) -> Instrument:
        """Read ``"BTCUSDT"``, ``"binance-usdm:BTCUSDT"``, ``"okx:BTC-USDT"`` (case-insensitive).

        An :class:`Instrument` is returned as it is. Raises ``ValueError``
        naming the bad text and, for an unknown venue, the known ones.
        """
        if isinstance(text, Instrument):
            return text
        if not isinstance(text, str):
            raise TypeError(f"an instrument is text such as 'BTCUSDT' or 'binance-usdm:BTCUSDT', got {text!r}")
        venue, sep, symbol = text.strip().rpartition(":")
        venue = venue.strip().lower() if sep else DEFAULT_VENUE
        symbol = symbol.strip().upper()
        if not symbol:
            raise ValueError(f"{text!r} names no symbol (such as BTCUSDT or binance-usdm:BTCUSDT)")
        if venue not in VENUES:
            raise ValueError(f"{text!r}: unknown venue {venue!r}; known: {', '.join(VENUES)}")
        label, example, market_of = VENUES[venue]
        market = market_of(symbol)
        if market is None:
            raise ValueError(f"{text!r} is not a {label} symbol (such as {example})")
        return cls(venue, market, symbol)

    def __str__(self) -> str:
        return self.symbol if self.venue == DEFAULT_VENUE else f"{self.venue}:{self.symbol}"

    @property
    def key(self) -> str:
        """The textual form, also the instrument's name inside a store."""
        return str(self)

    @property
    def is_derivative(self) -> bool:
        return self.market is not Market.SPOT


#: What the public API accepts wherever it takes an instrument.
InstrumentLike = Instrument | str


def parse_instruments(text: str | InstrumentLike | tuple[InstrumentLike, ...] | list[InstrumentLike]
                      ) -> tuple[Instrument, ...]:
    """Read ``"BTCUSDT, binance-usdm:BTCUSDT"`` (or a sequence) as distinct instruments, in order.

    Raises ``ValueError`` naming the first bad item, or when nothing is given.
    """
    if isinstance(text, Instrument):
        items: list[InstrumentLike] = [text]
    elif isinstance(text, str):
        items = [t for t in text.split(",") if t.strip()]
    else:
        items = list(text)
    out: list[Instrument] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        inst = Instrument.parse(item)
        if inst not in out:
            out.append(inst)
    if not out:
        raise ValueError("no instruments given; pass e.g. BTCUSDT,binance-usdm:BTCUSDT")
    return tuple(out)


def instrument_key(value: InstrumentLike) -> str:
    """The canonical text of ``value`` (``"btcusdt"`` -> ``"BTCUSDT"``); ``ValueError``/``TypeError`` if bad."""
    return Instrument.parse(value).key
