"""Risk parity weights against PyPortfolioOpt's convex optimiser (cvxpy) solving Spinu's problem.

Reference: PyPortfolioOpt 1.6 ``BaseConvexOptimizer.convex_objective`` with
Clarabel, minimising ``0.5 x' S x - sum(b log x)`` over ``x > 0`` and
normalising, the formulation riskfolio-lib's ``rp_optimization`` uses too.
PyPortfolioOpt (with cvxpy) is a test-only dependency in the ``[test]`` extra;
riskfolio-lib 7.4 was not used because installing it upgrades pandas to 3.x
and brings vectorbt, astropy and plotly with it.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from pypfopt.base_optimizer import BaseConvexOptimizer

from quantify import datasets
from quantify.analytics import risk_parity


def _reference(cov: pd.DataFrame, budget: np.ndarray | None = None) -> pd.Series:
    n = cov.shape[0]
    b = np.full(n, 1.0 / n) if budget is None else budget / budget.sum()
    s = cov.to_numpy() / float(np.mean(np.diag(cov.to_numpy())))  # unit scale: the solver's tolerances are absolute
    # upper bound np.inf: PyPortfolioOpt reads None as 1, which binds on the unnormalised x
    opt = BaseConvexOptimizer(n, list(cov.columns), weight_bounds=(0.0, np.inf), solver="CLARABEL",
                              solver_options={"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12})
    x = opt.convex_objective(lambda w: 0.5 * cp.quad_form(w, cp.psd_wrap(s)) - cp.sum(cp.multiply(b, cp.log(w))),
                             weights_sum_to_one=False)
    raw = pd.Series(x)
    return raw / raw.sum()


@pytest.fixture(scope="module")
def coin_returns() -> pd.DataFrame:
    """5-minute simple returns of the bundled 2018 universe (ten coins in BTC)."""
    return datasets.candles_2018().ffill().pct_change().dropna()


def test_weights_equal_the_reference_on_real_returns(coin_returns: pd.DataFrame) -> None:
    res = risk_parity(coin_returns)
    ref = _reference(coin_returns.cov())
    assert res.n_obs == len(coin_returns) and res.n_assets == 10
    assert_allclose(res.weights.to_numpy(), ref[res.weights.index].to_numpy(), atol=1e-6, rtol=0)
    assert_allclose(res.risk_contributions.to_numpy(), 0.1, atol=1e-12)
    assert res.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert res.volatility < res.equal_weight_volatility


def test_weights_equal_the_reference_on_a_constructed_covariance() -> None:
    vols = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    corr = np.full((5, 5), 0.3) + 0.7 * np.eye(5)
    corr[0, 1] = corr[1, 0] = 0.8
    corr[3, 4] = corr[4, 3] = -0.2
    cov = pd.DataFrame(np.outer(vols, vols) * corr, index=list("ABCDE"), columns=list("ABCDE"))
    res = risk_parity(cov=cov)
    assert_allclose(res.weights.to_numpy(), _reference(cov).to_numpy(), atol=1e-6, rtol=0)
    budget = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    bud = risk_parity(cov=cov.to_numpy(), budget=budget)
    assert_allclose(bud.weights.to_numpy(), _reference(cov, budget).to_numpy(), atol=1e-6, rtol=0)
    assert_allclose(bud.risk_contributions.to_numpy(), budget, atol=1e-12)


def test_uncorrelated_assets_get_inverse_volatility_weights() -> None:
    vols = np.array([0.05, 0.1, 0.2])
    res = risk_parity(cov=np.diag(vols**2))
    inv = (1 / vols) / (1 / vols).sum()
    assert_allclose(res.weights.to_numpy(), inv, rtol=1e-12)
    assert "weight 0" in res.summary() and "<table" in res._repr_html_()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, r"exactly one"),
        ({"cov": np.array([[1.0, 0.5], [0.4, 1.0]])}, ValueError, r"not symmetric"),
        ({"cov": np.array([[1.0, 1.0], [1.0, 1.0]])}, ValueError, r"not positive definite"),
        ({"cov": np.eye(3)[:2]}, ValueError, r"must be square"),
        ({"cov": np.eye(2), "budget": np.array([1.0, 0.0])}, ValueError, r"budget shares must be finite and > 0"),
        ({"cov": [[1.0]]}, TypeError, r"cov must be a square DataFrame"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        risk_parity(**kwargs)


def test_returns_with_too_few_complete_rows_are_refused(coin_returns: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"risk_parity needs at least 11 rows of returns .*; got 5"):
        risk_parity(coin_returns.iloc[:5])
