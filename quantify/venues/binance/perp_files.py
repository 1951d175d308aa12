"""Readers of Binance USD-M perpetual-futures files: funding, open interest, mark price, liquidations.

Formats (told apart by :func:`~quantify.venues.binance.recordings.csv_kind`
and :func:`~quantify.venues.binance.recordings.detect_format`):

data.binance.vision ``fundingRate`` (monthly, ``futures/um/monthly/fundingRate``)
    ``BTCUSDT-fundingRate-2023-04.csv``, header
    ``calc_time,funding_interval_hours,last_funding_rate``: one row per
    settlement, ``calc_time`` in ms (a few ms after the hour, as
    ``fundingTime``), the rate settled. The symbol comes from the file
    name; the archive gives no mark price (NaN).
``/fapi/v1/fundingRate`` columns
    ``symbol,fundingTime,fundingRate[,markPrice]`` (the REST answer's
    fields, as in ``quantify/data/usdm-2021-xrpusdt.funding.csv``); an
    empty or missing ``markPrice`` is NaN.
data.binance.vision ``metrics`` (daily, ``futures/um/daily/metrics``)
    ``BTCUSDT-metrics-2023-04-05.csv``, header ``create_time,symbol,
    sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,
    sum_toptrader_long_short_ratio,count_long_short_ratio,
    sum_taker_long_short_vol_ratio``, every 5 minutes, ``create_time`` as
    ``YYYY-MM-DD HH:MM:SS`` UTC. Open interest (contracts) and its value
    (USDT) are read; the long/short and taker ratios are not (QuantiFy
    stores no such series).
recorded WebSocket captures (``stream``, ``cryptofeed``)
    ``markPriceUpdate`` and ``forceOrder`` events beside the trades, read in
    one pass with them (:func:`read_capture`); each record keeps the
    recorded receive time.

Every reader returns frames of :mod:`quantify.model.perp` per venue symbol
and raises :class:`~quantify.exceptions.FeedError` naming the file (and the
line, where one is to blame) for anything else. Rates and prices are parsed
as ``float(str)`` would (correctly rounded), so a decimal round-trips.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, Final

import pandas as pd

from quantify.exceptions import FeedError
from quantify.model.perp import (
    FundingSettlement,
    Liquidation,
    MarkPrice,
    OpenInterest,
    funding_to_frame,
    liquidations_to_frame,
    marks_to_frame,
    open_interest_to_frame,
)
from quantify.model.trades import MAX_TIME_MS, Trade, trades_to_frame
from quantify.venues.binance import recordings
from quantify.venues.binance.parse import FrameParser

__all__ = [
    "METRICS_CSV_COLUMNS",
    "REST_FUNDING_CSV_COLUMNS",
    "VISION_FUNDING_CSV_COLUMNS",
    "read_capture",
    "read_csv_funding",
    "read_csv_metrics",
    "read_funding_rows",
]

#: Header of data.binance.vision's monthly USD-M ``fundingRate`` files.
VISION_FUNDING_CSV_COLUMNS: Final = ("calc_time", "funding_interval_hours", "last_funding_rate")
#: The fields of a ``/fapi/v1/fundingRate`` row (``markPrice`` optional).
REST_FUNDING_CSV_COLUMNS: Final = ("symbol", "fundingTime", "fundingRate", "markPrice")
#: Header of data.binance.vision's daily USD-M ``metrics`` files (the first four are read).
METRICS_CSV_COLUMNS: Final = (
    "create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
    "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)


def _rows(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """The header (lower case) and the data rows of a small headed CSV."""
    with recordings._reading(path) as fh:
        lines = [line.strip() for line in fh]
    header = [f.strip().lower() for f in lines[0].split(",")] if lines else []
    return header, [[f.strip() for f in line.split(",")] for line in lines[1:] if line]


def _require(path: str | os.PathLike[str], header: list[str], columns: tuple[str, ...]) -> list[int]:
    """The positions of ``columns`` in ``header``; :class:`FeedError` naming those missing."""
    missing = [c for c in columns if c.lower() not in header]
    if missing:
        raise FeedError(f"{path}: line 1: no {', '.join(missing)} column (header {','.join(header)!r})")
    return [header.index(c.lower()) for c in columns]


def _parse(path: str | os.PathLike[str], rows: list[list[str]],
           make: Callable[[int, list[str]], Any]) -> list[Any]:
    """``make(k, row)`` of every data row ``k``, a bad one raised as :class:`FeedError` naming its line."""
    out = []
    for n, row in enumerate(rows, start=2):
        try:
            out.append(make(n - 2, row))
        except (IndexError, ValueError, OverflowError) as exc:
            raise FeedError(f"{path}: line {n}: {exc} ({','.join(row)[:80]!r})") from None
    return out


def _time_ms(text: str, name: str) -> int:
    value = int(text)
    if value >= 10**14:  # µs, as data.binance.vision's spot files since 2025
        value //= 1000
    if not 0 <= value <= MAX_TIME_MS:
        raise ValueError(f"{name} {text} is out of range")
    return value


def _finite(text: str, name: str, *, optional: bool = False) -> float:
    if optional and text == "":
        return math.nan
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"{name} {text!r} is not a finite number")
    return x


def read_csv_funding(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Funding settlements of a ``fundingRate`` CSV (data.binance.vision's or the REST columns), per symbol.

    Returns funding frames (``funding_rate``, ``mark_price``) indexed by
    settlement time; ``mark_price`` is NaN where the file has none (always,
    for data.binance.vision's archives).
    """
    header, rows = _rows(path)
    if header[:1] == ["calc_time"]:
        t, r = _require(path, header, ("calc_time", "last_funding_rate"))
        symbol = recordings._symbol_from_name(path)
        settlements = _parse(path, rows, lambda _, row: FundingSettlement(
            symbol, _time_ms(row[t], "calc_time"), _finite(row[r], "last_funding_rate")))
    else:
        s, t, r = _require(path, header, REST_FUNDING_CSV_COLUMNS[:3])
        m = header.index("markprice") if "markprice" in header else None

        def settlement(_: int, row: list[str]) -> FundingSettlement:
            if not row[s]:
                raise ValueError("no symbol")
            mark = math.nan if m is None or m >= len(row) else _finite(row[m], "markPrice", optional=True)
            return FundingSettlement(row[s].upper(), _time_ms(row[t], "fundingTime"),
                                     _finite(row[r], "fundingRate"), mark)

        settlements = _parse(path, rows, settlement)
    by_symbol: dict[str, list[FundingSettlement]] = {}
    for x in settlements:
        by_symbol.setdefault(x.symbol, []).append(x)
    return {sym: funding_to_frame(xs) for sym, xs in by_symbol.items()}


