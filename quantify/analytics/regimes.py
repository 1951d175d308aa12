"""Market regimes: a Gaussian hidden Markov model on returns and realised volatility.

The model is fitted by hmmlearn (EM, k-means start, seeded); everything after
the fit — filtering, the order of the states — is computed here, so that the
probabilities a trading rule may use are the *filtered* ones, built bar by bar
from data up to that bar.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, ClassVar

import numba
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # scikit-learn's (hence hmmlearn's) own dependency

from quantify.analytics import _ledger, _validate
from quantify.analytics._plotting import bqplot, time_axis
from quantify.analytics._results import Result
from quantify.analytics.volatility import realized_volatility

__all__ = ["REGIME_FEATURES", "RegimeResult", "filter_regimes", "fit_regimes", "regime_features"]

log = logging.getLogger(__name__)

#: Columns of :func:`regime_features`: the bar's log return and the realised volatility per bar.
REGIME_FEATURES = ("return", "rv")

#: Palette of the states, calmest first (shared by ``RegimeResult.plot`` and the pairs monitor's band).
REGIME_COLORS = ("#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#17becf")


def _closes(data: Any, func: str) -> pd.Series:
    if isinstance(data, pd.DataFrame):
        if "close" not in data.columns:
            raise ValueError(f"{func}: candles need a 'close' column; have {list(data.columns)}")
        data = data["close"]
    s = _validate.series(data, "prices", func, nan="refuse")
    _validate.check_positive_prices(func, "prices", s.to_numpy())
    return s


def regime_features(prices: pd.Series | pd.DataFrame, *, window: int = 20) -> pd.DataFrame:
    """The features of the regime model: log return and realised volatility, per bar.

    Parameters
    ----------
    prices : Series or DataFrame
        Regularly sampled prices, or candles (``close`` is used); > 0, no NaN.
    window : int, default 20
        Returns in each realised-volatility estimate.

    Returns
    -------
    DataFrame
        ``return`` (:math:`r_t = \\ln(c_t/c_{t-1})`) and ``rv``
        (:math:`\\sqrt{\\sum_{i=t-w+1}^{t} r_i^2 / w}`, the root mean square
        return of the last ``window`` bars: :func:`~quantify.analytics.realized_volatility`
        with ``annualize=False`` over :math:`\\sqrt{w}`), on the input's index;
        NaN on the first ``window`` rows. Both use prices up to ``t`` only.
    """
    func = "regime_features"
    w = _validate.check_window(window)
    p = _closes(prices, func)
    _validate.need(func, w + 2, "prices (window + 2: one return beyond a full window)", len(p))
    r = np.log(p).diff()
    index = p.index
    flat = p.reset_index(drop=True)
    if not isinstance(index, pd.DatetimeIndex):
        # realized_volatility needs a time index; the rows' order is all that matters here
        flat.index = pd.date_range("2000-01-01", periods=len(flat), freq="1min")
    else:
        flat.index = index
    rv = realized_volatility(flat, window=w, annualize=False)
    assert isinstance(rv, pd.Series)
    return pd.DataFrame({"return": r.to_numpy(), "rv": rv.to_numpy() / math.sqrt(w)}, index=index)


@dataclasses.dataclass(frozen=True)
class _Params:
    """Fitted parameters in the standardised feature space, states already sorted."""

    start: np.ndarray
    trans: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int


def _fit(x: np.ndarray, n_states: int, seed: int, n_iter: int, tol: float) -> _Params:
    """EM fit of a full-covariance Gaussian HMM on standardised ``x``; states sorted by return variance."""
    from hmmlearn.hmm import GaussianHMM  # heavy (scikit-learn): loaded by fit_regimes on first use

    centre = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - centre) / scale
    model = GaussianHMM(n_components=n_states, covariance_type="full", n_iter=n_iter, tol=tol,
                        random_state=seed)
    # hmmlearn reports a log-likelihood that falls by ~1e-6 (rounding) as "not converging" at
    # WARNING; it is counted in ``converged`` instead.
    hmm_log = logging.getLogger("hmmlearn.base")
    level = hmm_log.level
    hmm_log.setLevel(logging.ERROR)
    try:
        model.fit(z)
    except ValueError as exc:  # EM emptied a state (a row of zeros in the transition matrix)
        raise ValueError(f"fit_regimes: EM could not fit {n_states} states on {len(z)} bars ({exc}); "
                         "use fewer states or more bars") from exc
    finally:
        hmm_log.setLevel(level)
    covars = np.asarray(model.covars_)
    order = np.argsort(covars[:, 0, 0], kind="stable")  # calmest returns first
    return _Params(
        start=np.asarray(model.startprob_)[order],
        trans=np.asarray(model.transmat_)[np.ix_(order, order)],
        means=np.asarray(model.means_)[order],
        covars=covars[order],
        centre=centre, scale=scale,
        log_likelihood=float(model.score(z)),
        converged=bool(model.monitor_.converged),
        n_iter=int(model.monitor_.iter),
    )


def _log_emissions(p: _Params, x: np.ndarray) -> np.ndarray:
    """Gaussian log densities of each row under each state, row by row.

    Written with element-wise operations only (a triangular solve one column at
    a time), so a row's value does not depend on which other rows are in
    ``x``: a BLAS call over the whole block can round the last bit of a row
    differently with different neighbours, which would let later bars touch
    earlier probabilities.
    """
    z = (x - p.centre) / p.scale
    n, d = z.shape
    out = np.empty((n, len(p.start)))
    for k in range(len(p.start)):
        chol = np.linalg.cholesky(p.covars[k])
        r = z - p.means[k]
        ys: list[np.ndarray] = []
        quad = np.zeros(n)
        for i in range(d):
            yi = r[:, i].copy()
            for j in range(i):
                yi -= chol[i, j] * ys[j]
            yi /= chol[i, i]
            ys.append(yi)
            quad += yi * yi
        out[:, k] = -0.5 * quad - float(np.log(np.diag(chol)).sum()) - 0.5 * d * math.log(2.0 * math.pi)
    return out


@numba.njit(cache=True)
def _forward_kernel(start: np.ndarray, trans: np.ndarray, le: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled forward recursion: filtered probabilities and each bar's log normaliser."""
    n, k = le.shape
    out = np.empty((n, k))
    lognorm = np.empty(n)
    for t in range(n):
        top = le[t].max()
        total = 0.0
        for j in range(k):
            if t == 0:
                prior = start[j]
            else:
                prior = 0.0
                for i in range(k):
                    prior += out[t - 1, i] * trans[i, j]
            out[t, j] = prior * math.exp(le[t, j] - top)
            total += out[t, j]
        for j in range(k):
            out[t, j] /= total
        lognorm[t] = math.log(total) + top
    return out, lognorm


