"""Readers for recorded Binance messages and data.binance.vision CSVs.

Formats understood (detected from the content, gzip or not):

``stream``
    One message a line, ``<local receive time> <JSON>``; the local time is an
    integer in ns, µs or ms (told apart by magnitude). This is the format of
    the hftbacktest recordings and of QuantiFy's own journal.
``cryptofeed``
    ``<local time, float seconds>: <JSON>``; an optional first line holds the
    subscribed URL.
``rest-json``
    A JSON array of REST aggregate-trade rows ``{a,p,q,f,l,T,m,M}`` or of ccxt
    records whose ``info`` is such a row.
``csv``
    data.binance.vision trades or aggTrades CSVs, spot or USD-M, with or
    without a header, timestamps in ms or µs (spot switched to µs on
    2025-01-01). Klines CSVs are read by :func:`read_csv_klines`; a file's
    ``.CHECKSUM`` is checked by :func:`verify_checksum`.

:func:`read_frames` yields raw frames with their receive time;
:func:`read_trades` returns trades per symbol as tick frames.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from quantify.exceptions import FeedError
from quantify.model.trades import Trade, trades_to_frame
from quantify.venues.binance.parse import FrameParser, trade_from_event

__all__ = [
    "BOOK_SAMPLE_FILES",
    "KLINE_CSV_COLUMNS",
    "SAMPLE_FILES",
    "USDM_SAMPLE_FILES",
    "book_sample_files",
    "checksum_path",
    "csv_kind",
    "detect_format",
    "detect_venue",
    "kline_interval_from_name",
    "read_csv_klines",
    "read_csv_trades",
    "read_frames",
    "read_trades",
    "sample_files",
    "usdm_sample_files",
    "verify_checksum",
]

#: The bundled replay sample (see ``quantify/data/README.md``).
SAMPLE_FILES = (
    "spot-2024-btcusdt_20240808.trades.gz",
    "spot-2024-btcusdt_20240809.trades.gz",
    "spot-2024-ethusdt_20240808.trades.gz",
    "spot-2024-ethusdt_20240809.trades.gz",
)


def sample_files() -> list[Path]:
    """Return the paths of the bundled sample recording (BTCUSDT, ETHUSDT spot trades)."""
    root = Path(__file__).resolve().parents[2] / "data"
    return [root / name for name in SAMPLE_FILES]


#: The bundled USD-M futures sample (see ``quantify/data/README.md``).
USDM_SAMPLE_FILES = (
    "usdm-2024-btcusdt_20240808.trades.gz",
    "usdm-2024-ethusdt_20240808.trades.gz",
)


def usdm_sample_files() -> list[Path]:
    """Return the paths of the bundled USD-M sample (BTCUSDT, ETHUSDT perpetual trades)."""
    root = Path(__file__).resolve().parents[2] / "data"
    return [root / name for name in USDM_SAMPLE_FILES]

#: The bundled order-book extracts (depth diffs, snapshots, book tickers; see ``quantify/data/README.md``).
BOOK_SAMPLE_FILES = (
    "spot-2024-btcusdt_20240808.book.gz",
    "spot-2024-btcusdt_20240809.book.gz",
    "usdm-2024-btcusdt_20240808.book.gz",
)


def book_sample_files() -> list[Path]:
    """Return the paths of the bundled order-book extracts (spot and USD-M BTCUSDT)."""
    root = Path(__file__).resolve().parents[2] / "data"
    return [root / name for name in BOOK_SAMPLE_FILES]


_GZIP_MAGIC = b"\x1f\x8b"


def _open_text(path: str | os.PathLike[str]) -> io.TextIOBase:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror}") from exc
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _compression(path: str | os.PathLike[str]) -> str | None:
    """``"gzip"`` or ``None`` by the first bytes, for readers that would guess it from the name."""
    with open(path, "rb") as fh:
        return "gzip" if fh.read(2) == _GZIP_MAGIC else None


@contextlib.contextmanager
def _reading(path: str | os.PathLike[str]) -> Iterator[io.TextIOBase]:
    """``_open_text``, with a damaged gzip stream or a read error raised as :class:`FeedError`."""
    with _open_text(path) as f:
        try:
            yield f
        except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise FeedError(f"{path}: cannot read: {exc}") from exc


def _to_ns(stamp: int) -> int:
    """Scale an integer epoch timestamp in s, ms, µs or ns to ns."""
    if stamp >= 10**17:
        return stamp
    if stamp >= 10**14:
        return stamp * 1_000
    if stamp >= 10**11:
        return stamp * 1_000_000
    return stamp * 1_000_000_000


def detect_format(path: str | os.PathLike[str]) -> str:
    """Return ``stream``, ``cryptofeed``, ``rest-json`` or ``csv`` for a file.

    Raises :class:`~quantify.exceptions.FeedError` if no format fits.
    """
    with _reading(path) as fh:
        head = fh.read(4096)
    first = head.lstrip()
    if not first:
        raise FeedError(f"{path}: file is empty")
    if first[0] == "[":
        return "rest-json"
    line = first.splitlines()[0]
    if line.startswith(("wss://", "ws://")):
        return "cryptofeed"
    stamp, _, rest = line.partition(" ")
    if stamp.endswith(":") and rest.startswith("{"):
        return "cryptofeed"
    if stamp.isdigit() and rest.startswith("{"):
        return "stream"
    if "," in line:
        return "csv"
    raise FeedError(f"{path}: unrecognised format (first line: {line[:80]!r})")


#: File-name parts that mean a USD-M recording when the content does not say.
USDM_NAME_HINTS = ("usdm", "futures", "fstream", "-um-", "_um_")
#: Frames looked at to tell spot from USD-M.
_DETECT_FRAMES = 2_000


def detect_venue(path: str | os.PathLike[str]) -> str:
    """``"binance"`` (spot) or ``"binance-usdm"``: the market a Binance recording was taken from.

    Spot and USD-M share symbol names, so a file must say which it holds.
    The content decides where it can: USD-M trade events carry ``X`` (spot
    and aggregate-trade ones ``M``, USD-M ones never), USD-M depth events ``pu``,
    and only USD-M has ``markPriceUpdate`` and ``forceOrder``; a recorded session's URL names
    ``fstream``; data.binance.vision USD-M CSVs have a header line (since
    2022) or six columns for trades, spot CSVs never a header. Otherwise the
    file name does (:data:`USDM_NAME_HINTS`), otherwise it is spot.
    """
    name = Path(path).name.lower()
    by_name = "binance-usdm" if any(h in name for h in USDM_NAME_HINTS) else None
    fmt = detect_format(path)
    if fmt == "csv":
        has_header, fields = _csv_header(path)
        if has_header or len(fields) == 6:
            return "binance-usdm"
        return by_name or "binance"
    if fmt == "cryptofeed":
        with _reading(path) as fh:
            first = fh.readline()
        if "fstream" in first or "/fapi/" in first:
            return "binance-usdm"
    if fmt in ("stream", "cryptofeed"):
        for n, (_, frame) in enumerate(read_frames(path)):
            if n >= _DETECT_FRAMES:
                break
            try:
                msg = orjson.loads(frame)
            except orjson.JSONDecodeError:
                continue
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                continue
            kind = data.get("e")
            if kind in ("trade", "aggTrade"):
                # spot events carry M (best match), USD-M trades X (order type), USD-M aggTrades neither
                if "M" in data:
                    return "binance"
                return "binance-usdm"
            elif (kind == "depthUpdate" and "pu" in data) or kind in ("markPriceUpdate", "forceOrder"):
                return "binance-usdm"
    return by_name or "binance"


def read_frames(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(receive time in ns, frame text)`` from a ``stream`` or ``cryptofeed`` file.

    Lines that are not frames (the URL header of cryptofeed files, blank
    lines, truncated last lines, a receive time that is no finite number)
    are skipped.
    """
    fmt = detect_format(path)
    if fmt not in ("stream", "cryptofeed"):
        raise FeedError(f"{path}: holds {fmt} data, not recorded WebSocket frames")
    with _reading(path) as fh:
        for line in fh:
            stamp, sep, frame = line.partition(" ")
            if not sep or not frame.startswith("{"):
                continue
            try:
                if fmt == "stream":
                    ns = _to_ns(int(stamp))
                else:
                    ns = int(float(stamp.rstrip(":")) * 1e9)
            except (ValueError, OverflowError):  # "nan:", "1e999:" are no receive times
                continue
            yield ns, frame.rstrip("\n")


