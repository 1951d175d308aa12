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
    2025-01-01).

:func:`read_frames` yields raw frames with their receive time;
:func:`read_trades` returns trades per symbol as tick frames.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from quantify.exceptions import FeedError
from quantify.feed.parse import FrameParser, Trade, trade_from_event, trades_to_frame

__all__ = ["SAMPLE_FILES", "detect_format", "read_frames", "read_trades", "read_csv_trades", "sample_files"]

#: The bundled replay sample (see ``quantify/data/README.md``).
SAMPLE_FILES = (
    "spot-2024-btcusdt_20240808.trades.gz",
    "spot-2024-btcusdt_20240809.trades.gz",
    "spot-2024-ethusdt_20240808.trades.gz",
    "spot-2024-ethusdt_20240809.trades.gz",
)


def sample_files() -> list[Path]:
    """Return the paths of the bundled sample recording (BTCUSDT, ETHUSDT spot trades)."""
    root = Path(__file__).resolve().parent.parent / "data"
    return [root / name for name in SAMPLE_FILES]

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
    with _open_text(path) as fh:
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


def read_frames(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(receive time in ns, frame text)`` from a ``stream`` or ``cryptofeed`` file.

    Lines that are not frames (the URL header of cryptofeed files, blank
    lines, truncated last lines) are skipped.
    """
    fmt = detect_format(path)
    if fmt not in ("stream", "cryptofeed"):
        raise FeedError(f"{path}: holds {fmt} data, not recorded WebSocket frames")
    with _open_text(path) as fh:
        for line in fh:
            stamp, sep, frame = line.partition(" ")
            if not sep or not frame.startswith("{"):
                continue
            try:
                if fmt == "stream":
                    ns = _to_ns(int(stamp))
                else:
                    ns = int(float(stamp.rstrip(":")) * 1e9)
            except ValueError:
                continue
            yield ns, frame.rstrip("\n")


def _rest_rows(path: str | os.PathLike[str]) -> list[dict]:
    with _open_text(path) as fh:
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


def read_csv_trades(
    path: str | os.PathLike[str], symbol: str | None = None
) -> pd.DataFrame:
    """Read a data.binance.vision trades or aggTrades CSV into a tick frame.

    Spot files have no header; USD-M files gained one in 2022. Columns are
    recognised by count: 7 for spot trades (id, price, qty, quote_qty, time,
    is_buyer_maker, is_best_match), 6 for USD-M trades (no best match), 8 for
    spot aggTrades and 7 with a header for USD-M aggTrades. Timestamps in µs
    (spot since 2025-01-01) are told from ms by magnitude.
    """
    del symbol  # the frame is per file; callers name the symbol
    with _open_text(path) as fh:
        first = fh.readline()
    has_header = not first.split(",")[0].strip().lstrip("-").isdigit()
    try:
        raw = pd.read_csv(
            path, header=0 if has_header else None, compression="infer",
            dtype=str, engine="c",
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FeedError(f"{path}: not a Binance CSV: {exc}") from exc
    names = [str(c).strip().lower() for c in raw.columns] if has_header else []
    ncol = raw.shape[1]
    agg = any("first" in n for n in names) or (not has_header and ncol == 8)
    try:
        if agg:
            tid, price, qty, first_id, last_id, ttime, maker = (raw.iloc[:, i] for i in range(7))
        elif ncol in (6, 7):
            tid, price, qty, _quote, ttime, maker = (raw.iloc[:, i] for i in range(6))
            first_id = last_id = tid
        else:
            raise FeedError(f"{path}: {ncol} columns, not a trades or aggTrades CSV")
        times = ttime.astype("int64").to_numpy()
        ids = tid.astype("int64").to_numpy()
        frame = pd.DataFrame(
            {
                "price": price.astype("float64").to_numpy(),
                "qty": qty.astype("float64").to_numpy(),
                "trade_id": ids,
                "is_buyer_maker": maker.str.strip().str.lower().eq("true").to_numpy(),
                "first_id": first_id.astype("int64").to_numpy(),
                "last_id": last_id.astype("int64").to_numpy(),
                "is_market": np.ones(len(ids), dtype=bool),
            }
        )
    except (ValueError, TypeError) as exc:
        raise FeedError(f"{path}: bad value in CSV: {exc}") from exc
    unit = "us" if len(times) and times.max() >= 10**14 else "ms"
    frame.index = pd.to_datetime(times, unit=unit, utc=True).rename("time")
    return frame


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
    out = {}
    for symbol, frame in frames.items():
        frame = frame.sort_values("trade_id", kind="stable")
        out[symbol] = frame[~frame["trade_id"].duplicated()]
    return out
