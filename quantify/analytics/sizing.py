"""Position sizing of one strategy: the Kelly fraction with its estimation error, volatility targeting.

Both read a strategy's simple returns per bar (``BacktestResult.returns``, or
per trade: ``BacktestResult.trades["return"]``). Risk parity across
strategies or assets is :mod:`quantify.analytics.risk_parity`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats

from quantify.analytics import _ledger, _validate
from quantify.analytics._results import Result
from quantify.analytics._validate import SeriesLike
from quantify.analytics.volatility import realized_volatility

__all__ = ["KellyResult", "VolTargetResult", "kelly", "vol_target"]

KELLY_METHODS = ("continuous", "binary")
#: Largest |log| of the compounded equity vol_target builds (exp overflows near 709).
_MAX_LOG_GROWTH = 700.0


@dataclasses.dataclass(frozen=True, repr=False)
class KellyResult(Result):
    """Result of :func:`kelly`.

    Attributes
    ----------
    method : str
        ``"continuous"`` (:math:`f^* = \\mu/\\sigma^2`) or ``"binary"``
        (:math:`f^* = p - q/b`).
    full_kelly : float
        The growth-optimal fraction of equity :math:`f^*` (a multiple of the
        strategy's own exposure: 2 means twice the position it was run with).
    fraction : float
        The share of full Kelly asked for (0.5: "half Kelly").
    kelly : float
        ``fraction * full_kelly``, the fraction to hold.
    mean, std : float
        Sample mean and standard deviation (ddof 1) of the returns.
    mean_se : float
        Standard error of the edge: :math:`\\hat\\sigma/\\sqrt n` (continuous)
        or :math:`\\sqrt{\\hat p\\hat q/n}` of the win probability (binary).
    ci_low, ci_high : float
        Confidence interval of ``full_kelly`` at ``confidence``.
    negative_share : float
        Which part of ``[ci_low, ci_high]`` lies below 0: 0 when the edge is
        clearly positive, 1 when the whole interval says "do not trade", 0.5
        when the interval is centred on 0.
    confidence : float
    n : int
        Returns used (binary: the non-zero ones).
    win_prob, win_loss_ratio : float
        Binary only (NaN otherwise): :math:`p` = share of winning returns and
        :math:`b` = mean win / mean absolute loss.
    leverage : float
        Full Kelly as a multiple of the strategy's exposure: ``full_kelly``
        (continuous), ``full_kelly`` / mean absolute loss (binary: the
        fraction :math:`f^*` is the capital a losing bet may lose).
    growth : float
        Expected log growth per period at ``kelly``:
        :math:`f\\mu - f^2\\sigma^2/2` (continuous) or
        :math:`p\\ln(1+fb) + q\\ln(1-f)` (binary; NaN when ``f >= 1``).
    """

    _title: ClassVar[str] = "Kelly sizing"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "method", "full_kelly", "fraction", "kelly", "ci_low", "ci_high", "negative_share",
        "confidence", "mean", "std", "mean_se", "n", "win_prob", "win_loss_ratio", "leverage", "growth",
    )
    method: str
    full_kelly: float
    fraction: float
    kelly: float
    mean: float
    std: float
    mean_se: float
    ci_low: float
    ci_high: float
    negative_share: float
    confidence: float
    n: int
    win_prob: float = math.nan
    win_loss_ratio: float = math.nan
    leverage: float = math.nan
    growth: float = math.nan


def _negative_share(low: float, high: float) -> float:
    if high <= 0.0:
        return 1.0
    if low >= 0.0:
        return 0.0
    return -low / (high - low)


def kelly(
    returns: SeriesLike,
    *,
    method: Literal["continuous", "binary"] = "continuous",
    fraction: float = 1.0,
    confidence: float = 0.95,
) -> KellyResult:
    """Full and fractional Kelly fraction of a strategy, with the estimation error of its edge.

    Parameters
    ----------
    returns : Series or array-like
        Simple returns of the strategy per period (``"continuous"``) or per
        bet (``"binary"``: each return is a win if > 0, a loss if < 0; zeros,
        bets that neither won nor lost, are left out). NaN rows are dropped.
    method : {"continuous", "binary"}, default "continuous"
        The continuous-time approximation or the two-outcome bet.
    fraction : float, default 1.0
        Share of full Kelly to hold, in (0, 1]; half Kelly (0.5) keeps 75 % of
        the growth rate at a quarter of the variance.
    confidence : float, default 0.95
        Level of the interval of ``full_kelly``, in (0, 1).

    Returns
    -------
    KellyResult

    Raises
    ------
    ValueError
        On a bad parameter, an infinite return, fewer than 3 returns (binary:
        3 non-zero returns), a return of -1 or below, constant returns
        (no variance), or, for ``"binary"``, no win or no loss.
    TypeError
        If ``returns`` is not numeric and one-dimensional.

    Notes
    -----
    Continuous: :math:`f^* = \\hat\\mu/\\hat\\sigma^2` with the sample mean and
    variance (ddof 1) of the returns: the maximiser of
    :math:`f\\mu - f^2\\sigma^2/2`, the second-order expansion of
    :math:`E\\ln(1 + f r)`. The edge :math:`\\hat\\mu` is what is poorly
    known: its standard error :math:`\\hat\\sigma/\\sqrt n` dwarfs it on
    most strategies, while :math:`\\hat\\sigma^2` converges much faster. The
    interval of :math:`f^*` is therefore :math:`(\\hat\\mu \\pm
    z\\,\\hat\\sigma/\\sqrt n)/\\hat\\sigma^2` (the variance held at its
    estimate), :math:`z` the normal quantile.

    Binary: a bet winning :math:`b` per unit staked with probability
    :math:`p` and losing the stake (scaled: the mean loss) with
    :math:`q = 1-p`: :math:`f^* = p - q/b`, with :math:`\\hat p` the share of
    wins among non-zero returns and :math:`b` = mean win / mean |loss|.
    :math:`f^*` is linear in :math:`p`, so the interval is that of :math:`p`
    (:math:`\\hat p \\pm z\\sqrt{\\hat p\\hat q/n}`, Wald) mapped through
    :math:`p(1+1/b) - 1/b`, :math:`b` held at its estimate. Applied to
    returns, a bet of leverage :math:`k` wins :math:`kW` or loses :math:`kL`
    (the mean win and mean absolute loss): with :math:`f = kL` its growth
    :math:`p\\ln(1 + fW/L) + q\\ln(1 - f)` is the bet's, so the growth-optimal
    leverage is :math:`f^*/L` (``leverage``).

    Both assume independent returns; serial correlation (a pairs trade
    held over many bars) makes the true interval wider than shown.
    """
    s = _validate.series(returns, "returns", "kelly", nan="drop", minimum=3)
    if method not in KELLY_METHODS:
        raise ValueError(f"method must be one of {KELLY_METHODS}, got {method!r}")
    frac = _validate.check_number(fraction, "fraction", positive=True)
    if frac > 1.0:
        raise ValueError(f"fraction must be in (0, 1] (a share of full Kelly), got {fraction!r}")
    conf = _validate.check_number(confidence, "confidence", positive=True, upper=1.0)
    r = s.to_numpy()
    if float(r.min()) <= -1.0:
        raise ValueError(f"kelly: returns must be > -1 (simple returns); got {float(r.min())!r}")
    _validate.check_not_constant("kelly", "returns", r, why="no variance to size against")
    z = float(stats.norm.ppf(0.5 + conf / 2.0))
    mean = float(np.mean(r))
    var = float(np.var(r, ddof=1))
    std = math.sqrt(var)
    if method == "continuous":
        full = mean / var
        se = std / math.sqrt(r.size)
        low, high = (mean - z * se) / var, (mean + z * se) / var
        f = frac * full
        return KellyResult(
            method=method, full_kelly=full, fraction=frac, kelly=f, mean=mean, std=std, mean_se=se,
            ci_low=low, ci_high=high, negative_share=_negative_share(low, high), confidence=conf,
            n=int(r.size), leverage=full, growth=f * mean - 0.5 * f * f * var,
        )
    bets = r[r != 0.0]
    _validate.need("kelly", 3, "non-zero returns (bets won or lost)", int(bets.size))
    wins, losses = bets[bets > 0.0], bets[bets < 0.0]
    if not wins.size or not losses.size:
        raise ValueError(f"kelly: the binary form needs wins and losses; got {wins.size} win(s) "
                         f"and {losses.size} loss(es)")
    p = wins.size / bets.size
    b = float(np.mean(wins)) / float(-np.mean(losses))
    full = p - (1.0 - p) / b
    se = math.sqrt(p * (1.0 - p) / bets.size)
    low, high = (p - z * se) * (1.0 + 1.0 / b) - 1.0 / b, (p + z * se) * (1.0 + 1.0 / b) - 1.0 / b
    f = frac * full
    growth = p * math.log1p(f * b) + (1.0 - p) * math.log1p(-f) if -1.0 / b < f < 1.0 else math.nan
    return KellyResult(
        method=method, full_kelly=full, fraction=frac, kelly=f, mean=mean, std=std, mean_se=se,
        ci_low=low, ci_high=high, negative_share=_negative_share(low, high), confidence=conf,
        n=int(bets.size), win_prob=p, win_loss_ratio=b, leverage=full / float(-np.mean(losses)), growth=growth,
    )


@dataclasses.dataclass(frozen=True, repr=False)
class VolTargetResult(Result):
    """Result of :func:`vol_target`.

    Attributes
    ----------
    scale : Series
        Leverage applied to each bar's return: ``target_vol / forecast`` of
        the previous bar, capped at ``max_leverage``; NaN until the first
        forecast exists.
    returns : Series
        ``scale * returns``: the volatility-targeted strategy (NaN where
        ``scale`` is).
    forecast_vol : Series
        Annualised volatility forecast known at each bar's close (before the lag).
    target_vol, max_leverage : float
    realized_vol : float
        Annualised volatility of the scaled returns, where defined.
    unscaled_vol : float
        The same over the same bars for the returns as given.
    mean_scale : float
        Average of ``scale`` where defined.
    capped_share : float
        Share of the defined bars held at ``max_leverage``.
    estimator : str
        ``"rolling N"`` or ``"ewma halflife H"``.
    """

    _title: ClassVar[str] = "Volatility targeting"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "target_vol", "realized_vol", "unscaled_vol", "mean_scale", "max_leverage", "capped_share",
        "estimator",
    )
    scale: pd.Series
    returns: pd.Series
    forecast_vol: pd.Series
    target_vol: float
    max_leverage: float
    realized_vol: float
    unscaled_vol: float
    mean_scale: float
    capped_share: float
    estimator: str


def vol_target(
    returns: pd.Series,
    target_vol: float,
    *,
    window: int | None = None,
    halflife: float | None = None,
    max_leverage: float = 3.0,
) -> VolTargetResult:
    """Scale a strategy's exposure to a target volatility with a capped leverage.

    Parameters
    ----------
    returns : Series
        Simple returns per bar (> -1) on a ``DatetimeIndex``; no NaN.
    target_vol : float
        Annualised volatility to aim at (0.10 for 10 %), > 0.
    window : int, optional
        Bars of a rolling realised-volatility forecast.
    halflife : float, optional
        Bars of halving weight of an EWMA forecast instead; default (neither
        given) an EWMA with a halflife of 20 bars.
    max_leverage : float, default 3.0
        Cap on the scale, > 0: a forecast near zero (a strategy flat for a
        whole window) would otherwise ask for unbounded leverage.

    Returns
    -------
    VolTargetResult

    Raises
    ------
    ValueError
        On a bad parameter, a NaN, infinite or <= -1 return, fewer than 3
        returns, or an index that is not increasing.
    TypeError
        If ``returns`` is not a Series on a ``DatetimeIndex``.

    Notes
    -----
    The forecast is :func:`~quantify.analytics.realized_volatility` of the
    strategy's equity :math:`E_t = \\prod_{s \\le t}(1 + r_s)` (the one
    realised-volatility implementation: log returns :math:`\\ln(1+r_t)`, no
    mean removed, 365-day years), rolling over ``window`` or EWMA over
    ``halflife``. The scale for bar :math:`t` uses the forecast at close
    :math:`t-1` only: :math:`k_t = \\min(\\sigma^*/\\hat\\sigma_{t-1}, L)`,
    and the targeted return is :math:`k_t r_t` (rebalanced every bar, costs
    of rebalancing not charged). ``realized_vol`` and ``unscaled_vol`` are
    :math:`\\sqrt{P\\,\\overline{r^2}}` over the bars with a scale (simple
    returns: a levered loss can pass -100 %), so ``realized_vol`` against
    ``target_vol`` shows how well the target was met out of sample.
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError("vol_target: returns must be a Series on a DatetimeIndex (e.g. BacktestResult.returns), "
                        f"got {type(returns).__name__}")
    s = _validate.series(returns, "returns", "vol_target", nan="refuse", minimum=3)
    if not s.index.is_monotonic_increasing or s.index.has_duplicates:
        raise ValueError("vol_target: the index must be increasing (sort it, drop duplicate times)")
    target = _validate.check_number(target_vol, "target_vol", positive=True)
    cap = _validate.check_number(max_leverage, "max_leverage", positive=True)
    if window is not None and halflife is not None:
        raise ValueError("vol_target: pass window or halflife, not both")
    if window is None and halflife is None:
        halflife = 20.0
    r = s.to_numpy()
    if float(r.min()) <= -1.0:
        raise ValueError(f"vol_target: returns must be > -1 (simple returns); got {float(r.min())!r}")
    log_equity = np.cumsum(np.log1p(r))
    if float(np.max(np.abs(log_equity))) > _MAX_LOG_GROWTH:
        raise ValueError("vol_target: the returns compound beyond float range (growth of e^"
                         f"{float(np.max(np.abs(log_equity))):.3g}); are they prices rather than returns?")
    equity = pd.Series(np.exp(log_equity), index=s.index)
    forecast = realized_volatility(equity, window=window, halflife=halflife)
    assert isinstance(forecast, pd.Series)
    fv = forecast.to_numpy()
    prev = np.concatenate([[np.nan], fv[:-1]])
    with np.errstate(divide="ignore"):
        raw = np.where(np.isnan(prev), np.nan, target / prev)
    scale = np.minimum(raw, cap)  # NaN stays NaN
    scaled = scale * r
    ok = ~np.isnan(scale)
    ppy = _ledger.periods_per_year(s.index, None)
    estimator = f"rolling {window}" if window is not None else f"ewma halflife {halflife:g}"

    def _vol(v: np.ndarray) -> float:
        return math.sqrt(float(np.mean(v * v)) * ppy)

    return VolTargetResult(
        scale=pd.Series(scale, index=s.index, name="scale"),
        returns=pd.Series(scaled, index=s.index, name="returns"),
        forecast_vol=forecast.rename("forecast_vol"),
        target_vol=target, max_leverage=cap,
        realized_vol=_vol(scaled[ok]) if ok.any() else math.nan,
        unscaled_vol=_vol(r[ok]) if ok.any() else math.nan,
        mean_scale=float(np.mean(scale[ok])) if ok.any() else math.nan,
        capped_share=float(np.mean(scale[ok] >= cap)) if ok.any() else math.nan,
        estimator=estimator,
    )
