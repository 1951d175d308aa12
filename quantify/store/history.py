"""History: bulk-load recorded files into a store, merge by trade id, export.

Loading (:func:`load_files`, ``quantify load``)::

    file ──verify .CHECKSUM──▶ unzip ──read──▶ tick frames per symbol
         ──merge_ticks──▶ ticks/<SYMBOL>      (klines: merge_klines ──▶ klines/<SYMBOL>_<interval>)

Rules of the merge (:func:`merge_ticks`), which make loading idempotent:

- Trade ids decide. A row whose id the store already holds is never added
  again, whatever file it comes from; a file loaded twice adds nothing.
- The stored data stays sorted by (time, trade id) without duplicates.
- Rows after the last stored trade (later time, higher id) are *appended*;
  anything else (an older file, a file that overlaps what the live stream
  stored, a gap being filled) is merged in: the stored rows of the file's
  time range are read, the new rows added, and that range rewritten with
  ArcticDB's ``update`` — only that range.
- A symbol holds one kind of id: trades (``trade_id == first_id == last_id``)
  or aggregate trades. Merging the other kind is refused, since the two id
  sequences cannot be compared.
- When rows are merged below the end of the continuously aggregated 1m
  candles (:mod:`quantify.store.candles`), the aggregate is cut back to the
  first affected minute; reads compute the rest from ticks and the next
  writer's catch-up rebuilds it.

Loading takes the store's writer lock (:class:`~quantify.store.lease.WriterLock`):
it never runs beside the live writer (``quantify ingest``, the IPython
extension), which would otherwise race it (ArcticDB has no transactions).

Export (:func:`export`, ``Store.export``, ``quantify export``): ticks, candles
or loaded klines of a time range ``start <= t < end`` (inclusive-exclusive,
as everywhere in QuantiFy) to CSV or Parquet, to a path or a binary stream.
A path is written where its caller says, unless a ``directory`` (``--dir``)
confines it: then a path resolving outside that directory is refused
(:class:`~quantify.exceptions.UnsafePath`). The dashboards' download writes
no file at all.
"""

from __future__ import annotations

import io
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
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from quantify.exceptions import FeedError, QuantifyError, UnsafePath
from quantify.store.lease import WriterLock
from quantify.model.times import TimeLike, parse_time

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_KINDS",
    "KLINES",
    "FileResult",
    "LoadResult",
    "MergeResult",
    "confined_path",
    "export",
    "klines",
    "load_files",
    "merge_klines",
    "merge_ticks",
    "read_history_file",
    "tick_kind",
]

logger = logging.getLogger(__name__)

TICKS: Final = "ticks"
#: Library of loaded or backfilled Binance klines, one symbol per pair and interval.
KLINES: Final = "klines"
#: Tick columns in stored order, with their dtypes.
TICK_DTYPES: Final = {
    "price": "float64", "qty": "float64", "trade_id": "int64", "is_buyer_maker": "bool",
    "first_id": "int64", "last_id": "int64", "is_market": "bool",
}
EXPORT_KINDS: Final = ("ticks", "ohlcv", "klines")
EXPORT_FORMATS: Final = ("csv", "parquet")
_CSV_CHUNK_ROWS: Final = 500_000
#: Times in exported CSVs (strftime spelling): ISO 8601, UTC, µs, one width on every row.
CSV_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


# -- results --------------------------------------------------------------------


@dataclass(frozen=True)
class MergeResult:
    """What one :func:`merge_ticks` call did to one symbol."""

    symbol: str
    #: Rows offered (after dropping duplicates within the offer).
    rows: int
    #: Rows the store did not hold and now does.
    added: int
    #: Of ``added``, rows appended after the last stored trade.
    appended: int
    #: Of ``added``, rows merged in below the last stored trade.
    merged: int

    @property
    def duplicates(self) -> int:
        """Rows offered that the store already held."""
        return self.rows - self.added


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


# -- reading files ------------------------------------------------------------------


def _check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not symbol.strip() or not symbol.strip().isalnum():
        raise ValueError(f"symbol must be a Binance symbol such as 'BTCUSDT', got {symbol!r}")
    return symbol.strip().upper()


