"""Recorded market-data files of any venue, read into tick frames keyed by instrument.

``quantify load`` reads through :func:`read_recorded`, so a venue whose
recordings it should understand adds its detection and reader here, and
nothing in ingestion changes.
"""

from __future__ import annotations

import os

import pandas as pd

from quantify.exceptions import FeedError
from quantify.model.instrument import Instrument
from quantify.venues import okx
from quantify.venues.binance import recordings

__all__ = ["read_recorded"]


def read_recorded(path: str | os.PathLike[str]) -> tuple[str, dict[str, pd.DataFrame]]:
    """Read one recorded file: ``(kind, {name: frame})``.

    ``kind`` is ``"ticks"`` (names are instrument keys such as ``BTCUSDT``,
    ``binance-usdm:BTCUSDT``, ``okx:BTC-USDT``; frames are tick frames) or
    ``"klines"`` (names are ``<instrument key>_<interval>``, frames candle
    frames). Understands every format of :mod:`quantify.venues.binance.recordings`
    (recorded WebSocket frames, QuantiFy journal segments, REST JSON,
    data.binance.vision trades/aggTrades/klines CSVs), telling spot from USD-M
    with :func:`~quantify.venues.binance.recordings.detect_venue`, and recorded
    OKX v5 sessions (:mod:`quantify.venues.okx`).

    Raises :class:`~quantify.exceptions.FeedError` naming the file if it is
    of no known format or damaged.
    """
    fmt = recordings.detect_format(path)
    if fmt == "cryptofeed" and okx.is_session(path):
        return "ticks", okx.read_trades(path)
    venue = recordings.detect_venue(path)

    def key(symbol: str) -> str:
        try:
            return Instrument.parse(f"{venue}:{symbol}").key
        except ValueError as exc:
            raise FeedError(f"{path}: {exc}") from None

    if fmt == "csv":
        sym = recordings._symbol_from_name(path)
        if recordings.csv_kind(path) == "klines":
            interval = recordings.kline_interval_from_name(path)
            return "klines", {f"{key(sym)}_{interval}": recordings.read_csv_klines(path)}
        # not read_trades: its sort and de-duplication copies are redone by the store's merge
        return "ticks", {key(sym): recordings.read_csv_trades(path)}
    return "ticks", {key(sym): frame for sym, frame in recordings.read_trades(path).items()}