def read_funding_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The settlements of a ``fundingRate`` CSV as ``/fapi/v1/fundingRate`` rows, with the file's own strings.

    Each row is ``{"symbol", "fundingTime" (int ms), "fundingRate", "markPrice"}``,
    the rate and mark the file's text unchanged (``markPrice`` ``""`` where the
    file has none, as Binance answers for old settlements), in file order.
    Reads both formats of :func:`read_csv_funding`; raises
    :class:`~quantify.exceptions.FeedError` like it.
    """
    header, rows = _rows(path)
    if header[:1] == ["calc_time"]:
        t, r = _require(path, header, ("calc_time", "last_funding_rate"))
        s, m = None, None
        symbol = recordings._symbol_from_name(path)
    else:
        s, t, r = _require(path, header, REST_FUNDING_CSV_COLUMNS[:3])
        m = header.index("markprice") if "markprice" in header else None
        symbol = ""

    def row_of(_: int, row: list[str]) -> dict[str, Any]:
        name = row[s].upper() if s is not None else symbol
        if not name:
            raise ValueError("no symbol")
        _finite(row[r], "fundingRate")
        mark = row[m] if m is not None and m < len(row) else ""
        if mark:
            _finite(mark, "markPrice")
        return {"symbol": name, "fundingTime": _time_ms(row[t], "fundingTime"), "fundingRate": row[r],
                "markPrice": mark}

    return _parse(path, rows, row_of)


def read_csv_metrics(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Open interest of a data.binance.vision ``metrics`` CSV, per symbol.

    Returns open-interest frames (``open_interest`` in contracts,
    ``open_interest_value`` in USDT) indexed by ``create_time`` (UTC). The
    file's long/short and taker ratio columns are not read.
    """
    header, rows = _rows(path)
    c, s, n = _require(path, header, METRICS_CSV_COLUMNS[:3])
    v = header.index(METRICS_CSV_COLUMNS[3]) if METRICS_CSV_COLUMNS[3] in header else None
    stamps = [row[c] if len(row) > c else "" for row in rows]
    times = pd.to_datetime(pd.Series(stamps, dtype=object), format="%Y-%m-%d %H:%M:%S", utc=True,
                           errors="coerce")
    bad = times.isna().to_numpy().nonzero()[0]
    if len(bad):
        raise FeedError(f"{path}: line {int(bad[0]) + 2}: create_time {stamps[bad[0]]!r} is not "
                        "'YYYY-MM-DD HH:MM:SS'")
    ms = (times.astype("int64") // 1_000_000).tolist()

    def row_of(k: int, row: list[str]) -> OpenInterest:
        value = math.nan if v is None or v >= len(row) else _finite(row[v], "sum_open_interest_value", optional=True)
        return OpenInterest(row[s].upper(), ms[k], _finite(row[n], "sum_open_interest"), value)

    by_symbol: dict[str, list[OpenInterest]] = {}
    for x in _parse(path, rows, row_of):
        by_symbol.setdefault(x.symbol, []).append(x)
    return {sym: open_interest_to_frame(xs) for sym, xs in by_symbol.items()}


def read_capture(
    path: str | os.PathLike[str], parser: FrameParser | None = None
) -> dict[str, dict[str, pd.DataFrame]]:
    """Trades, mark prices and liquidations of a recorded WebSocket capture, in one pass.

    Returns ``{"ticks": {symbol: tick frame}, "mark": {symbol: mark frame},
    "liquidations": {symbol: liquidations frame}}`` (venue symbols; a kind
    the file does not hold maps to ``{}``). Tick frames are sorted by id,
    duplicates dropped, as :func:`~quantify.venues.binance.recordings.read_trades`;
    marks and liquidations carry the recorded receive time in ``recv_time``.
    Malformed frames are counted in ``parser``.
    """
    parser = parser or FrameParser()
    trades: dict[str, list[Trade]] = {}
    marks: dict[str, list[MarkPrice]] = {}
    liquidations: dict[str, list[Liquidation]] = {}
    for recv, frame in recordings.read_frames(path):
        event = parser.parse(frame)
        if isinstance(event, Trade):
            trades.setdefault(event.symbol, []).append(event)
        elif isinstance(event, MarkPrice):
            marks.setdefault(event.symbol, []).append(event._replace(recv_ns=recv))
        elif isinstance(event, Liquidation):
            liquidations.setdefault(event.symbol, []).append(event._replace(recv_ns=recv))
    return {
        "ticks": {s: recordings._by_id(trades_to_frame(t)) for s, t in trades.items()},
        "mark": {s: marks_to_frame(m) for s, m in marks.items()},
        "liquidations": {s: liquidations_to_frame(x) for s, x in liquidations.items()},
    }