def _rest_rows(path: str | os.PathLike[str]) -> list[dict]:
    with _reading(path) as fh:
        try:
            rows = orjson.loads(fh.read())
        except orjson.JSONDecodeError as exc:
            raise FeedError(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise FeedError(f"{path}: expected a JSON array of aggregate trades")
    return [r.get("info", r) if isinstance(r, dict) else r for r in rows]


def _symbol_from_name(path: str | os.PathLike[str]) -> str:
    stem = Path(path).name.split(".")[0]
    return stem.split("_")[0].split("-")[0].upper()


def _csv_header(path: str | os.PathLike[str]) -> tuple[bool, list[str]]:
    """Whether the CSV has a header line, and the fields of its first line."""
    with _reading(path) as fh:
        first = fh.readline()
    fields = [f.strip() for f in first.split(",")]
    return not fields[0].lstrip("-").isdigit(), fields


def _read_csv_columns(
    path: str | os.PathLike[str], has_header: bool, types: dict[int, str]
) -> dict[int, np.ndarray]:
    """Read the columns ``types`` (index -> numpy dtype) of a header-optional CSV.

    pyarrow's multithreaded parser (about 5x ``pandas.read_csv`` here; pandas'
    C parser also crashes the process on an exponent beyond 2**31). Values are
    parsed straight to their types (floats correctly rounded, as ``float(str)``).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrow_types = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
    try:
        # A stream, not a path: pyarrow would guess the compression from the name.
        with pa.input_stream(os.fspath(path), compression=_compression(path)) as source:
            table = pacsv.read_csv(
                source,
                read_options=pacsv.ReadOptions(
                    column_names=None, autogenerate_column_names=True,
                    skip_rows=1 if has_header else 0, block_size=16 << 20,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"f{i}": arrow_types[t] for i, t in types.items()},
                    include_columns=[f"f{i}" for i in types],
                ),
            )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        where = _bad_value_line(path, has_header, types)
        message = _arrow_message(exc, has_header)
        if where and "line " not in message:
            message = f"{where}: {message}"
        raise FeedError(f"{path}: not a Binance CSV: {message}") from exc
    return {i: table.column(f"f{i}").to_numpy() for i in types}


#: What a value of each column type looks like (the line finder's test, not the parser's).
_VALUE_PATTERNS = {
    "int64": r"[+-]?\d+",
    "float64": r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:inf|nan)",
    "bool": r"(?i:true|false|1|0)",
}


def _bad_value_line(path: str | os.PathLike[str], has_header: bool, types: dict[int, str]) -> str:
    """``"line N"`` of the first value that is not of its column's type ("" if none found).

    Only on the error path: pyarrow's conversion errors name the column, not the row.
    """
    try:
        raw = pd.read_csv(path, header=None, dtype=str, skiprows=1 if has_header else 0,
                          usecols=list(types), keep_default_na=False, on_bad_lines="skip",
                          compression=_compression(path))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return ""
    if not set(types) <= set(raw.columns):  # too few columns: nothing to point at
        return ""
    bad = np.zeros(len(raw), dtype=bool)
    for i, kind in types.items():
        # a pattern, not pd.to_numeric: that crashes the process on "1e2147483648"
        bad |= ~raw[i].str.strip().str.fullmatch(_VALUE_PATTERNS[kind]).eq(True).to_numpy()
    rows = np.flatnonzero(bad)
    return f"line {int(rows[0]) + 1 + int(has_header)}" if len(rows) else ""


def _arrow_message(exc: Exception, has_header: bool) -> str:
    """pyarrow's message with its 0-based data row turned into a 1-based file line."""
    import re

    text = str(exc).splitlines()[0]
    match = re.search(r"Row #(\d+)", text)
    if match:
        line = int(match.group(1)) + (1 if has_header else 0)
        text = f"line {line}: {text}"
    return text


def read_csv_trades(
    path: str | os.PathLike[str], symbol: str | None = None
) -> pd.DataFrame:
    """Read a data.binance.vision trades or aggTrades CSV into a tick frame.

    Spot files have no header; USD-M files gained one in 2022. Columns are
    recognised by count: 7 for spot trades (id, price, qty, quote_qty, time,
    is_buyer_maker, is_best_match), 6 for USD-M trades (no best match), 8 for
    spot aggTrades and 7 with a header for USD-M aggTrades. Timestamps in µs
    (spot since 2025-01-01) are told from ms by magnitude.

    Raises :class:`~quantify.exceptions.FeedError` naming the file (and the
    line, when the parser reports it) on anything else, including a negative
    id or time and a time past 2262 (it would wrap around in an ns index).
    """
    del symbol  # the frame is per file; callers name the symbol
    has_header, fields = _csv_header(path)
    names = [f.lower() for f in fields] if has_header else []
    ncol = len(fields)
    agg = any("first" in n for n in names) or (not has_header and ncol == 8)
    if agg:
        # id, price, qty, first id, last id, time, buyer is maker
        cols = _read_csv_columns(path, has_header, {0: "int64", 1: "float64", 2: "float64",
                                                    3: "int64", 4: "int64", 5: "int64", 6: "bool"})
        ids, first_id, last_id, times, maker = cols[0], cols[3], cols[4], cols[5], cols[6]
    elif ncol in (6, 7):
        # id, price, qty, quote qty, time, buyer is maker[, best match]
        cols = _read_csv_columns(path, has_header, {0: "int64", 1: "float64", 2: "float64",
                                                    4: "int64", 5: "bool"})
        ids, times, maker = cols[0], cols[4], cols[5]
        first_id = last_id = ids
    else:
        raise FeedError(f"{path}: {ncol} columns, not a trades or aggTrades CSV")
    frame = pd.DataFrame(
        {
            "price": cols[1],
            "qty": cols[2],
            "trade_id": ids,
            "is_buyer_maker": maker,
            "first_id": first_id,
            "last_id": last_id,
            "is_market": np.ones(len(ids), dtype=bool),
        },
        copy=False,  # consolidating into 2-D blocks would cost more than parsing
    )
    for name, ids_ in (("trade id", ids), ("first id", first_id), ("last id", last_id)):
        _check_range(path, has_header, name, ids_, _INT64_MAX)
    frame.index = pd.DatetimeIndex(_times_ns(path, has_header, times), name="time").tz_localize("UTC")
    return frame


#: Largest trade id, and largest time in ns (2262-04-11): both are stored as int64.
_INT64_MAX = 2**63 - 1


def _check_range(path: str | os.PathLike[str], has_header: bool, name: str, values: np.ndarray,
                 high: int) -> None:
    """Raise :class:`FeedError` naming the line of the first value outside ``[0, high]``."""
    bad = np.flatnonzero((values < 0) | (values > high))
    if len(bad):
        line = int(bad[0]) + 1 + int(has_header)
        raise FeedError(f"{path}: line {line}: {name} {values[bad[0]]} is out of range")


def _times_ns(path: str | os.PathLike[str], has_header: bool, times: np.ndarray) -> np.ndarray:
    """Epoch times in ms, or µs when any is >= 1e14 (spot since 2025), as ``datetime64[ns]``.

    A time that would not fit an int64 in ns is refused, not wrapped around.
    """
    scale = 1_000 if len(times) and times.max() >= 10**14 else 1_000_000
    _check_range(path, has_header, "time", times, _INT64_MAX // scale)
    return (times * scale).view("M8[ns]")


def read_trades(
    path: str | os.PathLike[str], parser: FrameParser | None = None
) -> dict[str, pd.DataFrame]:
    """Read every trade in a recorded file, per symbol, as tick frames.

    Works on all formats of :func:`detect_format`. For CSVs and REST JSON,
    which carry no symbol, the symbol is taken from the file name
    (``BTCUSDT-trades-2024-08-08.csv`` → ``BTCUSDT``). Trades are sorted by
    id and duplicates dropped; malformed frames are counted in ``parser``.
    """
    fmt = detect_format(path)
    if fmt == "csv":
        frames = {_symbol_from_name(path): read_csv_trades(path)}
    else:
        by_symbol: dict[str, list[Trade]] = {}
        if fmt == "rest-json":
            symbol = _symbol_from_name(path)
            for row in _rest_rows(path):
                try:
                    trade = trade_from_event({**row, "e": "aggTrade", "s": symbol})
                except (KeyError, TypeError, ValueError) as exc:
                    raise FeedError(f"{path}: bad aggregate trade row {row!r}: {exc}") from exc
                by_symbol.setdefault(symbol, []).append(trade)
        else:
            parser = parser or FrameParser()
            for _, frame in read_frames(path):
                event = parser.parse(frame)
                if isinstance(event, Trade):
                    by_symbol.setdefault(event.symbol, []).append(event)
        frames = {s: trades_to_frame(t) for s, t in by_symbol.items()}
    return {symbol: _by_id(frame) for symbol, frame in frames.items()}


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    """A tick frame sorted by trade id, each id once (the first)."""
    frame = frame.sort_values("trade_id", kind="stable")
    return frame[~frame["trade_id"].duplicated()]


# -- klines CSVs and .CHECKSUM files (data.binance.vision) --------------------

#: Columns of a data.binance.vision klines CSV, in order.
KLINE_CSV_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)


def csv_kind(path: str | os.PathLike[str]) -> str:
    """``klines``, ``trades`` (trades and aggTrades), ``funding`` or ``open_interest`` for a CSV.

    ``funding``: data.binance.vision's monthly USD-M ``fundingRate`` files
    (header ``calc_time,funding_interval_hours,last_funding_rate``) or the
    columns of a ``/fapi/v1/fundingRate`` answer (``symbol,fundingTime,
    fundingRate[,markPrice]``); ``open_interest``: the daily USD-M ``metrics``
    files (header ``create_time,symbol,sum_open_interest,...``). Read by
    :mod:`quantify.venues.binance.perp_files`.
    """
    has_header, fields = _csv_header(path)
    names = [f.lower() for f in fields] if has_header else []
    if names[:1] == ["calc_time"] or "fundingtime" in names:
        return "funding"
    if names[:1] == ["create_time"] and "sum_open_interest" in names:
        return "open_interest"
    if len(fields) == 12 or (has_header and fields[0].lower() == "open_time"):
        return "klines"
    return "trades"


def kline_interval_from_name(path: str | os.PathLike[str]) -> str:
    """The interval in a klines file name: ``BTCUSDT-1m-2024-08-08.csv`` → ``1m``."""
    parts = Path(path).name.split(".")[0].split("-")
    if len(parts) < 2 or not parts[1][:-1].isdigit() or parts[1][-1:] not in "smhdwM":
        raise FeedError(f"{path}: cannot tell the kline interval from the file name "
                        "(expected SYMBOL-INTERVAL-DATE.csv, as on data.binance.vision)")
    return parts[1]


def read_csv_klines(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a data.binance.vision klines CSV into a candle frame.

    Returns the columns of :data:`quantify.analytics.CANDLE_COLUMNS` (``trades``
    is Binance's ``count``; ``vwap`` is ``quote_volume / volume``, the close
    for a bar without volume) on a UTC index of open times. Header or not,
    open times in ms or µs.
    """
    has_header, fields = _csv_header(path)
    if len(fields) != 12:
        raise FeedError(f"{path}: {len(fields)} columns, not a klines CSV (12 expected)")
    types = {0: "int64", 1: "float64", 2: "float64", 3: "float64", 4: "float64", 5: "float64",
             7: "float64", 8: "int64", 9: "float64", 10: "float64"}
    c = _read_csv_columns(path, has_header, types)
    volume, quote = c[5], c[7]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, quote / np.where(volume > 0, volume, 1.0), c[4])
    frame = pd.DataFrame(
        {
            "open": c[1], "high": c[2], "low": c[3], "close": c[4], "volume": volume,
            "quote_volume": quote, "trades": c[8], "taker_buy_volume": c[9],
            "taker_buy_quote_volume": c[10], "vwap": vwap,
        },
        copy=False,
    )
    frame.index = pd.DatetimeIndex(_times_ns(path, has_header, c[0])).tz_localize("UTC")
    return frame


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """Where data.binance.vision puts the checksum of ``path``: ``<name>.CHECKSUM`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".CHECKSUM")


def verify_checksum(path: str | os.PathLike[str]) -> bool:
    """Check ``path`` against its ``.CHECKSUM`` file, if there is one.

    The checksum file holds ``<sha256 hex>  <file name>`` (``sha256sum``'s
    format). Returns True if it was present and matched, False if there is
    none; raises :class:`~quantify.exceptions.FeedError` on a mismatch or an
    unreadable checksum file.
    """
    import hashlib

    check = checksum_path(path)
    if not check.exists():
        return False
    try:
        text = check.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise FeedError(f"cannot read {check}: {exc.strerror}") from exc
    expected = text.split()[0].lower() if text else ""
    if len(expected) != 64 or any(ch not in "0123456789abcdef" for ch in expected):
        raise FeedError(f"{check}: not a sha256 checksum line ('<hex>  <name>')")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror}") from exc
    if digest.hexdigest() != expected:
        raise FeedError(f"{path}: sha256 {digest.hexdigest()[:16]}… does not match "
                        f"{check.name} ({expected[:16]}…); the download is corrupt")
    return True