def read_history_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, pd.DataFrame]]:
    """Read one history file: ``(kind, {name: frame})``.

    ``kind`` is ``"ticks"`` (names are symbols, frames tick frames) or
    ``"klines"`` (names are ``SYMBOL_INTERVAL``, frames candle frames).
    Understands every format of :mod:`quantify.feed.recordings` (recorded
    WebSocket frames, QuantiFy journal segments, REST JSON, data.binance.vision
    trades/aggTrades/klines CSVs) and ``.zip`` archives holding one such file.
    """
    from quantify.feed import recordings

    path = Path(path)
    if zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="quantify-load-") as tmp:
            target = _unzip_one(path, Path(tmp))
            try:
                return read_history_file(target)
            except FeedError as exc:
                raise FeedError(str(exc).replace(str(target), f"{path}!{target.name}")) from exc
    if recordings.detect_format(path) == "csv":
        sym = recordings._symbol_from_name(path)
        if recordings.csv_kind(path) == "klines":
            interval = recordings.kline_interval_from_name(path)
            return "klines", {f"{sym}_{interval}": recordings.read_csv_klines(path)}
        # not read_trades: its sort and de-duplication copies are redone by merge_ticks
        return "ticks", {sym: recordings.read_csv_trades(path)}
    return "ticks", recordings.read_trades(path)


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


# -- merging ---------------------------------------------------------------------------