@numba.njit(cache=True)
def _backward_viterbi(start: np.ndarray, trans: np.ndarray, le: np.ndarray,
                      filt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed probabilities (scaled backward pass over the filter) and the Viterbi path."""
    n, k = le.shape
    beta = np.ones(k)
    post = np.empty((n, k))
    post[n - 1] = filt[n - 1]
    for t in range(n - 2, -1, -1):
        top = le[t + 1].max()
        nb = np.zeros(k)
        for i in range(k):
            for j in range(k):
                nb[i] += trans[i, j] * math.exp(le[t + 1, j] - top) * beta[j]
        beta = nb / nb.sum()
        total = 0.0
        for i in range(k):
            post[t, i] = filt[t, i] * beta[i]
            total += post[t, i]
        for i in range(k):
            post[t, i] /= total
    log_a = np.log(np.maximum(trans, 1e-300))
    delta = np.log(np.maximum(start, 1e-300)) + le[0]
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        nd = np.empty(k)
        for j in range(k):
            best = 0
            for i in range(1, k):
                if delta[i] + log_a[i, j] > delta[best] + log_a[best, j]:
                    best = i
            back[t, j] = best
            nd[j] = delta[best] + log_a[best, j] + le[t, j]
        delta = nd
    path = np.empty(n, dtype=np.int64)
    path[n - 1] = np.argmax(delta)
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return post, path


def _forward(p: _Params, x: np.ndarray) -> np.ndarray:
    """Filtered probabilities :math:`P(s_t = k \\mid x_0..x_t)`, row by row."""
    return _forward_kernel(p.start, p.trans, _log_emissions(p, x))[0]


def _smooth(p: _Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed probabilities (forward-backward) and the Viterbi path, with every row's data."""
    le = _log_emissions(p, x)
    filt, _ = _forward_kernel(p.start, p.trans, le)
    return _backward_viterbi(p.start, p.trans, le, filt)


@dataclasses.dataclass(frozen=True, repr=False)
class RegimeResult(Result):
    """Result of :func:`fit_regimes`.

    States are numbered by the variance of returns in the state, **calmest
    first**: state 0 is the low-volatility regime, state ``n_states - 1`` the
    most volatile. The numbering is the same after every refit.

    Attributes
    ----------
    n_states, seed, window : int
        The model's size, the fit's seed, the realised-volatility window.
    features : DataFrame
        ``return`` and ``rv`` per bar (:func:`regime_features`).
    means : DataFrame
        Per state (rows), the mean of each feature in its own units (per bar).
    vols : Series
        Per state, the standard deviation of returns annualised with
        ``periods_per_year`` (365-day years).
    transition : DataFrame
        :math:`P(s_{t+1} = j \\mid s_t = i)`, rows ``i``, columns ``j``.
    durations : Series
        Expected bars spent in a state per visit, :math:`1/(1 - a_{ii})`.
    filtered : DataFrame
        :math:`P(s_t = k \\mid x_0, \\dots, x_t)`: data up to bar ``t`` only,
        with the parameters fitted on bars before the bar's refit point
        (out of sample) when ``train`` was given. Only these may drive a
        trading rule. NaN where the features are undefined (the first
        ``window`` bars) and, out of sample, before ``train``.
    smoothed : DataFrame
        :math:`P(s_t = k \\mid x_0, \\dots, x_T)`: every bar's data, past and
        future, with the last fitted parameters. For description only.
    viterbi : Series
        The most likely state path given every bar (float; NaN where undefined).
    regime : Series
        The filtered most-likely state, ``argmax_k filtered[k]`` (float; NaN
        where undefined).
    out_of_sample : bool
        True when ``train`` was given: ``filtered`` and ``regime`` use no
        data after their bar, parameters included.
    train, refits : int
        Bars of the first fit, and how many fits were made.
    log_likelihood : float
        Per-observation log likelihood of the last fit on its (standardised)
        training data.
    converged : bool
        Whether every EM fit met its tolerance within ``n_iter`` iterations.
    """

    _title: ClassVar[str] = "Gaussian HMM regimes"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "n_states", "seed", "window", "vols", "durations", "out_of_sample", "train", "refits",
        "log_likelihood", "converged", "periods_per_year",
    )
    n_states: int
    seed: int
    window: int
    features: pd.DataFrame
    means: pd.DataFrame
    vols: pd.Series
    transition: pd.DataFrame
    durations: pd.Series
    filtered: pd.DataFrame
    smoothed: pd.DataFrame
    viterbi: pd.Series
    regime: pd.Series
    out_of_sample: bool
    train: int
    refits: int
    log_likelihood: float
    converged: bool
    periods_per_year: float
    _params: _Params = dataclasses.field(repr=False, compare=False)

    def _rows(self) -> list[tuple[str, Any]]:
        rows = super()._rows()
        return [(k, {int(i): float(v) for i, v in val.items()} if isinstance(val, pd.Series) else val)
                for k, val in rows]

    def allow(self, states: int | list[int] | tuple[int, ...]) -> pd.Series:
        """A boolean Series, True where the filtered regime is one of ``states`` (False where undefined).

        Pass it as ``backtest_pairs(..., allow=result.allow(0))`` to take
        entries only in the calm regime.
        """
        wanted = [states] if isinstance(states, (int, np.integer)) else list(states)
        bad = [s for s in wanted if isinstance(s, bool) or not isinstance(s, (int, np.integer))
               or not 0 <= s < self.n_states]
        if bad or not wanted:
            raise ValueError(f"states must be integers in [0, {self.n_states}), got {states!r}")
        return self.regime.isin([float(s) for s in wanted]).rename("allow")

    def plot(self) -> Any:
        """Filtered state probabilities (stacked areas, calmest at the bottom) as a bqplot Figure.

        Raises
        ------
        ImportError
            If bqplot is not installed.
        """
        bq = bqplot("RegimeResult.plot")
        xs, xv, xlabel = time_axis(bq, self.filtered.index)
        ys = bq.LinearScale(min=0.0, max=1.0)
        cum = np.nan_to_num(self.filtered.to_numpy()).cumsum(axis=1).T
        probs = bq.Lines(x=xv, y=cum, scales={"x": xs, "y": ys}, fill="bottom", fill_opacities=[0.5] * self.n_states,
                         colors=list(REGIME_COLORS[: self.n_states]), labels=[f"state {k}" for k in range(self.n_states)],
                         display_legend=True)
        axes = [bq.Axis(scale=xs, label=xlabel),
                bq.Axis(scale=ys, side="left", label="filtered probability (cumulative)")]
        return bq.Figure(marks=[probs], axes=axes, title=f"{self._title}: {self.n_states} states")


