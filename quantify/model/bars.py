"""Bars (OHLCV candles) from ticks, with Binance's kline semantics: the one bar kernel.

:func:`bar_bounds` cuts sorted times into epoch-aligned bars and
:func:`bars_of_units` aggregates rows given as exact integer units (open,
high, low and close rows, exact sums of ``q`` and ``p * q``, trade counts):
that is the one aggregation path. :func:`resample` is built on it (floats in,
float candles out); the replay's klines format its exact sums as Binance's
decimal strings; the alert engine's bar closes cut each batch with
:func:`bar_bounds`. :func:`merge_candles` turns fine candles (the store keeps
1m), or the parts of a live bar (the widgets), into coarser ones with the same
result. The model layer, so that peers and the layers above can all import it.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from quantify.model import _bar_kernels as _kernels
from quantify.model.timeframes import timeframe_to_offset

__all__ = [
    "CANDLE_COLUMNS",
    "UnitBars",
    "bar_bounds",
    "bars_of_units",
    "limbs_to_ints",
    "merge_candles",
    "resample",
]

#: Columns of every candle frame, in order.
CANDLE_COLUMNS: Final[tuple[str, ...]] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "vwap",
)

_SCALE: Final = 100_000_000  # Binance decimals: at most 8
_SCALE2: Final = _SCALE * _SCALE
_EXACT_FLOAT: Final = 1 << 53
_TICK_COLUMNS: Final = ("price", "qty", "is_buyer_maker")
_MERGE_NEEDS: Final = ("open", "high", "low", "close", "trades")
_SUM_COLUMNS: Final = ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")


class UnitBars(NamedTuple):
    """Per-bar aggregates of :func:`bars_of_units`, exact, in the input's units.

    Every array has one entry per bar (``quote_volume`` and
    ``taker_buy_quote_volume`` one row of three limbs, see
    :func:`limbs_to_ints`). Row indexes are -1 for a bar without rows.
    """

    #: Bar ``b`` holds rows ``bounds[b]:bounds[b + 1]`` (nbars + 1 entries).
    bounds: np.ndarray
    open_row: np.ndarray
    high_row: np.ndarray
    low_row: np.ndarray
    close_row: np.ndarray
    #: Sum of the quantity units.
    volume: np.ndarray
    #: Sum of the price units times quantity units, as ``(nbars, 3)`` limbs.
    quote_volume: np.ndarray
    #: Number of underlying trades.
    trades: np.ndarray
    taker_buy_volume: np.ndarray
    taker_buy_quote_volume: np.ndarray


def limbs_to_ints(limbs: np.ndarray) -> list[int]:
    """Exact Python integers of the ``(n, 3)`` base-2**26 limb rows of :class:`UnitBars`."""
    b = _kernels.LIMB_BITS
    return [
        (h << (2 * b)) + (m << b) + lo
        for lo, m, h in zip(limbs[:, 0].tolist(), limbs[:, 1].tolist(), limbs[:, 2].tolist(), strict=True)
    ]


def bar_bounds(times: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch-aligned bars of sorted int64 times: ``(bounds, bar_ids)``.

    Parameters
    ----------
    times : ndarray
        int64 times (any unit, the unit of ``step``), non-decreasing.
    step : int
        Bar length, > 0.

    Returns
    -------
    bounds : ndarray
        Each bar's first row, then ``len(times)``: bar ``b`` holds rows
        ``bounds[b]:bounds[b + 1]``. Only bars with rows are listed.
    bar_ids : ndarray
        ``floor(time / step)`` of each bar (its start is ``bar_id * step``).

    Raises
    ------
    ValueError
        If ``step <= 0`` or ``times`` decreases somewhere.
    """
    if step <= 0:
        raise ValueError(f"bar step must be > 0, got {step!r}")
    bounds, ids, bad = _kernels.bar_bounds(
        np.ascontiguousarray(times, dtype=np.int64), int(step)
    )
    if bad >= 0:
        raise ValueError(
            f"times must be non-decreasing (sort them by trade time): row {bad} goes back"
        )
    return bounds, ids


