"""One connection's view of one event tape in one lap: which frames to send, and when.

The server walks its trade slots; before each slot ``j`` it asks every event
tape the connection subscribed to (a recorded book,
:class:`~quantify.replay.book_tape.BookTape`, or a perpetual's marks or
liquidations, :class:`~quantify.replay.perp_tape.PerpTape`) for the frames
anchored there (:class:`~quantify.replay.book_tape.LapEvents`), in their
order, keeping only the streams subscribed (depth, ``bookTicker``, derived
``@depth@100ms``, ``@markPrice@1s`` ...) and dropping depth frames when the
``drop_depth`` fault says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from quantify.replay.book_tape import DEPTH, DERIVED, LapEvents

__all__ = ["BookStream", "EventTape"]


class EventTape(Protocol):
    """What a :class:`BookStream` reads: a tape of events anchored on the trades, lap by lap."""

    index: int
    key: str

    def stream_role(self, name: str) -> int | None: ...

    def lap(self, lap: int) -> LapEvents: ...

    def frames(self, lap: int, combined: bool) -> list[bytes]: ...


class BookStream:
    """The frames of ``book``'s lap ``lap`` for one connection.

    Parameters
    ----------
    book : EventTape
        The recorded book (or a perpetual's mark or liquidation tape).
    lap : int
        The lap being served.
    combined : bool
        ``{"stream", "data"}`` frames (``/stream``) or raw ones (``/ws``).
    roles : set of int
        The roles subscribed (:data:`~quantify.replay.book_tape.DEPTH`, ...).
    note_first : callable
        Called with ``(book, first_id)`` for every depth frame sent (the
        connection's first one matters to stale snapshots).
    """

    __slots__ = ("book", "first_ids", "frames", "note_first", "roles", "starts", "wanted")

    def __init__(self, book: EventTape, lap: int, combined: bool, roles: set[int],
                 note_first: Callable[[EventTape, int], None]) -> None:
        events = book.lap(lap)
        self.book = book
        self.starts = events.starts
        self.roles = events.roles
        self.first_ids = events.first_ids
        self.frames = book.frames(lap, combined)
        self.wanted = roles
        self.note_first = note_first

    def frames_at(self, j: int, out: list[bytes], drop: Callable[[], bool] | None) -> None:
        """Append the frames anchored at lap slot ``j``; ``drop()`` True skips a depth frame."""
        roles, wanted = self.roles, self.wanted
        for i in range(self.starts[j], self.starts[j + 1]):
            role = roles[i]
            if role not in wanted:
                continue
            if role == DEPTH or role == DERIVED:
                if drop is not None and drop():
                    continue
                self.note_first(self.book, self.first_ids[i])
            out.append(self.frames[i])