def tick_kind(frame: pd.DataFrame) -> str:
    """``"trades"`` if every row is one trade (id = first = last id), else ``"aggTrades"``."""
    ids = frame["trade_id"].to_numpy()
    single = (ids == frame["first_id"].to_numpy()) & (ids == frame["last_id"].to_numpy())
    return "trades" if bool(single.all()) else "aggTrades"


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored layout: ns UTC index ``time``, columns in order, sorted by (time, id), unique ids."""
    missing = [c for c in ("price", "qty", "trade_id") if c not in frame.columns]
    if missing:
        raise ValueError(f"tick frame lacks column(s) {missing}; it has {list(frame.columns)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError(f"tick frame must have a DatetimeIndex, got {type(frame.index).__name__}")
    cols: dict[str, Any] = {}
    for name, dtype in TICK_DTYPES.items():
        if name in frame.columns:
            cols[name] = frame[name].to_numpy(dtype=dtype)
        elif name in ("first_id", "last_id"):
            cols[name] = frame["trade_id"].to_numpy(dtype="int64")
        elif name == "is_market":
            cols[name] = np.ones(len(frame), dtype=bool)
        else:
            cols[name] = np.zeros(len(frame), dtype=dtype)
    index = frame.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    times = index.as_unit("ns").asi8
    ids = cols["trade_id"]
    ordered = bool(len(ids) < 2 or (
        (np.diff(times) >= 0).all() and (np.diff(ids) > 0).all()
    ))
    if not ordered:
        order = np.lexsort((ids, times))
        times = times[order]
        cols = {k: v[order] for k, v in cols.items()}
        ids = cols["trade_id"]
        # unique ids (first occurrence in (time, id) order)
        _, first = np.unique(ids, return_index=True)
        if len(first) != len(ids):
            keep = np.zeros(len(ids), dtype=bool)
            keep[first] = True
            times = times[keep]
            cols = {k: v[keep] for k, v in cols.items()}
    out = pd.DataFrame(cols, copy=False)
    out.index = pd.DatetimeIndex(times.view("M8[ns]"), name="time").tz_localize("UTC")
    return out


def _truncate_candles(store: Store, sym: str, from_ns: int) -> None:
    """Cut the 1m aggregate of ``sym`` back to before the minute holding ``from_ns``."""
    from quantify.store.candles import CANDLES_1M

    lib = store.library(CANDLES_1M)
    if not lib.has_symbol(sym):
        return
    minute = from_ns // 60_000_000_000 * 60_000_000_000
    head = lib.head(sym, 1).data
    if not len(head) or int(head.index[0].value) >= minute:
        lib.delete(sym)
        logger.info("%s: 1m candle aggregate dropped (older ticks merged in); it is rebuilt "
                    "from ticks", sym)
        return
    tail = lib.tail(sym, 1).data
    if int(tail.index[-1].value) < minute:
        return
    lib.delete_data_in_range(sym, (pd.Timestamp(minute, tz="UTC"), None),
                             prune_previous_versions=True)
    logger.info("%s: 1m candle aggregate cut back to %s (older ticks merged in)", sym,
                pd.Timestamp(minute, tz="UTC"))


def merge_ticks(store: Store, symbol: str, frame: pd.DataFrame) -> MergeResult:
    """Merge a tick frame into ``symbol``'s stored ticks; ids decide what is new.

    Parameters
    ----------
    store : Store
        The store; the caller holds its writer lock.
    symbol : str
        A Binance symbol.
    frame : pandas.DataFrame
        A tick frame in any order, possibly overlapping what is stored.

    Returns
    -------
    MergeResult

    Raises
    ------
    FeedError
        If the frame holds aggregate trades and the symbol trades, or the
        reverse.

    Notes
    -----
    Rows with a later time and a higher id than the last stored trade are
    appended; the others are merged into their time range ``[t_min, t_max]``
    (read, add the rows whose ids are missing, sort by (time, id), ArcticDB
    ``update`` of that range). Nothing is written when nothing is new.
    """
    sym = _check_symbol(symbol)
    new = _normalise(frame)
    n = len(new)
    if n == 0:
        return MergeResult(sym, 0, 0, 0, 0)
    lib = store.library(TICKS)
    if not lib.has_symbol(sym):
        lib.write(sym, new, prune_previous_versions=True)
        return MergeResult(sym, n, n, n, 0)
    tail = lib.tail(sym, 1).data
    if not len(tail):
        lib.write(sym, new, prune_previous_versions=True)
        return MergeResult(sym, n, n, n, 0)
    stored_kind, offered_kind = tick_kind(lib.tail(sym, 100).data), tick_kind(new)
    if stored_kind != offered_kind:
        raise FeedError(
            f"{sym} holds {stored_kind} in store {store.uri}; these rows are {offered_kind} "
            "(ids of another sequence): load them into another store"
        )
    last_ns = int(tail.index[-1].value)
    last_id = int(tail["trade_id"].iloc[-1])
    after = (new.index.asi8 >= last_ns) & (new["trade_id"].to_numpy() > last_id)
    older, newer = new[~after], new[after]
    if len(older) and len(newer) and older.index[-1] > newer.index[0]:
        # an old id among the new rows (inconsistent input): merge everything
        older, newer = new, new.iloc[:0]
    merged = 0
    if len(older):
        lo, hi = older.index[0], older.index[-1]
        stored = lib.read(sym, date_range=(lo, hi)).data
        fresh = older[~np.isin(older["trade_id"].to_numpy(), stored["trade_id"].to_numpy())]
        if len(fresh):
            both = pd.concat([stored[list(TICK_DTYPES)], fresh]) if len(stored) else fresh
            both = _normalise(both)
            lib.update(sym, both, date_range=(lo, hi), prune_previous_versions=True)
            merged = len(fresh)
            _truncate_candles(store, sym, int(fresh.index[0].value))
    if len(newer):
        lib.append(sym, newer, prune_previous_versions=True)
    added = merged + len(newer)
    return MergeResult(sym, n, added, len(newer), merged)


def merge_klines(store: Store, name: str, frame: pd.DataFrame) -> int:
    """Merge candles into ``klines/<name>`` (``BTCUSDT_1m``); later data wins per open time.

    Returns the number of bars whose open time was not stored before.
    """
    lib = store.library(KLINES)
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if not len(frame):
        return 0
    if not lib.has_symbol(name):
        lib.write(name, frame, prune_previous_versions=True)
        return len(frame)
    lo, hi = frame.index[0], frame.index[-1]
    stored = lib.read(name, date_range=(lo, hi)).data
    new_bars = int((~frame.index.isin(stored.index)).sum())
    both = pd.concat([stored[~stored.index.isin(frame.index)], frame[list(stored.columns)]])
    lib.update(name, both.sort_index(), date_range=(lo, hi), upsert=True,
               prune_previous_versions=True)
    return new_bars


def klines(store: Store, symbol: str, interval: str = "1m",
           start: TimeLike | None = None, end: TimeLike | None = None) -> pd.DataFrame:
    """Loaded or backfilled Binance klines of ``symbol`` with ``start <= open time < end``."""
    name = f"{_check_symbol(symbol)}_{interval}"
    lib = store.library(KLINES)
    if not lib.has_symbol(name):
        from quantify.exceptions import UnknownSymbol

        known = ", ".join(sorted(lib.list_symbols())) or "none"
        raise UnknownSymbol(f"no {interval} klines of {symbol!r} in store {store.uri} "
                            f"(loaded klines: {known})")
    return lib.read(name, date_range=_date_range(start, end)).data


# -- loading --------------------------------------------------------------------------


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
    from quantify.feed.recordings import verify_checksum

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
                fr.checksum_verified = verify_checksum(path)
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


# -- export -----------------------------------------------------------------------------


def _date_range(start: TimeLike | None, end: TimeLike | None) -> tuple[Any, Any] | None:
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    if t0 is None and t1 is None:
        return None
    return (t0, None if t1 is None else t1 - pd.Timedelta(1, "ns"))


def _export_frame(store: Store, symbol: str, kind: str, timeframe: str,
                  start: TimeLike | None, end: TimeLike | None) -> pd.DataFrame:
    if kind == "ticks":
        return store.ticks(symbol, start, end)
    if kind == "klines":
        return klines(store, symbol, timeframe, start, end)
    ohlcv = getattr(store, "ohlcv", None)
    if ohlcv is not None:
        return ohlcv(symbol, timeframe, start, end)
    from quantify.model.bars import resample  # pragma: no cover - older stores

    return resample(store.ticks(symbol, start, end), timeframe)  # pragma: no cover


def _format_of(target: Any, format: str | None) -> str:
    if format is None:
        suffix = Path(os.fspath(target)).suffix.lower() if isinstance(target, (str, os.PathLike)) else ""
        format = "parquet" if suffix in (".parquet", ".pq") else "csv"
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise QuantifyError("Parquet export needs pyarrow: pip install pyarrow") from exc
    return format


def _csv_times(index: pd.DatetimeIndex) -> np.ndarray:
    """ISO 8601 UTC strings with µs (:data:`CSV_TIME_FORMAT`), vectorised."""
    us = index.tz_convert("UTC").tz_localize(None).to_numpy().astype("M8[us]")
    return np.char.add(np.datetime_as_string(us, unit="us"), "Z")


def _write(frame: pd.DataFrame, fh: IO[bytes], format: str) -> None:
    if isinstance(fh, io.TextIOBase):
        if format == "parquet":
            raise TypeError("Parquet is binary: pass a path or a binary stream (io.BytesIO), not a text stream")
        data = io.BytesIO()
        _write(frame, data, format)
        fh.write(data.getvalue().decode())
        return
    if format == "parquet":
        frame.to_parquet(fh, engine="pyarrow", index=True)
        return
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # pyarrow's writer: ~10x DataFrame.to_csv; floats in shortest round-trip form
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    fh.write((",".join(["time", *map(str, frame.columns)]) + "\n").encode())  # unquoted
    for i in range(0, len(frame), _CSV_CHUNK_ROWS):
        part = frame.iloc[i:i + _CSV_CHUNK_ROWS]
        table = pa.table({"time": _csv_times(part.index),
                          **{str(c): part[c].to_numpy() for c in part.columns}})
        pacsv.write_csv(table, fh, options)
    fh.flush()


def confined_path(path: str | os.PathLike[str], directory: str | os.PathLike[str]) -> Path:
    """Return ``path`` resolved inside ``directory``, or raise :class:`UnsafePath`.

    A relative ``path`` is taken relative to ``directory``. The folders on
    the way are resolved (``..`` and symlinks included) and must end inside
    ``directory``; the last component must name a file (not ``.`` or
    ``..``). The file itself is not followed: :func:`export` never writes
    through a symlink (it creates the file exclusively, or replaces it).

    Raises
    ------
    UnsafePath
        If the path leaves ``directory``.
    FileNotFoundError
        If ``directory`` does not exist.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"directory {root} does not exist")
    target = root / Path(path)  # an absolute path replaces root here; the check below refuses it
    resolved = target.parent.resolve() / target.name
    if target.name in ("", ".", "..") or not resolved.parent.is_relative_to(root):
        raise UnsafePath(f"{os.fspath(path)!r} is outside {root}; export writes only inside that directory")
    return resolved


