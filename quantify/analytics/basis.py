"""Basis of a perpetual against its spot market, and the premium of the mark over the index.

The basis is the perpetual's price minus the spot price, in price units, in
basis points of spot and annualised over the funding interval. The premium
index is the mark price's premium over the index price that the venue
publishes with every mark update (Binance ``markPriceUpdate``: ``p`` and
``i``), from a mark frame (:mod:`quantify.model.perp`, ``store.mark(...)``).

Prices must be > 0; infinite values are refused
(:mod:`quantify.analytics._validate`).
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics._validate import SeriesLike
from quantify.analytics.volatility import DAYS_PER_YEAR
from quantify.model.timeframes import timeframe_to_offset

__all__ = ["BASIS_COLUMNS", "basis", "premium_index"]

#: The columns of :func:`basis`, in order.
BASIS_COLUMNS = ("perp", "spot", "basis", "basis_bps", "basis_annualised")

_YEAR = pd.Timedelta(days=DAYS_PER_YEAR)


def intervals_per_year(interval: str | pd.Timedelta | _dt.timedelta, name: str = "funding_interval") -> float:
    """How many ``interval`` fit in a 365-day year (``"8h"`` -> 1095)."""
    try:
        td = timeframe_to_offset(interval)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc
    return float(_YEAR / td)


def basis(
    perp: SeriesLike, spot: SeriesLike, *, funding_interval: str | pd.Timedelta = "8h"
) -> pd.DataFrame:
    """Basis of a perpetual over its spot market: price units, bps and annualised.

    Parameters
    ----------
    perp, spot : Series or array-like
        Prices of the perpetual and of the spot market, e.g. the ``close`` of
        their candles (``store.ohlcv(...).close``) or a mark price. Two Series
        are aligned on their index (an inner join: only the times both have
        are kept); two arrays must have the same length. Prices > 0; rows
        where either is NaN are left out.
    funding_interval : str or Timedelta, default "8h"
        The perpetual's funding interval (Binance settles most symbols every
        8 hours), any timeframe :func:`~quantify.analytics.timeframe_to_offset`
        reads.

    Returns
    -------
    DataFrame
        On the aligned index, columns ``perp``, ``spot``, ``basis``
        (``perp - spot``), ``basis_bps`` (``1e4 * basis / spot``) and
        ``basis_annualised`` (a fraction per year, see Notes).

    Raises
    ------
    ValueError
        On a price <= 0 or infinite, a bad interval, arrays of different
        lengths, or no time where both are finite.
    TypeError
        If an input is not one-dimensional numeric data.

    Notes
    -----
    :math:`b_t = P_t - S_t`, :math:`b^{bps}_t = 10^4\\,b_t/S_t` and
    :math:`b^{ann}_t = (b_t/S_t)\\cdot N`, with :math:`N` funding intervals in
    a 365-day year (1095 for 8 hours). ``basis_annualised`` is the carry the
    basis implies if it converged to zero over one funding interval, repeated
    for a year (simple, not compounded): a perpetual has no expiry, so the
    funding interval is the horizon over which its funding pulls it to spot.
    It is a gauge of richness, not a forecast of the funding that will be paid.
    """
    func = "basis"
    ppy = intervals_per_year(funding_interval)
    if isinstance(perp, pd.Series) and isinstance(spot, pd.Series):
        p, s = _validate.as_series(perp, "perp").align(_validate.as_series(spot, "spot"), join="inner")
        _validate.check_values(func, "perp", p.to_numpy(), "keep")
        _validate.check_values(func, "spot", s.to_numpy(), "keep")
    else:  # arrays (or one array): same length, the Series' index if there is one
        p, s = _validate.pair(perp, spot, func, nan="keep", names=("perp", "spot"))
    both = ~(np.isnan(p.to_numpy()) | np.isnan(s.to_numpy()))
    p, s = p[both], s[both]
    _validate.need(func, 1, "aligned, finite observations of perp and spot", len(p))
    _validate.check_positive_prices(func, "perp", p.to_numpy())
    _validate.check_positive_prices(func, "spot", s.to_numpy())
    pv = p.to_numpy(dtype=np.float64)
    sv = s.to_numpy(dtype=np.float64)
    b = pv - sv
    rel = b / sv
    return pd.DataFrame(
        {"perp": pv, "spot": sv, "basis": b, "basis_bps": 1e4 * rel, "basis_annualised": rel * ppy},
        index=p.index, columns=list(BASIS_COLUMNS),
    )


def premium_index(marks: pd.DataFrame) -> pd.Series:
    """Premium of the mark price over the index price, as a fraction of the index.

    Parameters
    ----------
    marks : DataFrame
        A mark frame (``store.mark(...)``, :func:`quantify.model.perp.marks_to_frame`):
        columns ``mark_price`` and ``index_price`` (others are ignored), prices > 0.

    Returns
    -------
    Series
        ``premium_index`` on the frame's index, NaN where either price is NaN.

    Raises
    ------
    ValueError
        If a column is missing, a price is <= 0 or infinite, or no row has both prices.
    TypeError
        If ``marks`` is not a DataFrame.

    Notes
    -----
    :math:`(M_t - I_t)/I_t`. Binance's own premium index (the input of its
    funding rate) is computed from impact bid and ask prices of the order
    book, not from the mark; this is the premium the mark shows over the
    index at each update, the quantity the funding keeps small.
    """
    func = "premium_index"
    frame = _validate.check_frame(marks, func, ("mark_price", "index_price"), name="marks")
    m = _validate.series(frame["mark_price"], "mark_price", func, nan="keep", minimum=0).to_numpy()
    i = _validate.series(frame["index_price"], "index_price", func, nan="keep", minimum=0).to_numpy()
    _validate.check_positive_prices(func, "mark_price", m)
    _validate.check_positive_prices(func, "index_price", i)
    both = ~(np.isnan(m) | np.isnan(i))
    _validate.need(func, 1, "rows of marks with finite mark_price and index_price", int(both.sum()))
    out = np.full(len(m), np.nan)
    out[both] = (m[both] - i[both]) / i[both]
    return pd.Series(out, index=frame.index, name="premium_index")
