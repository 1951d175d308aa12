"""The raw journal: every received frame, append-only, replayable.

Frames are written as ``<receive time ns> <frame>`` lines, the format of the
recorded Binance captures, so a journal segment can be replayed with
``quantify replay`` or read with :func:`quantify.venues.binance.recordings.read_frames`.
Each venue of a run has its own journal (:func:`journal_dir`), so recovery
parses every frame with the parser of the venue it came from.

The journal bridges the gap between receipt and the ArcticDB append: after a
``kill -9``, the next writer reads the segments left behind and stores the
trades they hold before anything else. Writes go to the OS every
``flush_interval`` (and before every store append), so a killed process loses
at most that much of its input, which the restart then backfills over REST
by trade id. A segment is deleted once everything it holds is in the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from quantify.model.instrument import DEFAULT_VENUE
from quantify.venues.binance.recordings import read_frames

__all__ = ["Journal", "JournalSet", "journal_dir"]

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 64 << 20
SEGMENT_SECONDS = 300.0


@dataclass
class _Segment:
    path: Path
    #: Highest trade id per symbol received up to the segment's closing.
    last_ids: dict[str, int] = field(default_factory=dict)


class Journal:
    """Append received frames to rotating segment files under ``directory``."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES,
                 segment_seconds: float = SEGMENT_SECONDS) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self._closed: list[_Segment] = []
        self._current: _Segment | None = None
        self._fh: object = None
        self._opened_at = 0.0
        #: Writes or flushes that failed (a full disk); logged, never raised.
        self.errors = 0
        self._reopen = False

    def leftover(self) -> list[Path]:
        """Segments left by a previous writer, oldest first."""
        return sorted(self.directory.glob("journal-*.log"))

    def replay_leftover(self) -> Iterator[str]:
        """Yield the frames of leftover segments, oldest first."""
        for _, frame in self.replay_leftover_timed():
            yield frame

    def replay_leftover_timed(self) -> Iterator[tuple[int, str]]:
        """Yield ``(receive time ns, frame)`` of leftover segments, oldest first."""
        for path in self.leftover():
            yield from read_frames(path) if path.stat().st_size else ()

    def start(self) -> None:
        """Open a fresh segment (leftover segments are kept until released)."""
        self._closed = [_Segment(p) for p in self.leftover()]
        # Leftover segments hold trades of unknown ids: mark them as needing
        # everything up to now, released after the first complete flush.
        for seg in self._closed:
            seg.last_ids = {"*": 0}
        self._open()

    def _open(self) -> None:
        name = f"journal-{time.time_ns():020d}.log"
        self._current = _Segment(self.directory / name)
        self._fh = open(self._current.path, "wb", buffering=1 << 20)
        self._opened_at = time.monotonic()

    def write(self, frame: bytes, recv_ns: int) -> None:
        """Append one frame, as received (buffered; see :meth:`flush`).

        Frames are kept undecoded: invalid UTF-8 reads back with replacement
        characters and parses as malformed, as it did live. A frame is
        taken to hold no line break (Binance's never do; JSON allows one
        only as whitespace). One that did would read back as a malformed
        line, and its trade would be refilled over REST by id like any gap.
        """
        try:
            self._fh.write(b"%d %b\n" % (recv_ns, frame))  # type: ignore[attr-defined]
        except OSError as exc:  # a full disk: the trades are still held in memory
            self._failed(exc)
        except AttributeError:  # no open segment (opening one failed): counted as a failure
            self.errors += 1

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        if self.errors % 10_000 == 1:
            logger.warning("journal write failed (%s; %d so far): received trades are held in memory "
                           "until stored, but a crash now would need REST to refill them", exc, self.errors)

    def flush(self, last_seen: Callable[[], dict[str, int]]) -> None:
        """Hand buffered lines to the OS; rotate the segment when it is full or old.

        ``last_seen`` returns the highest id received per symbol; on rotation
        it marks what the closed segment holds at most.
        """
        if self._fh is None:
            if self._reopen:
                try:
                    self._open()
                    self._reopen = False
                except OSError as exc:
                    self._failed(exc)
            return
        try:
            self._fh.flush()  # type: ignore[attr-defined]
        except OSError as exc:
            self._failed(exc)
            return
        size = self._fh.tell()  # type: ignore[attr-defined]
        if size >= self.segment_bytes or (time.monotonic() - self._opened_at >= self.segment_seconds and size):
            self._close_current(last_seen())
            try:
                self._open()
            except OSError as exc:  # no segment until a later flush manages to open one
                self._reopen = True
                self._failed(exc)

    def _close_current(self, last_ids: dict[str, int]) -> None:
        try:
            self._fh.close()  # type: ignore[attr-defined]
        except OSError as exc:
            self._failed(exc)
        self._fh = None
        self._current.last_ids = dict(last_ids)  # type: ignore[union-attr]
        self._closed.append(self._current)  # type: ignore[arg-type]

    def release(self, stored_next_ids: dict[str, int], *, all_leftover: bool = False) -> int:
        """Delete closed segments whose trades are all stored; return how many.

        ``stored_next_ids`` maps symbols to the next id the store expects.
        ``all_leftover`` releases segments of a previous writer once their
        content has been replayed into the store.
        """
        kept, removed = [], 0
        for seg in self._closed:
            if "*" in seg.last_ids:
                done = all_leftover
            else:
                done = all(stored_next_ids.get(s, 0) > i for s, i in seg.last_ids.items())
            if done:
                try:
                    seg.path.unlink(missing_ok=True)
                    removed += 1
                except OSError as exc:
                    logger.warning("cannot delete journal segment %s: %s", seg.path, exc)
                    kept.append(seg)
            else:
                kept.append(seg)
        self._closed = kept
        return removed

    def close(self, last_seen: dict[str, int], stored_next_ids: dict[str, int], *, release: bool = True) -> None:
        """Close the current segment; delete every segment whose trades are all stored (unless not ``release``)."""
        if self._fh is None:
            return
        self._close_current(last_seen)
        if release:
            self.release(stored_next_ids)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("journal-*.log") if p.exists())

    def __del__(self) -> None:  # pragma: no cover - best effort on interpreter exit
        fh = getattr(self, "_fh", None)
        if fh is not None:
            try:
                fh.close()
            except (OSError, ValueError):
                pass


def journal_dir(store_path: Path | None, venue: str = DEFAULT_VENUE) -> Path | None:
    """The journal directory of ``venue`` in an LMDB store (``None`` for other backends).

    Binance spot's is ``<store>/journal`` (where journals were before there
    were venues, so a predecessor's leftover is found); other venues' are
    ``<store>/journal/<venue>``.
    """
    if store_path is None:
        return None
    root = store_path / "journal"
    return root if venue == DEFAULT_VENUE else root / venue


class JournalSet:
    """The journals of a run, one per venue, counted together."""

    def __init__(self, journals: dict[str, Journal]) -> None:
        self.journals = journals

    @property
    def errors(self) -> int:
        """Failed writes and flushes of every journal."""
        return sum(j.errors for j in self.journals.values())

    @property
    def size_bytes(self) -> int:
        return sum(j.size_bytes for j in self.journals.values())

