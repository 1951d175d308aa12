"""Volatility estimators: close-to-close, realised, Parkinson, Garman-Klass.

Every estimator is annualised with ``periods_per_year`` (crypto trades every
day: 365-day years), inferred from the index spacing when not given. Pass
``window`` for a rolling estimate (a Series) instead of one number.

Prices must be > 0 (they are logged); a NaN price or bar is left out (its
returns are NaN and skipped); infinite values are refused. One number needs
enough data for one estimate (see each function); a rolling estimate is NaN
until its window is full, as pandas'.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.model.timeframes import timeframe_to_offset

__all__ = [
    "DAYS_PER_YEAR",
    "garman_klass",
    "historical_volatility",
    "parkinson",
    "realized_volatility",
]

#: Crypto markets never close: a year is 365 days of bars.
DAYS_PER_YEAR = 365.0
_YEAR = pd.Timedelta(days=DAYS_PER_YEAR)


def _periods_per_year(index: pd.Index, periods_per_year: float | None) -> float:
    if periods_per_year is not None:
        return _validate.check_number(periods_per_year, "periods_per_year", positive=True)
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise ValueError(
            "periods_per_year is needed unless the data has a DatetimeIndex of 2+ rows"
        )
    step = pd.Series(index).diff().median()
    if not step > pd.Timedelta(0):
        raise ValueError(f"cannot infer the sampling interval: median spacing {step}")
    return _YEAR / step


def _check_window(window: int | None) -> int | None:
    return None if window is None else _validate.check_window(window)


def _prices(
    data: pd.Series | pd.DataFrame, func: str, minimum: int, column: str = "close"
) -> pd.Series:
    """The price column of ``data``: positive where not NaN, ``minimum`` finite values at least."""
    if isinstance(data, pd.DataFrame):
        for name in (column, "price", "close"):
            if name in data.columns:
                s = _validate.series(data[name], name, func, nan="keep", minimum=minimum)
                break
        else:
            raise ValueError(f"need a {column!r} or 'price' column, have {list(data.columns)}")
    elif isinstance(data, pd.Series):
        s = _validate.series(data, "prices", func, nan="keep", minimum=minimum)
    else:
        raise TypeError(f"prices must be a Series or DataFrame, not {type(data).__name__}")
    _validate.check_positive_prices(func, "prices", s.to_numpy())
    return s


def _check_ohlc(candles: pd.DataFrame, cols: tuple[str, ...], func: str) -> None:
    """Columns present, numeric, positive where not NaN, one complete bar at least."""
    if not isinstance(candles, pd.DataFrame):
        raise TypeError(f"candles must be a DataFrame, not {type(candles).__name__}")
    missing = [c for c in cols if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {missing}; have {list(candles.columns)}")
    complete = np.ones(len(candles), dtype=bool)
    for c in cols:
        v = _validate.series(candles[c], c, func, nan="keep", minimum=0).to_numpy()
        _validate.check_positive_prices(func, c, v)
        complete &= ~np.isnan(v)
    _validate.need(func, 1, f"bars with finite {', '.join(cols)}", int(complete.sum()))


def _annualise(var_per_period: pd.Series, ppy: float, window: int | None) -> float | pd.Series:
    if window is None:
        v = var_per_period.dropna()
        return math.sqrt(float(v.mean()) * ppy) if len(v) else float("nan")
    return np.sqrt(var_per_period.rolling(window).mean() * ppy)


def historical_volatility(
    prices: pd.Series | pd.DataFrame,
    periods_per_year: float | None = None,
    *,
    window: int | None = None,
) -> float | pd.Series:
    """Annualised close-to-close volatility.

    Parameters
    ----------
    prices : Series or DataFrame
        Regularly sampled prices, or candles (``close`` is used).
    periods_per_year : float, optional
        Bars per year; default from the median index spacing over 365 days
        (1m bars: 525,600).
    window : int, optional
        Returns per rolling estimate; the result is then a Series.

    Returns
    -------
    float or Series

    Notes
    -----
    :math:`\\sigma = \\mathrm{std}(r_t)\\sqrt{P}` with log returns
    :math:`r_t = \\ln(c_t/c_{t-1})`, the sample standard deviation
    (``ddof=1``, as pandas' ``std``) and :math:`P` periods per year. We use
    365-day years (equity conventions use 252).
    """
    w = _check_window(window)
    p = _prices(prices, "historical_volatility", 1 if w is not None else 3)
    ppy = _periods_per_year(p.index, periods_per_year)
    r = np.log(p).diff()
    if w is None:
        _validate.need("historical_volatility", 2, "finite returns (consecutive finite prices)",
                       int(r.notna().sum()))
    if w is None:
        return float(r.std() * math.sqrt(ppy))
    return r.rolling(w).std() * math.sqrt(ppy)


def realized_volatility(
    prices: pd.Series | pd.DataFrame,
    interval: str | pd.Timedelta | None = None,
    *,
    window: int | None = None,
    annualize: bool = True,
    halflife: float | None = None,
) -> float | pd.Series:
    """Realised volatility from ticks or bars, sampled at any interval.

    Parameters
    ----------
    prices : Series or DataFrame
        Ticks (``price`` is used) or candles (``close``) or a price Series, on
        a ``DatetimeIndex``.
    interval : str or Timedelta, optional
        Sampling interval (``"5m"``, ``"1s"``, ...): the last price of each
        interval, carried forward over empty ones. Default: the data as given.
    window : int, optional
        Intervals per rolling estimate; the result is then a Series.
    annualize : bool, default True
        Scale to a 365-day year; otherwise the realised volatility over the
        sample (or window).
    halflife : float, optional
        Instead of ``window``: an exponentially weighted estimate (a Series),
        the mean of :math:`r_t^2` with weights halving every ``halflife``
        intervals (RiskMetrics' EWMA variance; pandas' ``ewm(halflife=...)``,
        ``adjust=True``), annualised like a window (``annualize=False``: per
        interval).

    Returns
    -------
    float or Series

    Notes
    -----
    :math:`RV = \\sum r_t^2` over log returns of the sampled prices (no mean
    is removed, unlike :func:`historical_volatility`), and the annualised
    figure is :math:`\\sqrt{RV \\cdot Y / T}` with :math:`T` the time the
    returns span (first to last price; for a rolling window, ``window`` times
    the median spacing). Sampling much finer than a few seconds picks up
    bid-ask bounce.
    """
    w = _check_window(window)
    if halflife is not None:
        if w is not None:
            raise ValueError("realized_volatility: pass window or halflife, not both")
        halflife = _validate.check_number(halflife, "halflife", positive=True)
    p = _prices(prices, "realized_volatility", 1 if w is not None or halflife is not None else 2)
    if not isinstance(p.index, pd.DatetimeIndex):
        raise TypeError(f"realized_volatility needs a DatetimeIndex, not {type(p.index).__name__}")
    if not p.index.is_monotonic_increasing:
        raise ValueError("realized_volatility: the index must be non-decreasing (sort it by time)")
    if interval is not None:
        step = timeframe_to_offset(interval)  # type: ignore[arg-type]
        p = p.resample(step, origin="epoch").last().ffill()
    else:
        step = pd.Series(p.index).diff().median()
    r2 = np.log(p).diff() ** 2
    if halflife is not None:
        mean_r2 = r2.ewm(halflife=halflife, ignore_na=True).mean()
        return np.sqrt(mean_r2 * (_YEAR / step)) if annualize else np.sqrt(mean_r2)
    if w is None:
        rv = float(r2.sum())
        if not annualize:
            return math.sqrt(rv)
        ok = np.flatnonzero(r2.notna().to_numpy())
        _validate.need("realized_volatility", 1, "finite returns (consecutive finite prices)", len(ok))
        # time the returns span (positions: tick times may repeat)
        span = p.index[ok[-1]] - p.index[ok[0] - 1]
        if span <= pd.Timedelta(0):
            raise ValueError(f"the returns span no time ({span}): cannot annualise")
        return math.sqrt(rv * (_YEAR / span))
    rv_w = r2.rolling(w).sum()
    return np.sqrt(rv_w * (_YEAR / (w * step))) if annualize else np.sqrt(rv_w)


def parkinson(
    candles: pd.DataFrame,
    periods_per_year: float | None = None,
    *,
    window: int | None = None,
) -> float | pd.Series:
    """Parkinson (1980) high-low volatility from candles, annualised.

    Parameters
    ----------
    candles : DataFrame
        With ``high`` and ``low``.
    periods_per_year : float, optional
        As in :func:`historical_volatility`.
    window : int, optional
        Bars per rolling estimate.

    Returns
    -------
    float or Series

    Notes
    -----
    :math:`\\sigma^2 = \\frac{1}{4\\ln 2}\\,\\overline{\\ln(H/L)^2}` per bar,
    times :math:`P`. Assumes no drift and continuous trading within the
    bar; flat bars (no trades) count as zero range, which biases it down on
    illiquid pairs. Bars with NaN prices are skipped.
    """
    _check_ohlc(candles, ("high", "low"), "parkinson")
    ppy = _periods_per_year(candles.index, periods_per_year)
    w = _check_window(window)
    hl = np.log(candles["high"].astype(np.float64) / candles["low"].astype(np.float64))
    return _annualise(hl**2 / (4.0 * math.log(2.0)), ppy, w)


def garman_klass(
    candles: pd.DataFrame,
    periods_per_year: float | None = None,
    *,
    window: int | None = None,
) -> float | pd.Series:
    """Garman-Klass (1980) OHLC volatility from candles, annualised.

    Parameters
    ----------
    candles : DataFrame
        With ``open``, ``high``, ``low``, ``close``.
    periods_per_year : float, optional
        As in :func:`historical_volatility`.
    window : int, optional
        Bars per rolling estimate.

    Returns
    -------
    float or Series

    Notes
    -----
    :math:`\\sigma^2 = \\overline{\\tfrac12\\ln(H/L)^2 - (2\\ln 2 - 1)
    \\ln(C/O)^2}` per bar, times :math:`P`. The classic form without the
    overnight term (crypto has no close-to-open gap: the next bar opens at
    the first trade after this bar's close).
    """
    _check_ohlc(candles, ("open", "high", "low", "close"), "garman_klass")
    ppy = _periods_per_year(candles.index, periods_per_year)
    w = _check_window(window)
    c = candles.astype({k: np.float64 for k in ("open", "high", "low", "close")})
    hl = np.log(c["high"] / c["low"])
    co = np.log(c["close"] / c["open"])
    return _annualise(0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * co**2, ppy, w)
