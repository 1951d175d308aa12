"""Continuous 1m candles: the writer's aggregate, and the ``ohlcv`` read path.

Library ``candles_1m`` of the store holds one symbol per pair with *closed*
1m candles (:data:`~quantify.model.bars.CANDLE_COLUMNS`, Binance's
kline rules, flat bars for empty minutes), dense from the pair's first
trade's minute to the last minute that is known complete.

Writing (:class:`CandleAggregator`, a batch listener of the ingestion
service, in the writer thread)::

    batch of ticks ──▶ open minute's ticks (in memory) + batch ──resample──▶
        closed bars ──append──▶ candles_1m/<SYMBOL>;  last bar stays open

A batch that stays inside the open minute is only kept (a list append: most
batches at live speed). A minute is closed when a later trade arrives (trade
times never go back within a symbol): the kept ticks are resampled once,
exactly, and the open minute's ticks kept for the next time. Closed bars are
written with one ``append_batch`` for all symbols, at most every
``write_interval`` seconds. The open bar is never written: readers compute
it from ticks, like every range the aggregate does not cover yet, so the
aggregate never holds a partial bar and never needs ``update``.

Reading (:func:`read_ohlcv`, behind :meth:`Store.ohlcv`): bars up to the
aggregate's end come from ``candles_1m``; the rest (the open minute, a lag,
or a whole store whose ticks were loaded without aggregates) from the
ticks, resampled with :func:`~quantify.model.bars.resample`; longer
timeframes merge the 1m bars (:func:`~quantify.model.bars.merge_candles`).

Why the unaggregated tail is not resampled inside ArcticDB
(``QueryBuilder().resample("1min").agg(...)``): its prices, counts and
quantity sums can be made to agree (align ``date_range`` to minutes, reorder
the columns, re-insert the empty buckets it drops, round quantity sums to the
1e-8 grid), but its ``sum(price * qty)`` is a float sum: it differs from the
exact decimal quote volume in the last digits for most BTCUSDT minutes
(``benchmarks/candles.py`` counts them), and no rounding recovers it, since
``p*q`` has up to 16 decimals. Both paths must give identical candles, so
the tail reads ticks (in steady state, the last minute's worth).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from arcticdb.version_store.library import WritePayload
from arcticdb_ext.version_store import DataError

from quantify.exceptions import StoreError
from quantify.model.bars import CANDLE_COLUMNS, merge_candles, resample
from quantify.model.instrument import InstrumentLike, instrument_key
from quantify.model.timeframes import timeframe_to_offset
from quantify.model.times import TimeLike, parse_time
from quantify.model.trades import Trade, trades_to_frame
from quantify.store._libraries import CANDLES_1M, TICKS

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["CANDLES_1M", "DEFAULT_WRITE_INTERVAL", "CandleAggregator", "read_ohlcv"]

logger = logging.getLogger(__name__)

#: The library of continuously aggregated 1m candles.

MINUTE: Final = pd.Timedelta(minutes=1)
_MINUTE_NS: Final = int(MINUTE.value)
_PRICE_COLUMNS: Final = ("open", "high", "low", "close", "vwap")
#: Catch-up reads ticks one window at a time, so memory stays bounded.
_CATCH_UP_WINDOW: Final = pd.Timedelta(hours=6)
#: Closed bars are appended at most this often (seconds): one ArcticDB append
#: costs ~5 ms on LMDB, ~50 ms on S3, while a full-speed replay closes a minute
#: every few batches. Readers compute the not-yet-written minutes from ticks.
DEFAULT_WRITE_INTERVAL: Final = 1.0
#: Compact a symbol's candles every so many appends (one segment per append).
_COMPACT_EVERY: Final = 360


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {c: np.array([], dtype=np.int64 if c == "trades" else np.float64) for c in CANDLE_COLUMNS},
        index=pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
    )


def _fill_leading(bars: pd.DataFrame, prev_close: float) -> pd.DataFrame:
    """Give leading flat bars (no earlier trade in the frame) the known previous close."""
    if not len(bars) or math.isnan(prev_close) or not math.isnan(bars["close"].iat[0]):
        return bars
    lead = bars["close"].isna().to_numpy()
    lead &= np.logical_and.accumulate(lead)
    bars = bars.copy()
    for col in _PRICE_COLUMNS:
        bars.loc[lead, col] = prev_close
    return bars


# -- writing ------------------------------------------------------------------


@dataclass
class _SymbolState:
    """What the aggregator keeps per symbol between batches."""

    #: End of the aggregate (one past its last closed minute), ns; None before any bar.
    end: int | None = None
    #: Close of the last closed bar (carried into flat bars).
    prev_close: float = math.nan
    #: Start of the open minute (that of the last trade seen), ns.
    open_bar: int | None = None
    #: Tick frames not yet resampled: the open minute's (and, until a minute closes, earlier).
    pending: list[pd.DataFrame] = field(default_factory=list)
    #: Last trade id aggregated (a batch's older rows are skipped).
    last_id: int = -1
    #: Closed bars not yet written.
    closed: list[pd.DataFrame] = field(default_factory=list)
    appends: int = 0


class CandleAggregator:
    """Maintain 1m candles of every symbol as tick batches are stored.

    Register it with ``IngestService.add_batch_listener``; the service calls
    :meth:`start` once before streaming and the instance after every append,
    both in the writer thread.

    Parameters
    ----------
    store : Store
        The store the ticks are appended to; candles go to its
        :data:`CANDLES_1M` library.
    write_interval : float, default DEFAULT_WRITE_INTERVAL
        Least seconds between two appends of closed bars (0: every batch).

    Attributes
    ----------
    batches, seconds : int, float
        Batches handled and the time spent on them (catch-up excluded).
    bars_written : int
        Closed bars appended.

    Notes
    -----
    The aggregate equals ``resample(store.ticks(symbol), "1m")`` bar for bar
    (all but the open minute): each closed bar is computed by
    :func:`~quantify.model.bars.resample` from all of its ticks (the open
    minute's ticks are kept and resampled again with the next batch), and
    flat bars take the previous close. Idempotent per trade: rows whose
    ``trade_id`` is not above the last aggregated one are skipped, so a
    batch the store already held when the aggregator caught up is not
    counted twice.
    """

    def __init__(self, store: Store, *, write_interval: float = DEFAULT_WRITE_INTERVAL) -> None:
        if not write_interval >= 0:
            raise ValueError(f"write_interval must be >= 0 seconds, got {write_interval!r}")
        self.store = store
        self.write_interval = float(write_interval)
        self._last_write = -math.inf
        self._lib = store.library(CANDLES_1M)
        self._state: dict[str, _SymbolState] = {}
        self.batches = 0
        self.seconds = 0.0
        self.bars_written = 0

    def __repr__(self) -> str:
        return f"<CandleAggregator {self.store.uri} symbols={sorted(self._state)}>"

    # -- the listener protocol ------------------------------------------------

    def start(self, store: Store | None = None) -> None:
        """Catch up every symbol of the store (trades stored but not aggregated).

        Also loads the compiled resampling kernels now, before streaming
        starts: loading them at the first batch held that batch back for a
        fraction of a second.
        """
        resample(trades_to_frame([Trade("WARMUP", 1, 1.0, 1.0, 0, False, 1, 1, True, 0)]), "1m")
        for sym in (store or self.store).symbols():
            if sym not in self._state:
                self.catch_up(sym)

    def __call__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        t0 = time.perf_counter()
        for sym, ticks in frames.items():
            if not len(ticks):
                continue
            state = self._state.get(sym)
            if state is None:  # first sight: the store already holds this batch
                self.catch_up(sym)
                continue
            ids = ticks["trade_id"].to_numpy()
            if ids[0] <= state.last_id:
                ticks = ticks[ids > state.last_id]
                if not len(ticks):
                    continue
            self._extend(state, ticks)
        self._write(force=False)
        self.batches += 1
        self.seconds += time.perf_counter() - t0

    def stats(self) -> dict[str, Any]:
        """Counters for the writer's published status."""
        return {
            "candle_batches": self.batches,
            "candle_ms_per_batch": round(1e3 * self.seconds / self.batches, 3)
            if self.batches
            else None,
            "candle_bars_written": self.bars_written,
        }

    # -- work -----------------------------------------------------------------

    def known_empty(self, symbol: str) -> None:
        """``symbol`` has no stored ticks (the writer checked): its first batch needs no catch-up.

        Saves the catch-up's reads of the store at the first batch of every
        new instrument (some 5 requests each: seconds apiece on a loaded S3
        store, hundreds of instruments at a time on a fresh one).
        """
        self._state.setdefault(instrument_key(symbol), _SymbolState())

    def forget(self, symbol: str) -> None:
        """Drop what is kept of ``symbol`` (another writer stored it meanwhile): its next batch catches up."""
        self._state.pop(instrument_key(symbol), None)

    def catch_up(self, symbol: str) -> None:
        """Aggregate ``symbol``'s ticks from the aggregate's end to the last stored tick."""
        sym = instrument_key(symbol)
        state = _SymbolState()
        if self._lib.has_symbol(sym):
            tail = self._lib.tail(sym, 1).data
            if len(tail):
                state.end = int(tail.index[-1].value) + _MINUTE_NS
                state.prev_close = float(tail["close"].iat[-1])
        self._state[sym] = state
        try:
            self._catch_up(sym, state)
        except BaseException:
            # forget the symbol: the next batch catches up again from the aggregate's end
            del self._state[sym]
            raise

    def _catch_up(self, sym: str, state: _SymbolState) -> None:
        ticks_lib = self.store.library(TICKS)
        last = ticks_lib.tail(sym, 1).data
        if not len(last):
            return
        last_ns = int(last.index[-1].value)
        if state.end is None:
            t = int(ticks_lib.head(sym, 1).data.index[0].value)
        else:
            t = state.end
        window = int(_CATCH_UP_WINDOW.value)
        n = 0
        while t <= last_ns:
            chunk = ticks_lib.read(sym, date_range=(_ts(t), _ts(t + window - 1))).data
            if len(chunk):
                n += len(chunk)
                self._extend(state, chunk)
                self._write(force=True)
            t += window
        state.last_id = max(state.last_id, int(last["trade_id"].iat[-1]))
        if n:
            logger.info(
                "candles: %s caught up on %d trades (aggregate now ends %s)",
                sym,
                n,
                None if state.end is None else _ts(state.end),
            )

    def _extend(self, state: _SymbolState, ticks: pd.DataFrame) -> None:
        state.last_id = int(ticks["trade_id"].iat[-1])
        state.pending.append(ticks)
        bar = int(ticks.index.asi8[-1]) // _MINUTE_NS * _MINUTE_NS
        if state.open_bar is None:
            state.open_bar = int(ticks.index.asi8[0]) // _MINUTE_NS * _MINUTE_NS
        if bar == state.open_bar:
            return  # still the open minute: nothing closes, nothing to compute (most batches)
        # A later minute began: every bar before it is closed.
        data = state.pending[0] if len(state.pending) == 1 else pd.concat(state.pending)
        start = None if state.end is None else _ts(state.end)
        bars = _fill_leading(resample(data, "1m", start=start, end=_ts(bar)), state.prev_close)
        if len(bars):
            state.closed.append(bars)
            state.end = bar
            state.prev_close = float(bars["close"].iat[-1])
        cut = int(np.searchsorted(data.index.asi8, bar, side="left"))
        state.pending = [data.iloc[cut:]]
        state.open_bar = bar

    def close(self) -> None:
        """Write the closed bars still held (the service calls this on stop)."""
        self._write(force=True)

    def _write(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_write < self.write_interval:
            return
        payloads = []
        pending = []
        for sym, state in self._state.items():
            if state.closed:
                frame = state.closed[0] if len(state.closed) == 1 else pd.concat(state.closed)
                payloads.append(WritePayload(sym, frame))
                pending.append(state)
        if not payloads:
            return
        self._last_write = time.monotonic()
        results = self._lib.append_batch(payloads, prune_previous_versions=True)
        errors = [r for r in results if isinstance(r, DataError)]
        if errors:  # the service counts this listener failure; bars stay pending for the next batch
            raise StoreError(f"candles append to {self.store.uri} failed: {errors[0]}")
        for payload, state in zip(payloads, pending):
            self.bars_written += len(payload.data)
            state.closed = []
            state.appends += 1
            if state.appends % _COMPACT_EVERY == 0:
                self._lib.compact_data(payload.symbol, prune_previous_versions=True)


# -- reading ------------------------------------------------------------------


def _aggregate_bounds(lib: Any, sym: str) -> tuple[int, int, float] | None:
    """``(first bar, end, last close)`` of the aggregate, ns; None without one."""
    if not lib.has_symbol(sym):
        return None
    tail = lib.tail(sym, 1).data
    if not len(tail):
        return None
    head = lib.head(sym, 1).data
    return (
        int(head.index[0].value),
        int(tail.index[-1].value) + _MINUTE_NS,
        float(tail["close"].iat[-1]),
    )


def _close_before(store: Store, sym: str, t: int, agg: tuple[int, int, float] | None) -> float:
    """The close in force just before ``t`` (ns), NaN if no trade precedes it."""
    if agg is not None and agg[0] < t <= agg[1]:
        bar = store.library(CANDLES_1M).read(sym, date_range=(_ts(t - _MINUTE_NS), _ts(t - 1))).data
        if len(bar):
            return float(bar["close"].iat[-1])
    ticks_lib = store.library(TICKS)
    head = ticks_lib.head(sym, 1).data
    if not len(head) or int(head.index[0].value) >= t:
        return math.nan
    first = int(head.index[0].value)
    width = _MINUTE_NS
    hi = t
    while hi > first:  # look back in widening windows: the last trade is usually close
        lo = max(hi - width, first)
        ticks = ticks_lib.read(
            sym, date_range=(_ts(lo), _ts(hi - 1)), columns=["price", "is_market"]
        ).data
        if "is_market" in ticks.columns:
            ticks = ticks[ticks["is_market"].to_numpy(dtype=bool)]
        if len(ticks):
            return float(ticks["price"].iat[-1])
        hi, width = lo, width * 16
    return math.nan


def _ticks_1m(store: Store, sym: str, lo: int, hi: int, prev_close: float) -> pd.DataFrame:
    """Exact 1m bars of ``[lo, hi)`` from ticks, flat bars at ``prev_close`` first."""
    ticks = store.library(TICKS).read(sym, date_range=(_ts(lo), _ts(hi - 1))).data
    bars = resample(ticks, "1m", start=_ts(lo), end=_ts(hi))
    return _fill_leading(bars, prev_close)


def read_ohlcv(
    store: Store,
    symbol: InstrumentLike,
    timeframe: str | pd.Timedelta = "1m",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    fill: bool = True,
) -> pd.DataFrame:
    """Candles of ``symbol``; see :meth:`quantify.store.Store.ohlcv`."""
    step = int(timeframe_to_offset(timeframe).value)
    sym = store._require(symbol)
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    ticks_lib = store.library(TICKS)
    # The bar grid [g0, g1): bars labelled start <= t < end, whole bars only.
    agg = _aggregate_bounds(store.library(CANDLES_1M), sym)
    if t0 is None:
        # from the first trade; the aggregate's first bar if older ticks were deleted
        head = ticks_lib.head(sym, 1).data
        first = int(head.index[0].value) if len(head) else None
        if agg is not None and (first is None or agg[0] < first // _MINUTE_NS * _MINUTE_NS):
            first = agg[0]
        if first is None:
            return _empty()
        g0 = first // step * step
    else:
        g0 = -(-int(t0.value) // step) * step
    if t1 is None:
        tail = ticks_lib.tail(sym, 1).data
        if not len(tail):
            return _empty()
        g1 = int(tail.index[-1].value) // step * step + step
    else:
        g1 = -(-int(t1.value) // step) * step
    if g1 <= g0:
        return _empty()

    if step % _MINUTE_NS:
        # Sub-minute or not a multiple of 1m: straight from the ticks.
        prev = _close_before(store, sym, g0, agg)
        ticks = ticks_lib.read(sym, date_range=(_ts(g0), _ts(g1 - 1))).data
        out = _fill_leading(resample(ticks, pd.Timedelta(step), start=_ts(g0), end=_ts(g1)), prev)
    else:
        parts = []
        # [g0, boundary) from the aggregate, [boundary, g1) from the ticks
        boundary = g0 if agg is None else min(max(agg[1], g0), g1)
        if boundary > g0:
            assert agg is not None
            lead = min(max(g0, agg[0]), boundary)
            if lead > g0:  # before the first trade: flat bars without a price
                parts.append(resample(_no_ticks(), "1m", start=_ts(g0), end=_ts(lead)))
            if boundary > lead:
                bars = (
                    store.library(CANDLES_1M)
                    .read(sym, date_range=(_ts(lead), _ts(boundary - 1)))
                    .data
                )
                parts.append(bars[list(CANDLE_COLUMNS)])
        if boundary < g1:
            # the aggregate is dense: its last bar's close is the close in force
            prev = (
                float(parts[-1]["close"].iat[-1])
                if parts
                else _close_before(store, sym, boundary, agg)
            )
            parts.append(_ticks_1m(store, sym, boundary, g1, prev))
        one = parts[0] if len(parts) == 1 else pd.concat(parts)
        out = one if step == _MINUTE_NS else merge_candles(one, pd.Timedelta(step))
    if not fill:
        out = out[out["trades"].to_numpy() > 0]
    out.index.name = None
    return out


def _no_ticks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": np.array([], dtype=float),
            "qty": np.array([], dtype=float),
            "is_buyer_maker": np.array([], dtype=bool),
        },
        index=pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
    )
