"""Export: ticks, candles, loaded klines, order-book or perpetual-futures data of a time range to CSV or Parquet.

``Store.export``, ``quantify export``: a time range ``start <= t < end``
(inclusive-exclusive, as everywhere in QuantiFy) to CSV or Parquet, to a path
or a binary stream. A path is written where its caller says, unless a
``directory`` (``--dir``) confines it: then a path resolving outside that
directory is refused (:class:`~quantify.exceptions.UnsafePath`). The
dashboards' download writes no file at all.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from quantify.exceptions import QuantifyError, UnknownSymbol, UnsafePath
from quantify.model.instrument import InstrumentLike, instrument_key
from quantify.model.perp import PERP_KINDS
from quantify.model.times import TimeLike
from quantify.store.merge import klines

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["CSV_TIME_FORMAT", "EXPORT_FORMATS", "EXPORT_KINDS", "confined_path", "export"]

EXPORT_KINDS: Final = ("ticks", "ohlcv", "klines", "quotes", "book_diffs", "book_ledger", *PERP_KINDS)
EXPORT_FORMATS: Final = ("csv", "parquet")
_CSV_CHUNK_ROWS: Final = 500_000
#: Times in exported CSVs (strftime spelling): ISO 8601, UTC, µs, one width on every row.
CSV_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def _export_frame(store: Store, symbol: InstrumentLike, kind: str, timeframe: str,
                  start: TimeLike | None, end: TimeLike | None) -> pd.DataFrame:
    if kind == "ticks":
        return store.ticks(symbol, start, end)
    if kind == "klines":
        return klines(store, symbol, timeframe, start, end)
    if kind == "quotes":
        return store.quotes(symbol, start, end)
    if kind == "book_diffs":
        return store.book_diffs(symbol, start, end)
    if kind == "book_ledger":
        return store.book_ledger(symbol, start, end)
    if kind in PERP_KINDS:
        key = instrument_key(symbol)
        frame = store._perp.read(kind, key, start, end)
        if frame.empty and not store._perp.has(kind, key):
            raise UnknownSymbol(f"no {kind} data for {key!r} in store {store.uri} (perpetual data is stored by "
                                f"'quantify load' and 'quantify backfill {key} --kind funding|open_interest')")
        return frame
    return store.ohlcv(symbol, timeframe, start, end)


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


def _csv_column(column: pd.Series) -> np.ndarray:
    """A column as CSV values: UTC times (the mark's ``next_funding_time``) as the index's are written."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return _csv_times(pd.DatetimeIndex(column))
    return column.to_numpy()


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
                          **{str(c): _csv_column(part[c]) for c in part.columns}})
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
    symbol: InstrumentLike,
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
    kind : {"ticks", "ohlcv", "klines", "quotes", "book_diffs", "book_ledger", "mark", "funding", \
"open_interest", "liquidations"}
        Ticks; candles of ``timeframe`` computed from the ticks
        (:meth:`Store.ohlcv`); Binance klines loaded with
        :func:`load_files` or backfilled; the order book's best bid and
        offer per depth event (:meth:`Store.quotes`), its diffs, one row per
        level (:meth:`Store.book_diffs`), or its continuity ledger
        (:meth:`Store.book_ledger`); or a perpetual's mark prices, funding
        settlements, open interest or liquidations (:meth:`Store.mark`,
        :meth:`Store.funding`, :meth:`Store.open_interest`,
        :meth:`Store.liquidations`; the frames of :mod:`quantify.model.perp`).
    timeframe : str, default "1m"
        Candle timeframe for ``ohlcv`` (any of
        :func:`quantify.analytics.timeframe_to_offset`) or kline interval.
    start, end : datetime, str or None
        Bounds, inclusive-exclusive: trade time ``start <= t < end`` for
        ticks, bar open time for candles, the depth event's exchange time
        for book data, the event (mark), settlement, sample or order trade
        time for perpetual data. ``None`` is unbounded.
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
    booleans ``true``/``false``, other UTC times (a mark's
    ``next_funding_time``) as ``time``, NaN (a funding settlement without
    its mark price) as ``nan``. Parquet keeps the dtypes and the UTC index.
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
