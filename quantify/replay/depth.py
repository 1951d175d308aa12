"""The replay's own order books, and the REST depth snapshots it answers from them, sans I/O.

The replay is the exchange of its simulation: for every recorded book with a
snapshot, :class:`ServedBooks` keeps an
:class:`~quantify.model.book.OrderBook` that starts as the recorded snapshot
and takes every depth event served so far (the recorded snapshot line comes
after the first diffs of a recording: the diffs at or below its
``lastUpdateId`` are already in it). ``GET /api/v3/depth`` and
``GET /fapi/v1/depth`` answer that book's best ``limit`` levels, including
levels outside the recorded snapshot's range that diffs have touched since;
levels of the real book deeper than the recorded snapshot that no diff
touched are absent (the recording never saw them).

The moment of an answer is the replay's position, the one REST trades use:
with ``speed`` 0 the furthest point of the timeline sent to any client, else
the replay clock. A client that asks for a snapshot gets one at or after the
events it has been sent, so Binance's procedure (buffer, fetch, drop what
the snapshot covers) applies as on the exchange.

A recording without a snapshot (Binance spot's ``mixed-2023`` capture of
2023-04-05, for one) cannot give a book: its depth requests get HTTP 400
saying so (code -1000), while its diffs are still streamed.

Stale snapshots (a fault, ``stale_snapshot`` in :class:`~quantify.replay.config.ReplayConfig`):
that fraction of depth answers, drawn from a seeded generator, is an older
book whose ``lastUpdateId`` is below the first depth event any open
connection was sent for that instrument (what a client may have buffered):
the newest book copy (one is kept per second of exchange time) old enough,
or, early in the replay when none is, the recorded snapshot's levels
labelled with such an id. A client following Binance's procedure must see
it as stale and fetch again.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from quantify.model.book import Level, OrderBook
from quantify.replay.book_tape import DEPTH, BookTape, parse_diff
from quantify.replay.tape import Tape

__all__ = ["BookUnknown", "ServedBooks"]

#: Exchange milliseconds between the book copies kept for stale answers, and how many are kept.
_COPY_EVERY_MS = 1000
_COPIES = 120


class BookUnknown(Exception):
    """The replay cannot give this instrument's book (no snapshot recorded, or no depth at all)."""


class _Served:
    """One instrument's book as served: the recorded snapshot plus every depth event served."""

    def __init__(self, tape: BookTape, n: int, loop: bool, keep_copies: bool) -> None:
        snap = tape.snapshot
        assert snap is not None
        self.tape = tape
        self.n = n
        self.loop = loop
        self.book = OrderBook.from_levels(snap.bids, snap.asks, snap.last_update_id, symbol=tape.symbol)
        self.time_ms = 0
        self.lap = 0
        self.i = 0
        self.copies: deque[OrderBook] = deque(maxlen=_COPIES)
        self._copied_ms = -1
        self._keep_copies = keep_copies

    def advance(self, pos: int) -> None:
        """Take every event served before slot ``pos`` (events ride before their trade slot)."""
        lap, j = divmod(pos, self.n)
        if not self.loop and lap >= 1:
            lap, j = 0, self.n + 1
        if lap > self.lap:
            # a later lap opens with the synthetic event that holds its whole first book: start there
            # (skipping the laps between, which the collector would otherwise render one by one)
            self.book = OrderBook(self.tape.symbol)
            self.lap, self.i = lap, 0
        events = self.tape.lap(self.lap)
        while self.lap < lap or (self.lap == lap and self.i < events.starts[j]):
            if self.i >= len(events.roles):
                if not self.loop:
                    return
                self.lap += 1
                self.i = 0
                events = self.tape.lap(self.lap)
                continue
            if events.roles[self.i] == DEPTH:
                diff = parse_diff(events.payloads[self.i])
                if diff.last_id > self.book.update_id:
                    self.book.apply(diff)
                    self.time_ms = diff.event_time
                    if self._keep_copies and diff.event_time - self._copied_ms >= _COPY_EVERY_MS:
                        self.copies.append(self.book.copy())
                        self._copied_ms = diff.event_time
            self.i += 1

    def stale(self, bound: int) -> OrderBook:
        """A book whose update id is below ``bound - 1`` (see the module docstring)."""
        for book in reversed(self.copies):
            if book.update_id < bound - 1:
                return book
        snap = self.tape.snapshot
        assert snap is not None
        return OrderBook.from_levels(snap.bids, snap.asks, max(bound - 2, 0), symbol=self.tape.symbol)


