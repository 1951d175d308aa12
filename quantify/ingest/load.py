"""Loading recorded files into a store: ``quantify load``.

::

    file ──verify .CHECKSUM──▶ unzip ──read (the venue's file readers)──▶ tick frames per instrument
         ──merge_ticks──▶ ticks/<instrument>      (klines: merge_klines ──▶ klines/<instrument>_<interval>)
    recording with depth ──parse──▶ BookSync (the recorded snapshot, no REST) ──book_frames──▶ append_book
    perpetual data (captures' markPriceUpdate/forceOrder, fundingRate and metrics CSVs)
         ──append_perp──▶ mark, liquidations, funding, open_interest of the USD-M instrument

Merging follows :mod:`quantify.store.merge`: trade ids decide, so loading is
idempotent. Books follow :meth:`Store.append_book`: update ids decide.
Perpetual data follows :meth:`Store.append_perp`: a row at a time already
stored for the instrument is not stored again (times decide).

Books. The depth diffs, snapshots and ``bookTicker`` events of recorded
WebSocket files go through :class:`~quantify.model.booksync.BookSync`
offline: the recorded snapshot starts the book (Binance's procedure; the
snapshot line is usually recorded after the first diffs), nothing is
fetched, so a side the price leaves the snapshot's range for is unknown (NaN
in the quotes) as in the model, and a gap stays stale to the end of the
files. Files with depth are taken in the order of their first receive time,
one book per instrument across them (a capture split at midnight carries
on). The book carries on from the one already in the store
(:meth:`Store.stored_book`): events it holds are dropped as duplicates, a
file that does not continue it shows a gap (and its own snapshot, if any,
resyncs). A file with diffs but neither a snapshot nor a stored book has a
book that cannot be known: it is not loaded, and :attr:`FileResult.notes`
says so. Loading takes the store's writer lock
(:class:`~quantify.store.lease.WriterLock`): it never runs beside the live
writer (``quantify ingest``, the IPython extension), which would otherwise
race it (ArcticDB has no transactions).
"""

from __future__ import annotations

import logging
import lzma
import os
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from quantify.exceptions import FeedError, QuantifyError
from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot
from quantify.model.book_frames import book_frames
from quantify.model.booksync import Applied, BookSync, LedgerEvent, SyncState
from quantify.model.instrument import Instrument
from quantify.store import Store, WriterLock
from quantify.store.merge import merge_klines, merge_ticks
from quantify.venues import venue
from quantify.venues.binance import recordings
from quantify.venues.binance.parse import FrameParser
from quantify.venues.files import read_recorded_kinds

__all__ = ["MAX_UNZIP_RATIO", "PERP_LOAD_KINDS", "FileResult", "LoadResult", "load_files", "read_history",
           "read_history_file"]

#: The perpetual-futures kinds a file can hold, each appended with :meth:`Store.append_perp`.
PERP_LOAD_KINDS: Final = ("mark", "liquidations", "funding", "open_interest")

logger = logging.getLogger(__name__)


