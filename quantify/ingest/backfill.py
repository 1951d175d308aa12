"""Backfill a time range over REST: trades, aggregate trades or klines.

``quantify backfill INSTRUMENT --start T --end T`` and :func:`backfill` fetch
``[start, end)`` (inclusive-exclusive, on trade time or kline open time)
page by page from the instrument's venue's REST API (or the replay
server's): ``BTCUSDT`` from Binance spot (``/api/v3``),
``binance-usdm:BTCUSDT`` from Binance USD-M futures (``/fapi/v1``):

``aggTrades``
    ``aggTrades``: one ``startTime`` query (at most 1 h wide, as Binance
    requires; repeated hour by hour over an empty stretch) finds the first
    aggregate id at or after ``start``; then ``fromId`` pages of 1,000
    (weight 4 each on spot, 20 on USD-M) until a trade at or after ``end``.
``trades``
    ``historicalTrades``: the first trade id comes from that first
    aggregate trade's ``f``; then ``fromId`` pages of 1,000 (weight 25 on
    spot, 20 on USD-M).
``klines``
    ``klines`` pages of 1,000 bars (weight 2 on spot, 5 on USD-M) by
    ``startTime``; bars still open at the server's time are left for a later run.

Within the weight budget, honouring ``Retry-After``: every request goes
through the venue's REST client (:meth:`quantify.venues.base.Venue.rest`),
which keeps to the venue's budget (spot 6,000/min, USD-M 2,400/min, less
20 % headroom) and waits out 429/418s.

Resumable: rows are merged into the store (:func:`quantify.store.merge.merge_ticks`,
ids decide, so nothing is stored twice) every ``flush_rows`` rows, and after
each flush the cursor (the next id, or the next kline open time) is saved in
the store's ``_meta`` library under ``backfill.<SYMBOL>.<kind>.<start>.<end>``.
A run that is interrupted (Ctrl-C, a crash, a network failure) loses at
most the unflushed rows; a cancelled run (Ctrl-C, SIGTERM under ``quantify
backfill``) first stores what it fetched. The next run with the same
arguments continues at the saved cursor. A finished range is remembered and
not fetched again.

A REST API that cannot be reached is named at its first failed attempt
(one warning: host, error, what to do) while the client retries with
capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx
import numpy as np
import pandas as pd

from quantify.exceptions import RestError
from quantify.ingest.endpoints import Endpoints
from quantify.model.instrument import Instrument, InstrumentLike
from quantify.model.times import TimeLike, parse_time
from quantify.model.trades import Trade, trades_to_frame
from quantify.store.lease import WriterLock
from quantify.store.merge import merge_klines, merge_ticks, tick_kind
from quantify.venues import venue_of
from quantify.venues.base import VenueRest
from quantify.venues.listing import check_listed

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["BACKFILL_KINDS", "DEFAULT_FLUSH_ROWS", "BackfillResult", "backfill", "run_backfill"]

logger = logging.getLogger(__name__)

BACKFILL_KINDS: Final = ("trades", "aggTrades", "klines")
#: Rows fetched between two store merges (and cursor saves).
DEFAULT_FLUSH_ROWS: Final = 50_000
PAGE: Final = 1000
_HOUR_MS: Final = 3_600_000
#: Binance's error code for a symbol it does not list ("Invalid symbol.").
INVALID_SYMBOL: Final = -1121
_META: Final = "_meta"
_INTERVAL_MS: Final = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
    "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
}


@dataclass(frozen=True)
class BackfillResult:
    """What a :func:`backfill` run did.

    Attributes
    ----------
    symbol, kind : str
        The symbol and ``trades``/``aggTrades``/``klines``.
    start, end : pandas.Timestamp
        The range, inclusive-exclusive.
    rows : int
        Rows of the range fetched by this run.
    added : int
        Rows the store did not hold before.
    pages, requests, rate_limited : int
        REST pages fetched; HTTP requests sent (retries included); 429/418
        answers waited out.
    resumed : bool
        This run continued an interrupted one.
    complete : bool
        The whole range is in the store. False when the exchange has no data
        up to ``end`` yet (the range reaches into the future, or past the
        replay server's clock): rerun later to continue.
    reached : pandas.Timestamp or None
        Time of the last row fetched.
    """

    symbol: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    rows: int
    added: int
    pages: int
    requests: int
    rate_limited: int
    resumed: bool
    complete: bool
    reached: pd.Timestamp | None

    def summary(self) -> str:
        state = "complete" if self.complete else f"incomplete (data reached {self.reached}; rerun later)"
        return (
            f"{self.symbol} {self.kind} [{self.start}, {self.end}): {self.rows:,} rows fetched, "
            f"{self.added:,} added, {self.pages} pages, {self.requests} requests, "
            f"{self.rate_limited} rate-limited{', resumed' if self.resumed else ''}; {state}"
        )


def _check(symbol: InstrumentLike, kind: str | None, interval: str) -> Instrument:
    try:
        inst = Instrument.parse(symbol)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"symbol must be a Binance symbol such as 'BTCUSDT' or an instrument such as "
                         f"'binance-usdm:BTCUSDT', got {symbol!r}") from exc
    if kind is not None and kind not in BACKFILL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BACKFILL_KINDS)}, got {kind!r}")
    if interval not in _INTERVAL_MS:
        raise ValueError(f"interval must be one of {', '.join(_INTERVAL_MS)}, got {interval!r}")
    return inst


def _record_name(sym: str, kind: str, start_ms: int, end_ms: int, interval: str) -> str:
    what = f"klines_{interval}" if kind == "klines" else kind
    return f"backfill.{sym}.{what}.{start_ms}.{end_ms}"


class _Progress:
    """The saved cursor of one backfill range."""

    def __init__(self, store: Store, name: str) -> None:
        self._lib = store.library(_META)
        self.name = name
        self.state: dict[str, Any] = {}
        if self._lib.has_symbol(name):
            self.state = dict(self._lib.read(name).data)

    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self._lib.write_pickle(self.name, dict(self.state), prune_previous_versions=True)


def _default_kind(store: Store, sym: str) -> str:
    lib = store.library("ticks")
    if lib.has_symbol(sym):
        tail = lib.tail(sym, 100).data
        if len(tail):
            return tick_kind(tail)
    return "trades"


async def backfill(
    store: Store,
    symbol: InstrumentLike,
    start: TimeLike,
    end: TimeLike,
    *,
    kind: str | None = None,
    interval: str = "1m",
    rest_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    flush_rows: int = DEFAULT_FLUSH_ROWS,
    progress: bool = True,
    lock: bool = True,
) -> BackfillResult:
    """Fetch ``symbol``'s trades or klines of ``[start, end)`` over its venue's REST into ``store``.

    Parameters
    ----------
    store : Store
        Target store; the ticks go to ``ticks/<INSTRUMENT>``, klines to
        ``klines/<INSTRUMENT>_<interval>`` (``BTCUSDT``, ``binance-usdm:BTCUSDT``).
    symbol : str or Instrument
        An instrument: ``BTCUSDT`` (Binance spot), ``binance-usdm:BTCUSDT``.
    start, end : datetime, str or number
        The range, inclusive-exclusive (see :func:`quantify.store.parse_time`).
    kind : {"trades", "aggTrades", "klines"} or None
        ``None``: the kind of ids the symbol already holds, else ``trades``.
    interval : str, default "1m"
        Kline interval (``kind="klines"``).
    rest_url : str, optional
        REST base URL (the replay server's); default: the venue's own
        (``https://api.binance.com``, ``https://fapi.binance.com``).
    transport : httpx.AsyncBaseTransport, optional
        Replaces the network (tests).
    flush_rows : int
        Rows fetched between store merges; an interruption re-fetches at most these.
    progress : bool
        Show a tqdm bar (market time covered) on stderr.
    lock : bool
        Take the store's writer lock (default); False if the caller holds it.

    Returns
    -------
    BackfillResult

    Raises
    ------
    WriterLocked
        If another process writes to the store.
    ValueError
        If the venue does not list ``symbol`` (naming the closest listed ones).
    RestError
        If the server refuses a request or keeps failing.
    """
    inst = _check(symbol, kind, interval)
    sym = inst.key
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is None or t1 is None:
        raise ValueError("backfill needs both start and end")
    if t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    if flush_rows < 1:
        raise ValueError(f"flush_rows must be >= 1, got {flush_rows!r}")
    start_ms, end_ms = int(t0.value // 1_000_000), -(-int(t1.value) // 1_000_000)
    held = WriterLock(store.uri.uri, store.uri.path).acquire() if lock else None
    try:
        kind = kind or _default_kind(store, sym)
        record = _Progress(store, _record_name(sym, kind, start_ms, end_ms, interval))
        run = _Run(store, inst, kind, interval, start_ms, end_ms, record, flush_rows, progress)
        venue = venue_of(inst)
        base = rest_url or venue.rest_url
        async with venue.rest(base, transport=transport, observer=Endpoints().observer(venue.name, base)) as client:
            try:
                if kind == "klines":
                    await run.klines(client)
                else:
                    await run.trades(client)
            except RestError as exc:
                if exc.code == INVALID_SYMBOL:  # say which symbols the venue does list
                    check_listed([inst], await client.listed_symbols([inst.symbol], retries=0))
                raise
            finally:
                run.close_bar()
                run.requests, run.rate_limited = client.requests, client.rate_limited
    finally:
        if held is not None:
            held.release()
    result = run.result(t0, t1)
    logger.info("backfill: %s", result.summary())
    return result


def run_backfill(store: Store, symbol: InstrumentLike, start: TimeLike, end: TimeLike,
                 **kwargs: Any) -> BackfillResult:
    """:func:`backfill` for synchronous callers (runs its own event loop)."""
    return asyncio.run(backfill(store, symbol, start, end, **kwargs))


class _Run:
    """State of one backfill run."""

    def __init__(self, store: Store, inst: Instrument, kind: str, interval: str, start_ms: int,
                 end_ms: int, record: _Progress, flush_rows: int, progress: bool) -> None:
        sym = inst.key
        #: ``sym`` names the data in the store; ``venue_symbol`` is what the venue's REST wants.
        self.store, self.sym, self.kind, self.interval = store, sym, kind, interval
        self.venue_symbol = inst.symbol
        #: Trades per ``fromId`` page (1,000; USD-M ``historicalTrades`` 500).
        self.page = venue_of(inst).trades_limit(kind == "aggTrades")
        self.start_ms, self.end_ms = start_ms, end_ms
        self.record, self.flush_rows = record, flush_rows
        self.resumed = bool(record.state) and not record.state.get("done")
        self.rows = self.added = self.pages = self.requests = self.rate_limited = 0
        self.complete = bool(record.state.get("done"))
        self.reached: int | None = record.state.get("reached")
        self._covered = start_ms
        #: The cursor of the trades fetched so far (saved with them when interrupted).
        self._next_id = int(record.state.get("next_id") or 0)
        self._bar = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=round((end_ms - start_ms) / 1000), unit=" s", unit_scale=True,
                             desc=f"{sym} {kind}", file=sys.stderr, dynamic_ncols=True)

    def result(self, t0: pd.Timestamp, t1: pd.Timestamp) -> BackfillResult:
        reached = None if self.reached is None else pd.Timestamp(self.reached, unit="ms", tz="UTC")
        return BackfillResult(self.sym, self.kind, t0, t1, self.rows, self.added, self.pages,
                              self.requests, self.rate_limited, self.resumed, self.complete, reached)

    def _advance(self, t_ms: int) -> None:
        self.reached = t_ms
        if self._bar is not None and t_ms > self._covered:
            self._bar.update(round((t_ms - self._covered) / 1000))
            self._bar.set_postfix_str(f"{self.rows:,} rows", refresh=False)
        self._covered = max(self._covered, t_ms)

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()

    # -- trades and aggregate trades ---------------------------------------------

    async def _first_at_start(self, client: VenueRest) -> tuple[int, int] | None:
        """``(aggregate id, first trade id)`` of the first trade in the range, if any."""
        s = self.start_ms
        while s < self.end_ms:
            e = min(s + _HOUR_MS, self.end_ms) - 1
            rows = await client.agg_trades_between(self.venue_symbol, s, e, limit=1)
            if rows:
                return int(rows[0].trade_id), int(rows[0].first_id)
            self._advance(e + 1)
            s = e + 1
        return None

    async def trades(self, client: VenueRest) -> None:
        if self.complete:
            return
        aggregate = self.kind == "aggTrades"
        next_id = self.record.state.get("next_id")
        if next_id is None:
            first = await self._first_at_start(client)
            if first is None:  # no trade in the range
                self.complete = True
                self.record.save(done=True, reached=self.reached)
                return
            next_id = first[0] if aggregate else first[1]
            self.record.save(next_id=next_id, done=False)
        buffer: list[Trade] = []
        try:
            await self._pages(client, aggregate, next_id, buffer)
        except asyncio.CancelledError:
            # interrupted: store what was fetched (the cursor follows it), then stop
            self._flush(buffer, self._next_id, False)
            logger.info("backfill of %s interrupted: %d rows fetched, %d added; rerun to resume",
                        self.sym, self.rows, self.added)
            raise

    async def _pages(self, client: VenueRest, aggregate: bool, next_id: int, buffer: list[Trade]) -> None:
        """``fromId`` pages from ``next_id`` into ``buffer``, flushed every ``flush_rows`` rows."""
        self._next_id = next_id
        done = False
        while not done:
            page = await client.trades_from(self.venue_symbol, next_id, aggregate=aggregate, limit=self.page)
            self.pages += 1
            if not page:
                break
            keep = [t for t in page if t.time < self.end_ms]
            done = len(keep) < len(page)
            buffer.extend(keep)
            self.rows += len(keep)
            next_id = self._next_id = page[-1].trade_id + 1  # what ``buffer`` holds ends before it
            if keep:
                self._advance(keep[-1].time)
            if done:
                self.complete = True
            elif len(page) < self.page:
                # the latest trade the server has: complete if its clock is past the end
                server_ms = await client.server_time()
                self.complete = server_ms >= self.end_ms
                break
            if len(buffer) >= self.flush_rows or done:
                self._flush(buffer, next_id, done)
        self._flush(buffer, next_id, self.complete)
        if self.complete and self._bar is not None:
            self._advance(self.end_ms)

    def _flush(self, buffer: list[Trade], next_id: int, done: bool) -> None:
        """Merge ``buffer`` into the store (emptying it) and save the cursor ``next_id``."""
        if buffer:
            frame = trades_to_frame(buffer)
            self.added += merge_ticks(self.store, self.sym, frame).added
            buffer.clear()
        self.record.save(next_id=next_id, done=done, reached=self.reached)

    # -- klines -------------------------------------------------------------------

    async def klines(self, client: VenueRest) -> None:
        if self.complete:
            return
        step = _INTERVAL_MS[self.interval]
        server_ms = await client.server_time()
        cursor = int(self.record.state.get("next_ms", self.start_ms))
        name = f"{self.sym}_{self.interval}"
        open_bar = False
        while cursor < self.end_ms:
            rows = await client.klines(self.venue_symbol, self.interval, cursor, self.end_ms - 1, limit=PAGE)
            self.pages += 1
            rows = [r for r in rows if int(r[0]) < self.end_ms]
            closed = [r for r in rows if int(r[6]) < server_ms]
            open_bar = len(closed) < len(rows)
            if closed:
                self.added += merge_klines(self.store, name, _klines_frame(closed))
                self.rows += len(closed)
                cursor = int(closed[-1][0]) + step
                self._advance(cursor)
                self.record.save(next_ms=cursor, done=False, reached=self.reached)
            if open_bar or len(rows) < PAGE:
                break  # a bar still open, or no more bars in the range
        # without an open bar, the server has no bar left in the range once its
        # clock is past the range's end
        self.complete = cursor >= self.end_ms or (server_ms >= self.end_ms and not open_bar)
        self.record.save(next_ms=cursor, done=self.complete, reached=self.reached)


def _klines_frame(rows: list[list[Any]]) -> pd.DataFrame:
    """REST kline rows → a candle frame (:data:`quantify.analytics.CANDLE_COLUMNS`)."""
    a = np.array([r[:11] for r in rows], dtype=object)
    f = {i: a[:, i].astype("float64") for i in (1, 2, 3, 4, 5, 7, 9, 10)}
    volume, quote = f[5], f[7]
    vwap = np.where(volume > 0, quote / np.where(volume > 0, volume, 1.0), f[4])
    frame = pd.DataFrame({
        "open": f[1], "high": f[2], "low": f[3], "close": f[4], "volume": volume,
        "quote_volume": quote, "trades": a[:, 8].astype("int64"), "taker_buy_volume": f[9],
        "taker_buy_quote_volume": f[10], "vwap": vwap,
    })
    opens = a[:, 0].astype("int64") * 1_000_000
    frame.index = pd.DatetimeIndex(opens.view("M8[ns]")).tz_localize("UTC")
    return frame

