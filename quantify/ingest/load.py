"""Loading recorded files into a store: ``quantify load``.

::

    file ──verify .CHECKSUM──▶ unzip ──read (the venue's file readers)──▶ tick frames per instrument
         ──merge_ticks──▶ ticks/<instrument>      (klines: merge_klines ──▶ klines/<instrument>_<interval>)

Merging follows :mod:`quantify.store.merge`: trade ids decide, so loading is
idempotent. Loading takes the store's writer lock
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
from quantify.store import Store, WriterLock
from quantify.store.merge import merge_klines, merge_ticks
from quantify.venues.binance import recordings
from quantify.venues.files import read_recorded

__all__ = ["MAX_UNZIP_RATIO", "FileResult", "LoadResult", "load_files", "read_history_file"]

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
        return sum(sum(f.rows.values()) for f in self.files)

    @property
    def added(self) -> int:
        return sum(sum(f.added.values()) for f in self.files)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

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
        lines += [f"  skipped {f.path}: {f.error}" for f in self.skipped]
        return "\n".join(lines)


def read_history_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, pd.DataFrame]]:
    """Read one history file: ``(kind, {name: frame})``.

    ``kind`` is ``"ticks"`` (names are symbols, frames tick frames) or
    ``"klines"`` (names are ``SYMBOL_INTERVAL``, frames candle frames).
    Names are instrument keys (``BTCUSDT``, ``binance-usdm:BTCUSDT``,
    ``okx:BTC-USDT``). Understands every format of
    :func:`quantify.venues.files.read_recorded` and ``.zip`` archives holding
    one such file.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="quantify-load-") as tmp:
            target = _unzip_one(path, Path(tmp))
            try:
                return read_history_file(target)
            except FeedError as exc:
                raise FeedError(str(exc).replace(str(target), f"{path}!{target.name}")) from exc
    return read_recorded(path)


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
    change the result.
    """
    files = [Path(p) for p in paths]
    held = _writer_lock(store).acquire() if lock else None
    result = LoadResult()
    t0 = time.perf_counter()
    bar = _progress_bar(progress)
    try:
        for path in files:
            fr = FileResult(path)
            if bar is not None:
                bar.set_postfix_str(path.name, refresh=False)
            try:
                fr.checksum_verified = recordings.verify_checksum(path)
                kind, frames = read_history_file(path)
                fr.kind = kind
                for name, frame in frames.items():
                    fr.rows[name] = len(frame)
                    if kind == "klines":
                        fr.added[name] = merge_klines(store, name, frame)
                    else:
                        fr.added[name] = merge_ticks(store, name, frame).added
                    if bar is not None:
                        bar.update(len(frame))
            except (QuantifyError, ValueError, TypeError, OSError) as exc:
                fr.error = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                logger.warning("skipped %s", fr.error)
            result.files.append(fr)
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


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="load", file=sys.stderr, dynamic_ncols=True)