@dataclass
class FileResult:
    """The outcome of loading one file."""

    path: Path
    kind: str = ""
    #: Rows read from the file, per symbol.
    rows: dict[str, int] = field(default_factory=dict)
    #: Rows added to the store, per symbol.
    added: dict[str, int] = field(default_factory=dict)
    checksum_verified: bool = False
    #: Why the file was skipped (None if it was loaded).
    error: str | None = None
    #: Depth events applied to the book, per instrument (recordings with depth).
    book_events: dict[str, int] = field(default_factory=dict)
    #: Quotes added to the store, per instrument (fewer than events when some were stored already).
    book_added: dict[str, int] = field(default_factory=dict)
    #: What could not be loaded of a file that was (a book without a snapshot).
    notes: list[str] = field(default_factory=list)
    #: Perpetual rows read, per kind (``mark``, ``liquidations``, ``funding``, ``open_interest``) and instrument.
    perp_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Perpetual rows added to the store, per kind and instrument.
    perp_added: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LoadResult:
    """The outcome of :func:`load_files`."""

    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True if every file was loaded."""
        return all(f.ok for f in self.files)

    @property
    def skipped(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    @property
    def rows(self) -> int:
        """Rows read (trades, klines and perpetual data), over all files."""
        return sum(sum(f.rows.values()) + _total(f.perp_rows) for f in self.files)

    @property
    def added(self) -> int:
        """Rows added to the store (trades, klines and perpetual data), over all files."""
        return sum(sum(f.added.values()) + _total(f.perp_added) for f in self.files)

    def perp_rows(self, kind: str) -> int:
        """Perpetual rows of ``kind`` (``mark``, ``liquidations``, ``funding``, ``open_interest``) read."""
        return sum(sum(f.perp_rows.get(kind, {}).values()) for f in self.files)

    def perp_added(self, kind: str) -> int:
        """Perpetual rows of ``kind`` added to the store."""
        return sum(sum(f.perp_added.get(kind, {}).values()) for f in self.files)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def book_events(self) -> int:
        """Depth events applied to books, over all files."""
        return sum(sum(f.book_events.values()) for f in self.files)

    @property
    def book_added(self) -> int:
        """Quotes added to the store, over all files."""
        return sum(sum(f.book_added.values()) for f in self.files)

    def summary(self) -> str:
        """A few lines: files loaded and skipped, rows read and added, per symbol."""
        per: dict[str, list[int]] = {}
        for f in self.files:
            for sym, n in f.rows.items():
                acc = per.setdefault(sym, [0, 0])
                acc[0] += n
                acc[1] += f.added.get(sym, 0)
        head = (
            f"{len(self.files) - len(self.skipped)} file(s) loaded, {len(self.skipped)} skipped; "
            f"{self.rows:,} rows read, {self.added:,} added "
            f"({self.rows - self.added:,} already stored) in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        lines = [head]
        lines += [f"  {sym}: {read:,} read, {added:,} added" for sym, (read, added) in sorted(per.items())]
        books: dict[str, list[int]] = {}
        for f in self.files:
            for sym, n in f.book_events.items():
                acc = books.setdefault(sym, [0, 0])
                acc[0] += n
                acc[1] += f.book_added.get(sym, 0)
        lines += [f"  {sym} book: {n:,} depth events, {added:,} quotes added"
                  for sym, (n, added) in sorted(books.items())]
        perps: dict[tuple[str, str], list[int]] = {}
        for f in self.files:
            for kind, per_key in f.perp_rows.items():
                for key, n in per_key.items():
                    acc = perps.setdefault((key, kind), [0, 0])
                    acc[0] += n
                    acc[1] += f.perp_added.get(kind, {}).get(key, 0)
        lines += [f"  {key} {kind}: {read:,} read, {added:,} added"
                  for (key, kind), (read, added) in sorted(perps.items())]
        lines += [f"  {f.path}: {note}" for f in self.files for note in f.notes]
        lines += [f"  skipped {f.path}: {f.error}" for f in self.skipped]
        return "\n".join(lines)


def _total(per_kind: dict[str, dict[str, int]]) -> int:
    return sum(sum(per_key.values()) for per_key in per_kind.values())


def read_history(path: str | os.PathLike[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """Read one history file: ``{kind: {name: frame}}``.

    Kinds: ``"ticks"`` (names are instrument keys, frames tick frames),
    ``"klines"`` (names are ``SYMBOL_INTERVAL``, frames candle frames) and
    the perpetual kinds of :data:`PERP_LOAD_KINDS` (names are instrument
    keys, frames those of :mod:`quantify.model.perp`). Names are instrument
    keys (``BTCUSDT``, ``binance-usdm:BTCUSDT``, ``okx:BTC-USDT``).
    Understands every format of :func:`quantify.venues.files.read_recorded_kinds`
    and ``.zip`` archives holding one such file.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="quantify-load-") as tmp:
            target = _unzip_one(path, Path(tmp))
            try:
                return read_history(target)
            except FeedError as exc:
                raise FeedError(str(exc).replace(str(target), f"{path}!{target.name}")) from exc
    return read_recorded_kinds(path)


