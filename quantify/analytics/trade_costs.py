"""Trades measured against the quotes they met: sign, effective and realised spread, markouts.

A **tick frame** (``store.ticks(...)``: a ``DatetimeIndex`` and ``price,
qty, is_buyer_maker``) is joined to a **quotes frame** (``store.quotes(...)``)
with :func:`quantify.analytics.asof`: each trade meets the quote prevailing
*before* it (``allow_exact_matches=False`` by default: a quote stamped at the
trade's own time may already contain it), and a horizon ``h`` later meets
the quote prevailing at ``t + h``. Both frames must be sorted by time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics._results import Result
from quantify.analytics.asof_join import asof
from quantify.analytics.book_features import SpreadUnit, check_unit, frame_columns
from quantify.model.timeframes import timeframe_to_offset

__all__ = [
    "MarkoutResult",
    "effective_spread",
    "markouts",
    "realized_spread",
    "trade_sign",
]

SignMethod = Literal["maker", "tick", "lee_ready"]
_SIGN_METHODS = ("maker", "tick", "lee_ready")
TICK_COLUMNS = ("price", "qty")


def trade_columns(trades: Any, func: str, *, maker: bool = True) -> dict[str, np.ndarray]:
    """Price and quantity of a tick frame (validated), and ``is_buyer_maker`` when asked."""
    t = frame_columns(trades, func, TICK_COLUMNS, name="trades")
    if np.isnan(t["price"]).any() or np.isnan(t["qty"]).any():
        raise ValueError(f"{func}: trades have NaN prices or quantities; a trade print is never missing, "
                         "drop the bad rows first")
    if not isinstance(trades.index, pd.DatetimeIndex):
        raise TypeError(f"{func}: trades need a DatetimeIndex (trade time), got {type(trades.index).__name__}")
    if not trades.index.is_monotonic_increasing:
        raise ValueError(f"{func}: trades must be in time order (a non-decreasing index); "
                         "sort them first (e.g. .sort_index(kind='stable'))")
    if maker:
        if "is_buyer_maker" not in trades.columns:
            raise ValueError(f"{func}: trades lack column 'is_buyer_maker' for sign='maker'; "
                             f"it has {list(trades.columns)} (or pass sign='tick')")
        ibm = trades["is_buyer_maker"]
        if not pd.api.types.is_bool_dtype(ibm.dtype):
            raise TypeError(f"{func}: is_buyer_maker must be boolean, got dtype {ibm.dtype}")
        t["is_buyer_maker"] = ibm.to_numpy(dtype=bool)
    return t


def prevailing_mids(quotes: Any, func: str, times: pd.DatetimeIndex, exact: bool) -> np.ndarray:
    """The mid prevailing at each of ``times`` (NaN before the first quote)."""
    q = frame_columns(quotes, func, ("bid_price", "ask_price"))
    if not isinstance(quotes.index, pd.DatetimeIndex):
        raise TypeError(f"{func}: quotes need a DatetimeIndex, got {type(quotes.index).__name__}")
    right = pd.DataFrame({"mid": 0.5 * (q["bid_price"] + q["ask_price"])}, index=quotes.index)
    joined = asof(pd.DataFrame(index=times), right, allow_exact_matches=exact)
    return joined["mid"].to_numpy()


def _future_mids(quotes: Any, func: str, times: pd.DatetimeIndex, horizon: pd.Timedelta) -> np.ndarray:
    """The mid prevailing at ``t + horizon``; NaN past the last quote (the data ends there)."""
    at = times + horizon
    out = prevailing_mids(quotes, func, at, True)
    if len(quotes):
        out[np.asarray(at > quotes.index[-1])] = np.nan
    return out


def _horizons(horizons: Any) -> list[tuple[str, pd.Timedelta]]:
    """``(label, length)`` per horizon, in the order given; labels as the caller spelt them."""
    items = [horizons] if isinstance(horizons, (str, pd.Timedelta)) else list(horizons)
    if not items:
        raise ValueError("horizons must name at least one horizon, got none")
    out = []
    for h in items:
        td = timeframe_to_offset(h)
        out.append((h if isinstance(h, str) else str(td), td))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"horizons must be distinct, got {labels}")
    return out


def _tick_signs(price: np.ndarray) -> np.ndarray:
    """The tick test: +1 above the last different price, -1 below, NaN before any change."""
    out = np.full(price.shape[0], np.nan)
    change = np.flatnonzero(np.diff(price) != 0) + 1
    if change.size:
        step = np.sign(price[change] - price[change - 1])
        # each row takes the sign of the last change at or before it
        at = np.searchsorted(change, np.arange(price.shape[0]), side="right") - 1
        ok = at >= 0
        out[ok] = step[at[ok]]
    return out


def trade_sign(
    trades: pd.DataFrame,
    quotes: pd.DataFrame | None = None,
    *,
    method: SignMethod = "maker",
    allow_exact_matches: bool = False,
) -> pd.Series:
    """Return each trade's aggressor side: +1 a buy, -1 a sell, NaN unknown.

    Parameters
    ----------
    trades : DataFrame
        A tick frame (``price``, ``qty``; ``is_buyer_maker`` for ``"maker"``).
    quotes : DataFrame, optional
        A quotes frame; needed by ``"lee_ready"``.
    method : {"maker", "tick", "lee_ready"}, default "maker"
        ``"maker"``: the exchange's flag (a buyer-maker trade is a sell), exact
        on Binance. ``"tick"``: the tick test. ``"lee_ready"``: the quote
        rule, with the tick test at the mid.
    allow_exact_matches : bool, default False
        Whether a quote stamped at the trade's time prevails (``"lee_ready"``).

    Returns
    -------
    Series
        float64 named ``sign`` on the trades' index.

    Notes
    -----
    The tick test signs a trade by the last price change before it
    (:math:`+1` up-tick or zero-up-tick, :math:`-1` down); the first trades,
    before any change, are NaN. Lee & Ready (1991), "Inferring trade
    direction from intraday data", *J. Finance* 46(2): +1 above the
    prevailing mid, -1 below, the tick test at the mid (and where no quote
    prevails yet). Their five-second quote delay is for the 1980s NYSE tape;
    pass quotes already lagged if you want one.
    """
    func = "trade_sign"
    if method not in _SIGN_METHODS:
        raise ValueError(f"{func}: method must be one of {list(_SIGN_METHODS)}, got {method!r}")
    t = trade_columns(trades, func, maker=method == "maker")
    if method == "maker":
        sign = np.where(t["is_buyer_maker"], -1.0, 1.0)
    else:
        sign = _tick_signs(t["price"])
        if method == "lee_ready":
            if quotes is None:
                raise ValueError(f"{func}: method='lee_ready' needs quotes")
            m = prevailing_mids(quotes, func, trades.index, allow_exact_matches)
            quote_rule = np.sign(t["price"] - m)  # NaN where no quote
            use = ~np.isnan(quote_rule) & (quote_rule != 0)
            sign = np.where(use, quote_rule, sign)
    return pd.Series(sign, index=trades.index, name="sign")


def resolve_signs(trades: pd.DataFrame, quotes: pd.DataFrame, sign: Any, func: str, exact: bool) -> np.ndarray:
    if isinstance(sign, pd.Series):
        if len(sign) != len(trades) or not sign.index.equals(trades.index):
            raise ValueError(f"{func}: a sign Series must share the trades' index ({len(sign)} rows "
                             f"for {len(trades)} trades)")
        s = _validate.series(sign, "sign", func, nan="keep", minimum=0).to_numpy()
        if not np.isin(s[~np.isnan(s)], (-1.0, 1.0)).all():
            raise ValueError(f"{func}: sign values must be +1, -1 or NaN")
        return s
    if sign not in _SIGN_METHODS:
        raise ValueError(f"{func}: sign must be one of {list(_SIGN_METHODS)} or a Series, got {sign!r}")
    return trade_sign(trades, quotes, method=sign, allow_exact_matches=exact).to_numpy()


def effective_spread(
    trades: pd.DataFrame,
    quotes: pd.DataFrame,
    *,
    sign: SignMethod | pd.Series = "maker",
    unit: SpreadUnit = "bps",
    allow_exact_matches: bool = False,
) -> pd.Series:
    """Return each trade's effective spread against the prevailing mid.

    Parameters
    ----------
    trades : DataFrame
        A tick frame, sorted by time.
    quotes : DataFrame
        A quotes frame, sorted by time.
    sign : {"maker", "tick", "lee_ready"} or Series, default "maker"
        How trades are signed (:func:`trade_sign`), or the signs themselves.
    unit : {"bps", "price"}, default "bps"
        In basis points of the mid, or in price.
    allow_exact_matches : bool, default False
        Whether a quote stamped at the trade's time prevails.

    Returns
    -------
    Series
        Named ``effective_spread``; NaN before the first quote or for an
        unsigned trade.

    Notes
    -----
    :math:`ES_i = 2 s_i (p_i - m_i)` (price) or :math:`2 s_i (p_i - m_i)/m_i
    \\cdot 10^4` (bps), :math:`m_i` the mid prevailing before trade :math:`i`
    and :math:`s_i = \\pm 1` its side: Huang & Stoll (1996), "Dealer versus
    auction markets", *J. Financial Economics* 41(3); Bessembinder (2003),
    "Issues in assessing trade execution costs", *J. Financial Markets* 6(3).
    """
    func = "effective_spread"
    u = check_unit(unit)
    t = trade_columns(trades, func, maker=isinstance(sign, str) and sign == "maker")
    s = resolve_signs(trades, quotes, sign, func, allow_exact_matches)
    m = prevailing_mids(quotes, func, trades.index, allow_exact_matches)
    es = 2.0 * s * (t["price"] - m)
    if u == "bps":
        es = es / m * 1e4
    return pd.Series(es, index=trades.index, name="effective_spread")


def realized_spread(
    trades: pd.DataFrame,
    quotes: pd.DataFrame,
    horizons: str | pd.Timedelta | Sequence[str | pd.Timedelta] = ("1s", "5s", "1m"),
    *,
    sign: SignMethod | pd.Series = "maker",
    unit: SpreadUnit = "bps",
    allow_exact_matches: bool = False,
) -> pd.DataFrame:
    """Return each trade's realised spread at each horizon.

    Parameters
    ----------
    trades, quotes, sign, unit, allow_exact_matches
        As :func:`effective_spread`.
    horizons : str, Timedelta or list of them, default ("1s", "5s", "1m")
        How long after each trade the mid is read.

    Returns
    -------
    DataFrame
        One column per horizon (labelled as given) on the trades' index; NaN
        where the horizon ends after the last quote (the data cannot tell).

    Notes
    -----
    :math:`RS_i(h) = 2 s_i (p_i - m_{t_i + h})` (price) or divided by the
    prevailing mid :math:`m_i` and times :math:`10^4` (bps), :math:`m_{t+h}`
    the mid prevailing at :math:`t + h`: the part of the effective spread the
    liquidity provider keeps after the price impact :math:`2 s_i (m_{t+h} -
    m_i)`, Huang & Stoll (1996); Bessembinder & Kaufman (1997), *J.
    Financial Economics* 46(3).
    """
    func = "realized_spread"
    u = check_unit(unit)
    hs = _horizons(horizons)
    t = trade_columns(trades, func, maker=isinstance(sign, str) and sign == "maker")
    s = resolve_signs(trades, quotes, sign, func, allow_exact_matches)
    m = prevailing_mids(quotes, func, trades.index, allow_exact_matches)
    out = {}
    for label, h in hs:
        rs = 2.0 * s * (t["price"] - _future_mids(quotes, func, trades.index, h))
        out[label] = rs / m * 1e4 if u == "bps" else rs
    return pd.DataFrame(out, index=trades.index)


@dataclasses.dataclass(frozen=True, repr=False)
class MarkoutResult(Result):
    """Markouts of trades at several horizons, per trade and averaged.

    Attributes
    ----------
    per_trade : DataFrame
        bps, one column per horizon, on the trades' index (NaN: no quote, no
        sign, or a horizon past the last quote).
    mean, weighted_mean, stderr, count : Series
        Per horizon: the mean, the quantity-weighted mean, the standard error
        of the mean (``ddof=1``) and the trades averaged.
    sign : str
        How trades were signed.
    """

    _title: ClassVar[str] = "Markouts (bps, aggressor side)"

    per_trade: pd.DataFrame
    mean: pd.Series
    weighted_mean: pd.Series
    stderr: pd.Series
    count: pd.Series
    sign: str

    def _rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [("sign", self.sign), ("trades", len(self.per_trade))]
        for h in self.mean.index:
            rows.append((f"{h}: mean ± se (n)",
                         f"{self.mean[h]:.4g} ± {self.stderr[h]:.3g} ({int(self.count[h])})"))
            rows.append((f"{h}: qty-weighted", float(self.weighted_mean[h])))
        return rows


def markouts(
    trades: pd.DataFrame,
    quotes: pd.DataFrame,
    horizons: str | pd.Timedelta | Sequence[str | pd.Timedelta] = ("1s", "5s", "1m"),
    *,
    sign: SignMethod | pd.Series = "maker",
    allow_exact_matches: bool = False,
) -> MarkoutResult:
    """Return the markouts of trades at chosen horizons, in bps, signed by the aggressor's side.

    Parameters
    ----------
    trades, quotes, sign, allow_exact_matches
        As :func:`effective_spread`.
    horizons : str, Timedelta or list of them, default ("1s", "5s", "1m")

    Returns
    -------
    MarkoutResult

    Notes
    -----
    :math:`M_i(h) = s_i (m_{t_i + h} - p_i) / p_i \\cdot 10^4`: what the
    aggressor of trade :math:`i` has gained, marked to the mid :math:`h`
    later (its counterparty, the maker, lost as much); positive markouts are
    informed or toxic flow. The averages skip NaN; the weighted mean weights
    by ``qty``. This is the practitioners' mark-out (e.g. Cartea, Jaimungal &
    Penalva 2015); :func:`realized_spread` is the same future mid seen
    from the liquidity provider, relative to the prevailing mid.
    """
    func = "markouts"
    hs = _horizons(horizons)
    t = trade_columns(trades, func, maker=isinstance(sign, str) and sign == "maker")
    s = resolve_signs(trades, quotes, sign, func, allow_exact_matches)
    valid_now = ~np.isnan(prevailing_mids(quotes, func, trades.index, allow_exact_matches))
    per = {}
    for label, h in hs:
        mk = s * (_future_mids(quotes, func, trades.index, h) - t["price"]) / t["price"] * 1e4
        mk[~valid_now] = np.nan  # no quote prevailed at the trade: nothing to mark against
        per[label] = mk
    frame = pd.DataFrame(per, index=trades.index)
    labels = [label for label, _ in hs]
    count = frame.notna().sum().astype(np.int64)
    mean = pd.Series([_mean(frame[c].to_numpy()) for c in labels], index=labels)
    stderr = pd.Series([_stderr(frame[c].to_numpy()) for c in labels], index=labels)
    wmean = pd.Series([_weighted(frame[c].to_numpy(), t["qty"]) for c in labels], index=labels)
    return MarkoutResult(per_trade=frame, mean=mean, weighted_mean=wmean, stderr=stderr, count=count,
                         sign=sign if isinstance(sign, str) else "given")


def _mean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def _stderr(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


def _weighted(v: np.ndarray, w: np.ndarray) -> float:
    ok = ~np.isnan(v)
    total = float(w[ok].sum())
    return float((v[ok] * w[ok]).sum() / total) if total > 0 else float("nan")
