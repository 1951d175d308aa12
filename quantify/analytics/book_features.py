"""Features of the quoted book: mid, spread, microprice, imbalance, depth, order-flow imbalance.

Two frame conventions (the store's reads give both):

- a **quotes frame**: a ``DatetimeIndex`` and columns ``bid_price, bid_qty,
  ask_price, ask_qty`` (the best bid and offer after each book update; extra
  columns are ignored), as ``store.quotes(...)``;
- a **book snapshots frame**: columns ``bid_price_1..N, bid_qty_1..N,
  ask_price_1..N, ask_qty_1..N`` (level 1 the best), NaN where a level is
  unknown, as ``store.book_snapshots(...)``.

Every function keeps the input's rows and is NaN where an input it needs is
NaN (an empty side, an unknown level); infinite values, prices <= 0 and
negative quantities are refused (:mod:`quantify.analytics._validate`).
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from quantify.analytics import _micro_kernels, _validate
from quantify.model.timeframes import timeframe_to_offset

__all__ = [
    "QUOTE_COLUMNS",
    "depth_within",
    "imbalance",
    "microprice",
    "mid",
    "ofi",
    "quoted_spread",
]

#: The columns of a quotes frame that the functions read.
QUOTE_COLUMNS: Final = ("bid_price", "bid_qty", "ask_price", "ask_qty")

SpreadUnit = Literal["price", "bps"]
_LEVEL = re.compile(r"^(bid|ask)_(price|qty)_(\d+)$")


def frame_columns(
    frame: Any, func: str, columns: tuple[str, ...], *, name: str = "quotes", minimum: int = 1,
    counted: int | None = None,
) -> dict[str, np.ndarray]:
    """Validated float64 arrays of ``columns`` of a frame (NaN kept).

    Prices (``*price*`` columns) must be > 0 and quantities >= 0 where not
    NaN; at least ``minimum`` rows must have the first ``counted`` columns
    (default all) finite.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{func}: {name} must be a DataFrame with columns {list(columns)}, "
                        f"got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{func}: {name} lacks column(s) {missing}; it has {list(frame.columns)}")
    out: dict[str, np.ndarray] = {}
    complete = np.ones(len(frame), dtype=bool)
    needed = columns if counted is None else columns[:counted]
    for c in columns:
        v = np.ascontiguousarray(_validate.series(frame[c], c, func, nan="keep", minimum=0).to_numpy())
        if "price" in c:
            _validate.check_positive_prices(func, c, v)
        else:
            bad = np.flatnonzero(v < 0)
            if bad.size:
                raise ValueError(f"{func}: {c} must be >= 0; found {bad.size} negative value(s) "
                                 f"(first {v[bad[0]]!r} at row {int(bad[0])})")
        if c in needed:
            complete &= ~np.isnan(v)
        out[c] = v
    _validate.need(func, minimum, f"rows of {name} with finite {', '.join(needed)}", int(complete.sum()))
    return out


