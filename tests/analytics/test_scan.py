"""scan_pairs pinned per pair to statsmodels 0.15 ``coint`` (p-values atol 1e-9),
``multipletests(method="fdr_bh")`` and :func:`quantify.analytics.half_life`."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.stattools import coint as sm_coint

from quantify.analytics.meanrev import half_life, hurst
from quantify.analytics.scan import SCAN_COLUMNS, benjamini_hochberg, limit_blas_threads, scan_pairs


def _panel(seed: int = 5, n: int = 400) -> pd.DataFrame:
    """Log prices near 60,000: four independent walks and one cointegrated pair."""
    rng = np.random.default_rng(seed)
    cols = {f"W{k}": np.log(60_000.0) + np.cumsum(rng.normal(0.0, 1e-3, n)) for k in range(4)}
    common = np.log(3_000.0) + np.cumsum(rng.normal(0.0, 1e-3, n))
    u = np.zeros(n)
    for t in range(1, n):
        u[t] = 0.7 * u[t - 1] + rng.normal(0.0, 2e-4)
    cols["ETH"] = common
    cols["ETC"] = 1.3 * common - 8.0 + u
    return pd.DataFrame(cols, index=pd.date_range("2024-01-01", periods=n, freq="1min"))


PANEL = _panel()


@pytest.fixture(scope="module")
def scanned() -> pd.DataFrame:
    with ThreadPoolExecutor(max_workers=2) as ex:
        return scan_pairs(PANEL, fdr=0.05, hurst=True, executor=ex, chunksize=4, progress=False)


def test_every_pair_equals_statsmodels_coint(scanned: pd.DataFrame) -> None:
    assert len(scanned) == 15
    assert list(scanned.columns) == [*SCAN_COLUMNS, "hurst", "q_value", "significant"]
    assert scanned["pvalue"].is_monotonic_increasing
    for row in scanned.itertuples():
        fwd = sm_coint(PANEL[row.y], PANEL[row.x], trend="c", autolag="aic")
        rev = sm_coint(PANEL[row.x], PANEL[row.y], trend="c", autolag="aic")
        assert_allclose(row.pvalue, fwd[1], atol=1e-9)
        assert_allclose(row.stat, fwd[0], rtol=1e-9)
        assert_allclose(row.pvalue_reverse, rev[1], atol=1e-9)
        assert row.pvalue <= row.pvalue_reverse  # the better ordering is reported
        spread = PANEL[row.y] - row.beta * PANEL[row.x] - row.alpha
        assert_allclose(row.half_life, half_life(spread).half_life, rtol=1e-9)
        assert_allclose(row.hurst, hurst(spread).hurst, rtol=1e-9)
        assert_allclose(row.corr_returns, PANEL[row.y].diff().corr(PANEL[row.x].diff()), atol=1e-12)
        assert_allclose(row.corr_levels, PANEL[row.y].corr(PANEL[row.x]), atol=1e-12)


def test_cointegrated_pair_comes_first(scanned: pd.DataFrame) -> None:
    top = scanned.iloc[0]
    assert {top["y"], top["x"]} == {"ETH", "ETC"}
    assert top["significant"] and top["pvalue"] < 1e-6
    beta = top["beta"] if top["y"] == "ETC" else 1.0 / top["beta"]
    assert_allclose(beta, 1.3, rtol=0.05)
    assert top["half_life"] < 5.0  # AR(1) 0.7 -> ln 2 / -ln 0.7 = 1.9 bars


def test_fdr_matches_multipletests(scanned: pd.DataFrame) -> None:
    reject, q, *_ = multipletests(scanned["pvalue"], alpha=0.05, method="fdr_bh")
    assert_allclose(scanned["q_value"], q, rtol=1e-12)
    assert (scanned["significant"].to_numpy() == reject).all()
    p = np.random.default_rng(0).uniform(size=200) ** 3
    assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_default_process_pool_and_inline_give_the_same_frame(scanned: pd.DataFrame) -> None:
    pooled = scan_pairs(PANEL, fdr=0.05, hurst=True, chunksize=2, progress=False)
    pd.testing.assert_frame_equal(pooled, scanned)
    small = PANEL[["W0", "W1", "ETH", "ETC"]]  # 6 pairs: runs inline
    inline = scan_pairs(small, progress=False)
    expect = scanned[scanned["y"].isin(small.columns) & scanned["x"].isin(small.columns)]
    assert_allclose(inline["pvalue"], expect["pvalue"], rtol=1e-12)


def test_one_ordering_filters_and_options() -> None:
    one = scan_pairs(PANEL, both_orderings=False, autolag=None, maxlag=2, trend="ct", progress=False)
    for row in one.itertuples():
        # column order decides the ordering: y is the earlier column
        assert list(PANEL.columns).index(row.y) < list(PANEL.columns).index(row.x)
        ref = sm_coint(PANEL[row.y], PANEL[row.x], trend="ct", autolag=None, maxlag=2)
        assert_allclose(row.pvalue, ref[1], atol=1e-9)
    assert one["pvalue_reverse"].isna().all()
    short = scan_pairs(PANEL, max_half_life=5.0, max_hurst=0.3, progress=False)
    assert (short["half_life"] <= 5.0).all() and (short["hurst"] <= 0.3).all()
    assert {short.iloc[0]["y"], short.iloc[0]["x"]} == {"ETH", "ETC"}
    assert short.attrs["n_pairs"] == 15


def test_progress_bar_writes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    scan_pairs(PANEL[["W0", "W1", "W2"]], progress=True)
    assert "pairs" in capsys.readouterr().err
    scan_pairs(PANEL[["W0", "W1", "W2"]], progress=False)
    assert capsys.readouterr().err == ""


def test_collinear_pair_gets_minus_inf_without_warning() -> None:
    frame = PANEL[["W0", "W1"]].assign(W2=lambda d: 2.0 * d["W0"] + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scan_pairs(frame, progress=False)
    row = out[(out["y"].isin(["W0", "W2"])) & (out["x"].isin(["W0", "W2"]))].iloc[0]
    assert row["stat"] == -np.inf and row["pvalue"] == 0.0


def test_limit_blas_threads_finds_openblas() -> None:
    assert limit_blas_threads(1) >= 0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"closes": PANEL["W0"]}, TypeError, "Series"),
        ({"closes": PANEL[["W0"]]}, ValueError, "W0"),
        ({"closes": PANEL.assign(W1=np.nan)}, ValueError, "W1"),
        ({"fdr": 1.5}, ValueError, "1.5"),
        ({"max_half_life": -1}, ValueError, "-1"),
        ({"executor": "dask"}, TypeError, "str"),
        ({"trend": "x"}, ValueError, "'x'"),
        ({"chunksize": 0}, ValueError, "0"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type[Exception], match: str) -> None:
    kwargs = {"closes": PANEL, "progress": False, **kwargs}
    with pytest.raises(exc, match=match):
        scan_pairs(**kwargs)
