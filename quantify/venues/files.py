"""Recorded market-data files of any venue, read into frames keyed by instrument.

``quantify load`` reads through :func:`read_recorded_kinds`, so a venue whose
recordings it should understand adds its detection and reader here, and
nothing in ingestion changes.
"""

from __future__ import annotations

import os

import pandas as pd

from quantify.exceptions import FeedError
from quantify.model.instrument import Instrument
from quantify.venues import okx
from quantify.venues.binance import perp_files, recordings

__all__ = ["RECORDED_KINDS", "read_recorded", "read_recorded_kinds"]

#: What a recorded file can hold: trades (tick frames), klines (candle frames) and the
#: perpetual-futures kinds of :mod:`quantify.model.perp`.
RECORDED_KINDS = ("ticks", "klines", "mark", "liquidations", "funding", "open_interest")


def read_recorded(path: str | os.PathLike[str]) -> tuple[str, dict[str, pd.DataFrame]]:
    """Read one recorded file: ``(kind, {name: frame})`` of its first kind (:func:`read_recorded_kinds`).

    A capture's mark prices and liquidations are left out (its kind is
    ``"ticks"``): :func:`read_recorded_kinds` has them.
    """
    kinds = read_recorded_kinds(path)
    kind = next(iter(kinds))
    return kind, kinds[kind]


def read_recorded_kinds(path: str | os.PathLike[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """Read one recorded file: ``{kind: {name: frame}}``, kinds of :data:`RECORDED_KINDS`, in that order.

    ``ticks``: names are instrument keys such as ``BTCUSDT``,
    ``binance-usdm:BTCUSDT``, ``okx:BTC-USDT``; frames are tick frames.
    ``klines``: names are ``<instrument key>_<interval>``, frames candle
    frames. ``mark``, ``liquidations``, ``funding``, ``open_interest``:
    names are instrument keys (always ``binance-usdm:...``), frames those of
    :mod:`quantify.model.perp`. Understands every format of
    :mod:`quantify.venues.binance.recordings` (recorded WebSocket frames,
    whose ``markPriceUpdate`` and ``forceOrder`` events are read beside the
    trades, QuantiFy journal segments, REST JSON, data.binance.vision
    trades/aggTrades/klines CSVs), the perpetual CSVs of
    :mod:`quantify.venues.binance.perp_files` (data.binance.vision USD-M
    ``fundingRate`` and ``metrics``, ``fundingRate`` answers as CSV), telling
    spot from USD-M with :func:`~quantify.venues.binance.recordings.detect_venue`,
    and recorded OKX v5 sessions (:mod:`quantify.venues.okx`). A capture
    always has ``ticks`` (empty when it holds no trade) and has the
    perpetual kinds it holds.

    Raises :class:`~quantify.exceptions.FeedError` naming the file if it is
    of no known format or damaged.
    """
    fmt = recordings.detect_format(path)
    if fmt == "cryptofeed" and okx.is_session(path):
        return {"ticks": okx.read_trades(path)}
    kind = recordings.csv_kind(path) if fmt == "csv" else None
    if kind == "funding":  # perpetual data is USD-M's whatever the file looks like
        return {"funding": _keyed(path, "binance-usdm", perp_files.read_csv_funding(path))}
    if kind == "open_interest":
        return {"open_interest": _keyed(path, "binance-usdm", perp_files.read_csv_metrics(path))}
    venue = recordings.detect_venue(path)
    if fmt == "csv":
        name = _key(path, venue, recordings._symbol_from_name(path))
        if kind == "klines":
            interval = recordings.kline_interval_from_name(path)
            return {"klines": {f"{name}_{interval}": recordings.read_csv_klines(path)}}
        # not read_trades: its sort and de-duplication copies are redone by the store's merge
        return {"ticks": {name: recordings.read_csv_trades(path)}}
    if fmt == "rest-json":
        return {"ticks": _keyed(path, venue, recordings.read_trades(path))}
    out = {kind: _keyed(path, venue if kind == "ticks" else "binance-usdm", frames)
           for kind, frames in perp_files.read_capture(path).items()}
    return {kind: frames for kind, frames in out.items() if frames or kind == "ticks"}


def _key(path: str | os.PathLike[str], venue: str, symbol: str) -> str:
    """The instrument key of ``venue``'s ``symbol`` (:class:`FeedError` naming the file for a bad symbol)."""
    try:
        return Instrument.parse(f"{venue}:{symbol}").key
    except ValueError as exc:
        raise FeedError(f"{path}: {exc}") from None


def _keyed(path: str | os.PathLike[str], venue: str, frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``frames`` keyed by the instrument key of each venue symbol."""
    return {_key(path, venue, symbol): frame for symbol, frame in frames.items()}