def bars_of_units(
    bounds: np.ndarray,
    price_units: np.ndarray,
    qty_units: np.ndarray,
    is_buyer_maker: np.ndarray,
    *,
    counts: np.ndarray | None = None,
    compare: np.ndarray | None = None,
) -> UnitBars:
    """Aggregate rows given as exact integer units into bars: the bar kernel.

    Parameters
    ----------
    bounds : ndarray
        int64, one more entry than there are bars: bar ``b`` holds rows
        ``bounds[b]:bounds[b + 1]`` (non-decreasing; a bar may be empty). See
        :func:`bar_bounds`; calendar bars (the replay's weeks and months) pass
        their own.
    price_units, qty_units : ndarray
        int64 prices and quantities in integer units (any fixed scale each),
        in ``[0, 2**52)``.
    is_buyer_maker : ndarray
        bool; the taker-buy sums cover rows where it is False.
    counts : ndarray, optional
        Underlying trades per row (aggregate trades); default one per row.
    compare : ndarray, optional
        Values that order rows for high and low (default ``price_units``);
        :func:`resample` passes the float prices.

    Returns
    -------
    UnitBars
        Open/high/low/close row indexes (the first highest and first lowest
        row win ties), exact sums of ``q`` and ``p * q`` over all rows and over
        taker-buy rows (``p * q`` in the product of the two scales), trade
        counts.

    Raises
    ------
    ValueError
        If the arrays differ in length, ``bounds`` does not cover them, or a
        unit lies outside ``[0, 2**52)``.
    """
    n = len(price_units)
    if len(qty_units) != n or len(is_buyer_maker) != n:
        raise ValueError(
            f"price_units, qty_units and is_buyer_maker differ in length: "
            f"{n}, {len(qty_units)}, {len(is_buyer_maker)}"
        )
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    if len(bounds) == 0 or bounds[0] < 0 or bounds[-1] > n or np.any(np.diff(bounds) < 0):
        raise ValueError(f"bounds must be non-decreasing within [0, {n}], got {bounds!r}")
    pu = np.ascontiguousarray(price_units, dtype=np.int64)
    qu = np.ascontiguousarray(qty_units, dtype=np.int64)
    cmp = pu if compare is None else np.ascontiguousarray(compare)
    if len(cmp) != n:
        raise ValueError(f"compare has {len(cmp)} rows, not {n}")
    cnt = np.empty(0, dtype=np.int64) if counts is None else np.ascontiguousarray(counts, np.int64)
    rows, vol, tvol, quote, tquote, trades, bad = _kernels.bar_units(
        bounds, cmp, pu, qu, np.ascontiguousarray(is_buyer_maker, dtype=np.bool_), cnt
    )
    if bad >= 0:
        raise ValueError(
            f"price and qty units must lie in [0, 2**52), got {int(pu[bad])}, {int(qu[bad])} "
            f"at row {bad}"
        )
    return UnitBars(
        bounds=bounds,
        open_row=rows[:, 0],
        high_row=rows[:, 1],
        low_row=rows[:, 2],
        close_row=rows[:, 3],
        volume=vol,
        quote_volume=quote,
        trades=trades,
        taker_buy_volume=tvol,
        taker_buy_quote_volume=tquote,
    )


def _utc_ns(index: pd.Index, what: str) -> np.ndarray:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{what} must have a DatetimeIndex, not {type(index).__name__}")
    if index.tz is None:
        index = index.tz_localize("UTC")
    if index.unit != "ns":
        index = index.as_unit("ns")
    # asi8 is UTC whatever the zone: no conversion needed
    return np.asarray(index.asi8)


