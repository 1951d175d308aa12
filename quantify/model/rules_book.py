"""Alert rules on order books: the constructors of the ``spread-above``, ``imbalance-beyond`` and ``book-stale`` kinds.

Each builds a :class:`~quantify.model.rules.Rule` through
:func:`~quantify.model.rules.make_rule`, which checks every argument; the
kinds' fields and their table are in :mod:`quantify.model.rules`.
"""

from __future__ import annotations

from typing import Any

from quantify.model.rules import Rule, make_rule

__all__ = ["book_stale", "imbalance_beyond", "spread_above"]


def spread_above(symbol: str, bps: float, *, margin: float = 0.0, **common: Any) -> Rule:
    """Fire when the book's quoted spread exceeds ``bps`` basis points of the mid.

    The value is :func:`quantify.analytics.quoted_spread` (``unit="bps"``) of
    each quote, the number a notebook computes on ``store.quotes(...)``; it
    fires at the first quote with a spread above ``bps`` and re-arms once the
    spread is back below ``bps - margin``.
    """
    return make_rule("spread-above", symbol, bps=bps, margin=margin, **common)


def imbalance_beyond(symbol: str, level: float, levels: int = 1, *, op: str = "abs-above",
                     margin: float = 0.0, **common: Any) -> Rule:
    """Fire when the book's imbalance passes ``level``.

    The value is :func:`quantify.analytics.imbalance` of each quote (``levels``
    1: the best bid and offer), in [-1, 1], +1 all bids. ``op`` "abs-above"
    (|imbalance| > ``level``), "above" (imbalance > ``level``) or "below"
    (imbalance < ``level``); it re-arms once back inside by ``margin``.
    """
    return make_rule("imbalance-beyond", symbol, level=level, levels=levels, op=op, margin=margin, **common)


def book_stale(symbol: str, seconds: float | str, **common: Any) -> Rule:
    """Fire once per episode in which ``symbol``'s book stays out of sync longer than ``seconds``.

    An episode runs from a gap (or a crossed book, or a ``bookTicker``
    mismatch) to the resync that ends it; the value is how long the book has
    been out of sync, as the ingestion writer reports it.
    """
    return make_rule("book-stale", symbol, seconds=seconds, **common)
