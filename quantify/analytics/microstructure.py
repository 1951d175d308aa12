"""Price impact and flow toxicity: Kyle's lambda and VPIN.

The microstructure functions are split by concept: quote and book features
(mid, spread, microprice, imbalance, depth, order-flow imbalance) in
:mod:`quantify.analytics.book_features`; trades against quotes (sign,
effective and realised spread, markouts) in
:mod:`quantify.analytics.trade_costs`; the as-of join they rest on in
:mod:`quantify.analytics.asof_join`; this module estimates from intervals or
volume buckets of trades.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtr

from quantify.analytics import _micro_kernels, _validate
from quantify.analytics._results import Result
from quantify.analytics.trade_costs import SignMethod, prevailing_mids, resolve_signs, trade_columns
from quantify.model.bars import resample
from quantify.model.timeframes import timeframe_to_offset

__all__ = ["KyleLambdaResult", "VPINResult", "kyle_lambda", "vpin"]


@dataclasses.dataclass(frozen=True, repr=False)
class KyleLambdaResult(Result):
    """Kyle's lambda: the regression of mid changes on signed volume per interval.

    Attributes
    ----------
    lambda_ : float
        Price change per unit of signed base-asset volume.
    stderr, tstat : float
        Its OLS standard error (homoskedastic, as statsmodels' ``bse``) and t-statistic.
    alpha : float
        The intercept (0 without one).
    r_squared : float
    nobs : int
        Intervals used (those with a mid at both ends).
    freq : str
        The interval.
    intervals : DataFrame
        Per interval: ``signed_volume``, ``mid_change``, ``trades``.
    """

    _title: ClassVar[str] = "Kyle's lambda (OLS of mid changes on signed volume)"
    _summary_fields: ClassVar[tuple[str, ...]] = ("lambda_", "stderr", "tstat", "alpha", "r_squared",
                                                  "nobs", "freq")

    lambda_: float
    stderr: float
    tstat: float
    alpha: float
    r_squared: float
    nobs: int
    freq: str
    intervals: pd.DataFrame


def _grid(index: pd.DatetimeIndex, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Interval boundaries covering ``index``: from its first floored to past its last."""
    first = index[0].floor(step)
    last = index[-1].floor(step) + step
    return pd.date_range(first, last, freq=step)


def kyle_lambda(
    trades: pd.DataFrame,
    quotes: pd.DataFrame,
    freq: str | pd.Timedelta = "1m",
    *,
    sign: SignMethod | pd.Series = "maker",
    intercept: bool = True,
) -> KyleLambdaResult:
    """Estimate Kyle's lambda from trades and quotes.

    Parameters
    ----------
    trades : DataFrame
        A tick frame, sorted by time.
    quotes : DataFrame
        A quotes frame, sorted by time.
    freq : str or Timedelta, default "1m"
        The interval (left-closed, on a grid floored to ``freq``).
    sign : {"maker", "tick", "lee_ready"} or Series, default "maker"
        How trades are signed (:func:`~quantify.analytics.trade_sign`).
    intercept : bool, default True

    Returns
    -------
    KyleLambdaResult

    Raises
    ------
    ValueError
        With fewer than 3 usable intervals (2 without intercept), or a
        signed volume that is the same in every interval.

    Notes
    -----
    Kyle (1985), "Continuous auctions and insider trading", *Econometrica*
    53(6): the market maker moves the price by :math:`\\lambda` per unit of
    net order flow. Estimated as in Goyenko, Holden & Trzcinka (2009), "Do
    liquidity measures measure liquidity?", *J. Financial Economics* 92(2):
    per interval :math:`k = [\\tau_k, \\tau_{k+1})`,
    :math:`\\Delta m_k = \\alpha + \\lambda\\, SV_k + \\varepsilon_k` by OLS,
    :math:`SV_k = \\sum_{t_i \\in k} s_i q_i` and :math:`\\Delta m_k =
    m(\\tau_{k+1}^-) - m(\\tau_k^-)`, the mid prevailing just before each
    boundary (a quote at :math:`\\tau_k` belongs to interval :math:`k`, as
    trades do). Intervals without trades count (zero flow); unsigned trades
    add nothing. Standard errors are the classical OLS ones, equal to
    statsmodels ``OLS(dm, add_constant(sv)).fit().bse``.
    """
    func = "kyle_lambda"
    step = timeframe_to_offset(freq)
    t = trade_columns(trades, func, maker=isinstance(sign, str) and sign == "maker")
    _validate.need(func, 1, "trades", len(trades))
    s = resolve_signs(trades, quotes, sign, func, False)
    edges = _grid(trades.index, step)
    mids = prevailing_mids(quotes, func, edges, False)
    flow = np.where(np.isnan(s), 0.0, s * t["qty"])
    bucket = np.searchsorted(edges.asi8, trades.index.as_unit("ns").asi8, side="right") - 1
    k = len(edges) - 1
    sv = np.bincount(bucket, weights=flow, minlength=k)[:k]
    n_trades = np.bincount(bucket, minlength=k)[:k]
    dm = mids[1:] - mids[:-1]
    table = pd.DataFrame({"signed_volume": sv, "mid_change": dm, "trades": n_trades}, index=edges[:-1])
    ok = ~np.isnan(dm)
    x, y = sv[ok], dm[ok]
    n = int(ok.sum())
    p = 2 if intercept else 1
    _validate.need(func, p + 1, f"intervals of {step} with a mid at both ends", n)
    if intercept:
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        sxx, sxy, syy = float(dx @ dx), float(dx @ dy), float(dy @ dy)
        if sxx == 0.0:
            raise ValueError(f"{func}: the signed volume is the same ({x[0]!r}) in every interval: "
                             "lambda is undefined")
        lam = sxy / sxx
        alpha = my - lam * mx
        resid = dy - lam * dx
        r2 = sxy * sxy / (sxx * syy) if syy > 0 else float("nan")
    else:
        sxx = float(x @ x)
        if sxx == 0.0:
            raise ValueError(f"{func}: the signed volume is 0 in every interval: lambda is undefined")
        lam = float(x @ y) / sxx
        alpha = 0.0
        resid = y - lam * x
        yy = float(y @ y)
        r2 = 1.0 - float(resid @ resid) / yy if yy > 0 else float("nan")
    sigma2 = float(resid @ resid) / (n - p)
    se = math.sqrt(sigma2 / sxx)
    tstat = lam / se if se > 0 else float("nan")
    label = freq if isinstance(freq, str) else str(step)
    return KyleLambdaResult(lambda_=float(lam), stderr=se, tstat=float(tstat), alpha=float(alpha),
                            r_squared=float(r2), nobs=n, freq=label, intervals=table)


@dataclasses.dataclass(frozen=True, repr=False)
class VPINResult(Result):
    """VPIN over volume buckets.

    Attributes
    ----------
    buckets : DataFrame
        One row per completed bucket, indexed by the end of the bar that
        completed it: ``buy_volume``, ``sell_volume``, ``order_imbalance``
        (:math:`|V^B - V^S|`) and ``vpin`` (NaN for the first ``window - 1``).
    bucket_volume : float
    window : int
        Buckets per VPIN value.
    bar : str
        The time bars classified.
    sigma : float
        Standard deviation of the bars' price changes.
    last, mean : float
        The latest VPIN and the mean over the buckets that have one.
    """

    _title: ClassVar[str] = "VPIN (bulk-volume classification)"
    _summary_fields: ClassVar[tuple[str, ...]] = ("last", "mean", "n_buckets", "bucket_volume", "window",
                                                  "bar", "sigma")

    buckets: pd.DataFrame
    bucket_volume: float
    window: int
    bar: str
    sigma: float
    last: float
    mean: float

    @property
    def n_buckets(self) -> int:
        """Completed buckets."""
        return len(self.buckets)


def vpin(
    trades: pd.DataFrame,
    bucket_volume: float,
    window: int = 50,
    *,
    bar: str | pd.Timedelta = "1m",
) -> VPINResult:
    """Estimate the volume-synchronised probability of informed trading.

    Parameters
    ----------
    trades : DataFrame
        A tick frame (``price``, ``qty``, ``is_buyer_maker``), sorted by time.
    bucket_volume : float
        Base-asset volume per bucket (the paper uses a 50th of the average
        daily volume).
    window : int, default 50
        Buckets per VPIN value (the paper's ``n``).
    bar : str or Timedelta, default "1m"
        The time bars whose volume is classified (the paper: 1 minute).

    Returns
    -------
    VPINResult

    Raises
    ------
    ValueError
        With fewer than 3 bars that have trades, prices that never change
        (bulk classification needs a spread of price changes), or a bad
        ``bucket_volume``/``window``.

    Notes
    -----
    Easley, López de Prado & O'Hara (2012), "Flow toxicity and liquidity in
    a high-frequency world", *Rev. Financial Studies* 25(5).
    Bulk-volume classification of bar :math:`i` (volume :math:`V_i`, close
    :math:`P_i`): :math:`V^B_i = V_i\\,\\Phi((P_i - P_{i-1})/\\sigma_{\\Delta P})`,
    :math:`V^S_i = V_i - V^B_i`, :math:`\\sigma_{\\Delta P}` the sample
    standard deviation of the bar-to-bar price changes. Bars fill buckets of
    volume :math:`V` in time order; a bar that overflows a bucket carries the
    rest, with the same buy fraction, into the next. Then
    :math:`VPIN_\\tau = \\sum_{j=\\tau-n+1}^{\\tau} |V^S_j - V^B_j| / (nV)`.
    Bars come from :func:`~quantify.analytics.resample` (Binance kline
    semantics, bars without trades left out); the first bar has no previous
    close and only serves as the reference, and a last, unfinished bucket is
    left out. The exchange's aggressor flag is deliberately not used: BVC is
    the paper's estimator (compare with :func:`~quantify.analytics.trade_sign`
    if you want to see the difference).
    """
    func = "vpin"
    vb = _validate.check_number(bucket_volume, "bucket_volume", positive=True)
    n = _validate.check_window(window, 1)
    trade_columns(trades, func)
    bars = resample(trades, bar, fill=False)
    _validate.need(func, 3, f"bars of {bar} with trades", len(bars))
    close = bars["close"].to_numpy(dtype=np.float64)
    volume = bars["volume"].to_numpy(dtype=np.float64)[1:]
    dp = np.diff(close)
    sigma = float(np.std(dp, ddof=1))
    if not sigma > 0:
        raise ValueError(f"{func}: the price never changes between bars of {bar}: bulk-volume "
                         "classification is undefined")
    frac = ndtr(dp / sigma)
    buy, sell, end = _micro_kernels.volume_buckets(np.ascontiguousarray(volume), frac, vb)
    step = timeframe_to_offset(bar)
    index = pd.DatetimeIndex(bars.index[1:][end] + step, name="time")
    oi = np.abs(buy - sell)
    roll = pd.Series(oi).rolling(n, min_periods=n).sum().to_numpy() / (n * vb)
    table = pd.DataFrame({"buy_volume": buy, "sell_volume": sell, "order_imbalance": oi, "vpin": roll},
                         index=index)
    valid = roll[~np.isnan(roll)]
    return VPINResult(buckets=table, bucket_volume=vb, window=n, bar=bar if isinstance(bar, str) else str(step),
                      sigma=sigma, last=float(valid[-1]) if valid.size else float("nan"),
                      mean=float(valid.mean()) if valid.size else float("nan"))