def export(
    store: Store,
    symbol: str,
    path_or_buffer: str | os.PathLike[str] | IO[bytes],
    *,
    kind: str = "ticks",
    timeframe: str = "1m",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    format: str | None = None,
    overwrite: bool = False,
    directory: str | os.PathLike[str] | None = None,
) -> int:
    """Write ``symbol``'s ticks or candles of ``[start, end)`` to a file or stream.

    Parameters
    ----------
    store : Store
        The store to read.
    symbol : str
        A Binance symbol.
    path_or_buffer : path or binary file object
        Where to write. A path is written exactly there: an existing file is
        refused unless ``overwrite``; the file appears complete or not at all
        (written beside it under a temporary name, then renamed). A binary
        stream (``sys.stdout.buffer``) is written and left open.
    kind : {"ticks", "ohlcv", "klines"}
        Ticks; candles of ``timeframe`` computed from the ticks
        (:meth:`Store.ohlcv`); or Binance klines loaded with
        :func:`load_files` or backfilled.
    timeframe : str, default "1m"
        Candle timeframe for ``ohlcv`` (any of
        :func:`quantify.analytics.timeframe_to_offset`) or kline interval.
    start, end : datetime, str or None
        Bounds, inclusive-exclusive: trade time ``start <= t < end`` for
        ticks, bar open time for candles. ``None`` is unbounded.
    format : {"csv", "parquet"} or None
        ``None``: from the path's suffix (``.parquet``/``.pq``), else CSV.
    overwrite : bool
        Replace an existing file.
    directory : path, optional
        Confine the file to this existing directory: a relative path is taken
        relative to it, and a path that resolves outside it (``..``, an
        absolute path elsewhere, a symlinked folder leading out) is refused.
        Pass it whenever the file name comes from someone other than the
        person running the code. Without it, a path is used as given.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    FileExistsError
        If the path exists and ``overwrite`` is False.
    UnsafePath
        If ``directory`` is given and the path resolves outside it.
    UnknownSymbol, ValueError
        For an unknown symbol, kind, format, timeframe or ``end <= start``.

    Notes
    -----
    CSV: a header line, then one row per tick or bar; the first column,
    ``time``, is the UTC time in ISO 8601 with µs (``2024-08-08T23:55:00.123000Z``;
    Binance's times have at most µs); floats in their shortest round-trip form,
    booleans ``true``/``false``. Parquet keeps the dtypes and the UTC index.
    """
    if kind not in EXPORT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EXPORT_KINDS)}, got {kind!r}")
    fmt = _format_of(path_or_buffer, format)
    if directory is not None and isinstance(path_or_buffer, (str, os.PathLike)):
        path_or_buffer = confined_path(path_or_buffer, directory)  # refused before reading anything
    frame = _export_frame(store, symbol, kind, timeframe, start, end)
    frame.index.name = "time"
    if not isinstance(path_or_buffer, (str, os.PathLike)):
        _write(frame, path_or_buffer, fmt)
        return len(frame)
    path = Path(path_or_buffer)
    if path.exists() and not path.is_file():
        raise FileExistsError(f"{path} exists and is not a regular file; refusing to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist")
    if not overwrite:
        # "x": create exclusively; an existing file or (dangling) symlink is refused
        try:
            with open(path, "xb") as fh:
                _write(frame, fh, fmt)
        except FileExistsError:
            raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return len(frame)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(frame, fh, fmt)
        if path.exists():  # keep the replaced file's permissions
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)  # the file appears whole; a symlink is replaced, not followed
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(frame)
