"""Cash-and-carry backtest: long spot, short the perpetual while the basis or the funding is rich.

The two legs hold the same number of units, so the position is flat in the
underlying: it earns the funding the short perpetual receives and the
convergence of the basis, and pays commission and slippage on every fill.
Accounting is exact per bar: ``total_pnl = price_pnl + funding_pnl - fees``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import numba
import numpy as np
import pandas as pd

from quantify.analytics import _ledger, _validate
from quantify.analytics._plotting import bqplot, time_axis
from quantify.analytics._validate import SeriesLike
from quantify.analytics.funding import funding_frame, funding_per_unit, mark_prices

__all__ = ["CarryBacktestResult", "carry_backtest"]

CarrySignal = Literal["basis", "funding"]
_SIGNALS = ("basis", "funding")
_TRADE_COLUMNS = ["entry_time", "exit_time", "entry_signal", "exit_signal", "units", "bars", "settlements",
                  "price_pnl", "funding_pnl", "fees", "pnl"]


@numba.njit(cache=True)
def _hold(signal: np.ndarray, entry: float, exit_: float) -> np.ndarray:
    """1.0 from a close where ``signal > entry`` until the first close where ``signal < exit_``."""
    n = signal.shape[0]
    out = np.zeros(n)
    state = 0.0
    for t in range(n):
        s = signal[t]
        if not math.isnan(s):
            if state == 0.0 and s > entry:
                state = 1.0
            elif state == 1.0 and s < exit_:
                state = 0.0
        out[t] = state
    return out


@dataclasses.dataclass(frozen=True, repr=False)
class CarryBacktestResult(_ledger.NotedResult):
    """Result of :func:`carry_backtest`.

    Attributes
    ----------
    pnl : DataFrame
        Per bar: ``price_pnl`` (both legs' units held over the bar times their
        price moves), ``funding_pnl`` (the settlements the perpetual leg held
        through), ``commission`` and ``slippage`` of the fills at the bar's
        close, ``fees`` (their sum) and ``total_pnl`` (``price_pnl +
        funding_pnl - fees``).
    equity : Series
        ``capital`` plus the running sum of ``total_pnl``.
    returns : Series
        Bar returns of ``equity``.
    positions : DataFrame
        ``signal`` (1 in the carry trade, 0 flat), ``units_spot`` (>= 0) and
        ``units_perp`` (<= 0), held from this bar's close to the next.
    basis_bps, signal_bps : Series
        The basis ``1e4 * (perp - spot) / spot`` at each close, and the
        signal traded on (the basis, or the last settled funding rate in bps).
    settlements : DataFrame
        The settlements the perpetual leg held through: ``time`` (of the
        settlement), ``bar`` (the close it is booked at), ``funding_rate``,
        ``price`` (charged at), ``units_perp`` and ``payment``.
    trades : DataFrame
        One row per round trip: ``entry_time``, ``exit_time`` (NaT if still
        open, then marked to market), ``entry_signal``, ``exit_signal``,
        ``units``, ``bars``, ``settlements``, ``price_pnl``, ``funding_pnl``,
        ``fees`` (entry and exit fills) and ``pnl``.
    total_pnl, price_pnl, funding_pnl, fees : float
        Sums of the columns of ``pnl``: ``total_pnl == price_pnl +
        funding_pnl - fees``.
    total_return : float
        ``total_pnl / capital``.
    sharpe, max_drawdown : float
        Of ``equity``, as :func:`~quantify.analytics.backtest_pairs` reports them.
    n_trades, n_settlements : int
    periods_per_year : float
    signal : str
    entry_bps, exit_bps : float
    notional, capital : float
    note : str
        Empty, or why the run made no trade.
    """

    _title: ClassVar[str] = "Cash-and-carry backtest"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "total_pnl", "price_pnl", "funding_pnl", "fees", "total_return", "sharpe", "max_drawdown",
        "n_trades", "n_settlements", "signal", "entry_bps", "exit_bps", "notional",
    )
    pnl: pd.DataFrame
    equity: pd.Series
    returns: pd.Series
    positions: pd.DataFrame
    basis_bps: pd.Series
    signal_bps: pd.Series
    settlements: pd.DataFrame
    trades: pd.DataFrame
    total_pnl: float
    price_pnl: float
    funding_pnl: float
    fees: float
    total_return: float
    sharpe: float
    max_drawdown: float
    n_trades: int
    n_settlements: int
    periods_per_year: float
    signal: str
    entry_bps: float
    exit_bps: float
    notional: float
    capital: float
    note: str = ""

    def plot(self) -> Any:
        """Cumulative PnL by source (left axis) and the signal with its bands (right axis), bqplot.

        Raises
        ------
        ImportError
            If bqplot is not installed (``pip install bqplot``).
        """
        bq = bqplot("CarryBacktestResult.plot")
        xs, x, _ = time_axis(bq, self.pnl.index)
        pnl_scale, sig_scale = bq.LinearScale(), bq.LinearScale()
        cum = self.pnl.cumsum()
        lines = bq.Lines(
            x=x, y=np.vstack([cum["total_pnl"], cum["price_pnl"], cum["funding_pnl"], -cum["fees"]]),
            scales={"x": xs, "y": pnl_scale}, colors=["#1f77b4", "#2ca02c", "#d62728", "#7f7f7f"],
            labels=["total", "price", "funding", "fees"], display_legend=True)
        signal = bq.Lines(x=x, y=self.signal_bps.to_numpy(), scales={"x": xs, "y": sig_scale},
                          colors=["#ff7f0e"], opacities=[0.5], labels=[f"{self.signal} (bps)"],
                          display_legend=True)
        bands = [bq.Lines(x=x[[0, -1]], y=[level, level], scales={"x": xs, "y": sig_scale},
                          colors=["#999999"], line_style="dashed")
                 for level in (self.entry_bps, self.exit_bps)]
        axes = [bq.Axis(scale=xs, label="time"),
                bq.Axis(scale=pnl_scale, side="left", label="cumulative PnL"),
                bq.Axis(scale=sig_scale, side="right", label=f"{self.signal} (bps)", grid_lines="none")]
        return bq.Figure(marks=[signal, *bands, lines], axes=axes, title=self._title)


def _last_rate_bps(closes: pd.DatetimeIndex, frame: pd.DataFrame) -> np.ndarray:
    """The last funding rate settled before each close, in bps (NaN before the first).

    Strictly before: a settlement at a close's very time comes after the fill there.
    """
    at = np.searchsorted(frame.index.asi8, closes.asi8, side="left") - 1
    rates = frame["funding_rate"].to_numpy()
    return np.where(at >= 0, 1e4 * rates[np.maximum(at, 0)], np.nan)


def _round_trips(
    index: pd.Index, held: np.ndarray, units: np.ndarray, sig: np.ndarray, pnl: pd.DataFrame,
    settled_bar: np.ndarray,
) -> pd.DataFrame:
    """Round trips from the position path; entry and exit fees belong to the trade."""
    n = len(held)
    prev = np.concatenate([[0.0], held[:-1]])
    price, fund, fees = (pnl[c].to_numpy() for c in ("price_pnl", "funding_pnl", "fees"))
    rows = []
    for start in np.flatnonzero((held == 1.0) & (prev == 0.0)):
        later = np.flatnonzero(held[start + 1:] == 0.0)
        end = int(start + 1 + later[0]) if later.size else None
        stop = end if end is not None else n - 1
        p = float(price[start + 1: stop + 1].sum())
        f = float(fund[start + 1: stop + 1].sum())
        c = float(fees[start]) + (float(fees[end]) if end is not None else 0.0)
        count = int(np.count_nonzero((settled_bar > start) & (settled_bar <= stop)))
        rows.append((index[start], index[end] if end is not None else pd.NaT, sig[start],
                     sig[end] if end is not None else np.nan, units[start], stop - start, count, p, f, c,
                     p + f - c))
    return pd.DataFrame(rows, columns=_TRADE_COLUMNS)


def carry_backtest(
    spot: SeriesLike,
    perp: SeriesLike,
    funding: pd.DataFrame | pd.Series,
    *,
    entry_bps: float = 5.0,
    exit_bps: float = 0.0,
    fee_bps: float = 1.0,
    slippage_bps: float = 0.0,
    notional: float = 1.0,
    signal: CarrySignal = "basis",
    marks: pd.DataFrame | pd.Series | None = None,
    bar: str | pd.Timedelta | None = None,
    capital: float | None = None,
    periods_per_year: float | None = None,
) -> CarryBacktestResult:
    """Backtest a cash-and-carry trade: long spot and short the perpetual while the carry is rich.

    Parameters
    ----------
    spot, perp : Series
        Prices of the spot market and of the perpetual at the same closes
        (same DatetimeIndex, no NaN), e.g. the ``close`` of their candles.
    funding : DataFrame or Series
        The perpetual's funding frame (``store.funding(...)``) or its settled
        rates on settlement times.
    entry_bps, exit_bps : float, default 5.0 and 0.0
        Enter when the signal is above ``entry_bps``, leave when it falls
        below ``exit_bps`` (``exit_bps < entry_bps``).
    fee_bps, slippage_bps : float, default 1.0 and 0.0
        Commission and slippage, each in basis points of the traded notional
        of both legs, on every fill.
    notional : float, default 1.0
        Spot notional bought at entry (quote currency): ``notional / spot``
        units of each leg, held until exit.
    signal : {"basis", "funding"}, default "basis"
        ``"basis"``: the basis ``1e4 * (perp - spot) / spot`` at the close;
        ``"funding"``: the last funding rate settled before the close, in
        bps (no entry before the first settlement).
    marks : DataFrame or Series, optional
        Mark prices (a mark frame or a Series on times) for the settlements
        whose ``mark_price`` is NaN.
    bar : str or Timedelta, optional
        From a price's index label to when it was observed. Default the
        median spacing of the index (candle closes labelled at their open, as
        ``store.ohlcv`` gives them); 0 for prices stamped at their own time.
    capital : float, optional
        Starting equity for returns, Sharpe and drawdown; default ``notional``.
    periods_per_year : float, optional
        For the Sharpe ratio; default from the median bar spacing over a
        365-day year.

    Returns
    -------
    CarryBacktestResult
        A run that makes no trade is a result with a ``note``, not an error.

    Raises
    ------
    ValueError
        On a bad parameter, misaligned prices, a NaN, infinite or non-positive
        price, fewer than 2 bars, or a bad funding frame.
    TypeError
        If an input or a parameter has the wrong type.

    Notes
    -----
    With :math:`c_t` the time of close :math:`t` (index label plus ``bar``):
    the position decided at close :math:`t` from the signal at :math:`t` is
    filled at that close's prices, :math:`u^s_t = q`, :math:`u^p_t = -q`,
    :math:`q = N / S_{t_0}` fixed at the entry close :math:`t_0`. Bar
    :math:`t` books

    - price PnL :math:`u^s_{t-1}(S_t - S_{t-1}) + u^p_{t-1}(P_t - P_{t-1})`;
    - funding :math:`-u^p_{t-1}\\sum r_\\tau M_\\tau` over the settlements
      :math:`c_{t-1} \\le \\tau < c_t` (a fill at a settlement's very time is
      before it), :math:`M_\\tau` the settlement's ``mark_price``, else the
      latest of ``marks`` at or before :math:`\\tau`, else :math:`P_{t-1}`;
    - fees :math:`(f + s)\\,10^{-4}(|\\Delta u^s_t| S_t + |\\Delta u^p_t| P_t)`.

    Equity is ``capital`` plus their running sum. A position still open at
    the last close is marked to market there; settlements at or after the
    last close are not booked. Spot is bought outright and the perpetual's
    margin is not modelled (no borrowing cost, no liquidation).
    """
    func = "carry_backtest"
    s, p = _validate.pair(spot, perp, func, nan="refuse", minimum=2, names=("spot", "perp"))
    sv, pv = s.to_numpy(dtype=np.float64), p.to_numpy(dtype=np.float64)
    _validate.check_positive_prices(func, "spot", sv)
    _validate.check_positive_prices(func, "perp", pv)
    if signal not in _SIGNALS:
        raise ValueError(f"signal must be 'basis' or 'funding', got {signal!r}")
    entry = _validate.check_number(entry_bps, "entry_bps")
    exit_ = _validate.check_number(exit_bps, "exit_bps")
    if not exit_ < entry:
        raise ValueError(f"exit_bps must be below entry_bps, got exit_bps={exit_bps!r} >= entry_bps={entry_bps!r}")
    fee = _validate.check_number(fee_bps, "fee_bps", nonneg=True) * 1e-4
    slip = _validate.check_number(slippage_bps, "slippage_bps", nonneg=True) * 1e-4
    size = _validate.check_number(notional, "notional", positive=True)
    cap = size if capital is None else _validate.check_number(capital, "capital", positive=True)
    frame = funding_frame(funding, func, minimum=0)
    leg_marks = mark_prices(marks, func)
    closes = _ledger.close_times(s.index, bar, func)
    ppy = _ledger.periods_per_year(s.index, periods_per_year)

    basis_bps = 1e4 * (pv - sv) / sv
    sig = basis_bps if signal == "basis" else _last_rate_bps(closes, frame)
    held = _hold(sig, entry, exit_)
    opened = (held == 1.0) & (np.concatenate([[0.0], held[:-1]]) == 0.0)
    q = pd.Series(np.where(opened, size / sv, np.nan)).ffill().fillna(0.0).to_numpy() * held
    us, up = q, -q

    per_unit, settled_bar, charged = funding_per_unit(closes, pv, frame, leg_marks)
    us_prev = np.concatenate([[0.0], us[:-1]])
    up_prev = np.concatenate([[0.0], up[:-1]])
    price_pnl = us_prev * np.diff(sv, prepend=sv[0]) + up_prev * np.diff(pv, prepend=pv[0])
    funding_pnl = -up_prev * per_unit
    traded = _ledger.traded_notional([us, up], [sv, pv])
    commission, slippage = fee * traded, slip * traded
    fees = commission + slippage
    total = price_pnl + funding_pnl - fees
    idx = s.index
    pnl = pd.DataFrame({"price_pnl": price_pnl, "funding_pnl": funding_pnl, "commission": commission,
                        "slippage": slippage, "fees": fees, "total_pnl": total}, index=idx)
    equity = cap + np.cumsum(total)
    rets, sharpe, drawdown, _ = _ledger.performance(equity, cap, ppy)

    booked = settled_bar >= 0
    units_at = np.where(booked, up_prev[np.maximum(settled_bar, 0)], 0.0)
    open_through = booked & (units_at != 0.0)
    rates = frame["funding_rate"].to_numpy()
    settlements = pd.DataFrame({
        "time": frame.index[open_through], "bar": idx[settled_bar[open_through]],
        "funding_rate": rates[open_through], "price": charged[open_through],
        "units_perp": units_at[open_through],
        "payment": -units_at[open_through] * rates[open_through] * charged[open_through],
    })
    trades = _round_trips(idx, held, q, sig, pnl, np.where(open_through, settled_bar, -1))
    note = "" if len(trades) else _no_trade_note(sig, entry, signal)
    return CarryBacktestResult(
        pnl=pnl,
        equity=pd.Series(equity, index=idx, name="equity"),
        returns=pd.Series(rets, index=idx, name="returns"),
        positions=pd.DataFrame({"signal": held, "units_spot": us, "units_perp": up}, index=idx),
        basis_bps=pd.Series(basis_bps, index=idx, name="basis_bps"),
        signal_bps=pd.Series(sig, index=idx, name=f"{signal}_bps"),
        settlements=settlements,
        trades=trades,
        total_pnl=float(total.sum()),
        price_pnl=float(price_pnl.sum()),
        funding_pnl=float(funding_pnl.sum()),
        fees=float(fees.sum()),
        total_return=float(total.sum() / cap),
        sharpe=sharpe,
        max_drawdown=drawdown,
        n_trades=len(trades),
        n_settlements=int(open_through.sum()),
        periods_per_year=ppy,
        signal=signal,
        entry_bps=entry,
        exit_bps=exit_,
        notional=size,
        capital=cap,
        note=note,
    )


def _no_trade_note(sig: np.ndarray, entry: float, signal: str) -> str:
    finite = sig[np.isfinite(sig)]
    if not finite.size:
        return f"no trades: the {signal} signal is undefined on every bar (no settlement before the last close)"
    return (f"no trades: the {signal} signal never rose above {entry:g} bps "
            f"(at most {float(finite.max()):.3g} bps over {finite.size} bars)")