def book_levels(frame: Any, func: str, levels: int | None, *, name: str = "book") -> int:
    """How many levels a book snapshots frame has on both sides (all of them, or ``levels``)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{func}: {name} must be a book snapshots frame (bid_price_1, ...), "
                        f"got {type(frame).__name__}")
    found: dict[tuple[str, str], set[int]] = {}
    for c in frame.columns:
        m = _LEVEL.match(str(c))
        if m:
            found.setdefault((m.group(1), m.group(2)), set()).add(int(m.group(3)))
    have = 0
    while all(have + 1 in found.get(key, set()) for key in
              (("bid", "price"), ("bid", "qty"), ("ask", "price"), ("ask", "qty"))):
        have += 1
    if have == 0:
        raise ValueError(f"{func}: {name} has no book levels (columns bid_price_1, bid_qty_1, "
                         f"ask_price_1, ask_qty_1, ...); it has {list(frame.columns)[:8]}")
    if levels is None:
        return have
    k = _validate.check_int(levels, "levels", 1)
    if k > have:
        raise ValueError(f"{func}: levels={k} but {name} has only {have} level(s) on both sides")
    return k


def _level_columns(k: int) -> tuple[str, ...]:
    return tuple(f"{side}_{what}_{i}" for i in range(1, k + 1)
                 for side in ("bid", "ask") for what in ("price", "qty"))


def check_unit(unit: Any) -> SpreadUnit:
    if unit not in ("price", "bps"):
        raise ValueError(f"unit must be 'price' or 'bps', got {unit!r}")
    return unit  # type: ignore[no-any-return]


def mid(quotes: pd.DataFrame) -> pd.Series:
    """Return the mid price ``(bid_price + ask_price) / 2``.

    Parameters
    ----------
    quotes : DataFrame
        A quotes frame (``bid_price``, ``ask_price``; the quantities are not read).

    Returns
    -------
    Series
        Named ``mid`` on the input's index; NaN where a side is NaN.
    """
    q = frame_columns(quotes, "mid", ("bid_price", "ask_price"))
    return pd.Series(0.5 * (q["bid_price"] + q["ask_price"]), index=quotes.index, name="mid")


def quoted_spread(quotes: pd.DataFrame, unit: SpreadUnit = "price") -> pd.Series:
    """Return the quoted spread, in price or in basis points of the mid.

    Parameters
    ----------
    quotes : DataFrame
        A quotes frame.
    unit : {"price", "bps"}, default "price"
        ``ask - bid``, or ``(ask - bid) / mid * 1e4``.

    Returns
    -------
    Series
        Named ``spread`` or ``spread_bps``; negative on a crossed quote (kept,
        not hidden: the book's sync flags crossed books), NaN where a side is NaN.

    Notes
    -----
    :math:`S_t = a_t - b_t` and :math:`S_t / m_t \\cdot 10^4` with
    :math:`m_t = (a_t + b_t)/2` (e.g. Hasbrouck, *Empirical Market
    Microstructure*, 2007, ch. 3).
    """
    u = check_unit(unit)
    q = frame_columns(quotes, "quoted_spread", ("bid_price", "ask_price"))
    s = q["ask_price"] - q["bid_price"]
    if u == "bps":
        s = s / (0.5 * (q["ask_price"] + q["bid_price"])) * 1e4
    return pd.Series(s, index=quotes.index, name="spread" if u == "price" else "spread_bps")


def microprice(quotes: pd.DataFrame) -> pd.Series:
    """Return the size-weighted mid (the micro-price's first-order form).

    Parameters
    ----------
    quotes : DataFrame
        A quotes frame.

    Returns
    -------
    Series
        Named ``microprice``; NaN where an input is NaN or both sizes are 0.

    Notes
    -----
    :math:`P^{micro}_t = (b_t q^a_t + a_t q^b_t) / (q^b_t + q^a_t)`: the mid
    leans towards the side with less size, where the next price move is
    likelier. Stoikov (2018), "The micro-price: a high-frequency estimator of
    future prices", *Quantitative Finance* 18(12), defines the micro-price as
    the limit of expected future mids; this weighted mid is the usual
    first-order approximation he starts from, not his Markov-chain
    estimator.
    """
    q = frame_columns(quotes, "microprice", QUOTE_COLUMNS)
    total = q["bid_qty"] + q["ask_qty"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mp = (q["bid_price"] * q["ask_qty"] + q["ask_price"] * q["bid_qty"]) / np.where(total > 0, total, np.nan)
    return pd.Series(mp, index=quotes.index, name="microprice")


def imbalance(book: pd.DataFrame, levels: int = 1, *, decay_bps: float | None = None) -> pd.Series:
    """Return the order-book imbalance over the first ``levels`` levels, in [-1, 1].

    Parameters
    ----------
    book : DataFrame
        A quotes frame (``levels=1`` only) or a book snapshots frame.
    levels : int, default 1
        Levels per side summed (1 = the best bid and offer).
    decay_bps : float, optional
        Weight each level by :math:`e^{-d_i/\\text{decay}}` where :math:`d_i`
        is its distance from the mid in bps: deep size counts less. Default:
        every level weighs 1.

    Returns
    -------
    Series
        Named ``imbalance``: +1 all bids, -1 all asks; NaN where a level used
        is unknown (NaN) or both sides hold no size.

    Raises
    ------
    ValueError
        If ``levels`` exceeds the frame's levels (or is above 1 on a quotes
        frame), on a bad ``decay_bps``, or invalid values.

    Notes
    -----
    :math:`I_t = (B_t - A_t)/(B_t + A_t)` with :math:`B_t = \\sum_{i \\le k}
    w_i q^b_{i,t}` and :math:`A_t` likewise. Level 1 is the imbalance of
    Cartea, Jaimungal & Penalva (*Algorithmic and High-Frequency Trading*,
    2015) and of Stoikov (2018); over several levels it is the depth
    imbalance of Cao, Hansch & Wang (2009), "The information content of an
    open limit-order book", *J. Futures Markets* 29(1). A row with an
    unknown level within the first ``k`` is NaN, never a partial sum: a
    snapshots frame cannot tell a thin book from an unknown one.
    """
    func = "imbalance"
    decay = None if decay_bps is None else _validate.check_number(decay_bps, "decay_bps", positive=True)
    if "bid_qty_1" not in getattr(book, "columns", ()):
        k = _validate.check_int(levels, "levels", 1)
        if k != 1:
            raise ValueError(f"{func}: a quotes frame has one level per side; levels={k} needs a book "
                             "snapshots frame (bid_price_1..N, ...)")
        q = frame_columns(book, func, QUOTE_COLUMNS)
        cols = {"bid_price_1": q["bid_price"], "bid_qty_1": q["bid_qty"],
                "ask_price_1": q["ask_price"], "ask_qty_1": q["ask_qty"]}
    else:
        k = book_levels(book, func, levels)
        cols = frame_columns(book, func, _level_columns(k), name="book", counted=4)
    m = 0.5 * (cols["bid_price_1"] + cols["ask_price_1"])
    bids = np.zeros(len(book))
    asks = np.zeros(len(book))
    for i in range(1, k + 1):
        wb: Any = 1.0
        wa: Any = 1.0
        if decay is not None:
            wb = np.exp(-np.abs(m - cols[f"bid_price_{i}"]) / m * 1e4 / decay)
            wa = np.exp(-np.abs(cols[f"ask_price_{i}"] - m) / m * 1e4 / decay)
        bids += wb * cols[f"bid_qty_{i}"]
        asks += wa * cols[f"ask_qty_{i}"]
    total = bids + asks
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (bids - asks) / np.where(total > 0, total, np.nan)
    return pd.Series(out, index=book.index, name="imbalance")


def depth_within(book: pd.DataFrame, bps: float) -> pd.DataFrame:
    """Return the size resting within ``bps`` basis points of the mid, per side.

    Parameters
    ----------
    book : DataFrame
        A book snapshots frame (``bid_price_1..N``, ...).
    bps : float
        Half-width of the band around the mid, in basis points (>= 0).

    Returns
    -------
    DataFrame
        Columns ``bid_depth`` and ``ask_depth`` (base-asset quantities) on the
        input's index. NaN where the band reaches past what the frame knows:
        an unknown (NaN) level inside the band, or the frame's last level
        still inside it (ask for more levels).

    Notes
    -----
    :math:`D^b_t(x) = \\sum_i q^b_{i,t}\\,1\\{(m_t - b_{i,t})/m_t \\cdot 10^4
    \\le x\\}` and :math:`D^a_t(x)` with :math:`(a_{i,t} - m_t)/m_t`, the
    "depth within x bps" of market-quality reports (e.g. Kyle's depth
    dimension of liquidity, Kyle 1985, *Econometrica* 53(6)). A level exactly
    on the band's edge counts.
    """
    func = "depth_within"
    x = _validate.check_number(bps, "bps", nonneg=True)
    k = book_levels(book, func, None)
    cols = frame_columns(book, func, _level_columns(k), name="book", counted=4)
    m = 0.5 * (cols["bid_price_1"] + cols["ask_price_1"])
    out = {}
    for side, sign in (("bid", -1.0), ("ask", 1.0)):
        depth = np.zeros(len(book))
        open_ = np.ones(len(book), dtype=bool)  # the band may still reach further
        unknown = np.isnan(m)
        for i in range(1, k + 1):
            p = cols[f"{side}_price_{i}"]
            q = cols[f"{side}_qty_{i}"]
            with np.errstate(invalid="ignore"):
                inside = sign * (p - m) / m * 1e4 <= x * (1 + 1e-12)
            unknown |= open_ & (np.isnan(p) | np.isnan(q))
            take = open_ & inside & ~unknown
            depth += np.where(take, q, 0.0)
            open_ &= inside & ~np.isnan(p)
        depth[unknown | open_] = np.nan
        out[f"{side}_depth"] = depth
    return pd.DataFrame(out, index=book.index)


def ofi(quotes: pd.DataFrame, freq: str | pd.Timedelta | None = None) -> pd.Series:
    """Return the order-flow imbalance of Cont, Kukanov & Stoikov, per event or per interval.

    Parameters
    ----------
    quotes : DataFrame
        A quotes frame in time order (one row per book update).
    freq : str or Timedelta, optional
        Sum the events per interval (``"1s"``, ``"1m"``, ...; left-closed,
        left-labelled, empty intervals 0). Default: one value per row.

    Returns
    -------
    Series
        Named ``ofi``. Per event the first row is NaN (it has no predecessor),
        as is a row whose quote or predecessor has a NaN; per interval these
        are left out of the sums.

    Notes
    -----
    Cont, Kukanov & Stoikov (2014), "The price impact of order book events",
    *J. Financial Econometrics* 12(1), section 2:

    .. math::
        e_n = 1\\{b_n \\ge b_{n-1}\\} q^b_n - 1\\{b_n \\le b_{n-1}\\} q^b_{n-1}
            - 1\\{a_n \\le a_{n-1}\\} q^a_n + 1\\{a_n \\ge a_{n-1}\\} q^a_{n-1}

    and :math:`OFI_k = \\sum_{t_n \\in [\\tau_k, \\tau_{k+1})} e_n`. Positive
    values are net buying pressure (bids added or asks taken).
    """
    func = "ofi"
    q = frame_columns(quotes, func, QUOTE_COLUMNS)
    e = _micro_kernels.ofi_events(q["bid_price"], q["bid_qty"], q["ask_price"], q["ask_qty"])
    events = pd.Series(e, index=quotes.index, name="ofi")
    if freq is None:
        return events
    step = timeframe_to_offset(freq)
    if not isinstance(quotes.index, pd.DatetimeIndex):
        raise TypeError(f"{func}: quotes need a DatetimeIndex to sum per interval, "
                        f"got {type(quotes.index).__name__}")
    if not quotes.index.is_monotonic_increasing:
        raise ValueError(f"{func}: quotes must be in time order (a non-decreasing index)")
    return events.resample(step, closed="left", label="left").sum(min_count=0).rename("ofi")
