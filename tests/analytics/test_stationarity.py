"""ADF, Engle-Granger and Johansen pinned to statsmodels 0.15 (same run, same data).

Tolerances: statistics rtol 1e-9 (measured ~1e-13), p-values atol 1e-9, lag
choice and nobs exact. Where statsmodels itself is ill-conditioned (raw t and
t^2 columns next to prices near 60,000), the reference is an exact rational
least-squares solve instead.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from statsmodels.tsa.stattools import adfuller
from statsmodels.tsa.stattools import coint as sm_coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from quantify.analytics import stationarity
from quantify.analytics.johansen import johansen
from quantify.analytics.stationarity import ADFResult, CointResult, adf, coint

STAT_RTOL = 1e-9
P_ATOL = 1e-9


def _walk(rng: np.random.Generator, n: int, level: float, scale: float) -> np.ndarray:
    return level + scale * np.cumsum(rng.standard_normal(n))


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    n = 800
    # AR(2) increments so that AIC picks a non-zero lag
    e = rng.standard_normal(n)
    d = np.zeros(n)
    for t in range(2, n):
        d[t] = 0.4 * d[t - 1] - 0.3 * d[t - 2] + e[t]
    return {
        "walk_60k": _walk(rng, n, 60_000.0, 35.0),
        "log_walk": np.log(60_000.0) + np.cumsum(rng.normal(0.0, 6e-4, n)),
        "ar2_walk": 100.0 + np.cumsum(d),
        "stationary": 60_000.0 + 20.0 * rng.standard_normal(n),
    }


SERIES = _series()


def _sm_adf(x: np.ndarray, **kw: object) -> tuple:
    return adfuller(x, result_object=False, **kw)  # type: ignore[arg-type]


ADF_CASES = [(name, reg, "AIC") for name in sorted(SERIES) for reg in ("n", "c", "ct")] + [
    ("ar2_walk", reg, autolag) for reg in ("n", "c", "ct") for autolag in ("BIC", "t-stat", None)
]


@pytest.mark.parametrize(("name", "regression", "autolag"), ADF_CASES)
def test_adf_matches_statsmodels(name: str, regression: str, autolag: str | None) -> None:
    x = SERIES[name]
    res = adf(x, regression=regression, autolag=autolag)  # type: ignore[arg-type]
    ref = _sm_adf(x, regression=regression, autolag=autolag)
    assert res.lags == ref[2]
    assert res.nobs == ref[3]
    assert_allclose(res.stat, ref[0], rtol=STAT_RTOL)
    assert_allclose(res.pvalue, ref[1], atol=P_ATOL)
    assert res.critical_values == pytest.approx(ref[4], rel=1e-12)
    if autolag is not None:
        assert_allclose(res.icbest, ref[5], rtol=1e-9)


def test_adf_ctt_and_explicit_maxlag() -> None:
    x = SERIES["ar2_walk"][:500]
    for maxlag in (0, 3, 10):
        res = adf(x, regression="ctt", autolag="AIC", maxlag=maxlag)
        ref = _sm_adf(x, regression="ctt", autolag="AIC", maxlag=maxlag)
        assert (res.lags, res.nobs, res.maxlag) == (ref[2], ref[3], maxlag)
        assert_allclose(res.stat, ref[0], rtol=STAT_RTOL)


@pytest.mark.parametrize("regression", ["n", "c", "ct"])
def test_adf_qr_fallback_equals_cholesky_path(monkeypatch: pytest.MonkeyPatch, regression: str) -> None:
    # R comes from the Cholesky factor of the scaled cross-product unless that is
    # ill-conditioned; force the blocked-QR fallback (many small blocks) instead
    x = pd.Series(SERIES["ar2_walk"])
    fast = adf(x, regression=regression)  # type: ignore[arg-type]
    monkeypatch.setattr(stationarity, "_GRAM_MIN_DIAG", np.inf)
    monkeypatch.setattr(stationarity, "_QR_BLOCK", 97)
    for autolag in ("AIC", None):
        res = adf(x, regression=regression, autolag=autolag)  # type: ignore[arg-type]
        ref = _sm_adf(x.to_numpy(), regression=regression, autolag=autolag)
        assert res.lags == ref[2]
        assert_allclose(res.stat, ref[0], rtol=STAT_RTOL)
        if autolag == "AIC":
            assert res.lags == fast.lags
            assert_allclose(res.stat, fast.stat, rtol=1e-13)
    assert isinstance(res, ADFResult)
    assert "Augmented Dickey-Fuller" in res.summary()
    assert "<table" in res._repr_html_() and "pvalue" in res._repr_html_()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(40, 400),
    level_scale=st.sampled_from([(0.0, 1e-4), (1.0, 1e-3), (0.0, 1.0), (0.0, 1e3), (60_000.0, 1.0), (60_000.0, 50.0)]),
    regression=st.sampled_from(["n", "c", "ct"]),
)
def test_adf_hypothesis(seed: int, n: int, level_scale: tuple[float, float], regression: str) -> None:
    level, scale = level_scale
    x = _walk(np.random.default_rng(seed), n, level, scale)
    res = adf(x, regression=regression)  # type: ignore[arg-type]
    ref = _sm_adf(x, regression=regression, autolag="AIC")
    assert res.lags == ref[2]
    assert_allclose(res.stat, ref[0], rtol=1e-8)  # short, badly scaled inputs: 1e-8


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 800
    x = _walk(rng, n, 60_000.0, 30.0)
    u = np.zeros(n)
    for t in range(1, n):  # AR(1) spread, half-life ~ 3 bars
        u[t] = 0.8 * u[t - 1] + 2.0 * rng.standard_normal()
    return 0.06 * x + 250.0 + u, x


COINT_CASES = [("cointegrated", trend, a) for trend in ("n", "c", "ct") for a in ("AIC", "BIC", "t-stat", None)] + [
    (case, trend, "AIC") for case in ("reversed", "independent_log") for trend in ("n", "c", "ct")
]


@pytest.mark.parametrize(("case", "trend", "autolag"), COINT_CASES)
@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::statsmodels.tools.sm_exceptions.CollinearityWarning")
def test_coint_matches_statsmodels(trend: str, autolag: str | None, case: str) -> None:
    y, x = _pair()
    if case == "reversed":
        y, x = x, y
    elif case == "independent_log":
        y, x = np.log(SERIES["walk_60k"]), SERIES["log_walk"]
    res = coint(y, x, trend=trend, autolag=autolag)  # type: ignore[arg-type]
    ref = sm_coint(y, x, trend=trend, autolag=autolag)
    assert_allclose(res.stat, ref[0], rtol=STAT_RTOL)
    assert_allclose(res.pvalue, ref[1], atol=P_ATOL)
    if trend != "n":
        assert list(res.critical_values.values()) == pytest.approx(list(ref[2]), rel=1e-12)


def test_coint_finds_the_cointegrated_pair_and_its_hedge_ratio() -> None:
    y, x = _pair()
    res = coint(pd.Series(y, name="eth"), pd.Series(x, name="btc"))
    assert isinstance(res, CointResult)
    assert res.pvalue < 1e-3
    assert list(res.params.index) == ["btc", "const"]
    assert_allclose(res.beta, 0.06, rtol=0.1)
    fitted = res.params["btc"] * x + res.params["const"]
    assert_allclose(res.residuals.to_numpy(), y - fitted, atol=1e-6)


def _exact_residuals(y: np.ndarray, cols: list[np.ndarray]) -> np.ndarray:
    """OLS residuals by exact rational normal equations (floats are exact dyadics)."""
    c = [[Fraction(float(v)) for v in col] for col in cols]
    yy = [Fraction(float(v)) for v in y]
    k = len(c)
    a = [[sum(p * q for p, q in zip(c[i], c[j])) for j in range(k)] + [sum(p * q for p, q in zip(c[i], yy))] for i in range(k)]
    for col in range(k):  # Gauss-Jordan, exact
        piv = next(r for r in range(col, k) if a[r][col] != 0)
        a[col], a[piv] = a[piv], a[col]
        for r in range(k):
            if r != col and a[r][col] != 0:
                f = a[r][col] / a[col][col]
                a[r] = [a[r][j] - f * a[col][j] for j in range(k + 1)]
    beta = [a[i][k] / a[i][i] for i in range(k)]
    return np.array([float(yy[i] - sum(beta[j] * c[j][i] for j in range(k))) for i in range(len(yy))])


@pytest.mark.parametrize("trend", ["ct", "ctt"])
def test_coint_trend_against_exact_reference(trend: str) -> None:
    # statsmodels regresses on raw t, t^2 beside prices near 60,000 and loses up
    # to ~4e-8 relative here; an exact rational solve is the reference instead.
    y, x = _pair()
    y, x = y[:300], x[:300]
    t = np.arange(1, 301, dtype=np.float64)
    cols = [x, np.ones(300), t, t * t][: 1 + len(trend)]
    resid = _exact_residuals(y, cols)
    ref = _sm_adf(resid, regression="n", autolag="AIC")
    res = coint(y, x, trend=trend)  # type: ignore[arg-type]
    assert_allclose(res.stat, ref[0], rtol=1e-11)
    assert res.lags == ref[2]
    assert_allclose(res.residuals.to_numpy(), resid, rtol=0, atol=1e-9)


def test_coint_collinear_gives_minus_inf() -> None:
    x = SERIES["walk_60k"]
    with pytest.warns(RuntimeWarning, match="collinear"):
        res = coint(2.0 * x + 1.0, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm_coint(2.0 * x + 1.0, x)
    assert res.stat == ref[0] == -np.inf
    assert res.pvalue == ref[1]


@pytest.mark.parametrize("det_order", [-1, 0, 1])
@pytest.mark.parametrize("k_ar_diff", [0, 1, 3])
def test_johansen_matches_statsmodels(det_order: int, k_ar_diff: int) -> None:
    y, x = _pair()
    z = SERIES["walk_60k"][:800]
    frame = pd.DataFrame({"y": y, "x": x, "z": z})
    res = johansen(frame, det_order=det_order, k_ar_diff=k_ar_diff)
    ref = coint_johansen(frame.to_numpy(), det_order, k_ar_diff)
    # det_order=-1 works on raw levels near 60,000 (no constant to centre on) and
    # statsmodels inverts S11 there: eigenvalues agree to ~4e-11 absolute only, and to
    # ~1.1e-10 with numpy 2.4's LAPACK (the trace statistic then differs by 1.3e-9 relative)
    eig_atol = 1e-9 if det_order == -1 else 1e-12
    assert_allclose(res.eigenvalues, ref.eig, rtol=1e-10, atol=eig_atol)
    atol = eig_atol * res.nobs
    assert_allclose(res.trace_stat, ref.trace_stat, rtol=1e-10, atol=atol)
    assert_allclose(res.max_eig_stat, ref.max_eig_stat, rtol=1e-10, atol=atol)
    assert_allclose(res.trace_crit.to_numpy(), ref.trace_stat_crit_vals)
    assert_allclose(res.max_eig_crit.to_numpy(), ref.max_eig_stat_crit_vals)
    # eigenvectors are defined up to sign: compare column by column
    ours = res.eigenvectors.to_numpy()
    signs = np.sign(np.sum(ours * ref.evec, axis=0))
    assert_allclose(ours * signs, ref.evec, rtol=1e-6, atol=1e-9 * np.abs(ref.evec).max())
    below = ref.trace_stat < ref.trace_stat_crit_vals[:, 1]
    assert res.rank == (int(np.argmax(below)) if below.any() else 3)
    assert "trace r<=0" in res.summary()


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: adf([1.0, np.nan] * 50), ValueError, "NaN"),
        (lambda: adf(np.ones(100)), ValueError, "constant"),
        (lambda: adf(np.arange(100.0), regression="x"), ValueError, "'x'"),  # type: ignore[arg-type]
        (lambda: adf(np.arange(100.0), autolag="hqic"), ValueError, "'hqic'"),  # type: ignore[arg-type]
        (lambda: adf(np.arange(100.0), maxlag=60), ValueError, "maxlag=60"),
        (lambda: adf(np.arange(100.0), maxlag=2.5), TypeError, "2.5"),  # type: ignore[arg-type]
        (lambda: adf(np.ones((10, 2))), ValueError, r"\(10, 2\)"),
        (lambda: adf(["a", "b"]), TypeError, "numeric"),
        (lambda: coint(np.arange(100.0), np.arange(99.0)), ValueError, "100 rows"),
        (lambda: coint(pd.Series(np.arange(9.0)), pd.Series(np.arange(9.0), index=range(1, 10))), ValueError, "indexes"),
        (lambda: coint(np.arange(100.0), np.arange(100.0), trend="t"), ValueError, "'t'"),  # type: ignore[arg-type]
        (lambda: johansen(np.ones((50, 1))), ValueError, r"\(50, 1\)"),
        (lambda: johansen(np.random.default_rng(0).normal(size=(50, 2)), det_order=2), ValueError, "2"),
    ],
)
def test_bad_arguments_name_the_value(call, exc: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        call()