def _bound(value: object, step: int, *, ceil: bool) -> int | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts is pd.NaT:
        raise ValueError(f"bad time bound {value!r}")
    if ts.tz is None:
        ts = ts.tz_localize("UTC")
    ns = int(ts.tz_convert("UTC").as_unit("ns").value)
    return -(-ns // step) if ceil else ns // step


def _limbs_to_float(limbs: np.ndarray, divisor: int) -> np.ndarray:
    """Correctly rounded ``value / divisor`` of the exact limb sums."""
    l0 = limbs[:, 0]
    l1 = limbs[:, 1]
    l2 = limbs[:, 2]
    out = np.empty(len(limbs))
    small = l2 == 0  # value < 2**52: exact as float, and IEEE division rounds once
    out[small] = (l1[small] * (1 << _kernels.LIMB_BITS) + l0[small]) / float(divisor)
    big = np.flatnonzero(~small)
    if big.size:
        b = _kernels.LIMB_BITS
        # Python's int / int is correctly rounded, like float(Decimal(...))
        out[big] = [
            ((h << (2 * b)) + (m << b) + lo) / divisor
            for h, m, lo in zip(l2[big].tolist(), l1[big].tolist(), l0[big].tolist(), strict=True)
        ]
    return out


def _units_to_float(units: np.ndarray) -> np.ndarray:
    if units.size and units.max() >= _EXACT_FLOAT:
        return np.array([u / _SCALE for u in units.tolist()])
    return units / float(_SCALE)


def _empty_candles() -> pd.DataFrame:
    frame = pd.DataFrame(
        {c: np.array([], dtype=np.int64 if c == "trades" else np.float64) for c in CANDLE_COLUMNS},
        index=pd.DatetimeIndex([], tz="UTC"),
    )
    return frame


def _assemble(
    bar_ids: np.ndarray,
    step: int,
    cols: dict[str, np.ndarray],
    first_bar: int | None,
    end_bar: int | None,
    fill: bool,
    prev_close: float = math.nan,
    columns: tuple[str, ...] = CANDLE_COLUMNS,
) -> pd.DataFrame:
    """Lay per-bar values on the full bar grid and fill the empty bars."""
    if first_bar is None:
        if not len(bar_ids):
            return _empty_candles()
        first_bar = int(bar_ids[0])
    if end_bar is None:
        if not len(bar_ids):
            return _empty_candles()
        end_bar = int(bar_ids[-1]) + 1
    nbars = max(end_bar - first_bar, 0)
    pos = bar_ids - first_bar
    out: dict[str, np.ndarray] = {}
    for name in columns:
        arr: np.ndarray
        if name == "trades":
            arr = np.zeros(nbars, dtype=np.int64)
        elif name in ("open", "high", "low", "close", "vwap"):
            arr = np.full(nbars, np.nan)
        else:
            arr = np.zeros(nbars)
        if cols:
            arr[pos] = cols[name]
        out[name] = arr
    has = np.zeros(nbars, dtype=bool)
    has[pos] = True
    if not has.all():
        # previous close carried forward into empty bars (Binance's flat kline)
        idx = np.where(has, np.arange(nbars), -1)
        np.maximum.accumulate(idx, out=idx)
        closes = np.where(idx >= 0, out["close"][np.maximum(idx, 0)], prev_close)
        empty = ~has
        for name in ("open", "high", "low", "close", "vwap"):
            if name in out:
                out[name][empty] = closes[empty]
    index = pd.to_datetime((first_bar + np.arange(nbars)) * step, utc=True).as_unit("ns")
    frame = pd.DataFrame(out, index=index, columns=list(columns))
    if not fill:
        frame = frame[has]
    return frame


def resample(
    ticks: pd.DataFrame,
    timeframe: str | pd.Timedelta = "1m",
    *,
    start: object = None,
    end: object = None,
    fill: bool = True,
) -> pd.DataFrame:
    """Aggregate a tick frame into candles, as Binance's klines do.

    Parameters
    ----------
    ticks : DataFrame
        UTC ``DatetimeIndex`` (trade time, non-decreasing) and columns
        ``price``, ``qty``, ``is_buyer_maker``; optional ``first_id`` and
        ``last_id`` (aggregate trades) and ``is_market``. A tz-naive index is
        read as UTC.
    timeframe : str or Timedelta, default "1m"
        See :func:`timeframe_to_offset`.
    start, end : datetime, str or Timestamp, optional
        Bars whose interval meets ``[start, end)``: ``start`` is floored and
        ``end`` ceiled to bar boundaries. Default: from the first tick's bar to
        the last tick's bar, inclusive. Ticks outside are ignored.
    fill : bool, default True
        Keep empty bars inside the range as flat bars; ``False`` drops them.

    Returns
    -------
    DataFrame
        Left-closed, left-labelled bars on a UTC index, columns
        :data:`CANDLE_COLUMNS`; ``trades`` is int64, the rest float64.

    Raises
    ------
    TypeError
        If the index is not a ``DatetimeIndex``.
    ValueError
        On a bad timeframe, a missing column, a decreasing index, or a price or
        quantity that is negative, NaN or not below 4.5e7.

    Notes
    -----
    Bars are aligned to the Unix epoch, like Binance (and pandas'
    ``origin="epoch"``; pandas' default ``origin="start_day"`` differs only
    for lengths that do not divide a day). For bar :math:`B`:

    - ``open``/``close``: first/last price in time order; ``high``/``low``.
    - ``volume`` :math:`=\\sum q_i`, ``quote_volume`` :math:`=\\sum p_i q_i`,
      ``taker_buy_*`` the same over trades with ``is_buyer_maker == False``
      (the taker bought). Sums are exact: prices and quantities are taken as
      integers of 1e-8 (``round(x * 1e8)``, exact for 8-decimal figures below
      2**25 ~ 3.3e7, and for larger ones with fewer decimals), ``p*q`` is
      summed in 26-bit limbs, and each sum is rounded once to float64 at the
      end, so it equals ``float(sum(Decimal(...)))`` of Binance's decimal
      strings. Summing the
      floats, as pandas does, differs from Binance's figures in the last
      digits.
    - ``trades``: number of underlying trades, ``sum(last_id - first_id + 1)``
      for aggregate trades, otherwise the row count.
    - ``vwap`` :math:`=` ``quote_volume / volume`` (not a Binance field).
    - Rows with ``is_market == False`` (USD-M insurance-fund and other
      non-MARKET trades) are left out, as Binance's futures klines do.
    - An empty bar is flat at the previous close (Binance's flat kline) with
      zero volumes and trades, and ``vwap`` equal to that close. Empty bars
      before the first trade of the range have no previous close: NaN prices.
    """
    step_td = timeframe_to_offset(timeframe)
    step = int(step_td.value)
    if not isinstance(ticks, pd.DataFrame):
        raise TypeError(f"ticks must be a DataFrame of trades, not {type(ticks).__name__}")
    missing = [c for c in _TICK_COLUMNS if c not in ticks.columns]
    if missing:
        raise ValueError(f"ticks lack column(s) {missing}; have {list(ticks.columns)}")
    ts = _utc_ns(ticks.index, "ticks")
    price = ticks["price"].to_numpy(dtype=np.float64)
    qty = ticks["qty"].to_numpy(dtype=np.float64)
    maker = ticks["is_buyer_maker"].to_numpy(dtype=bool)
    counts: np.ndarray | None = None
    if "first_id" in ticks.columns and "last_id" in ticks.columns:
        counts = (
            ticks["last_id"].to_numpy(dtype=np.int64)
            - ticks["first_id"].to_numpy(dtype=np.int64)
            + 1
        )
    market: np.ndarray | None = None
    if "is_market" in ticks.columns:
        market = ticks["is_market"].to_numpy(dtype=bool)
    first_bar = _bound(start, step, ceil=False)
    end_bar = _bound(end, step, ceil=True)
    # the index is sorted (checked below, in the kernel): cut the range by slicing
    lo = 0 if first_bar is None else int(np.searchsorted(ts, first_bar * step, side="left"))
    hi = len(ts) if end_bar is None else int(np.searchsorted(ts, end_bar * step, side="left"))
    hi = max(hi, lo)
    prev_close = math.nan
    if lo > 0:  # the close before the range, for leading flat bars
        before = np.flatnonzero(market[:lo]) if market is not None else np.array([lo - 1])
        if before.size:
            prev_close = float(price[before[-1]])
    if lo > 0 or hi < len(ts):
        ts, price, qty, maker = ts[lo:hi], price[lo:hi], qty[lo:hi], maker[lo:hi]
        counts = None if counts is None else counts[lo:hi]
        market = None if market is None else market[lo:hi]
    if market is not None and not market.all():
        ts, price, qty, maker = ts[market], price[market], qty[market], maker[market]
        counts = None if counts is None else counts[market]
    bounds, bar_ids, bad = _kernels.bar_bounds(np.ascontiguousarray(ts), step)
    if bad >= 0:
        raise ValueError(
            f"ticks index must be non-decreasing (sort it by trade time): row {bad} goes back"
        )
    if not len(bar_ids):
        if first_bar is not None and end_bar is not None:
            return _assemble(bar_ids, step, {}, first_bar, end_bar, fill, prev_close)
        return _empty_candles()

    price = np.ascontiguousarray(price)
    pu, qu, bad = _kernels.to_units(price, np.ascontiguousarray(qty))
    if bad >= 0:
        raise ValueError(
            "price and qty must be finite, >= 0 and < 4.5e7 (8 decimals), got "
            f"price={price[bad]!r}, qty={qty[bad]!r} at {pd.Timestamp(int(ts[bad]), tz='UTC')}"
        )
    bars = bars_of_units(bounds, pu, qu, maker, counts=counts, compare=price)
    volume = _units_to_float(bars.volume)
    quote_volume = _limbs_to_float(bars.quote_volume, _SCALE2)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = quote_volume / volume
    cols = {
        "open": price[bars.open_row],
        "high": price[bars.high_row],
        "low": price[bars.low_row],
        "close": price[bars.close_row],
        "volume": volume,
        "quote_volume": quote_volume,
        "trades": bars.trades,
        "taker_buy_volume": _units_to_float(bars.taker_buy_volume),
        "taker_buy_quote_volume": _limbs_to_float(bars.taker_buy_quote_volume, _SCALE2),
        "vwap": vwap,
    }
    return _assemble(bar_ids, step, cols, first_bar, end_bar, fill, prev_close)


def _recover_units(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Integer units of ``10**-k`` for the fewest decimals ``k <= 8`` that
    reproduce every float exactly, or None when no ``k`` does."""
    if not values.size:
        return values.astype(np.int64), 1
    for k in range(9):
        scale = 10**k
        units = np.rint(values * scale)
        if not np.all((units >= 0) & (units < _EXACT_FLOAT)):
            return None  # larger k only makes the units larger
        if np.array_equal(units / float(scale), values):
            return units.astype(np.int64), scale
    return None


def _exact_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    recovered = _recover_units(values)
    if recovered is not None:
        units, scale = recovered
        sums = np.add.reduceat(units, starts)
        if sums.max() < _EXACT_FLOAT:
            return sums / float(scale)  # both exact: one correctly rounded division
        return np.array([u / scale for u in sums.tolist()])
    # not 8-decimal figures: the best we can do is a correctly rounded float sum
    ends = np.append(starts[1:], len(values))
    return np.array([math.fsum(values[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])


def merge_candles(
    candles: pd.DataFrame, timeframe: str | pd.Timedelta, *, fill: bool = True
) -> pd.DataFrame:
    """Merge fine candles (e.g. the store's 1m) into a longer timeframe.

    Parameters
    ----------
    candles : DataFrame
        Candles as returned by :func:`resample`, with or without flat bars,
        whose timeframe divides ``timeframe`` (candles of ``timeframe``
        itself may lie several bars apart: the bars between are empty). Candles with the same label are
        parts of one bar (a live bar so far and the same bar of a new batch of
        ticks) and merge too. Columns ``open``, ``high``, ``low``, ``close`` and
        ``trades`` are needed; the volume columns are merged if present.
    timeframe : str or Timedelta
        The longer timeframe, see :func:`timeframe_to_offset`.
    fill : bool, default True
        As in :func:`resample`.

    Returns
    -------
    DataFrame
        Equal to ``resample(ticks, timeframe)`` for the ticks behind
        ``candles`` (see Notes for the one condition), on the columns of
        :data:`CANDLE_COLUMNS` that the input has (``vwap`` when it has
        ``volume`` and ``quote_volume``).

    Raises
    ------
    ValueError
        If a column is missing, the index decreases or the candles are not
        aligned to a divisor of ``timeframe``.

    Notes
    -----
    Empty input bars (``trades == 0``, Binance's flat klines) are skipped for
    the prices; otherwise open is the first open, high the max, low the min,
    close the last close, and the volumes and trades are sums.

    Sums are exact when the input figures are exact decimals with ``k <= 8``
    decimals and below ``2**53 * 10**-k`` (each column takes the fewest
    decimals that reproduce all its floats). That holds for Binance's spot
    pairs: BTCUSDT prices have 2 decimals and quantities 5, so ``p*q`` has 7
    and a fine candle's quote volume stays exact up to 9e8 USDT. Otherwise
    the floats cannot carry the exact decimal sum and merged sums are the
    correctly rounded sums of the inputs (``math.fsum``), within an ulp or
    so of :func:`resample`'s figure.
    """
    step = int(timeframe_to_offset(timeframe).value)
    if not isinstance(candles, pd.DataFrame):
        raise TypeError(f"candles must be a DataFrame of bars, not {type(candles).__name__}")
    missing = [c for c in _MERGE_NEEDS if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {missing}; have {list(candles.columns)}")
    sums = [c for c in _SUM_COLUMNS if c in candles.columns]
    columns = tuple(
        c for c in CANDLE_COLUMNS
        if c in _MERGE_NEEDS or c in sums
        or (c == "vwap" and "volume" in sums and "quote_volume" in sums)
    )
    ts = _utc_ns(candles.index, "candles")
    if ts.size > 1:
        d = np.diff(ts)
        if np.any(d < 0):
            raise ValueError("candles index must be non-decreasing")
        d = d[d > 0]
        # The finest spacing is the candles' timeframe, unless it is a multiple of ``timeframe``:
        # then they are bars of ``timeframe`` with quiet (tradeless) bars between them.
        grid = int(d.min()) if d.size else 0
        if grid and grid % step == 0:
            grid = step
        if grid and (step % grid or np.any(ts % grid)):
            raise ValueError(
                f"candles spaced {pd.Timedelta(int(d.min()))} do not nest into {timeframe!r}"
            )
    trades = candles["trades"].to_numpy(dtype=np.int64)
    nonempty = trades > 0
    sub = candles[nonempty]
    bar = ts[nonempty] // step
    all_bars = ts // step
    first_bar = int(all_bars[0]) if all_bars.size else None
    end_bar = int(all_bars[-1]) + 1 if all_bars.size else None
    # leading flat bars carry the close from before this frame
    prev_close = math.nan
    if ts.size and not nonempty[0]:
        prev_close = float(candles["close"].iloc[0])
    if not len(sub):
        return _assemble(bar, step, {}, first_bar, end_bar, fill, prev_close, columns)
    starts = np.flatnonzero(np.concatenate(([True], bar[1:] != bar[:-1])))
    ends = np.append(starts[1:], len(bar))
    cols = {
        "open": sub["open"].to_numpy(dtype=np.float64)[starts],
        "high": np.maximum.reduceat(sub["high"].to_numpy(dtype=np.float64), starts),
        "low": np.minimum.reduceat(sub["low"].to_numpy(dtype=np.float64), starts),
        "close": sub["close"].to_numpy(dtype=np.float64)[ends - 1],
        "trades": np.add.reduceat(trades[nonempty], starts),
    }
    for name in sums:
        cols[name] = _exact_sums(sub[name].to_numpy(dtype=np.float64), starts)
    if "vwap" in columns:
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["vwap"] = cols["quote_volume"] / cols["volume"]
    return _assemble(bar[starts], step, cols, first_bar, end_bar, fill, prev_close, columns)
