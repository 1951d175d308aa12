"""Scan every pair of a panel of closes for cointegration, in parallel.

One row per pair: Engle-Granger statistic and p-value (equal to statsmodels'
``coint``), OLS hedge ratio, half-life and correlations, optionally the Hurst
exponent and Benjamini-Hochberg q-values. Work is cut into chunks of pairs and
handed to any :class:`concurrent.futures.Executor` (a local process pool by
default, or e.g. a Dask client's ``get_executor()``). The closes are either a
DataFrame, shipped to every task, or a :class:`ClosesSource` that each worker
process loads itself once (e.g. :class:`quantify.cluster.StoreCloses`, which
reads them from a shared store), so that tasks carry only their pairs.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tsa.adfvalues import mackinnonp

from quantify.analytics import _validate
from quantify.analytics.meanrev import hurst
from quantify.analytics.parallel import (
    ClosesSource,
    check_executor,
    chunked,
    closes_of,
    limit_blas_threads,
    run_chunks,
)
from quantify.analytics.stationarity import (
    MIN_OBS,
    Autolag,
    Regression,
    _check_autolag,
    _check_maxlag,
    _check_regression,
    _coint_stat,
)

__all__ = ["SCAN_COLUMNS", "ClosesSource", "benjamini_hochberg", "limit_blas_threads", "scan_pairs"]

logger = logging.getLogger(__name__)

#: Columns of :func:`scan_pairs`' result, before the optional ``hurst``,
#: ``q_value`` and ``significant``.
SCAN_COLUMNS: tuple[str, ...] = (
    "y", "x", "pvalue", "stat", "lags", "beta", "alpha", "half_life",
    "corr_returns", "corr_levels", "pvalue_reverse", "stat_reverse",
)

# below this many pairs the scan runs inline: starting processes costs more
_INLINE_PAIRS = 16

@dataclass(frozen=True)
class _Options:
    """What every worker needs besides the data; a frozen dataclass pickles cleanly."""

    trend: str
    autolag: str | None
    maxlag: int | None
    both_orderings: bool
    hurst: bool


def _half_life(spread: np.ndarray) -> float:
    """AR(1) half-life in rows, the same definition as :func:`quantify.analytics.meanrev.half_life`.

    Inlined (centred two-pass OLS) because the scan calls it for every pair:
    :math:`\\Delta s_t = a + b s_{t-1}`, :math:`h = -\\ln 2/\\ln(1+b)`; ``inf``
    when ``b >= 0``, NaN when ``b <= -1``.
    """
    lag = spread[:-1] - spread[:-1].mean()
    diff = np.diff(spread)
    diff = diff - diff.mean()
    sxx = float(lag @ lag)
    if sxx == 0.0:
        return math.nan
    b = float(lag @ diff) / sxx
    if b >= 0:
        return math.inf
    if b <= -1:
        return math.nan
    return math.log(2.0) / -math.log1p(b)


def _hurst(spread: np.ndarray) -> float:
    try:
        return float(hurst(spread).hurst)
    except ValueError as exc:  # too short or constant: no estimate for this pair
        logger.debug("no Hurst exponent for a spread: %s", exc)
        return math.nan


def _one_ordering(
    y: np.ndarray, x: np.ndarray, opts: _Options
) -> tuple[float, float, int, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        # a perfectly collinear pair gets stat=-inf, as statsmodels; not worth a warning each
        warnings.simplefilter("ignore", RuntimeWarning)
        stat, lags, _, coef, resid = _coint_stat(y, x[:, None], opts.trend, opts.autolag, opts.maxlag)
    pvalue = float(mackinnonp(stat, regression=opts.trend, N=2))
    return stat, pvalue, lags, coef, resid


def _scan_source_chunk(
    source: ClosesSource, pairs: list[tuple[int, int]], opts: _Options
) -> list[tuple[Any, ...]]:
    """Scan ``pairs`` of the closes ``source`` loads in this worker process."""
    values = np.ascontiguousarray(_check_closes(closes_of(source)).to_numpy())
    return _scan_chunk(values, pairs, opts)


def _scan_chunk(
    values: np.ndarray, pairs: list[tuple[int, int]], opts: _Options
) -> list[tuple[Any, ...]]:
    """Scan ``pairs`` (column indices into ``values``); runs in a worker process."""
    rows: list[tuple[Any, ...]] = []
    for i, j in pairs:
        a, b = values[:, i], values[:, j]
        fwd = _one_ordering(a, b, opts)
        rev = _one_ordering(b, a, opts) if opts.both_orderings else None
        if rev is not None and rev[1] < fwd[1]:
            fwd, rev, (i, j) = rev, fwd, (j, i)
        stat, pvalue, lags, coef, resid = fwd
        alpha = float(coef[1]) if opts.trend != "n" else 0.0
        rows.append((
            i, j, pvalue, stat, lags, float(coef[0]), alpha, _half_life(resid),
            rev[1] if rev is not None else math.nan,
            rev[0] if rev is not None else math.nan,
            _hurst(resid) if opts.hurst else math.nan,
        ))
    return rows


def benjamini_hochberg(pvalues: np.ndarray | pd.Series) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values).

    Notes
    -----
    With the m p-values sorted ascending, :math:`q_{(i)} = \\min_{j \\ge i}
    \\min(1, m\\,p_{(j)}/j)`; the same as statsmodels'
    ``multipletests(method="fdr_bh")[1]``. NaN p-values are not counted in m
    and stay NaN.

    Raises
    ------
    TypeError
        If ``pvalues`` is not a 1-d numeric array or Series.
    ValueError
        With no finite p-value, or a p-value outside [0, 1].
    """
    p = _validate.series(pvalues, "pvalues", "benjamini_hochberg", nan="keep").to_numpy()
    outside = np.flatnonzero((p < 0.0) | (p > 1.0))
    if outside.size:
        raise ValueError(
            f"benjamini_hochberg: pvalues must be in [0, 1]; got {p[outside[0]]!r} at position {int(outside[0])}"
        )
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="mergesort")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def _check_closes(closes: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(closes, pd.DataFrame):
        raise TypeError(f"closes must be a DataFrame with one column per symbol, got {type(closes).__name__}")
    if closes.shape[1] < 2:
        raise ValueError(f"closes needs at least 2 columns, got {list(closes.columns)!r}")
    if not closes.columns.is_unique:
        raise ValueError(f"closes has duplicate columns: {list(closes.columns[closes.columns.duplicated()])!r}")
    try:
        numeric = closes.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"closes must be numeric, got dtypes {dict(closes.dtypes)!r}") from exc
    bad = [c for c in numeric.columns if not np.all(np.isfinite(numeric[c].to_numpy()))]
    if bad:
        raise ValueError(f"closes has NaN/inf in columns {bad!r}; align and drop or fill first")
    for c in numeric.columns:
        _validate.check_values("scan_pairs", f"closes[{c!r}]", numeric[c].to_numpy(), "refuse")
    _validate.need("scan_pairs", MIN_OBS, "aligned, finite rows of closes", len(numeric))
    flat = [c for c in numeric.columns if numeric[c].nunique() == 1]
    if flat:
        raise ValueError(f"scan_pairs: closes has constant columns {flat!r}; a constant series cannot be cointegrated")
    return numeric


