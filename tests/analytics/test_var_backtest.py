"""Kupiec and Christoffersen VaR backtests against a published worked example and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import quantify as qf


def _hits_with(n00: int, n01: int, n10: int, n11: int) -> np.ndarray:
    """A 0/1 series starting and ending at 0 with exactly these transition counts (n01 == n10)."""
    assert n01 == n10 and n11 <= n01
    runs = [2 if i < n11 else 1 for i in range(n01)]  # n11 runs of two exceptions, the rest single
    zeros = n00 + n01 + 1  # zero runs: one more than the exception runs
    gaps = [zeros // (n01 + 1)] * (n01 + 1)
    gaps[-1] += zeros - sum(gaps)
    out: list[int] = []
    for i, gap in enumerate(gaps):
        out += [0] * gap
        if i < n01:
            out += [1] * runs[i]
    return np.array(out)


def test_statistics_equal_matlab_varbacktest_worked_example() -> None:
    """MathWorks Risk Management Toolbox, ``varbacktest`` documentation, pages ``cc`` and ``cci``
    (https://mathworks.com/help/risk/varbacktest.cc.html): the ``VaRBacktestData`` equity index
    against its normal 95 % VaR, 1,043 observations, 57 failures, N00 932, N10 53, N01 53, N11 4:
    LRatioPOF 0.46147 (p 0.49694), LRatioCCI 0.25866 (p 0.61104), LRatioCC 0.72013 (p 0.69763)."""
    hits = _hits_with(932, 53, 53, 4)
    assert hits.size == 1043 and hits.sum() == 57
    returns = np.where(hits == 1, -2.0, 0.0)
    res = qf.var_backtest(returns, 1.0, level=0.95)
    assert (res.n, res.exceptions, res.n00, res.n01, res.n10, res.n11) == (1043, 57, 932, 53, 53, 4)
    assert_allclose([res.lr_pof, res.p_pof], [0.46147, 0.49694], atol=5e-6)
    assert_allclose([res.lr_ind, res.p_ind], [0.25866, 0.61104], atol=5e-6)
    assert_allclose([res.lr_cc, res.p_cc], [0.72013, 0.69763], atol=5e-6)


def test_kupiec_closed_form_and_chi2_p_values() -> None:
    n, x, a = 250, 8, 0.01
    hits = np.zeros(n)
    hits[np.arange(x) * 30] = 1
    res = qf.var_backtest(np.where(hits == 1, -1.0, 0.0), 0.5, level=0.99)
    ref = -2 * (np.log((1 - a) ** (n - x) * a**x) - np.log((1 - x / n) ** (n - x) * (x / n) ** x))
    assert_allclose(res.lr_pof, ref, rtol=1e-12)
    assert_allclose(res.p_pof, stats.chi2.sf(ref, 1), rtol=1e-12)
    assert res.n11 == 0 and res.p_cc == pytest.approx(stats.chi2.sf(res.lr_cc, 2))
    none = qf.var_backtest(np.zeros(100), 0.5, level=0.99)  # no exception: 0 log 0 = 0, no warning
    assert none.exceptions == 0 and none.lr_pof == pytest.approx(-2 * 100 * np.log(0.99))


def test_a_right_normal_var_passes_on_normal_data_and_clustered_exceptions_fail_independence() -> None:
    rng = np.random.default_rng(3)
    r = pd.Series(rng.normal(0, 0.01, 5_000))
    var = -stats.norm.ppf(0.01, 0, 0.01)
    res = qf.var_backtest(r, var, 0.99)
    assert res.p_pof > 0.05 and res.p_cc > 0.05
    assert abs(res.rate - 0.01) < 0.004
    clustered = r.copy()
    clustered.iloc[1000:1040] = -0.05  # one turbulent stretch of 40 bars
    bad = qf.var_backtest(clustered, var, 0.99)
    assert bad.p_ind < 1e-6 and bad.n11 >= 39


def test_rolling_forecasts_on_real_returns_and_nan_warmup_is_left_out() -> None:
    close = qf.datasets.candles_2018()["LTC"].dropna()
    r = np.log(close).diff().dropna()
    var = qf.rolling_var(r, 500, 0.99, method="historical")
    res = qf.var_backtest(r, var, 0.99)
    assert res.n == len(r) - 500 and len(res.hits) == res.n
    assert res.hits.index[0] == r.index[500]
    assert "VaR backtest" in res.summary() and "<table" in res._repr_html_()
    with pytest.raises(ValueError, match="NaN"):
        qf.var_backtest(r.where(r.index != r.index[3]), var, 0.99)
    with pytest.raises(ValueError, match="level"):
        qf.var_backtest(r, var, 1.5)
