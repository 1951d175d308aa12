"""VaR and expected shortfall: closed forms on normal data, arch on real candles_2018 returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

import quantify as qf
from quantify.analytics import risk

RNG = np.random.default_rng(17)
NORMAL = pd.Series(RNG.normal(0.0005, 0.01, 20_000),
                   index=pd.date_range("2024-01-01", periods=20_000, freq="5min", tz="UTC"))
COINS = ("ETC", "LTC", "NXT", "TRX", "XMR")  # 5-minute returns whose Student-t fit has dof > 3


def _returns(coin: str) -> pd.Series:
    close = qf.datasets.candles_2018()[coin].dropna()
    return np.log(close).diff().dropna()


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_normal_var_and_es_equal_scipy_closed_forms(level: float) -> None:
    r = NORMAL.to_numpy()
    mu, sd, a = r.mean(), r.std(ddof=1), 1 - level
    res = qf.value_at_risk(NORMAL, level, method="normal")
    assert_allclose(res.var, -stats.norm.ppf(a, mu, sd), rtol=1e-12)
    assert_allclose(res.es, -(mu - sd * stats.norm.pdf(stats.norm.ppf(a)) / a), rtol=1e-12)
    # ES is the mean of the quantiles beyond the VaR: numerical integral of the normal quantile
    tail, _ = integrate.quad(lambda u: stats.norm.ppf(u, mu, sd), 0, a)
    assert_allclose(res.es, -tail / a, rtol=1e-7)


def test_parametric_horizon_scales_mean_by_h_and_deviation_by_sqrt_h() -> None:
    r = NORMAL.to_numpy()
    mu, sd, z = r.mean(), r.std(ddof=1), stats.norm.ppf(0.01)
    res = qf.value_at_risk(NORMAL, 0.99, method="normal", horizon=4)
    assert res.horizon == 4
    assert_allclose(res.var, -(4 * mu + 2 * sd * z), rtol=1e-12)
    r = _returns("XMR").to_numpy()
    dof, loc, scale = stats.t.fit(r)
    four = qf.value_at_risk(r, 0.99, method="student-t", horizon=4)
    assert_allclose(four.var, -(4 * loc + 2 * scale * stats.t.ppf(0.01, dof)), rtol=1e-10)


def test_every_method_agrees_with_the_true_normal_quantile_on_normal_data() -> None:
    """20,000 normal draws: every estimate is within sampling error of the true 99 % VaR and ES."""
    true_var = -stats.norm.ppf(0.01, 0.0005, 0.01)
    true_es = -(0.0005 - 0.01 * stats.norm.pdf(stats.norm.ppf(0.01)) / 0.01)
    for method in qf.analytics.VAR_METHODS:
        res = qf.value_at_risk(NORMAL, 0.99, method=method)
        assert_allclose(res.var, true_var, rtol=0.05, err_msg=method)
        assert_allclose(res.es, true_es, rtol=0.06, err_msg=method)
        assert res.es >= res.var > 0


def test_student_t_es_matches_the_integral_of_its_quantile() -> None:
    res = qf.value_at_risk(_returns("LTC"), 0.99, method="student-t")
    dof, loc, scale = stats.t.fit(_returns("LTC"))
    assert_allclose(res.dof, dof, rtol=1e-12)
    assert_allclose(res.var, -stats.t.ppf(0.01, dof, loc, scale), rtol=1e-10)
    tail, _ = integrate.quad(lambda u: stats.t.ppf(u, dof, loc, scale), 0, 0.01, limit=200)
    assert_allclose(res.es, -tail / 0.01, rtol=1e-6)


def test_cornish_fisher_es_matches_the_integral_of_its_quantile() -> None:
    r = _returns("XMR")
    res = qf.value_at_risk(r, 0.975, method="cornish-fisher")
    mu, sd = r.mean(), r.std(ddof=1)
    s, k = stats.skew(r), stats.kurtosis(r)
    q = lambda u: mu + sd * risk._cornish_fisher_z(stats.norm.ppf(u), s, k)  # noqa: E731
    assert_allclose(res.var, -q(0.025), rtol=1e-12)
    tail, _ = integrate.quad(q, 0, 0.025, limit=200)
    assert_allclose(res.es, -tail / 0.025, rtol=1e-6)
    # no skew, no excess kurtosis: Cornish-Fisher is the normal quantile
    assert risk._cornish_fisher_z(-2.0, 0.0, 0.0) == -2.0


@pytest.mark.parametrize("coin", COINS)
def test_parametric_var_equals_arch_constant_variance_models_on_real_returns(coin: str) -> None:
    """arch 8's ConstantMean/ConstantVariance fits, normal and (unit-variance) Student-t, as a second implementation."""
    arch = pytest.importorskip("arch")
    r = _returns(coin)
    n = len(r)
    for dist, method in (("normal", "normal"), ("t", "student-t")):
        fit = arch.arch_model(r * 100, mean="Constant", vol="Constant", dist=dist).fit(disp="off")
        mu, sigma = fit.params["mu"] / 100, np.sqrt(fit.params["sigma2"]) / 100
        ours = qf.value_at_risk(r, 0.99, method=method)
        if dist == "normal":  # arch's sigma2 is the MLE (ddof 0); ours the sample variance (ddof 1)
            q = stats.norm.ppf(0.01)
            assert_allclose(ours.var, -(mu + sigma * np.sqrt(n / (n - 1)) * q), rtol=1e-5)
        else:
            nu = fit.params["nu"]
            q = fit.model.distribution.ppf(0.01, np.array([nu]))
            assert_allclose(ours.dof, nu, rtol=1e-4)
            assert_allclose(ours.var, -(mu + sigma * q), rtol=1e-3)


