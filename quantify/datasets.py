"""Real market data shipped with QuantiFy, for notebooks, examples and tests.

Everything here reads files inside the package (``quantify/data/``, with their
attribution in its README); nothing touches the network.

``sample_ticks()``
    The bundled Binance recording that ``quantify replay`` and ``quantify
    demo`` serve: spot BTCUSDT and ETHUSDT, and the USD-M perpetuals of both,
    2024-08-08 around 23:54 to 00:05 UTC, as tick frames per instrument.
``candles_2018()``, ``candles_2018_ohlcv(coin)``
    Twenty days of 5-minute candles of ten coins quoted in BTC (January
    2018, venue unknown): a real multi-asset universe for pair scans and
    backtests.
``kline_session()``
    Binance's own klines beside the trades they were built from: a recorded
    30-second USD-M session (2021-07-22) of ``@aggTrade`` and ``@kline_1m``
    pushes, to check candles against the exchange's figures.
``sample_quotes()``
    The best bid and offer of spot BTCUSDT after every depth event of the
    bundled book sample (2024-08-08 23:54:15 to 2024-08-09 00:05), the book
    built by Binance's procedure from the recorded snapshot and diffs: a
    quotes frame for microstructure analytics.
``funding_2021()``
    The 91 real funding settlements of the Binance USD-M XRPUSDT perpetual,
    2021-11-18 to 2021-12-18 (every 8 hours), each with the mark it was
    charged at, and the 8-hour mark-price candles of the same span: a funding
    history for carry studies.
``sample_marks()``
    The 514 recorded ``markPrice@1s`` events of USD-M BTCUSDT around the
    funding settlement of 2023-04-05 00:00 UTC, as a mark frame.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final, NamedTuple

import pandas as pd

from quantify.model.book import DepthDiff, DepthSnapshot
from quantify.model.book_frames import quotes_to_frame
from quantify.model.booksync import Applied, BookSync
from quantify.model.instrument import Instrument
from quantify.venues.binance.parse import FrameParser, Kline
from quantify.venues.binance.perp_files import read_capture, read_csv_funding
from quantify.venues.binance.recordings import read_frames, read_trades, sample_files, usdm_sample_files

__all__ = [
    "BOOK_SAMPLE_FILES", "CANDLES_2018_COINS", "CANDLES_2018_FIELDS", "FUNDING_2021_FILES", "KLINE_SESSION_FILE",
    "MARK_SAMPLE_FILE", "FundingHistory", "KlineSession", "candles_2018", "candles_2018_ohlcv", "funding_2021",
    "kline_session", "sample_marks", "sample_quotes", "sample_ticks",
]

#: The coins of :func:`candles_2018`, each quoted in BTC.
CANDLES_2018_COINS: Final = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC")
#: The columns of :func:`candles_2018_ohlcv`; each can be :func:`candles_2018`'s ``field``.
CANDLES_2018_FIELDS: Final = ("open", "high", "low", "close", "volume")

_CANDLES_2018_DIR = Path(__file__).resolve().parent / "data" / "candles-2018"
_CANDLES_2018_BAR = pd.Timedelta(minutes=5)

#: The recorded USD-M session of ``kline_session()`` (see ``quantify/data/README.md``).
KLINE_SESSION_FILE = Path(__file__).resolve().parent / "data" / "usdm-2021-kline-session.ws.gz"

#: The bundled spot BTCUSDT book sample of ``sample_quotes()`` (see ``quantify/data/README.md``).
BOOK_SAMPLE_FILES: Final = (
    Path(__file__).resolve().parent / "data" / "spot-2024-btcusdt_20240808.book.gz",
    Path(__file__).resolve().parent / "data" / "spot-2024-btcusdt_20240809.book.gz",
)

#: The bundled XRPUSDT funding settlements and 8-hour mark candles of ``funding_2021()``.
FUNDING_2021_FILES: Final = (
    Path(__file__).resolve().parent / "data" / "usdm-2021-xrpusdt.funding.csv",
    Path(__file__).resolve().parent / "data" / "usdm-2021-xrpusdt.mark-8h.csv",
)
#: The bundled USD-M BTCUSDT capture with ``markPrice@1s`` events of ``sample_marks()``.
MARK_SAMPLE_FILE: Final = Path(__file__).resolve().parent / "data" / "usdm-2023-btcusdt_20230405.perp.gz"

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



def candles_2018_ohlcv(coin: str) -> pd.DataFrame:
    """Return one coin's bundled 5-minute candles (in BTC), as recorded.

    Parameters
    ----------
    coin : str
        One of :data:`CANDLES_2018_COINS` (``"ETH"``, ...; case-insensitive).

    Returns
    -------
    DataFrame
        Columns ``open, high, low, close, volume`` (float) on a UTC
        ``DatetimeIndex`` of bar open times, 5 minutes apart except where the
        source has no bar. See :func:`candles_2018` for what is known about
        the data.

    Raises
    ------
    ValueError
        If ``coin`` is not one of the ten (the message lists them).
    """
    if not isinstance(coin, str) or coin.upper() not in CANDLES_2018_COINS:
        raise ValueError(f"coin must be one of {', '.join(CANDLES_2018_COINS)}, got {coin!r}")
    frame = pd.read_feather(_CANDLES_2018_DIR / f"{coin.upper()}BTC-5m.feather")
    index = pd.DatetimeIndex(frame.pop("date")).tz_convert("UTC").rename(None)
    return frame.set_index(index)[list(CANDLES_2018_FIELDS)].astype("float64")


def candles_2018(field: str = "close") -> pd.DataFrame:
    """Return one field of the bundled 2018 universe: ten coins in BTC, 5-minute bars.

    Parameters
    ----------
    field : {"close", "open", "high", "low", "volume"}, default "close"
        Which column of each coin's candles.

    Returns
    -------
    DataFrame
        One column per coin (:data:`CANDLES_2018_COINS`, in that order) on
        the full 5-minute UTC grid from the first bar to the last of any
        coin (5,760 bars, 2018-01-10 04:55 to 2018-01-30 04:50); NaN where a
        coin has no bar. Forward-fill closes (``.ffill()``) to carry the last
        price through a bar without one.

    Raises
    ------
    ValueError
        If ``field`` is not one of :data:`CANDLES_2018_FIELDS`.

    Notes
    -----
    What is known about the data: 5-minute OHLCV candles of ADA, DASH, ETC,
    ETH, LTC, NXT, TRX, XLM, XMR and ZEC, each quoted in BTC (prices in BTC
    per coin; volume as the source gives it, in units of the coin by the
    ccxt convention freqtrade uses), 2018-01-10 04:55 to 2018-01-30 04:50
    UTC, about 5,760 bars per coin. Some coins lack a few bars (ADA 40, TRX
    6, ZEC 3, DASH 2, XMR 2, ETC 1, the others none); no bar has zero
    volume, so a missing bar most likely had no trade. The exchange is not
    recorded in the files: freqtrade fetched its test data from Bittrex at
    the time, but treat the venue as unknown (it is not Binance), and so its
    fees, tick sizes and depth too. Bars are labelled by their open time.

    Source: freqtrade/freqtrade ``tests/testdata/*_BTC-5m.feather``, GPL-3.0
    (the data files only; see ``quantify/data/README.md``). The files are
    shipped unchanged.
    """
    if field not in CANDLES_2018_FIELDS:
        raise ValueError(f"field must be one of {', '.join(CANDLES_2018_FIELDS)}, got {field!r}")
    columns = {coin: candles_2018_ohlcv(coin)[field] for coin in CANDLES_2018_COINS}
    start = min(s.index[0] for s in columns.values())
    end = max(s.index[-1] for s in columns.values())
    grid = pd.date_range(start, end, freq=_CANDLES_2018_BAR, tz="UTC")
    return pd.DataFrame({coin: s.reindex(grid) for coin, s in columns.items()})

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


def sample_quotes() -> pd.DataFrame:
    """Return the best bid and offer of spot BTCUSDT after every depth event of the bundled book sample.

    The book is built from the recorded REST snapshot (1,000 levels a side)
    and the ``@depth@100ms`` diffs by Binance's procedure
    (:class:`quantify.model.booksync.BookSync`), offline, exactly as
    ``quantify load`` stores it; the same book equals Binance's own
    ``bookTicker`` at every update id the two share
    (``tests/model/test_order_book.py``).

    Returns
    -------
    DataFrame
        A quotes frame (the columns of :meth:`quantify.Store.quotes`):
        ``bid_price, bid_qty, ask_price, ask_qty, update_id,
        first_update_id, recv_time`` on a UTC index of exchange event times,
        2024-08-08 23:54:15 to 2024-08-09 00:05, 6,493 rows. Where the price
        fell below the snapshot's lowest bid (from 23:58:35) the best bid is
        unknown and NaN, never guessed; drop or mask those rows
        (``quotes.dropna()``) where a function needs both sides.

    Notes
    -----
    Source: nkaz001/hftbacktest ``examples/`` (MIT licence), see
    ``quantify/data/README.md``. Market data is Binance's.
    """
    return _sample_quotes().copy()


@lru_cache(maxsize=1)
def _sample_quotes() -> pd.DataFrame:
    parser = FrameParser()
    sync = BookSync("BTCUSDT", "spot")
    applied: list[Applied] = []
    for path in BOOK_SAMPLE_FILES:
        for recv, frame in read_frames(path):
            if '"depthUpdate"' not in frame and '"lastUpdateId"' not in frame:
                continue  # the book tickers only cross-check the book; they change no quote
            event = parser.parse(frame)
            if isinstance(event, DepthDiff):
                applied += sync.on_diff(event, recv)
            elif isinstance(event, DepthSnapshot):
                applied += sync.on_snapshot(event, recv)
    return quotes_to_frame(applied)


class FundingHistory(NamedTuple):
    """A perpetual's funding settlements and its mark-price candles (:func:`funding_2021`)."""

    #: The funding frame: ``funding_rate`` and ``mark_price`` on settlement times.
    funding: pd.DataFrame
    #: Mark-price candles (``open, high, low, close``), left-labelled, UTC.
    marks: pd.DataFrame


def funding_2021() -> FundingHistory:
    """Return the real funding history of the Binance USD-M XRPUSDT perpetual, 2021-11-18 to 2021-12-18.

    Returns
    -------
    FundingHistory
        ``funding``: a funding frame (:mod:`quantify.model.perp`, the form of
        ``store.funding(...)``), 91 settlements every 8 hours from
        2021-11-18 00:00 to 2021-12-18 00:00 UTC, indexed by Binance's
        ``fundingTime`` (a few ms after the hour), ``funding_rate`` as settled
        and ``mark_price`` the mark at the settlement: the open of the 8-hour
        mark candle starting at that hour. ``marks``: those 8-hour mark-price
        candles, ``open, high, low, close`` on their UTC open times (91 bars,
        the last opening at 2021-12-18 00:00).

    Notes
    -----
    Source: freqtrade/freqtrade test data (GPL-3.0, the data files only), see
    ``quantify/data/README.md``. Market data is Binance's. The files hold no
    spot price: the mark follows the index (the spot average) within the
    premium, which the funding keeps small.
    """
    funding, marks = _funding_2021()
    return FundingHistory(funding.copy(), marks.copy())


@lru_cache(maxsize=1)
def _funding_2021() -> tuple[pd.DataFrame, pd.DataFrame]:
    rates_file, marks_file = FUNDING_2021_FILES
    funding = read_csv_funding(rates_file)["XRPUSDT"]
    raw = pd.read_csv(marks_file)
    marks = raw[["open", "high", "low", "close"]].astype("float64")
    marks.index = pd.DatetimeIndex(pd.to_datetime(raw["open_time"], unit="ms", utc=True), name="time")
    hour = funding.index.floor("1h")
    funding = funding.assign(mark_price=marks["open"].reindex(hour).to_numpy())
    return funding, marks


def sample_marks() -> pd.DataFrame:
    """Return the recorded mark prices of USD-M BTCUSDT, 2023-04-04 23:58:20 to 2023-04-05 00:06:54 UTC.

    Returns
    -------
    DataFrame
        A mark frame (:mod:`quantify.model.perp`, the form of
        ``store.mark(...)``): 514 ``markPrice@1s`` events, ``mark_price,
        index_price, settle_price, funding_rate, next_funding_time,
        recv_time`` on their UTC event times. The capture crosses the
        funding settlement of 2023-04-05 00:00 UTC: ``next_funding_time``
        moves from 00:00 to 08:00 there.

    Notes
    -----
    Source: nkaz001/hftbacktest (MIT licence), see ``quantify/data/README.md``.
    Market data is Binance's.
    """
    return _sample_marks().copy()


@lru_cache(maxsize=1)
def _sample_marks() -> pd.DataFrame:
    return read_capture(MARK_SAMPLE_FILE)["mark"]["BTCUSDT"]