class ServedBooks:
    """The replay's books of one tape, and the depth answers drawn from them.

    Parameters
    ----------
    tape : Tape
        The recordings served.
    loop : bool
        Whether the replay repeats the tape.
    stale_fraction : float
        Fraction of depth answers that are stale snapshots (a fault; 0 disables).
    seed : int
        Seed of the stale-snapshot draws.
    """

    def __init__(self, tape: Tape, *, loop: bool = False, stale_fraction: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= stale_fraction <= 1.0:
            raise ValueError(f"stale_fraction must be in [0, 1], got {stale_fraction!r}")
        self.tape = tape
        self.loop = loop
        self.stale_fraction = stale_fraction
        self._rng = random.Random(seed)
        self._served: dict[str, _Served] = {}
        #: Stale snapshots answered so far (the fault's count).
        self.stale_answers = 0
        #: Depth answers given so far.
        self.answers = 0
        # book key -> connection token -> first depth id sent on it (U spot, pu USD-M)
        self._first_ids: dict[str, dict[int, int]] = {}

    def sent_first(self, key: str, token: int, first_id: int) -> None:
        """Note the first depth event a connection (``token``) was sent for book ``key``."""
        self._first_ids.setdefault(key, {}).setdefault(token, first_id)

    def forget(self, token: int) -> None:
        """A connection closed: what it buffered no longer matters."""
        for firsts in self._first_ids.values():
            firsts.pop(token, None)

    def book(self, key: str, pos: int) -> OrderBook:
        """The replay's book of instrument ``key`` after the events served before slot ``pos``.

        Raises
        ------
        BookUnknown
            If no depth of ``key`` was recorded, or no snapshot to start its book.
        """
        served = self._served.get(key)
        if served is None:
            rec = self.tape.books.get(key)
            if rec is None:
                raise BookUnknown(f"no order book of {key} is recorded in this replay")
            if rec.snapshot is None:
                raise BookUnknown(f"the recording of {key} holds depth diffs but no depth snapshot: its book "
                                  "cannot be known (its diffs are streamed anyway)")
            served = self._served[key] = _Served(rec, self.tape.n, self.loop, self.stale_fraction > 0)
        served.advance(pos)
        return served.book

    def answer(self, key: str, limit: int, pos: int, now_ms: int) -> dict[str, Any]:
        """Binance's depth answer for ``key`` at slot ``pos``: ``lastUpdateId``, ``bids``, ``asks``
        (USD-M also ``E``, the replay clock, and ``T``, the book's last event time)."""
        book = self.book(key, pos)
        served = self._served[key]
        if self.stale_fraction > 0 and self._rng.random() < self.stale_fraction:
            firsts = self._first_ids.get(key)
            bound = min(firsts.values()) if firsts else book.update_id + 1
            book = served.stale(bound)
            self.stale_answers += 1
        self.answers += 1
        rec = served.tape
        ps, qs = rec.price_scale, rec.qty_scale
        out: dict[str, Any] = {"lastUpdateId": book.update_id}
        if rec.usdm:
            out["E"] = now_ms
            out["T"] = served.time_ms or now_ms
        out["bids"] = _rows(book.side(True, limit), ps, qs)
        out["asks"] = _rows(book.side(False, limit), ps, qs)
        return out


def _rows(levels: list[Level], ps: int, qs: int) -> list[list[str]]:
    """Levels as Binance prints them: decimal strings with the recording's decimals."""
    return [[f"{p:.{ps}f}", f"{q:.{qs}f}"] for p, q in levels]
