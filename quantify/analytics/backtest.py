"""Vectorised pairs backtest: z-score entries and exits on a lagged hedge ratio.

Signals, hedge ratios and z-scores are whole-series operations; only the
position state (flat / long / short, units held, equity for sizing) runs in a
small numba loop.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numba
import numpy as np
import pandas as pd

from quantify.analytics import _ledger, _validate
from quantify.analytics._plotting import bqplot, time_axis
from quantify.analytics._validate import SeriesLike
from quantify.analytics.funding import funding_frame, funding_per_unit, mark_prices
from quantify.analytics.pairs import HEDGES, pair_zscore

__all__ = ["BacktestResult", "backtest_pairs"]

_TRADE_COLUMNS = [
    "entry_time", "exit_time", "side", "entry_z", "exit_z", "units_y", "units_x", "bars", "pnl",
    "return",
]


@numba.njit(cache=True)
def _run(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, beta: np.ndarray,
    entry: float, exit_: float, max_position: float, capital: float, cost_rate: float,
    slip_rate: float, fy: np.ndarray, fx: np.ndarray, allow: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """State machine over bars. Decisions at close t use only z[t] and beta[t]
    (already lagged by the caller); the units decided at t earn the move t -> t+1
    and the funding ``-units * f[t+1]`` of the settlements in between.

    Returns signal, units_y, units_x, pnl (gross), cost, slippage, equity, funding.
    """
    n = y.shape[0]
    signal = np.zeros(n)
    uy = np.zeros(n)
    ux = np.zeros(n)
    pnl = np.zeros(n)
    cost = np.zeros(n)
    slip = np.zeros(n)
    equity = np.empty(n)
    fund = np.zeros(n)
    state = 0.0
    hy = 0.0
    hx = 0.0
    eq = capital
    for t in range(n):
        if t > 0:
            pnl[t] = hy * (y[t] - y[t - 1]) + hx * (x[t] - x[t - 1])
            fund[t] = -(hy * fy[t] + hx * fx[t])
            eq += pnl[t] + fund[t]
        zt = z[t]
        new = state
        if not math.isnan(zt):
            if zt > entry:
                new = -1.0
            elif zt < -entry:
                new = 1.0
            elif state != 0.0 and abs(zt) < exit_:
                new = 0.0
            if new != 0.0 and new != state and not allow[t]:
                new = 0.0  # entries (and the entry side of a flip) only where allowed; exits always
        if new != state:
            ny = 0.0
            nx = 0.0
            if new != 0.0:
                b = beta[t]
                gross = y[t] + abs(b) * x[t]
                if math.isnan(b) or not gross > 0.0 or not eq > 0.0:
                    new = 0.0  # no hedge ratio yet (or nothing to size with): stay out
                else:
                    q = new * max_position * eq / gross
                    ny = q
                    nx = -q * b
            if new != state:
                traded = abs(ny - hy) * y[t] + abs(nx - hx) * x[t]
                cost[t] = cost_rate * traded
                slip[t] = slip_rate * traded
                eq -= cost[t] + slip[t]
                hy = ny
                hx = nx
                state = new
        signal[t] = state
        uy[t] = hy
        ux[t] = hx
        equity[t] = eq
    return signal, uy, ux, pnl, cost, slip, equity, fund


@dataclasses.dataclass(frozen=True, repr=False)
class BacktestResult(_ledger.NotedResult):
    """Result of :func:`backtest_pairs`.

    Attributes
    ----------
    equity : Series
        Account value after each bar's PnL and costs, starting from ``capital``.
    returns : Series
        Bar returns of ``equity`` (first bar 0).
    positions : DataFrame
        ``signal`` (+1 long spread, -1 short, 0 flat), ``units_y``, ``units_x``
        held from this bar's close to the next.
    zscore, spread, hedge_ratio : Series
        The z-score traded on, the spread ``y - beta x - alpha`` and the
        (lagged) hedge ratio used at each bar.
    trades : DataFrame
        One row per round trip: ``entry_time``, ``exit_time`` (NaT if still
        open, then marked to market), ``side`` ("long"/"short" spread),
        ``entry_z``, ``exit_z``, ``units_y``, ``units_x``, ``bars``, ``pnl``
        (after costs and slippage), ``return`` (pnl / equity at entry).
    sharpe : float
        Annualised: mean / std (ddof=1) of bar returns times
        ``sqrt(periods_per_year)``; NaN when undefined (no trade: flat
        equity), and ``note`` says why.
    max_drawdown : float
        Largest fall from a running peak of equity, as a positive fraction.
    turnover : float
        Traded notional of both legs over the whole run, in multiples of ``capital``.
    total_return : float
        ``equity[-1] / capital - 1``.
    costs : float
        Commissions plus slippage paid, in currency.
    n_trades : int
    periods_per_year : float
    note : str
        Empty, or why the run made no trade (e.g. ``"no trades: the z-score
        never crossed ±2 (|z| at most 1.71 over 941 bars)"``); shown first by
        ``summary()`` and in the HTML table.
    funding : float
        Funding received on the perpetual legs (negative: paid), in currency;
        0 without ``funding=``.
    pnl : DataFrame
        Per bar: ``price_pnl`` (units held times the price moves),
        ``funding_pnl`` (the settlements held through), ``fees`` (commission
        plus slippage of the fills at the bar's close) and ``total_pnl``
        (``price_pnl + funding_pnl - fees``, the change in equity).
    """

    _title: ClassVar[str] = "Pairs backtest"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "total_return", "sharpe", "max_drawdown", "turnover", "costs", "funding", "n_trades",
        "periods_per_year", "hedge", "entry", "exit",
    )
    equity: pd.Series
    returns: pd.Series
    positions: pd.DataFrame
    zscore: pd.Series
    spread: pd.Series
    hedge_ratio: pd.Series
    trades: pd.DataFrame
    sharpe: float
    max_drawdown: float
    turnover: float
    total_return: float
    costs: float
    n_trades: int
    periods_per_year: float
    hedge: str
    entry: float
    exit: float
    note: str = ""
    funding: float = 0.0
    pnl: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    def plot(self) -> Any:
        """Equity (left axis) and z-score with entry/exit bands (right axis) as a bqplot Figure.

        Raises
        ------
        ImportError
            If bqplot is not installed (``pip install bqplot``).
        """
        bq = bqplot("BacktestResult.plot")
        xs, xvals, xlabel = time_axis(bq, self.equity.index)
        eq_scale, z_scale = bq.LinearScale(), bq.LinearScale()
        equity = bq.Lines(x=xvals, y=self.equity.to_numpy(), scales={"x": xs, "y": eq_scale},
                          colors=["#1f77b4"], labels=["equity"], display_legend=True)
        z = self.zscore.to_numpy()
        bands = [
            bq.Lines(x=xvals[[0, -1]], y=[level, level], scales={"x": xs, "y": z_scale},
                     colors=["#999999"], line_style="dashed")
            for level in (self.entry, -self.entry, self.exit, -self.exit)
        ]
        zline = bq.Lines(x=xvals, y=z, scales={"x": xs, "y": z_scale}, colors=["#ff7f0e"],
                         opacities=[0.6], labels=["z-score"], display_legend=True)
        axes = [
            bq.Axis(scale=xs, label=xlabel),
            bq.Axis(scale=eq_scale, side="left", label="equity"),
            bq.Axis(scale=z_scale, side="right", label="z-score",
                    grid_lines="none"),
        ]
        return bq.Figure(marks=[zline, *bands, equity], axes=axes,
                         title=f"{self._title}: {self.hedge} hedge")


def _no_trade_note(z: np.ndarray, entry: float, n_trades: int, gate: np.ndarray | None = None) -> str:
    """Why a run made no trade, or "" when it made one."""
    if n_trades:
        return ""
    if gate is not None and not gate.all() and not (np.abs(z[gate]) > entry).any():
        return (f"no trades: allow= blocked every bar where the z-score crossed \u00b1{entry:g} "
                f"({int(gate.sum())} of {gate.size} bars allowed)")
    finite = z[np.isfinite(z)]
    if not finite.size:
        return ("no trades: the z-score is undefined on every bar "
                "(too few bars for the windows, or a constant spread)")
    top = float(np.max(np.abs(finite)))
    if top > entry:
        return (f"no trades: the z-score crossed \u00b1{entry:g} but no position could be sized "
                "(a price or the equity was not positive)")
    return (f"no trades: the z-score never crossed \u00b1{entry:g} "
            f"(|z| at most {top:.3g} over {finite.size} bars)")


def _trades(
    index: pd.Index, signal: np.ndarray, uy: np.ndarray, ux: np.ndarray, z: np.ndarray,
    y: np.ndarray, x: np.ndarray, equity: np.ndarray, pnl: np.ndarray, costs: np.ndarray,
) -> pd.DataFrame:
    """Round trips from the position path; a trade's PnL includes its entry and exit costs.

    On a flip bar the bar's cost is shared between the closing and the opening
    trade in proportion to their notionals (the legs can net when the hedge
    ratio changed sign), so trade PnLs sum to the equity change.
    """
    n = len(signal)
    prev = np.concatenate([[0.0], signal[:-1]])
    puy = np.concatenate([[0.0], uy[:-1]])
    pux = np.concatenate([[0.0], ux[:-1]])
    opening = np.abs(uy) * y + np.abs(ux) * x
    closing = np.abs(puy) * y + np.abs(pux) * x
    both = opening + closing
    open_share = np.divide(opening, both, out=np.ones(n), where=both > 0)
    rows = []
    for start in np.flatnonzero((signal != prev) & (signal != 0)):
        later = np.flatnonzero(signal[start + 1 :] != signal[start])
        end = int(start + 1 + later[0]) if later.size else None
        stop = end if end is not None else n - 1
        entry_cost = costs[start] * open_share[start]
        exit_cost = 0.0 if end is None else costs[end] * (1.0 - open_share[end])
        trade_pnl = float(pnl[start + 1 : stop + 1].sum()) - entry_cost - exit_cost
        eq_before = equity[start] + entry_cost
        rows.append((
            index[start], index[end] if end is not None else pd.NaT,
            "long" if signal[start] > 0 else "short", z[start], z[end] if end is not None else np.nan,
            uy[start], ux[start], stop - start, trade_pnl, trade_pnl / eq_before,
        ))
    return pd.DataFrame(rows, columns=_TRADE_COLUMNS)


def backtest_pairs(
    y: SeriesLike,
    x: SeriesLike,
    *,
    window: int = 60,
    entry: float = 2.0,
    exit: float = 0.5,
    hedge: Literal["ols", "kalman"] | float = "ols",
    hedge_window: int | None = None,
    delta: float | None = None,
    obs_var: float | None = None,
    cost_bps: float = 1.0,
    slippage_bps: float = 0.0,
    max_position: float = 1.0,
    capital: float = 1.0,
    periods_per_year: float | None = None,
    warmup: int = 0,
    funding: Mapping[str, pd.DataFrame | pd.Series] | None = None,
    marks: Mapping[str, pd.DataFrame | pd.Series] | None = None,
    bar: str | pd.Timedelta | None = None,
    allow: SeriesLike | None = None,
) -> BacktestResult:
    """Backtest a z-score mean-reversion strategy on the spread of y and x.

    Parameters
    ----------
    y, x : Series or array-like
        Prices of the two legs (not log prices: PnL is units times price
        changes), same length and index, no NaN.
    window : int, default 60
        Bars in the rolling z-score of the spread.
    entry, exit : float, default 2.0 and 0.5
        Short the spread when ``z > entry``, buy it when ``z < -entry``; flatten
        when ``|z| < exit``. ``0 <= exit < entry``.
    hedge : {"ols", "kalman"} or float, default "ols"
        Rolling OLS over ``hedge_window`` bars, the Kalman filter of
        :func:`quantify.analytics.kalman_hedge` (``delta``, ``obs_var``), or a
        fixed ratio (alpha 0).
    hedge_window : int, optional
        Bars of the rolling OLS; default ``window``.
    delta, obs_var : float, optional
        Kalman parameters; by default the filter calibrates itself on a
        warm-up of ``hedge_window`` bars (see :func:`~quantify.analytics.kalman_hedge`).
    cost_bps, slippage_bps : float, default 1.0 and 0.0
        Commission and slippage, each in basis points of the traded notional
        of both legs.
    max_position : float, default 1.0
        Gross notional of a position (``|units_y| y + |units_x| x`` at entry)
        as a multiple of current equity.
    capital : float, default 1.0
        Starting equity (currency units of the prices).
    periods_per_year : float, optional
        For the Sharpe ratio. Default: from the median bar spacing of a
        DatetimeIndex over a 365-day year (crypto trades daily), else 1 (a
        per-bar Sharpe).
    warmup : int, default 0
        Leading bars that only feed the hedge ratio and the z-score: no
        position is taken on them, and every series and metric of the result
        starts after them. An out-of-sample test passes the tail of the
        in-sample period as warm-up (``hedge_window + window - 1`` bars for
        the OLS hedge), so it trades from the first out-of-sample bar with
        estimates that use no out-of-sample price before it.
    funding : mapping, optional
        Funding of the legs that are perpetuals: ``{"y": frame, "x": frame}``
        (either key may be left out), each a funding frame
        (``store.funding(...)``) or a Series of settled rates on settlement
        times. Each settlement is paid or received by the units held over it,
        at the price of the settlement (its ``mark_price``, else the leg's
        ``marks``, else the leg's last close before it), into equity at the
        bar it falls in. Default: no funding (spot legs).
    marks : mapping, optional
        Mark prices per leg (``{"y": mark frame or Series}``) for settlements
        without a ``mark_price``.
    bar : str or Timedelta, optional
        Only with ``funding``: the time from a price's index label to when it
        was observed, to place the settlements between closes. Default the
        median spacing of the index (candle closes labelled at their open, as
        ``store.ohlcv`` gives them); 0 for prices stamped at their own time.
    allow : Series or array of bool, optional
        Where entries may be taken: a position is opened at close ``t`` only
        if ``allow[t]`` (e.g. a calm regime, ``fit_regimes(...).allow(0)``);
        exits are never blocked, and a flip at a blocked bar only closes.
        Aligned with ``y`` (same length; same index if a Series), no NaN.
        It must be known at close ``t`` (filtered, not smoothed, regimes)
        for the run to be free of look-ahead. Default: everywhere.

    Returns
    -------
    BacktestResult
        A run that makes no trade is a result, not an error (a parameter
        sweep meets many): its ``sharpe`` is NaN and ``note`` says why;
        no warning is issued.

    Raises
    ------
    ValueError
        On a bad parameter, misaligned input, a NaN or infinite price, or
        fewer bars than one z-score needs (``hedge_window + window`` with an
        estimated hedge, ``window`` with a fixed one).
    TypeError
        If an input or a parameter has the wrong type.

    Notes
    -----
    At each close :math:`t`: hedge ratio :math:`\\beta_{t-1}, \\alpha_{t-1}`
    fitted on data up to :math:`t-1` (the rolling OLS of the previous bar, or the
    Kalman state filtered through :math:`t-1`), spread :math:`s_t = y_t -
    \\beta_{t-1}x_t - \\alpha_{t-1}`, :math:`z_t = (s_t - \\bar s)/\\hat\\sigma`
    over the last ``window`` spreads (ddof 1): :func:`~quantify.analytics.pair_zscore`
    with ``log=False, lag=1``, the z-score the dashboards and alerts use. The position decided at close
    :math:`t` is filled at that close and earns
    :math:`u^y_t (y_{t+1}-y_t) + u^x_t (x_{t+1}-x_t)`; nothing uses a later price,
    so changing data after :math:`t` cannot change positions up to :math:`t`.
    A new position buys :math:`q = \\pm\\,\\text{max\\_position}\\cdot E_t /
    (y_t + |\\beta| x_t)` units of y and :math:`-q\\beta` of x, both held fixed
    until exit (no rebalancing of the hedge inside a trade); a z beyond the
    opposite band flips the position. Costs :math:`(c + s)\\cdot 10^{-4}` times
    traded notional :math:`|\\Delta u^y| y_t + |\\Delta u^x| x_t`, taken from
    equity at the fill. Funding on a perpetual leg: a settlement at
    :math:`\\tau` with :math:`c_{t-1} \\le \\tau < c_t` (the close times) pays
    :math:`-u_{t-1} r_\\tau M_\\tau` into equity at bar :math:`t`, as
    :func:`~quantify.analytics.carry_backtest`; equity changes by
    ``price_pnl + funding_pnl - fees`` each bar.
    """
    ys, xs = _validate.pair(y, x, "backtest_pairs", nan="refuse")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an int >= 2, got {window!r}")
    hw = window if hedge_window is None else hedge_window
    if isinstance(hw, bool) or not isinstance(hw, (int, np.integer)) or hw < 2:
        raise ValueError(f"hedge_window must be an int >= 2, got {hedge_window!r}")
    entry = _validate.check_number(entry, "entry", positive=True)
    exit = _validate.check_number(exit, "exit", nonneg=True)
    if not exit < entry:
        raise ValueError(f"exit must be below entry, got exit={exit!r} >= entry={entry!r}")
    cost = _validate.check_number(cost_bps, "cost_bps", nonneg=True)
    slip = _validate.check_number(slippage_bps, "slippage_bps", nonneg=True)
    max_position = _validate.check_number(max_position, "max_position", positive=True)
    capital = _validate.check_number(capital, "capital", positive=True)
    ppy = _ledger.periods_per_year(ys.index, periods_per_year)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or not 0 <= warmup < len(ys):
        raise ValueError(f"warmup must be an int in [0, {len(ys)}) (bars of y), got {warmup!r}")

    label: str
    if isinstance(hedge, str):
        if hedge not in HEDGES:
            raise ValueError(f"hedge must be 'ols', 'kalman' or a number, got {hedge!r}")
        label = hedge
    else:
        hedge = _validate.check_number(hedge, "hedge")
        label = f"fixed {hedge:g}"
    fixed = not isinstance(hedge, str)
    _validate.need(
        "backtest_pairs", int(window) if fixed else int(hw) + int(window),
        "aligned, finite observations of y and x "
        + ("(window, for one z-score)" if fixed else "(hedge_window + window, for one z-score)"),
        len(ys),
    )
    # raw prices (PnL is in price units); the ratio known at close t is the one fitted through t-1
    pz = pair_zscore(ys, xs, int(window), hedge=hedge, log=False, hedge_window=int(hw), lag=1,
                     delta=delta, obs_var=obs_var)
    beta = pz["beta"]
    spread = pz["spread"]
    z = pz["z"]

    # the warm-up bars are left out whole: the first kept bar starts flat with equity = capital
    ys, xs, z, beta, spread = (s.iloc[int(warmup):] for s in (ys, xs, z, beta, spread))
    yv, xv, zv, bv = (s.to_numpy(dtype=np.float64) for s in (ys, xs, z, beta))
    fy, fx = _leg_funding(ys.index, {"y": yv, "x": xv}, funding, marks, bar)
    gate = _allow(allow, y, len(yv) + int(warmup))[int(warmup):]
    signal, uy, ux, pnl, cst, slp, equity, fund = _run(
        yv, xv, zv, bv, entry, exit, max_position, capital, cost * 1e-4, slip * 1e-4, fy, fx, gate,
    )
    idx = ys.index
    eq = pd.Series(equity, index=idx, name="equity")
    rv, sharpe, drawdown, total_return = _ledger.performance(equity, capital, ppy)
    rets = pd.Series(rv, index=idx, name="returns")
    traded = _ledger.traded_notional([uy, ux], [yv, xv])
    trades = _trades(idx, signal, uy, ux, zv, yv, xv, equity, pnl + fund, cst + slp)
    return BacktestResult(
        equity=eq,
        returns=rets,
        positions=pd.DataFrame({"signal": signal, "units_y": uy, "units_x": ux}, index=idx),
        zscore=z.rename("zscore"),
        spread=spread,
        hedge_ratio=beta.rename("hedge_ratio"),
        trades=trades,
        sharpe=sharpe,
        max_drawdown=drawdown,
        turnover=float(np.sum(traded) / capital),
        total_return=total_return,
        costs=float(np.sum(cst + slp)),
        n_trades=len(trades),
        periods_per_year=ppy,
        hedge=label,
        entry=entry,
        exit=exit,
        note=_no_trade_note(zv, entry, len(trades), gate),
        funding=float(np.sum(fund)),
        pnl=pd.DataFrame({"price_pnl": pnl, "funding_pnl": fund, "fees": cst + slp,
                          "total_pnl": pnl + fund - (cst + slp)}, index=idx),
    )


def _allow(allow: Any, y: Any, n: int) -> np.ndarray:
    """The entry gate as a bool array of ``n`` bars (all True without ``allow``)."""
    if allow is None:
        return np.ones(n, dtype=np.bool_)
    if isinstance(allow, pd.Series) and isinstance(y, pd.Series) and not allow.index.equals(y.index):
        raise ValueError("backtest_pairs: allow and y have different indexes "
                         f"({len(allow.index.intersection(y.index))} labels in common); align them first "
                         "(e.g. allow.reindex(y.index, fill_value=False))")
    gate = _validate.as_series(allow, "allow").to_numpy()
    if len(gate) != n:
        raise ValueError(f"backtest_pairs: allow and y differ in length: {len(gate)} != {n}; align them first")
    if np.isnan(gate).any():
        raise ValueError("backtest_pairs: allow has NaN value(s); fill them (False: no entry) first")
    return gate != 0.0


def _leg_funding(
    index: pd.Index, legs: dict[str, np.ndarray], funding: Mapping[str, Any] | None,
    marks: Mapping[str, Any] | None, bar: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Funding owed per unit held long over each bar, per leg (zeros for a leg without funding)."""
    out = {leg: np.zeros(len(index)) for leg in legs}
    if funding is None:
        if marks is not None:
            raise ValueError("backtest_pairs: marks= prices funding settlements; pass funding= too")
        return out["y"], out["x"]
    for name, given in (("funding", funding), ("marks", marks)):
        if given is not None and (not isinstance(given, Mapping) or set(given) - set(legs)):
            raise ValueError(f"backtest_pairs: {name} must map legs 'y' and/or 'x' to frames, got {given!r:.80}")
    closes = _ledger.close_times(index, bar, "backtest_pairs")
    for leg, frame in funding.items():
        leg_marks = mark_prices((marks or {}).get(leg), "backtest_pairs")
        out[leg], _, _ = funding_per_unit(closes, legs[leg], funding_frame(frame, "backtest_pairs",
                                                                        name=f"funding[{leg!r}]"), leg_marks)
    return out["y"], out["x"]