def test_historical_var_is_the_empirical_quantile_and_es_the_tail_mean() -> None:
    r = _returns("ETH")
    res = qf.value_at_risk(r, 0.99)
    q = np.quantile(r, 0.01)
    assert res.var == -q and res.es == -r[r <= q].mean() and res.n == len(r)
    two = qf.value_at_risk(r, 0.99, horizon=2)
    assert_allclose(two.var, -np.quantile(r.rolling(2).sum().dropna(), 0.01), rtol=1e-12)


def test_position_pair_and_portfolio_inputs() -> None:
    c = qf.datasets.candles_2018()[["LTC", "XMR", "ETC"]].dropna()
    r = np.log(c["LTC"]).diff().dropna()
    assert_allclose(qf.value_at_risk(r, notional=2_000.0).var, 2_000.0 * qf.value_at_risk(r).var)
    assert qf.value_at_risk(r, notional=1.0).unit == "currency"
    a = qf.backtest_pairs(c["LTC"], c["XMR"], window=60, capital=1_000.0)
    b = qf.backtest_pairs(c["LTC"], c["ETC"], window=60, capital=1_000.0)
    one = qf.value_at_risk(a, 0.95)
    assert one.unit == "currency" and one.n == len(a.pnl)
    both = qf.value_at_risk([a, b], 0.95)
    summed = a.pnl["total_pnl"] + b.pnl["total_pnl"]
    assert_allclose(both.var, -np.quantile(summed, 0.05))
    assert_allclose(qf.pnl_of([a, b]), summed)
    with pytest.raises(ValueError, match="notional"):
        qf.value_at_risk(a, notional=3.0)
    with pytest.raises(TypeError, match="pnl_of: item 1"):
        qf.pnl_of([a, 3.0])


def test_rolling_var_uses_only_earlier_bars_and_matches_value_at_risk() -> None:
    r = _returns("LTC").iloc[:600]
    for method in ("historical", "normal", "cornish-fisher"):
        rv = qf.rolling_var(r, 250, 0.99, method=method)
        assert rv.iloc[:250].isna().all()
        t = 400
        ref = qf.value_at_risk(r.iloc[t - 250:t], 0.99, method=method).var
        assert_allclose(rv.iloc[t], ref, rtol=1e-9, err_msg=method)
        changed = r.copy()
        changed.iloc[t:] = 0.5  # the future cannot move a forecast
        assert_allclose(qf.rolling_var(changed, 250, 0.99, method=method).iloc[: t + 1], rv.iloc[: t + 1])
    with pytest.raises(ValueError, match="method"):
        qf.rolling_var(r, 250, method="student-t")


def test_result_renders_and_bad_arguments_name_themselves() -> None:
    res = qf.value_at_risk(NORMAL, 0.95, method="normal")
    assert "Value at risk" in res.summary() and "<table" in res._repr_html_()
    with pytest.raises(ValueError, match="level"):
        qf.value_at_risk(NORMAL, 95)
    with pytest.raises(ValueError, match="method"):
        qf.value_at_risk(NORMAL, method="garch")
    with pytest.raises(ValueError, match="at least 20"):
        qf.value_at_risk(NORMAL.iloc[:5])
    with pytest.raises(ValueError, match="constant"):
        qf.value_at_risk(pd.Series(np.full(50, 0.01)), method="normal")
