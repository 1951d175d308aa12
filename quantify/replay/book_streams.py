"""One connection's view of one recorded book in one lap: which frames to send, and when.

The server walks its trade slots; before each slot ``j`` it asks every book
the connection subscribed to for the frames anchored there
(:class:`~quantify.replay.book_tape.LapEvents`), in the recording's order,
keeping only the streams subscribed (depth, ``bookTicker``, derived
``@depth@100ms``) and dropping depth frames when the ``drop_depth`` fault
says so.
"""

from __future__ import annotations

from collections.abc import Callable

from quantify.replay.book_tape import TICKER, BookTape

__all__ = ["BookStream"]


class BookStream:
    """The frames of ``book``'s lap ``lap`` for one connection.

    Parameters
    ----------
    book : BookTape
        The recorded book.
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

    def __init__(self, book: BookTape, lap: int, combined: bool, roles: set[int],
                 note_first: Callable[[BookTape, int], None]) -> None:
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
            if role != TICKER:
                if drop is not None and drop():
                    continue
                self.note_first(self.book, self.first_ids[i])
            out.append(self.frames[i])
