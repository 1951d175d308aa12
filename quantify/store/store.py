"""The ArcticDB store: ticks per symbol, writer status, and reads for research.

Libraries inside one ArcticDB instance:

``ticks``
    One ArcticDB symbol per instrument, named by its text (``BTCUSDT`` for
    Binance spot — as in stores of every earlier release —,
    ``binance-usdm:BTCUSDT``, ``okx:BTC-USDT``): the tick frame, appended in
    trade-id order by the single writer, compacted on a schedule. Spot and
    perpetual ``BTCUSDT`` live side by side.
``quotes``, ``book_diffs``, ``book_checkpoints``, ``book_ledger``
    Order books, one symbol per instrument key in each: the best bid and
    offer after every applied depth event, the diffs, periodic checkpoints
    of the top levels, the continuity ledger (:mod:`quantify.store.book`).
``_meta``
    Writer status (stats published every second) and leases.

One :class:`arcticdb.Arctic` is opened per URI per process (LMDB forbids
opening a path twice); :func:`open_store` hands out the shared instance.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import arcticdb as adb
import pandas as pd
from arcticdb.config import set_config_int
from arcticdb.version_store.library import WritePayload
from arcticdb_ext.version_store import DataError

from quantify.exceptions import StoreError, StoreNotFoundError, UnknownSymbol
from quantify.model.book import BookLevels
from quantify.model.book_frames import BookFrames
from quantify.model.instrument import Instrument, InstrumentLike, instrument_key
from quantify.model.status import WriterStatus
from quantify.model.times import TimeLike, parse_time
from quantify.store import merge
from quantify.store._libraries import BOOK_DIFFS, BOOK_LEDGER, META, QUOTES, TICKS
from quantify.store.alerts import AlertBook
from quantify.store.book import BookStore, StoredBook
from quantify.store.book_grid import book_snapshots
from quantify.store.candles import read_ohlcv
from quantify.store.export import export
from quantify.store.perp import PerpReads, PerpStore
from quantify.store.uri import StoreURI, parse_store_uri

__all__ = ["DEFAULT_READ_CACHE_SECONDS", "MIN_FREE_BYTES", "Store", "open_store"]

logger = logging.getLogger(__name__)

STATUS = "status"

#: How long a reader trusts its cached idea of a symbol's latest version.
#: ArcticDB's default is 2 s; QuantiFy lowers it so readers in other
#: processes see new trades within about a second.
DEFAULT_READ_CACHE_SECONDS = 0.2

#: Writers stop writing an LMDB store whose disk has less free space than this.
MIN_FREE_BYTES = 64 << 20

#: The directory ArcticDB keeps an LMDB store's configuration in: present once a store exists.
_ARCTIC_CONFIG = "_arctic_cfg"

_INSTANCES: dict[str, adb.Arctic] = {}
_INSTANCES_LOCK = threading.Lock()


def _arctic(uri: StoreURI, *, create: bool) -> adb.Arctic:
    with _INSTANCES_LOCK:
        arctic = _INSTANCES.get(uri.arctic_uri)
        if arctic is None:
            if uri.path is not None:
                _check_lmdb(uri, create=create)
            try:
                arctic = adb.Arctic(uri.arctic_uri)
            except Exception as exc:  # ArcticDB raises several unrelated types here
                raise StoreError(f"cannot open store {uri}: {uri.redact(str(exc))}") from exc
            if uri.scheme in ("s3", "s3s"):
                _check_s3(arctic, uri, create=create)
            _INSTANCES[uri.arctic_uri] = arctic
        return arctic


def _missing(uri: StoreURI, where: str) -> StoreNotFoundError:
    return StoreNotFoundError(
        f"no store at {where}: nothing was ever written there (check the path; a writer such as "
        f"'quantify ingest --store {uri}' or 'quantify load FILE --store {uri}' creates it)"
    )


def _check_lmdb(uri: StoreURI, *, create: bool) -> None:
    """Make the directory of an LMDB store if ``create``; else require the store to exist.

    ArcticDB itself creates the directory and its configuration environment
    (``_arctic_cfg``) when it opens a path, so existence is checked first.
    """
    assert uri.path is not None
    if create:
        try:
            uri.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store {uri}: {exc.strerror}") from exc
    elif not (uri.path / _ARCTIC_CONFIG).is_dir():
        raise _missing(uri, str(uri.path))


def _check_s3(arctic: adb.Arctic, uri: StoreURI, *, create: bool) -> None:
    """Require an S3 store to exist (``create=False``), or to be writable (``create=True``).

    ArcticDB lists a missing bucket as empty, without an error: a store is
    taken to exist when its bucket holds a library. QuantiFy never creates a
    bucket; creating the ``ticks`` library in a missing one fails here.
    """
    try:
        if arctic.list_libraries():
            return
        if not create:
            raise _missing(uri, f"{uri} (its bucket is missing or holds no libraries)")
        arctic.get_library(TICKS, create_if_missing=True)
    except adb.exceptions.ArcticException as exc:
        hint = " (QuantiFy never creates a bucket: does this one exist?)" if create else ""
        raise StoreError(
            f"cannot {'create' if create else 'open'} store {uri}{hint}: {uri.redact(str(exc))}"
        ) from exc


def _check_symbol(symbol: InstrumentLike) -> str:
    """The store key of an instrument: its canonical text (``BTCUSDT``, ``binance-usdm:BTCUSDT``)."""
    if isinstance(symbol, str) and not symbol.strip():
        raise ValueError(f"an instrument such as 'BTCUSDT' or 'binance-usdm:BTCUSDT' is needed, got {symbol!r}")
    return instrument_key(symbol)


class Store(PerpReads):
    """Read (and, for the single writer, append) ticks in an ArcticDB store.

    Obtain one with :func:`open_store`; the constructor is internal.
    """

    def __init__(self, uri: StoreURI, *, create: bool = False) -> None:
        self.uri = uri
        self._arctic = _arctic(uri, create=create)
        self._libs: dict[str, Any] = {}
        self._books = BookStore(self)
        self._perp = PerpStore(self)

    def __repr__(self) -> str:
        return f"<quantify.Store {self.uri}>"

    # -- libraries ---------------------------------------------------------

    def library(self, name: str) -> Any:
        """Return ArcticDB library ``name``, creating it if missing."""
        lib = self._libs.get(name)
        if lib is None:
            try:
                lib = self._arctic.get_library(name, create_if_missing=True)
            except Exception as exc:
                raise StoreError(
                    f"cannot open library {name!r} of store {self.uri}: {self.uri.redact(str(exc))}"
                ) from exc
            self._libs[name] = lib
        return lib

    @property
    def _ticks(self) -> Any:
        return self.library(TICKS)

    @property
    def alerts(self) -> AlertBook:
        """The store's alert rules and fired-alert history (:class:`quantify.alerts.AlertBook`)."""
        return AlertBook(self)

    def export(self, symbol: InstrumentLike, path_or_buffer: Any, **kwargs: Any) -> int:
        """Write ticks, candles, klines or book data of ``symbol`` to a CSV/Parquet file or stream.

        See :func:`quantify.store.export.export` for the arguments (``kind``,
        ``timeframe``, ``start``/``end`` inclusive-exclusive, ``format``,
        ``overwrite``). Returns the number of rows written.
        """
        return export(self, symbol, path_or_buffer, **kwargs)

    def klines(self, symbol: InstrumentLike, interval: str = "1m", start: TimeLike | None = None,
               end: TimeLike | None = None) -> pd.DataFrame:
        """Official Binance klines loaded or backfilled for ``symbol`` (see ``quantify load``)."""
        return merge.klines(self, symbol, interval, start, end)

    # -- reads ------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Instruments with ticks in the store, as text (``BTCUSDT``, ``binance-usdm:BTCUSDT``), sorted."""
        return sorted(self._ticks.list_symbols())

    def instruments(self) -> list[Instrument]:
        """Instruments with ticks in the store, sorted by venue, market and symbol."""
        return sorted(Instrument.parse(key) for key in self._ticks.list_symbols())

    def has_ticks(self, symbol: InstrumentLike) -> bool:
        """True if the store holds ticks of ``symbol``."""
        sym = _check_symbol(symbol)
        return bool(self._retry(sym, lambda: self._ticks.has_symbol(sym)))

    def _require(self, symbol: InstrumentLike) -> str:
        sym = _check_symbol(symbol)
        if not self._ticks.has_symbol(sym):
            known = ", ".join(self.symbols()) or "none yet"
            raise UnknownSymbol(f"no ticks for {sym!r} in store {self.uri} (instruments: {known})")
        return sym

    def ticks(
        self, symbol: InstrumentLike, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """Return the trades of ``symbol`` with ``start <= time < end``.

        Parameters
        ----------
        symbol : str or Instrument
            An instrument: ``"BTCUSDT"`` (Binance spot), ``"binance-usdm:BTCUSDT"``,
            ``"okx:BTC-USDT"`` (case-insensitive; see :class:`quantify.model.Instrument`).
        start, end : datetime, str or None
            UTC bounds, inclusive-exclusive; ISO strings, ``"now"`` and relative
            strings (``"-6h"``) are accepted. ``None`` means unbounded.

        Returns
        -------
        pandas.DataFrame
            UTC ``DatetimeIndex`` named ``time`` (trade time) and columns
            ``price, qty, trade_id, is_buyer_maker, first_id, last_id, is_market``,
            in trade-id order.
        """
        sym = self._require(symbol)
        t0, t1 = parse_time(start), parse_time(end)
        if t0 is not None and t1 is not None and t1 <= t0:
            raise ValueError(f"end {t1} is not after start {t0}")
        date_range = None
        if t0 is not None or t1 is not None:
            date_range = (t0, None if t1 is None else t1 - pd.Timedelta(1, "ns"))
        data = self._read(sym, date_range=date_range)
        return data

    def ohlcv(
        self,
        symbol: InstrumentLike,
        timeframe: str | pd.Timedelta = "1m",
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        fill: bool = True,
    ) -> pd.DataFrame:
        """Return candles of ``symbol`` labelled ``start <= t < end``.

        Parameters
        ----------
        symbol : str or Instrument
            An instrument, as for :meth:`ticks`.
        timeframe : str or Timedelta, default "1m"
            A Binance interval (``"1s"``, ``"1m"`` … ``"1d"``) or a fixed
            pandas offset (see :func:`quantify.analytics.timeframe_to_offset`).
        start, end : datetime, str or None
            UTC bounds on the bar labels, inclusive-exclusive, as for
            :meth:`ticks`; only whole bars are returned (an unaligned
            ``start`` begins at the next bar). ``None``: from the first
            trade's bar, through the last trade's bar (still open, so partial).
        fill : bool, default True
            Keep empty intervals inside the range as flat bars (Binance's
            flat klines); ``False`` drops them.

        Returns
        -------
        pandas.DataFrame
            Left-closed, left-labelled bars on a UTC index with the columns of
            :func:`quantify.analytics.resample`. Equal to
            ``resample(store.ticks(symbol), timeframe, start=..., end=...)``
            with the bounds on bar boundaries.

        Raises
        ------
        UnknownSymbol
            If the store has no ticks of ``symbol``.
        ValueError
            On a bad timeframe (the message lists the valid ones) or
            ``end <= start``.

        Notes
        -----
        Multiples of 1m read the continuously aggregated 1m candles
        (:class:`quantify.store.candles.CandleAggregator`) and merge them with
        :func:`quantify.analytics.merge_candles`; what the aggregate does not
        cover yet (the open minute, or ticks loaded without aggregates) is
        resampled from the ticks. Other timeframes resample the ticks. See
        :mod:`quantify.store.candles`.
        """
        return self._retry(self._require(symbol), lambda: read_ohlcv(self, symbol, timeframe, start, end, fill=fill))

    def _read(self, sym: str, **kwargs: Any) -> pd.DataFrame:
        return self._retry(sym, lambda: self._ticks.read(sym, **kwargs).data)

    def _retry(self, sym: str, fn: Any) -> Any:
        """Run the read ``fn``; retry ArcticDB errors a few times, then raise :class:`StoreError`.

        Every read of the store package goes through here. A version pruned
        between listing and reading (the writer prunes old versions on every
        append) makes one read fail with "key not found"; the next read sees
        the new version.
        """
        for attempt in range(5):
            try:
                return fn()
            except adb.exceptions.ArcticException as exc:
                if attempt == 4:
                    raise StoreError(f"cannot read {sym} from {self.uri}: {self.uri.redact(str(exc))}") from exc
                time.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")

    def tail(self, symbol: InstrumentLike, n: int = 1) -> pd.DataFrame:
        """The last ``n`` stored ticks of ``symbol`` (columns as :meth:`ticks`)."""
        sym = self._require(symbol)
        return self._retry(sym, lambda: self._ticks.tail(sym, int(n)).data)

    def last_trade(self, symbol: InstrumentLike) -> tuple[int, pd.Timestamp] | None:
        """Last stored ``(trade_id, time)`` of ``symbol``, or ``None`` if it has no ticks."""
        sym = _check_symbol(symbol)
        if not self._ticks.has_symbol(sym):
            return None
        tail = self._retry(sym, lambda: self._ticks.tail(sym, 1).data)
        return (int(tail["trade_id"].iloc[-1]), tail.index[-1]) if len(tail) else None

    def last_trades(self) -> dict[str, tuple[int, pd.Timestamp]]:
        """Last stored ``(trade_id, time)`` of every instrument."""
        out = {}
        for sym in self.symbols():
            last = self.last_trade(sym)
            if last is not None:
                out[sym] = last
        return out

    def describe(self, symbol: InstrumentLike) -> dict[str, Any]:
        """Rows, first/last trade time and id of ``symbol``, its book's counts and its perpetual rows.

        The book's: ``quotes``, ``book_diff_rows``, ``book_checkpoint_rows``,
        ``book_ledger_rows`` (rows stored; 0 without a book) and
        ``book_last_update_id`` (None without a book). A perpetual's:
        ``mark_rows``, ``funding_rows``, ``open_interest_rows``,
        ``liquidation_rows`` (0 for a spot instrument).
        """
        sym = self._require(symbol)
        head = self._retry(sym, lambda: self._ticks.head(sym, 1).data)
        tail = self._retry(sym, lambda: self._ticks.tail(sym, 1).data)
        rows = self._retry(sym, lambda: self._ticks.get_description(sym).row_count)
        return {
            "symbol": sym,
            "rows": int(rows),
            "first_time": head.index[0] if len(head) else None,
            "last_time": tail.index[-1] if len(tail) else None,
            "first_id": int(head["trade_id"].iloc[0]) if len(head) else None,
            "last_id": int(tail["trade_id"].iloc[-1]) if len(tail) else None,
            **self._books.counts(sym),
            **self._perp.row_counts(sym),
        }

    # -- order books ----------------------------------------------------------

    def book_symbols(self) -> list[str]:
        """Instruments with a stored order book, as text, sorted."""
        return self._books.symbols()

    def has_book(self, symbol: InstrumentLike) -> bool:
        """True if the store holds an order book (quotes) of ``symbol``."""
        return self._books.has(_check_symbol(symbol))

    def last_book_update(self, symbol: InstrumentLike) -> int | None:
        """The last depth update id whose quote and diffs are stored, or ``None``: where a writer resumes."""
        return self._books.last_update(_check_symbol(symbol))

    def stored_book(self, symbol: InstrumentLike, at: TimeLike | None = None) -> StoredBook:
        """``symbol``'s whole stored book at ``at`` (``None``: after its last event), to carry on from.

        A :class:`~quantify.store.book.StoredBook`: the ``OrderBook`` (known
        levels, range, ``update_id``), its last event's time, ``stale``; a
        writer resumes with ``BookSync.resume(sb.book, sb.time.value // 10**6)``.
        """
        return self._books.order_book(symbol, at)

    def append_book(self, frames: Mapping[str, BookFrames]) -> dict[str, int]:
        """Append order-book frames (``BookFrames`` per instrument key), one batch per library.

        Idempotent: quote, diff and checkpoint rows at or below the last
        ``update_id`` a library holds for the instrument are dropped (a
        re-applied journal, a file loaded twice); ledger rows are always
        added, in time order. Returns the quotes added per key.
        """
        return self._books.append(frames)

    def quotes(self, symbol: InstrumentLike, start: TimeLike | None = None,
               end: TimeLike | None = None) -> pd.DataFrame:
        """The best bid and offer of ``symbol``'s book after each depth event, ``start <= time < end``.

        UTC index ``time`` (the event's exchange time); ``bid_price, bid_qty,
        ask_price, ask_qty`` (NaN for a side beyond the known range),
        ``update_id, first_update_id, recv_time`` (receipt, ns since the
        epoch); only events applied in sync. :class:`UnknownSymbol` if none.
        """
        return self._books.read_range(QUOTES, symbol, start, end)

    def book_diffs(self, symbol: InstrumentLike, start: TimeLike | None = None,
                   end: TimeLike | None = None) -> pd.DataFrame:
        """The depth diffs applied to ``symbol``'s book, one row per level, ``start <= time < end``.

        Columns ``update_id, first_update_id, prev_update_id`` (-1 on spot),
        ``side`` (+1 bid, -1 ask, 0 for an event without levels, price and
        qty NaN), ``price, qty`` (absolute; 0 removes the level).
        """
        return self._books.read_range(BOOK_DIFFS, symbol, start, end)

    def book_ledger(self, symbol: InstrumentLike, start: TimeLike | None = None,
                    end: TimeLike | None = None) -> pd.DataFrame:
        """The continuity ledger of ``symbol``'s book, ``start <= time < end``.

        Columns ``kind`` (``start``, ``resume``, ``gap``, ``resync``, ``crossed``,
        ``mismatch``, ``disconnect``, ``stale_snapshot``, ``range``, ``refresh``),
        ``expected_id, got_id, stale_seconds, detail``. The book is stale from
        a ``gap``, ``crossed`` or ``mismatch`` to the next ``resync``.
        """
        return self._books.read_range(BOOK_LEDGER, symbol, start, end)

    def book(self, symbol: InstrumentLike, at: TimeLike, depth: int = 20) -> BookLevels:
        """``symbol``'s order book at time ``at``: the best ``depth`` known levels of each side.

        Parameters
        ----------
        symbol : str or Instrument
            An instrument, as for :meth:`ticks`.
        at : datetime or str
            The moment (UTC); every depth event with exchange time ``<= at`` is included.
        depth : int, default 20
            Levels per side.

        Returns
        -------
        BookLevels
            ``time`` and ``update_id`` of the last event included; ``stale``
            when ``at`` falls between a gap (or crossed book, or bookTicker
            mismatch) and its resync, per the ledger: the levels are then the
            last ones known before the gap. ``complete`` is False when fewer
            than ``depth`` levels of a side are known (beyond the snapshot's
            range); unknown levels are left out, never guessed.

        Raises :class:`UnknownSymbol` without a book of ``symbol``,
        ``ValueError`` if ``at`` is before the first checkpoint or ``depth < 1``.

        Notes
        -----
        The nearest checkpoint at or before ``at`` (the top 1,000 levels by
        default) plus the diffs with a higher ``update_id`` and time ``<= at``;
        only that window is read.
        """
        return self._books.book(symbol, at, depth)

    def book_snapshots(self, symbol: InstrumentLike, start: TimeLike | None = None, end: TimeLike | None = None,
                       every: str | pd.Timedelta = "1s", depth: int = 10) -> pd.DataFrame:
        """``symbol``'s book on a regular grid: one row per ``every``, ``depth`` levels a side.

        The points are the multiples of ``every`` in ``[start, end)``
        (``None``: from the first checkpoint, through the last quote). Index
        ``time``; columns ``bid_price_1..N, bid_qty_1..N, ask_price_1..N,
        ask_qty_1..N`` (NaN where a level is unknown or absent), ``update_id``
        (of the last event at or before the point; -1, and ``stale``, before
        any book) and ``stale``. Each row equals :meth:`book` at its time; one forward pass
        over the range (:mod:`quantify.store.book_grid`), not one :meth:`book`
        per point.
        """
        return book_snapshots(self._books, symbol, start, end, every, depth)

    # -- writes (the single writer only) ------------------------------------

    def free_bytes(self) -> int | None:
        """Bytes free on the filesystem of an LMDB store (``None`` for other backends)."""
        if self.uri.path is None:
            return None
        try:
            st = os.statvfs(self.uri.path)
        except OSError as exc:
            raise StoreError(f"cannot stat {self.uri}: {exc.strerror}") from exc
        return st.f_bavail * st.f_frsize

    def check_space(self, min_free: int = MIN_FREE_BYTES) -> None:
        """Raise :class:`StoreError` if an LMDB store's disk has less than ``min_free`` bytes free.

        Writers call this before writing: LMDB fails a commit that meets a
        full disk, and the next write after such a failure can crash the
        process (a segmentation fault in the storage library, seen on a
        full tmpfs). Refusing early keeps the failure a clean, retryable error.
        """
        free = self.free_bytes()
        if free is not None and free < min_free:
            raise StoreError(
                f"{self.uri}: {free / 2**20:.0f} MB free on its disk, below the "
                f"{min_free / 2**20:.0f} MB kept free; writes wait until space is freed"
            )

    def append_ticks(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """Append tick frames, one per instrument key (``inst.key``), in one batch.

        Each frame must start at or after the symbol's last stored time and
        continue its trade ids; the ingestion service guarantees both.
        Previous versions are pruned so version chains stay short.
        """
        payloads = [WritePayload(sym, df) for sym, df in frames.items() if len(df)]
        if not payloads:
            return
        results = self._ticks.append_batch(payloads, prune_previous_versions=True)
        errors = [r for r in results if isinstance(r, DataError)]
        if errors:
            raise StoreError(f"append to {self.uri} failed: {errors[0]}")

    def compact(self, symbol: InstrumentLike, rows_per_segment: int = 100_000) -> bool:
        """Merge a symbol's small appended segments; True if anything changed."""
        sym = _check_symbol(symbol)
        before = self._ticks.list_versions(sym)
        self._ticks.compact_data(sym, rows_per_segment=rows_per_segment, prune_previous_versions=True)
        return self._ticks.list_versions(sym) != before

    def compact_book(self, symbol: InstrumentLike, rows_per_segment: int = 100_000) -> bool:
        """Merge the small appended segments of ``symbol``'s book libraries; True if anything changed."""
        return self._books.compact(_check_symbol(symbol), rows_per_segment)

    # -- writer status ------------------------------------------------------

    def write_status(self, status: WriterStatus | Mapping[str, Any], *, name: str = STATUS) -> None:
        """Publish the writer's status for ``quantify status``.

        ``status`` is stored in its dict form (:meth:`WriterStatus.to_dict`),
        which readers of any version read back tolerantly. ``name`` is
        ``"status"`` for the store's single writer, and ``"status__<owner>"``
        for each worker of a sharded (S3) store.
        """
        published = status.to_dict() if isinstance(status, WriterStatus) else dict(status)
        self.library(META).write_pickle(name, published, prune_previous_versions=True)

    def read_status(self, name: str = STATUS) -> dict[str, Any] | None:
        """The dict the writer last published (``name`` as for :meth:`write_status`), or ``None``.

        :meth:`WriterStatus.from_dict` reads it; :func:`quantify.status` does both.
        """
        meta = self.library(META)
        if not meta.has_symbol(name):
            return None
        try:  # retried: the writer prunes the version just listed every time it publishes
            return dict(self._retry(name, lambda: meta.read(name).data))
        except StoreError:
            return None

    def worker_statuses(self) -> dict[str, dict[str, Any]]:
        """Statuses published by the workers of a sharded store, by owner id."""
        prefix = STATUS + "__"
        names = [n for n in self.library(META).list_symbols() if n.startswith(prefix)]
        out = {}
        for name in sorted(names):
            status = self.read_status(name)
            if status is not None:
                out[name[len(prefix):]] = status
        return out


def open_store(
    uri: str | None = None, *, create: bool = False,
    read_cache_seconds: float = DEFAULT_READ_CACHE_SECONDS,
) -> Store:
    """Open the QuantiFy store at ``uri``.

    Parameters
    ----------
    uri : str or None
        ``lmdb://PATH`` (default ``~/.quantify/arctic``, or ``$QUANTIFY_STORE``
        when read by the command line and the IPython extension), ``s3://...``
        or ``mem://``. A bare path means LMDB.
    create : bool, default False
        Create the store if there is none at ``uri``. Writers pass ``True``
        (``quantify ingest``, ``load``, ``backfill``, ``alerts add``, the
        IPython extension's writer); readers keep the default, so a mistyped
        path is an error instead of a new, empty store. An S3 store needs its
        bucket: QuantiFy never creates one. ``mem://`` stores live in this
        process only and always open.
    read_cache_seconds : float
        How long this process trusts its cached latest version of a symbol
        (ArcticDB's ``VersionMap.ReloadInterval``, 2 s by default there).
        Lower means fresher reads of a store another process writes.

    Raises
    ------
    InvalidStoreURI
        If the URI is malformed.
    StoreNotFoundError
        If ``create`` is False and no store exists at ``uri`` (the message
        names the path).
    StoreError
        If the store cannot be opened (or created).
    """
    parsed = parse_store_uri(uri, default=os.environ.get("QUANTIFY_STORE") or None)
    set_config_int("VersionMap.ReloadInterval", int(read_cache_seconds * 1e9))
    return Store(parsed, create=create)