def _check_positive(value: float | None, name: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    return _validate.check_number(value, name, positive=True, upper=upper)


def scan_pairs(
    closes: pd.DataFrame | ClosesSource,
    *,
    trend: Regression = "c",
    autolag: Autolag = "AIC",
    maxlag: int | None = None,
    both_orderings: bool = True,
    fdr: float | None = None,
    max_half_life: float | None = None,
    max_hurst: float | None = None,
    hurst: bool = False,
    executor: cf.Executor | None = None,
    chunksize: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Engle-Granger test, hedge ratio and half-life for every pair of columns.

    Parameters
    ----------
    closes : DataFrame or ClosesSource
        One column per symbol, aligned rows, no NaN, no constant column, at
        least 20 rows (as :func:`~quantify.analytics.coint`); log prices
        recommended. A :class:`ClosesSource` (e.g.
        :class:`quantify.cluster.StoreCloses`) is loaded here and by each
        worker process once, instead of being sent with every task.
    trend, autolag, maxlag
        As in :func:`quantify.analytics.coint`.
    both_orderings : bool, default True
        Test y on x and x on y and report the ordering with the smaller
        p-value (the other in ``pvalue_reverse``/``stat_reverse``). False tests
        only column ``i`` on column ``j`` for ``i < j`` in column order.
    fdr : float, optional
        False discovery rate in (0, 1): adds ``q_value`` (Benjamini-Hochberg
        over all pairs tested) and ``significant`` (``q_value <= fdr``).
    max_half_life : float, optional
        Keep pairs whose half-life (rows) is at most this.
    max_hurst : float, optional
        Keep pairs whose spread's Hurst exponent is at most this (implies ``hurst``).
    hurst : bool, default False
        Add the spread's Hurst exponent (:func:`quantify.analytics.hurst`).
    executor : concurrent.futures.Executor, optional
        Where to run chunks of pairs. Default: a ``ProcessPoolExecutor`` with
        one worker per CPU, created and shut down here (or inline for at most
        16 pairs). Any executor works, e.g. ``ThreadPoolExecutor`` or a Dask
        client's ``get_executor()``; it is not shut down. A task lost with its
        worker and run again (as Dask does) counts once: results are keyed by
        their pairs.
    chunksize : int, optional
        Pairs per task; default spreads the pairs over ~4 tasks per worker.
    progress : bool, default True
        Show a ``tqdm.auto`` progress bar (a widget in Jupyter).

    Returns
    -------
    DataFrame
        One row per pair, sorted by ``pvalue``: ``y``, ``x`` (column names; the
        spread is ``y - beta x - alpha``), ``pvalue``, ``stat``, ``lags``,
        ``beta``, ``alpha``, ``half_life``, ``corr_returns``, ``corr_levels``,
        ``pvalue_reverse``, ``stat_reverse``, then ``hurst``, ``q_value``,
        ``significant`` when asked for. Options are in ``.attrs``.

    Notes
    -----
    ``pvalue``/``stat`` equal ``statsmodels.tsa.stattools.coint(closes[y],
    closes[x], trend, autolag=autolag, maxlag=maxlag)`` (see
    :func:`quantify.analytics.coint`); ``beta``/``alpha`` are the OLS
    coefficients of that cointegrating regression. ``half_life`` is
    :math:`-\\ln 2/\\ln(1+b)` rows from :math:`\\Delta s_t = a + b s_{t-1}` on the
    spread, as :func:`quantify.analytics.half_life`. ``corr_returns`` is the
    Pearson correlation of first differences (log returns when closes are log
    prices), ``corr_levels`` of the levels themselves (high for any two
    trending series: a hint, not evidence).

    Taking the smaller p-value of the two orderings makes each test somewhat
    liberal; ``q_value`` is computed over all pairs before the half-life and
    Hurst filters, so filtering does not change the false discovery rate claim.
    """
    data = _check_closes(closes_of(closes))
    trend = _check_regression(trend, "trend")  # type: ignore[assignment]
    opts = _Options(
        trend=trend,
        autolag=_check_autolag(autolag),
        maxlag=_check_maxlag(maxlag),
        both_orderings=bool(both_orderings),
        hurst=bool(hurst) or max_hurst is not None,
    )
    fdr = _check_positive(fdr, "fdr", upper=1.0)
    max_half_life = _check_positive(max_half_life, "max_half_life")
    if max_hurst is not None:
        _validate.check_number(max_hurst, "max_hurst")
    check_executor(executor, chunksize)

    values = np.ascontiguousarray(data.to_numpy())
    # a DataFrame travels with each task; a source is loaded by the worker itself
    shipped: Any = values if isinstance(closes, pd.DataFrame) else closes
    task = _scan_chunk if isinstance(closes, pd.DataFrame) else _scan_source_chunk
    pairs = list(itertools.combinations(range(values.shape[1]), 2))
    chunks = chunked(pairs, chunksize)
    logger.debug("scanning %d pairs in %d chunks", len(pairs), len(chunks))

    rows = run_chunks(task, shipped, chunks, opts, executor=executor, progress=progress,
                      desc="pairs", unit="pair", inline=executor is None and len(pairs) <= _INLINE_PAIRS)

    names = np.asarray(data.columns, dtype=object)
    raw = pd.DataFrame(
        rows,
        columns=["i", "j", "pvalue", "stat", "lags", "beta", "alpha", "half_life",
                 "pvalue_reverse", "stat_reverse", "hurst"],
    )
    corr_r = data.diff().iloc[1:].corr().to_numpy()
    corr_l = data.corr().to_numpy()
    i, j = raw["i"].to_numpy(dtype=np.intp), raw["j"].to_numpy(dtype=np.intp)
    out = pd.DataFrame({
        "y": names[i], "x": names[j],
        "pvalue": raw["pvalue"], "stat": raw["stat"], "lags": raw["lags"].astype(np.int64),
        "beta": raw["beta"], "alpha": raw["alpha"], "half_life": raw["half_life"],
        "corr_returns": corr_r[i, j], "corr_levels": corr_l[i, j],
        "pvalue_reverse": raw["pvalue_reverse"], "stat_reverse": raw["stat_reverse"],
    })
    if opts.hurst:
        out["hurst"] = raw["hurst"]
    if fdr is not None:
        out["q_value"] = benjamini_hochberg(out["pvalue"].to_numpy())
        out["significant"] = out["q_value"] <= fdr
    if max_half_life is not None:
        out = out[out["half_life"] <= max_half_life]
    if max_hurst is not None:
        out = out[out["hurst"] <= max_hurst]
    # stable sort on (pvalue, stat) then names, so ties (e.g. p = 0) are deterministic
    out = out.sort_values(["pvalue", "stat", "y", "x"], kind="mergesort").reset_index(drop=True)
    out.attrs.update(trend=trend, autolag=autolag, maxlag=maxlag, both_orderings=both_orderings,
                     fdr=fdr, n_pairs=len(pairs))
    return out
