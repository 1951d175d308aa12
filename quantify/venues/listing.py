"""Is an instrument listed? Requested symbols checked against what a venue lists, sans I/O.

A symbol the exchange does not list (``BTCUSDX``) would otherwise be
subscribed to and stream nothing, forever, without a word. The venue's REST
client fetches the list (:meth:`quantify.venues.base.VenueRest.listed_symbols`,
Binance's ``exchangeInfo``); :func:`check_listed` compares and refuses,
naming for each unknown symbol the closest listed ones (:mod:`difflib`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence

from quantify.model.instrument import Instrument

__all__ = ["check_listed", "closest_listed"]


def closest_listed(symbol: str, listed: Collection[str], n: int = 3) -> list[str]:
    """Up to ``n`` listed symbols closest to ``symbol`` (``BTCUSDX`` -> ``BTCUSDT``, ``BTCUSDC``, ...)."""
    pool = sorted(listed)
    upper = symbol.upper()
    close = difflib.get_close_matches(upper, pool, n=n, cutoff=0.6)
    if len(close) < n:  # a symbol with the same base (BTC...) is a better guess than nothing
        stem = upper[:3]
        close += [s for s in pool if s.startswith(stem) and s not in close][: n - len(close)]
    return close


def check_listed(instruments: Sequence[Instrument], listed: Collection[str]) -> None:
    """Raise ``ValueError`` naming every instrument whose symbol is not in ``listed``.

    ``instruments`` are of one venue and ``listed`` holds that venue's
    symbols. The message names, for each unknown one, the closest listed
    instruments, in the same textual form (``binance-usdm:BTCUSDT``).
    """
    unknown = [i for i in instruments if i.symbol not in listed]
    if not unknown:
        return
    parts = []
    for inst in unknown:
        prefix = str(inst)[: -len(inst.symbol)]
        close = [prefix + s for s in closest_listed(inst.symbol, listed)]
        parts.append(f"{inst} ({'closest listed: ' + ', '.join(close) if close else 'nothing close is listed'})")
    venue = unknown[0].venue
    noun = "symbol" if len(unknown) == 1 else "symbols"
    raise ValueError(f"{venue} does not list the {noun} {'; '.join(parts)}")