def _check_fit_args(n_states: Any, seed: Any, n_iter: Any, tol: Any) -> tuple[int, int, int, float]:
    k = _validate.check_int(n_states, "n_states", 2)
    if k > len(REGIME_COLORS):
        raise ValueError(f"n_states must be at most {len(REGIME_COLORS)}, got {n_states!r}")
    return (k, _validate.check_int(seed, "seed", 0), _validate.check_int(n_iter, "n_iter", 1),
            _validate.check_number(tol, "tol", positive=True))


def _check_rows(x: np.ndarray, k: int) -> None:
    """Refuse a fit window too degenerate to tell ``k`` states apart (k-means and EM would warn)."""
    distinct = len(np.unique(x, axis=0))
    if distinct < 2 * k or float(x[:, 0].min()) == float(x[:, 0].max()):
        raise ValueError(f"fit_regimes: the features take only {distinct} distinct value(s) on the {len(x)} "
                         f"bars of the fit (constant prices?); {k} states need at least {2 * k}, "
                         "and returns that vary")


def fit_regimes(
    prices: pd.Series | pd.DataFrame,
    n_states: int = 2,
    *,
    window: int = 20,
    seed: int = 0,
    train: int | None = None,
    refit_every: int | None = None,
    n_iter: int = 100,
    tol: float = 1e-4,
    periods_per_year: float | None = None,
) -> RegimeResult:
    """Fit a Gaussian hidden Markov model to an instrument's returns and realised volatility.

    Parameters
    ----------
    prices : Series or DataFrame
        Regularly sampled prices or candles (``close``); > 0, no NaN.
    n_states : int, default 2
        Hidden states (2 to 6).
    window : int, default 20
        Realised-volatility window of :func:`regime_features`.
    seed : int, default 0
        Seed of the k-means start and of EM: the same data and seed give the
        same fit, to the last bit (the fit runs single-threaded, as thread
        counts change the rounding of k-means and EM).
    train : int, optional
        Fit on the first ``train`` bars only and filter forward: bar ``t >=
        train`` gets filtered probabilities from parameters that never saw
        it (``out_of_sample``). Default: fit on every bar (a description of
        the sample, not a trading signal: the parameters saw the future).
    refit_every : int, optional
        With ``train``: refit on an expanding window every ``refit_every``
        bars; the bars from one refit point to the next are filtered with
        the parameters fitted on the bars before that point.
    n_iter, tol : int and float, default 100 and 1e-4
        EM iterations and the log-likelihood gain that stops it.
    periods_per_year : float, optional
        To annualise ``vols``; default from the index spacing (365-day
        years), else 1.

    Returns
    -------
    RegimeResult

    Raises
    ------
    ValueError
        On a bad parameter, a NaN, infinite or non-positive price, or too
        few bars (``train`` must leave ``10 * n_states`` feature rows to fit).
    TypeError
        If an input or a parameter has the wrong type.

    Notes
    -----
    Features :math:`x_t = (r_t, \\mathrm{rv}_t)` are standardised with the
    mean and standard deviation of the fit's own rows, then modelled as
    :math:`x_t \\mid s_t = k \\sim N(\\mu_k, \\Sigma_k)` (full covariance)
    with a Markov chain :math:`s_t`. hmmlearn's ``GaussianHMM`` fits it by
    EM. The filter is the forward recursion :math:`\\alpha_t \\propto
    (\\alpha_{t-1} A) \\odot b(x_t)` normalised at each bar, which uses
    :math:`x_0..x_t` only; its last row equals hmmlearn's smoothed
    probability of the last bar. Smoothed probabilities and the Viterbi
    path use the whole sample. States are reordered by the return variance
    :math:`\\Sigma_k[0, 0]` (ascending), hmmlearn's own labels being
    arbitrary.
    """
    func = "fit_regimes"
    k, seed, n_iter, tol = _check_fit_args(n_states, seed, n_iter, tol)
    feats = regime_features(prices, window=window)
    w = _validate.check_window(window)
    n = len(feats)
    first = w  # rows 0..w-1 lack a full window (row 0 lacks a return)
    minimum = 10 * k
    if train is None:
        if refit_every is not None:
            raise ValueError("fit_regimes: refit_every= needs train= (the first fit's bars)")
        cut = n
    else:
        cut = _validate.check_int(train, "train", first + minimum)
        if cut > n:
            raise ValueError(f"train must be at most the {n} bars given, got {train!r}")
    _validate.need(func, minimum, f"bars with features to fit {k} states (10 per state, after the "
                   f"{w}-bar window)", cut - first)
    step = None if refit_every is None else _validate.check_int(refit_every, "refit_every", 1)
    x = feats.to_numpy()
    filtered = np.full((n, k), np.nan)
    points = [cut] if step is None else list(range(cut, n, step)) or [cut]
    fits: list[_Params] = []
    # One thread for BLAS and scikit-learn's OpenMP: k-means and EM round differently with
    # different thread counts, so a fit is reproducible only single-threaded (and on matrices
    # of 2 features threads only add start-up and contention). The libraries are loaded first:
    # a limit does not reach a library loaded after it is set.
    import hmmlearn.hmm  # noqa: F401

    with threadpool_limits(1):
        for i, start in enumerate(points):
            _check_rows(x[first:start], k)
            p = _fit(x[first:start], k, seed, n_iter, tol)
            fits.append(p)
            stop = points[i + 1] if i + 1 < len(points) else n
            if train is None:
                filtered[first:] = _forward(p, x[first:])
            elif stop > start:
                filtered[start:stop] = _forward(p, x[first:stop])[start - first:]
        last = fits[-1]
        post, vpath = _smooth(last, x[first:])
    smoothed = np.full((n, k), np.nan)
    path = np.full(n, np.nan)
    smoothed[first:], path[first:] = post, vpath
    cols = pd.RangeIndex(k, name="state")
    filt = pd.DataFrame(filtered, index=feats.index, columns=cols)
    regime = pd.Series(np.where(np.isnan(filtered).any(axis=1), np.nan,
                                np.argmax(np.nan_to_num(filtered), axis=1)), index=feats.index, name="regime")
    means = pd.DataFrame(last.means * last.scale + last.centre, index=cols, columns=list(REGIME_FEATURES))
    ppy = _ledger.periods_per_year(feats.index, periods_per_year)
    ret_sd = np.sqrt(last.covars[:, 0, 0]) * last.scale[0]
    diag = np.clip(np.diag(last.trans), 0.0, 1.0 - 1e-12)
    if not all(f.converged for f in fits):
        log.debug("fit_regimes: EM stopped at n_iter=%d before tol=%g on %d fit(s)", n_iter, tol,
                  sum(not f.converged for f in fits))
    return RegimeResult(
        n_states=k, seed=seed, window=w, features=feats, means=means,
        vols=pd.Series(ret_sd * math.sqrt(ppy), index=cols, name="vol"),
        transition=pd.DataFrame(last.trans, index=cols, columns=cols),
        durations=pd.Series(1.0 / (1.0 - diag), index=cols, name="bars"),
        filtered=filt, smoothed=pd.DataFrame(smoothed, index=feats.index, columns=cols),
        viterbi=pd.Series(path, index=feats.index, name="viterbi"), regime=regime,
        out_of_sample=train is not None, train=cut, refits=len(fits),
        log_likelihood=last.log_likelihood / (points[-1] - first if train is not None else n - first), converged=all(f.converged for f in fits),
        periods_per_year=ppy, _params=last,
    )


def filter_regimes(result: RegimeResult, prices: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Filtered state probabilities of new prices under a fitted model's last parameters.

    Parameters
    ----------
    result : RegimeResult
        A fit from :func:`fit_regimes`.
    prices : Series or DataFrame
        Prices or candles (``close``), e.g. the bars that arrived after the fit.

    Returns
    -------
    DataFrame
        :math:`P(s_t = k \\mid x_0..x_t)` per bar (columns: states, calmest
        first); NaN on the first ``window`` bars. No refit: the probability
        at bar ``t`` depends on prices up to ``t`` only.
    """
    if not isinstance(result, RegimeResult):
        raise TypeError(f"result must be a RegimeResult, got {type(result).__name__}")
    feats = regime_features(prices, window=result.window)
    out = np.full((len(feats), result.n_states), np.nan)
    out[result.window:] = _forward(result._params, feats.to_numpy()[result.window:])
    return pd.DataFrame(out, index=feats.index, columns=pd.RangeIndex(result.n_states, name="state"))
