"""Venue adapters: each exchange API behind one interface (:class:`~quantify.venues.base.Venue`).

Bytes and files in, venue-neutral trades (:mod:`quantify.model.trades`) out;
nothing here knows about ArcticDB. Look a venue up by its name or by an
instrument::

    >>> from quantify.venues import venue, venue_of
    >>> venue("binance-usdm").rest_url
    'https://fapi.binance.com'
    >>> venue_of("BTCUSDT").name
    'binance'

Registered: ``binance`` (spot) and ``binance-usdm`` (USD-M futures),
:mod:`quantify.venues.binance`. A new venue adds its module and one entry
to :data:`REGISTRY` (its name must be one of
:data:`quantify.model.instrument.VENUES`).
"""

from __future__ import annotations

from typing import Final

from quantify.model.instrument import Instrument, InstrumentLike
from quantify.venues.base import Venue
from quantify.venues.binance import SPOT, USDM

__all__ = ["REGISTRY", "Venue", "venue", "venue_names", "venue_of"]

#: Venue name -> adapter. Venues of the instrument model without an adapter
#: yet (``okx``) are refused by :func:`venue` with a message saying so.
REGISTRY: Final[dict[str, Venue]] = {
    SPOT.name: SPOT,
    USDM.name: USDM,
}


def venue_names() -> tuple[str, ...]:
    """Names of the venues that have an adapter, in registration order."""
    return tuple(REGISTRY)


def venue(name: str | Venue) -> Venue:
    """The adapter of venue ``name`` (``"binance"``, ``"binance-usdm"``); a Venue is returned as is.

    Raises ``ValueError`` naming the bad name and the known ones.
    """
    if isinstance(name, Venue):
        return name
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"no venue adapter named {name!r}; known: {', '.join(REGISTRY)}") from None


def venue_of(instrument: InstrumentLike) -> Venue:
    """The adapter of ``instrument`` (``"BTCUSDT"``, ``"binance-usdm:BTCUSDT"`` or an Instrument)."""
    return venue(Instrument.parse(instrument).venue)