def read_history_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, pd.DataFrame]]:
    """Read one history file: ``(kind, {name: frame})`` of its first kind (:func:`read_history`).

    ``kind`` is ``"ticks"``, ``"klines"``, ``"funding"`` or
    ``"open_interest"``; a capture's mark prices and liquidations are left
    out (its kind is ``"ticks"``): :func:`read_history` has them.
    """
    kinds = read_history(path)
    kind = next(iter(kinds))
    return kind, kinds[kind]


#: An archive member inflating to more than this many times its compressed size is
#: refused (a zip bomb); Binance's CSVs inflate about 5 times.
MAX_UNZIP_RATIO: Final = 100

#: What :mod:`zipfile` raises on a damaged, encrypted or unsupported archive (ValueError:
#: a member name flagged UTF-8 that is not).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, struct.error,
               EOFError, NotImplementedError, RuntimeError, OSError, ValueError)


def _unzip_one(path: Path, folder: Path) -> Path:
    """Extract the one file of zip archive ``path`` into ``folder``; return where it went.

    The file keeps its base name only (never the member's path: no traversal).
    Raises :class:`FeedError` naming the archive for anything else than one
    readable file of at most :data:`MAX_UNZIP_RATIO` times its compressed size.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.filename.endswith("/")]  # is_dir() fails on ""
            if len(members) != 1:
                raise FeedError(f"{path}: a zip archive must hold exactly one file, "
                                f"it holds {len(members)}")
            member = members[0]
            name = Path(member.filename).name
            if not name or name in (".", ".."):
                raise FeedError(f"{path}: archive member {member.filename!r} has no usable name")
            limit = max(1 << 20, MAX_UNZIP_RATIO * member.compress_size)
            target = folder / name
            with zf.open(member) as src, open(target, "wb") as dst:
                written = 0
                while block := src.read(1 << 22):
                    written += len(block)
                    if written > limit:
                        raise FeedError(f"{path}: {name} inflates to more than {MAX_UNZIP_RATIO} "
                                        "times its compressed size; refusing it as a zip bomb")
                    dst.write(block)
    except _ZIP_ERRORS as exc:
        raise FeedError(f"{path}: cannot unzip: {exc}") from exc
    return target


def _writer_lock(store: Store) -> WriterLock:
    return WriterLock(store.uri.uri, store.uri.path)


def load_files(
    store: Store,
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: bool = True,
    lock: bool = True,
    on_file: Callable[[FileResult], None] | None = None,
) -> LoadResult:
    """Load recorded files into ``store``, each merged by trade id.

    Parameters
    ----------
    store : Store
        The target store.
    paths : iterable of path
        Files of any format :func:`read_history_file` reads.
    progress : bool
        Show a tqdm progress bar (rows, rows/s) on stderr.
    lock : bool
        Take the store's writer lock for the duration (default). Pass False
        only when the caller already holds it.
    on_file : callable, optional
        Called with each file's :class:`FileResult` as it finishes.

    Returns
    -------
    LoadResult
        Per file, rows read and added per symbol, or why it was skipped.

    Raises
    ------
    WriterLocked
        If another process writes to the store (``quantify ingest``, a kernel
        with ``%load_ext quantify``): stop it first.

    Notes
    -----
    A file that cannot be read (bad format, a bad value on line N, a
    ``.CHECKSUM`` mismatch, ids of the other kind) is skipped and reported;
    the others are loaded. A ``.CHECKSUM`` beside a file is verified before
    it is read. Files are loaded in the order given; their order does not
    change the result. Depth events of recorded WebSocket files are loaded
    into the order book (see the module docstring), files with depth taken
    in the order of their first receive time.
    """
    files = [Path(p) for p in paths]
    held = _writer_lock(store).acquire() if lock else None
    result = LoadResult()
    t0 = time.perf_counter()
    bar = _progress_bar(progress)
    try:
        with_book: list[tuple[int, FileResult]] = []
        for path in files:
            fr = FileResult(path)
            if bar is not None:
                bar.set_postfix_str(path.name, refresh=False)
            try:
                fr.checksum_verified = recordings.verify_checksum(path)
                kinds = read_history(path)
                fr.kind = "+".join(kinds)
                for kind, frames in kinds.items():
                    if kind in PERP_LOAD_KINDS:
                        _load_perp(store, fr, kind, frames, bar)
                        continue
                    for name, frame in frames.items():
                        fr.rows[name] = len(frame)
                        if kind == "klines":
                            fr.added[name] = merge_klines(store, name, frame)
                        else:
                            fr.added[name] = merge_ticks(store, name, frame).added
                        if bar is not None:
                            bar.update(len(frame))
                first = _first_book_frame(path)
                if first is not None:
                    with_book.append((first, fr))
            except (QuantifyError, ValueError, TypeError, OSError) as exc:
                fr.error = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                logger.warning("skipped %s", fr.error)
            result.files.append(fr)
            if on_file is not None and not (with_book and with_book[-1][1] is fr):
                on_file(fr)
        loader = _BookLoader(store, bar)
        for _, fr in sorted(with_book, key=lambda item: item[0]):
            if bar is not None:
                bar.set_postfix_str(f"{fr.path.name} (book)", refresh=False)
            try:
                loader.load(fr)
            except (QuantifyError, ValueError, TypeError, OSError) as exc:
                fr.error = str(exc) if str(fr.path) in str(exc) else f"{fr.path}: {exc}"
                logger.warning("skipped the book of %s", fr.error)
            if on_file is not None:
                on_file(fr)
    finally:
        if bar is not None:
            bar.close()
        if held is not None:
            held.release()
    result.seconds = time.perf_counter() - t0
    logger.info("load: %s", result.summary().splitlines()[0])
    return result


def _load_perp(store: Store, fr: FileResult, kind: str, frames: dict[str, pd.DataFrame], bar: Any) -> None:
    """Append one file's perpetual frames of ``kind`` (one batch); count them in ``fr``."""
    fr.perp_rows[kind] = {key: len(frame) for key, frame in frames.items()}
    fr.perp_added[kind] = store.append_perp(kind, frames)
    if bar is not None:
        bar.update(sum(fr.perp_rows[kind].values()))


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="load", file=sys.stderr, dynamic_ncols=True)




