"""Real market data shipped with QuantiFy, for notebooks, examples and tests.

Everything here reads files inside the package (``quantify/data/``, with their
attribution in its README); nothing touches the network.

``sample_ticks()``
    The bundled Binance recording that ``quantify replay`` and ``quantify
    demo`` serve: spot BTCUSDT and ETHUSDT, and the USD-M perpetuals of both,
    2024-08-08 around 23:54 to 00:05 UTC, as tick frames per instrument.

``kline_session()``
    Binance's own klines beside the trades they were built from: a recorded
    30-second USD-M session (2021-07-22) of ``@aggTrade`` and ``@kline_1m``
    pushes, to check candles against the exchange's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from quantify.model.instrument import Instrument
from quantify.venues.binance.parse import FrameParser, Kline
from quantify.venues.binance.recordings import read_frames, read_trades, sample_files, usdm_sample_files

__all__ = ["KLINE_SESSION_FILE", "KlineSession", "kline_session", "sample_ticks"]

#: The recorded USD-M session of ``kline_session()`` (see ``quantify/data/README.md``).
KLINE_SESSION_FILE = Path(__file__).resolve().parent / "data" / "usdm-2021-kline-session.ws.gz"

_KLINE_FLOATS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
                 "taker_buy_quote_volume")


def sample_ticks(instruments: str | list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Return the bundled recording's trades, one tick frame per instrument text.

    Parameters
    ----------
    instruments : str or list of str, optional
        Instrument texts to return (``"BTCUSDT"``, ``"binance-usdm:ETHUSDT"``);
        default every instrument of the recording.

    Returns
    -------
    dict of str to DataFrame
        Keyed by the instrument's text; frames have the columns of
        :meth:`quantify.Store.ticks` on a UTC index, sorted by trade id.

    Raises
    ------
    ValueError
        If an instrument is not in the recording (the message lists those that are).
    """
    frames: dict[str, pd.DataFrame] = {}
    for market, paths in (("spot", sample_files()), ("usdm", usdm_sample_files())):
        for path in paths:
            for symbol, frame in read_trades(path).items():
                key = symbol if market == "spot" else f"binance-usdm:{symbol}"
                frames[key] = frame if key not in frames else pd.concat([frames[key], frame])
    if instruments is None:
        return dict(sorted(frames.items()))
    wanted = [instruments] if isinstance(instruments, str) else list(instruments)
    keys = [Instrument.parse(text).key for text in wanted]
    missing = [text for text, key in zip(wanted, keys) if key not in frames]
    if missing:
        raise ValueError(f"not in the bundled recording: {', '.join(missing)} "
                         f"(it holds {', '.join(sorted(frames))})")
    return {key: frames[key] for key in keys}


class KlineSession(NamedTuple):
    """Trades and Binance's klines of one recorded session (:func:`kline_session`)."""

    #: Aggregate trades per instrument text (``binance-usdm:CTKUSDT``), tick frames.
    ticks: dict[str, pd.DataFrame]
    #: Every ``@kline_1m`` push, in arrival order (see :func:`kline_session`).
    klines: pd.DataFrame


def kline_session() -> KlineSession:
    """Return a recorded Binance USD-M session: aggregate trades and official 1m klines.

    The ``@aggTrade`` and ``@kline_1m`` pushes of CTKUSDT, SUSHIUSDT, AKROUSDT
    and KEEPUSDT perpetuals, 2021-07-22 22:25:40 to 22:26:11 UTC, as Binance
    sent them. A kline push carries the bar so far: its first and last trade
    id and running OHLC, volumes and trade count, so a push whose bar opened
    after the capture started can be rebuilt from the recorded trades alone.

    Returns
    -------
    KlineSession
        ``ticks``: tick frames (the columns of :meth:`quantify.Store.ticks`,
        with ``first_id``/``last_id`` of the underlying trades) per instrument
        text. ``klines``: one row per push, columns ``symbol`` (instrument
        text), ``open_time`` and ``event_time`` (UTC), ``closed`` (the bar's
        final push), ``first_id``, ``last_id``, ``trades`` (int64) and ``open,
        high, low, close, volume, quote_volume, taker_buy_volume,
        taker_buy_quote_volume`` (Binance's decimal strings as float64).
    """
    ticks = {f"binance-usdm:{symbol}": frame
             for symbol, frame in sorted(read_trades(KLINE_SESSION_FILE).items())}
    parser = FrameParser()
    rows = []
    for _, frame in read_frames(KLINE_SESSION_FILE):
        event = parser.parse(frame)
        if isinstance(event, Kline):
            rows.append({
                "symbol": f"binance-usdm:{event.symbol}",
                "open_time": pd.Timestamp(event.open_time, unit="ms", tz="UTC"),
                "event_time": pd.Timestamp(event.event_time, unit="ms", tz="UTC"),
                "closed": event.closed,
                "first_id": event.first_trade_id,
                "last_id": event.last_trade_id,
                "trades": event.trades,
                **{name: float(getattr(event, name)) for name in _KLINE_FLOATS},
            })
    klines = pd.DataFrame(rows).astype({"first_id": "int64", "last_id": "int64", "trades": "int64"})
    return KlineSession(ticks, klines)
