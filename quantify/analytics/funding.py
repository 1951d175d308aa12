"""Funding of perpetual futures: what a position pays or earns at each settlement, and its z-score.

A funding frame (:mod:`quantify.model.perp`, ``store.funding(...)``,
``qf.datasets.funding_2021().funding``) is indexed by settlement time and
carries ``funding_rate`` (the rate settled then; longs pay shorts when it is
positive) and ``mark_price`` (the mark the settlement was charged at, NaN where
the venue does not say). A Series of rates on settlement times is accepted
wherever a funding frame is.

Funding is accrued exactly at the settlement times, never spread over bars:
:func:`funding_per_unit` assigns each settlement to the bar whose holding
period contains it, for the backtests (:func:`~quantify.analytics.carry_backtest`,
:func:`~quantify.analytics.backtest_pairs`) and :func:`funding_carry`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics._plotting import bqplot, time_axis
from quantify.analytics._results import Result
from quantify.analytics.basis import intervals_per_year
from quantify.analytics.rolling import zscore
from quantify.analytics.volatility import DAYS_PER_YEAR

__all__ = ["FundingCarryResult", "funding_carry", "funding_zscore"]

_YEAR = pd.Timedelta(days=DAYS_PER_YEAR)


def funding_frame(funding: Any, func: str, *, name: str = "funding", minimum: int = 1) -> pd.DataFrame:
    """A validated funding frame: UTC settlement times, ``funding_rate`` (no NaN) and ``mark_price``.

    A Series is read as the rates (marks unknown). Times must increase
    strictly; marks, where given, must be > 0.
    """
    if isinstance(funding, pd.Series):
        frame = pd.DataFrame({"funding_rate": funding})
    else:
        frame = _validate.check_frame(funding, func, ("funding_rate",), name=name)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError(f"{func}: {name} must be indexed by settlement times (a DatetimeIndex), "
                        f"got {type(frame.index).__name__}")
    rates = _validate.series(frame["funding_rate"], "funding_rate", func, nan="refuse", minimum=0)
    marks = (_validate.series(frame["mark_price"], "mark_price", func, nan="keep", minimum=0)
             if "mark_price" in frame.columns else pd.Series(np.nan, index=frame.index))
    _validate.check_positive_prices(func, "mark_price", marks.to_numpy())
    _validate.need(func, minimum, f"funding settlements in {name}", len(frame))
    index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        raise ValueError(f"{func}: {name}'s settlement times must increase strictly (sort it, drop duplicates)")
    return pd.DataFrame({"funding_rate": rates.to_numpy(), "mark_price": marks.to_numpy()},
                        index=index.rename("time"))


def mark_prices(marks: Any, func: str) -> pd.Series | None:
    """``marks`` (a mark frame's ``mark_price``, or a Series of mark prices) validated, or None."""
    if marks is None:
        return None
    if isinstance(marks, pd.DataFrame):
        marks = _validate.check_frame(marks, func, ("mark_price",), name="marks")["mark_price"]
    s = _validate.series(marks, "marks", func, nan="drop")
    if not isinstance(s.index, pd.DatetimeIndex):
        raise TypeError(f"{func}: marks must be indexed by time (a DatetimeIndex), got {type(s.index).__name__}")
    _validate.check_positive_prices(func, "marks", s.to_numpy())
    if s.index.tz is None:
        s = s.tz_localize("UTC")
    return s.sort_index(kind="stable")


def settlement_prices(frame: pd.DataFrame, marks: pd.Series | None) -> np.ndarray:
    """The price each settlement is charged at: its own mark, else the latest of ``marks`` at or before it."""
    price = frame["mark_price"].to_numpy(dtype=np.float64).copy()
    if marks is not None and len(marks):
        at = np.searchsorted(marks.index.asi8, frame.index.asi8, side="right") - 1
        fill = np.isnan(price) & (at >= 0)
        price[fill] = marks.to_numpy()[at[fill]]
    return price


def funding_per_unit(
    closes: pd.DatetimeIndex, leg: np.ndarray, frame: pd.DataFrame, marks: pd.Series | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Funding owed per unit held long over each bar, the bar of each settlement and its price.

    Parameters
    ----------
    closes : DatetimeIndex
        The time of each bar's close (the fill time of the positions decided there).
    leg : ndarray
        The perpetual's price at each close: the settlement price when neither
        the funding frame nor ``marks`` has one (the last close before it).
    frame : DataFrame
        A validated funding frame (:func:`funding_frame`).
    marks : Series or None
        Mark prices (:func:`mark_prices`).

    Returns
    -------
    per_unit : ndarray
        ``per_unit[t] = sum(rate * price)`` over the settlements ``tau`` with
        ``closes[t-1] <= tau < closes[t]``: a position of ``u`` units held from
        close ``t-1`` to close ``t`` receives ``-u * per_unit[t]``. A fill at
        a settlement's very time is taken to be before it (a candle close is
        the last price before the next bar opens). 0 on bar 0.
    bar : ndarray of int
        The bar of each settlement, -1 for those before the first close or at
        or after the last (no position of the run holds them).
    price : ndarray
        The price each settlement is charged at (NaN for those outside the run
        with no mark).
    """
    n = len(closes)
    k = np.searchsorted(closes.asi8, frame.index.asi8, side="right")
    inside = (k >= 1) & (k <= n - 1)
    bar = np.where(inside, k, -1)
    price = settlement_prices(frame, marks)
    own = np.isnan(price)
    price[own & inside] = leg[k[own & inside] - 1]
    per_unit = np.zeros(n)
    np.add.at(per_unit, k[inside], frame["funding_rate"].to_numpy()[inside] * price[inside])
    return per_unit, bar, price


def settlements_per_year(index: pd.DatetimeIndex, interval: Any, func: str) -> float:
    """Settlements in a 365-day year: from ``interval``, or the median spacing rounded to the second."""
    if interval is not None:
        return intervals_per_year(interval)
    _validate.need(func, 2, "funding settlements to infer the funding interval (or pass funding_interval)",
                   len(index))
    step = pd.Timedelta(int(np.median(np.diff(index.asi8))), unit="ns").round("1s")
    if step <= pd.Timedelta(0):
        raise ValueError(f"{func}: the settlements are less than a second apart; pass funding_interval")
    return float(_YEAR / step)


@dataclasses.dataclass(frozen=True, repr=False)
class FundingCarryResult(Result):
    """Result of :func:`funding_carry`.

    Attributes
    ----------
    payments : Series
        Funding received at each settlement (negative: paid), in quote currency.
    cumulative : Series
        Running sum of ``payments``.
    rates : Series
        The settled funding rates.
    prices : Series
        The price each settlement was charged at (NaN with a fixed ``notional``).
    total : float
        Sum of ``payments``.
    n_settlements : int
    mean_rate : float
        Mean settled rate (per settlement).
    annualised_rate : float
        ``mean_rate * settlements_per_year``: what a long pays per year, as a
        fraction of notional (simple, not compounded).
    annualised_carry : float
        What the position earns per year as a fraction of its notional:
        ``-sign(position) * annualised_rate``.
    settlements_per_year : float
    position : float
        Units held (signed: > 0 long).
    notional : float
        The fixed notional, or NaN when it is ``|position|`` times each
        settlement's price.
    first, last : Timestamp
        First and last settlement.
    """

    _title: ClassVar[str] = "Funding carry"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "total", "n_settlements", "mean_rate", "annualised_rate", "annualised_carry",
        "settlements_per_year", "position", "notional", "first", "last",
    )
    payments: pd.Series
    cumulative: pd.Series
    rates: pd.Series
    prices: pd.Series
    total: float
    n_settlements: int
    mean_rate: float
    annualised_rate: float
    annualised_carry: float
    settlements_per_year: float
    position: float
    notional: float
    first: pd.Timestamp
    last: pd.Timestamp

    def plot(self) -> Any:
        """Cumulative funding (left axis) and the settled rates (right axis) as a bqplot Figure.

        Raises
        ------
        ImportError
            If bqplot is not installed (``pip install bqplot``).
        """
        bq = bqplot("FundingCarryResult.plot")
        xs, x, _ = time_axis(bq, self.cumulative.index)
        cum_scale, rate_scale = bq.LinearScale(), bq.LinearScale()
        cum = bq.Lines(x=x, y=self.cumulative.to_numpy(), scales={"x": xs, "y": cum_scale},
                       colors=["#1f77b4"], labels=["cumulative funding"], display_legend=True)
        rates = bq.Bars(x=x, y=1e4 * self.rates.to_numpy(), scales={"x": xs, "y": rate_scale},
                        colors=["#ff7f0e"], opacities=[0.5], labels=["rate (bps)"], display_legend=True)
        axes = [bq.Axis(scale=xs, label="settlement"),
                bq.Axis(scale=cum_scale, side="left", label="cumulative funding"),
                bq.Axis(scale=rate_scale, side="right", label="rate (bps)", grid_lines="none")]
        side = "long" if self.position > 0 else "short" if self.position < 0 else "flat"
        return bq.Figure(marks=[rates, cum], axes=axes, title=f"{self._title}: {side}")


def funding_carry(
    funding: pd.DataFrame | pd.Series,
    *,
    position: float = 1.0,
    notional: float | None = None,
    marks: pd.DataFrame | pd.Series | None = None,
    funding_interval: str | pd.Timedelta | None = None,
) -> FundingCarryResult:
    """Funding a constant perpetual position receives at each settlement.

    Parameters
    ----------
    funding : DataFrame or Series
        A funding frame (``funding_rate``, ``mark_price``) or a Series of
        settled rates, on settlement times.
    position : float, default 1.0
        Units of the perpetual held through every settlement, signed (> 0 long).
    notional : float, optional
        A fixed notional in quote currency (> 0): each payment is then
        ``-sign(position) * rate * notional`` and no price is needed. By
        default the notional is ``|position|`` times the settlement's price.
    marks : DataFrame or Series, optional
        Mark prices (a mark frame or a Series on times) for the settlements
        whose ``mark_price`` is NaN: the latest mark at or before each
        settlement.
    funding_interval : str or Timedelta, optional
        For the annualised figures; by default the median spacing of the
        settlements, rounded to the second (Binance's ``fundingTime`` is a few
        ms after the hour).

    Returns
    -------
    FundingCarryResult

    Raises
    ------
    ValueError
        On no settlement, a NaN or infinite rate, unsorted times, a bad
        parameter, fewer than 2 settlements with no ``funding_interval``, or a
        settlement with no price when ``notional`` is not given.
    TypeError
        If an input has the wrong type.

    Notes
    -----
    Payment at settlement :math:`\\tau`: :math:`-q\\,r_\\tau M_\\tau`, with
    :math:`q` the units held, :math:`r_\\tau` the rate and :math:`M_\\tau` the
    mark (longs pay shorts when :math:`r_\\tau > 0`, Binance's rule); with a
    fixed notional :math:`N`, :math:`-\\operatorname{sign}(q)\\,r_\\tau N`.
    ``annualised_rate`` is :math:`\\bar r\\cdot K` with :math:`K` settlements
    per 365-day year.
    """
    func = "funding_carry"
    frame = funding_frame(funding, func)
    q = _validate.check_number(position, "position")
    fixed = math.nan if notional is None else _validate.check_number(notional, "notional", positive=True)
    ppy = settlements_per_year(frame.index, funding_interval, func)
    rates = frame["funding_rate"].to_numpy()
    if notional is None:
        price = settlement_prices(frame, mark_prices(marks, func))
        missing = np.flatnonzero(np.isnan(price))
        if missing.size:
            raise ValueError(
                f"{func}: {missing.size} settlement(s) have no mark price (first at "
                f"{frame.index[missing[0]]}); pass marks= covering them, or a fixed notional="
            )
        pay = -q * rates * price
    else:
        price = np.full(len(rates), np.nan)
        pay = -float(np.sign(q)) * rates * fixed
    idx = frame.index
    payments = pd.Series(pay, index=idx, name="payment")
    mean_rate = float(rates.mean())
    return FundingCarryResult(
        payments=payments,
        cumulative=payments.cumsum().rename("cumulative"),
        rates=pd.Series(rates, index=idx, name="funding_rate"),
        prices=pd.Series(price, index=idx, name="price"),
        total=float(pay.sum()),
        n_settlements=len(idx),
        mean_rate=mean_rate,
        annualised_rate=mean_rate * ppy,
        annualised_carry=-float(np.sign(q)) * mean_rate * ppy,
        settlements_per_year=ppy,
        position=q,
        notional=fixed,
        first=idx[0],
        last=idx[-1],
    )


def funding_zscore(funding: pd.DataFrame | pd.Series, window: int) -> pd.Series:
    """Rolling z-score of the settled funding rates.

    Parameters
    ----------
    funding : DataFrame or Series
        A funding frame or a Series of settled rates, on settlement times.
    window : int
        Settlements in each window, at least 2.

    Returns
    -------
    Series
        ``funding_zscore`` on the settlement times: NaN for the first
        ``window - 1`` settlements and constant windows.

    Raises
    ------
    ValueError
        On no settlement, a NaN or infinite rate, or a bad window.
    TypeError
        If an input has the wrong type.

    Notes
    -----
    :func:`quantify.analytics.zscore` of the rates (sample standard deviation,
    the window ending at and including each settlement): the one z-score of
    the package.
    """
    frame = funding_frame(funding, "funding_zscore")
    return zscore(frame["funding_rate"], window).rename("funding_zscore")