# -- order books of recordings with depth ---------------------------------------

#: Applied depth events held before they are appended to the store.
_BOOK_FLUSH_EVENTS: Final = 20_000
#: Substrings of the frames that can be book events (the others are not parsed twice).
_BOOK_MARKS: Final = ('"depthUpdate"', '"lastUpdateId"', "ookTicker", '"B":')


def _first_book_frame(path: Path) -> int | None:
    """The receive time (ns) of the first frame of ``path`` if the file holds depth events, else None.

    Zip archives (data.binance.vision's) hold no depth events.
    """
    if zipfile.is_zipfile(path) or recordings.detect_format(path) not in ("stream", "cryptofeed"):
        return None
    first: int | None = None
    for recv, frame in recordings.read_frames(path):
        if first is None:
            first = recv
        if '"depthUpdate"' in frame or '"lastUpdateId"' in frame:
            return first
    return None


class _BookLoader:
    """One book per instrument across the files of one :func:`load_files` call (see the module docstring)."""

    def __init__(self, store: Store, bar: Any) -> None:
        self.store = store
        self.bar = bar
        self.syncs: dict[str, BookSync] = {}
        #: Exchange time (ns) of the last event stored before this load, per instrument (-1: none).
        self.stored_ns: dict[str, int] = {}
        self.seeded: set[str] = set()
        self.applied: dict[str, list[Applied]] = {}

    def _sync(self, key: str, rule: str, diff: DepthDiff, recv: int) -> BookSync:
        sync = self.syncs.get(key)
        if sync is not None:
            return sync
        sync = self.syncs[key] = BookSync(diff.symbol, rule)
        self.applied[key] = []
        self.stored_ns[key] = -1
        if not self.store.has_book(key):
            return sync
        stored = self.store.stored_book(key)
        self.stored_ns[key] = int(stored.time.value)
        if not stored.stale:
            # carry on from the stored book: events it holds are duplicates, a later file's first one a gap
            sync.resume(stored.book, int(stored.time.value) // 1_000_000)
            self.seeded.add(key)
        return sync

    def _events(self, key: str) -> list[LedgerEvent]:
        since = self.stored_ns[key]
        return [e for e in self.syncs[key].take_events() if e.time_ms * 1_000_000 > since]

    def _flush(self, fr: FileResult) -> None:
        events = {key: self._events(key) for key in self.applied}
        frames = {key: book_frames(applied, events[key]) for key, applied in self.applied.items()
                  if applied or events[key]}
        for applied in self.applied.values():
            applied.clear()
        if not frames:
            return
        for key, n in self.store.append_book(frames).items():
            fr.book_added[key] = fr.book_added.get(key, 0) + n

    def load(self, fr: FileResult) -> None:
        path = fr.path
        venue_name = recordings.detect_venue(path)
        rule = venue(venue_name).book_rule
        parser = FrameParser()
        keys: dict[str, str] = {}  # venue symbol -> instrument key
        seen: list[str] = []  # instrument keys with diffs in this file
        orphan: DepthSnapshot | None = None  # a snapshot recorded before any diff
        ambiguous = False
        pending = 0
        for recv, frame in recordings.read_frames(path):
            if not any(mark in frame for mark in _BOOK_MARKS):
                continue
            ev = parser.parse(frame)
            if type(ev) is DepthDiff:
                key = keys.get(ev.symbol)
                if key is None:
                    key = keys[ev.symbol] = Instrument.parse(f"{venue_name}:{ev.symbol}").key
                sync = self._sync(key, rule, ev, recv)
                if key not in seen:
                    seen.append(key)
                    if orphan is not None:
                        self.applied[key] += sync.on_snapshot(orphan, recv)
                        orphan = None
                applied = sync.on_diff(ev, recv)
                if applied:
                    self.applied[key] += applied
                    fr.book_events[key] = fr.book_events.get(key, 0) + len(applied)
                    pending += len(applied)
                    if self.bar is not None:
                        self.bar.update(len(applied))
            elif type(ev) is DepthSnapshot:
                if ev.symbol:
                    target = [Instrument.parse(f"{venue_name}:{ev.symbol}").key]
                else:
                    target = [k for k in seen if not self.syncs[k].live] or (seen if len(seen) == 1 else [])
                if not seen and not ev.symbol:
                    orphan = ev
                elif len(target) == 1 and target[0] in self.syncs:
                    applied = self.syncs[target[0]].on_snapshot(ev, recv)
                    self.applied[target[0]] += applied
                    fr.book_events[target[0]] = fr.book_events.get(target[0], 0) + len(applied)
                    pending += len(applied)
                else:
                    ambiguous = True
            elif type(ev) is BookTicker:
                key = keys.get(ev.symbol)
                if key is not None:
                    self.syncs[key].on_ticker(ev, recv)
            if pending >= _BOOK_FLUSH_EVENTS:
                self._flush(fr)
                pending = 0
        self._flush(fr)
        if ambiguous:
            fr.notes.append("a depth snapshot that names no symbol, in a file with the books of several, "
                            "was left out")
        for key in seen:
            sync = self.syncs[key]
            if sync.ledger.events == 0 and sync.state is SyncState.WAITING and key not in self.seeded:
                fr.notes.append(f"{key}: depth diffs but no snapshot, and no stored book they continue: "
                                "its book cannot be known and was not loaded")
            elif key in self.seeded and not fr.book_added.get(key) and sync.ledger.duplicates:
                fr.notes.append(f"{key}: the depth events are at or below the stored book's last update id: "
                                "already stored (or older than the stored book), nothing added")
            elif sync.stale and sync.ledger.events:
                fr.notes.append(f"{key}: the book went out of sync ({sync.ledger.gaps} gap(s), "
                                f"{sync.ledger.mismatches} mismatch(es), {sync.ledger.crossed} crossed) and "
                                "was not resynced: a recording holds no further snapshot")
