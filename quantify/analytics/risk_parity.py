"""Risk parity (equal risk contribution) weights across assets or strategies.

Long-only weights summing to one whose contributions to portfolio variance
are equal (or follow a given risk budget), from a covariance matrix or from
returns.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantify.analytics import _validate
from quantify.analytics._results import Result

__all__ = ["RiskParityResult", "risk_parity"]


@dataclasses.dataclass(frozen=True, repr=False)
class RiskParityResult(Result):
    """Result of :func:`risk_parity`.

    Attributes
    ----------
    weights : Series
        Long-only weights summing to 1, by asset.
    risk_contributions : Series
        Each asset's share of portfolio variance,
        :math:`w_i(\\Sigma w)_i / w^\\top\\Sigma w` (sums to 1; equals
        ``budget`` at the solution).
    budget : Series
        The risk budget solved for (equal shares by default).
    volatility : float
        Portfolio volatility :math:`\\sqrt{w^\\top\\Sigma w}`, in the units of
        the covariance (per bar when estimated from bar returns).
    equal_weight_volatility : float
        The same for equal weights, for comparison.
    max_error : float
        Largest absolute gap between a risk contribution and its budget.
    iterations : int
        Sweeps of the coordinate descent.
    n_assets : int
    n_obs : int
        Rows of returns used (0 when a covariance was given).
    """

    _title: ClassVar[str] = "Risk parity"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "n_assets", "n_obs", "volatility", "equal_weight_volatility", "max_error", "iterations",
    )
    weights: pd.Series
    risk_contributions: pd.Series
    budget: pd.Series
    volatility: float
    equal_weight_volatility: float
    max_error: float
    iterations: int
    n_assets: int
    n_obs: int

    def _rows(self) -> list[tuple[str, Any]]:
        rows = super()._rows()
        return [*rows, *((f"weight {k}", float(v)) for k, v in self.weights.items())]


def _covariance(returns: Any, cov: Any) -> tuple[pd.DataFrame, int]:
    """The covariance to solve on, and the number of return rows it came from (0 if given)."""
    if (returns is None) == (cov is None):
        raise ValueError("risk_parity: pass returns or cov=, exactly one of them")
    if cov is not None:
        if not isinstance(cov, (pd.DataFrame, np.ndarray)):
            raise TypeError(f"risk_parity: cov must be a square DataFrame or 2-d array, got {type(cov).__name__}")
        try:
            values = np.asarray(cov, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError("risk_parity: cov must be numeric") from exc
        frame = cov if isinstance(cov, pd.DataFrame) else pd.DataFrame(values)
        if values.ndim != 2 or values.shape[0] != values.shape[1]:
            raise ValueError(f"risk_parity: cov must be square, got shape {values.shape}")
        if isinstance(cov, pd.DataFrame) and not frame.index.equals(frame.columns):
            raise ValueError("risk_parity: cov's index and columns must name the same assets in the same order")
        _validate.check_values("risk_parity", "cov", values.ravel(), "refuse")
        if not np.allclose(values, values.T, rtol=1e-10, atol=0.0):
            raise ValueError("risk_parity: cov is not symmetric")
        return pd.DataFrame(values, index=frame.columns, columns=frame.columns), 0
    if not isinstance(returns, pd.DataFrame):
        raise TypeError("risk_parity: returns must be a DataFrame with one column per asset, "
                        f"got {type(returns).__name__}")
    try:
        values = returns.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"risk_parity: returns must be numeric, got dtypes {list(returns.dtypes)}") from exc
    _validate.check_values("risk_parity", "returns", values.ravel(), "drop")
    complete = values[~np.isnan(values).any(axis=1)]
    _validate.need("risk_parity", max(3, values.shape[1] + 1),
                   "rows of returns with every asset finite (assets + 1)", int(complete.shape[0]))
    c = np.cov(complete, rowvar=False, ddof=1)
    return pd.DataFrame(c, index=returns.columns, columns=returns.columns), int(complete.shape[0])


def _ccd(sigma: np.ndarray, budget: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Cyclical coordinate descent on Spinu's convex problem; returns unnormalised x and sweeps."""
    n = sigma.shape[0]
    diag = np.diag(sigma)
    x = 1.0 / np.sqrt(diag)  # inverse-volatility start
    x *= math.sqrt(float(budget.sum()) / float(x @ sigma @ x))
    for sweep in range(1, max_iter + 1):
        old = x.copy()
        for i in range(n):
            c = float(sigma[i] @ x) - diag[i] * x[i]
            x[i] = (-c + math.sqrt(c * c + 4.0 * diag[i] * budget[i])) / (2.0 * diag[i])
        if float(np.max(np.abs(x - old) / x)) < tol:
            return x, sweep
    raise ValueError(f"risk_parity did not converge in {max_iter} sweeps (tolerance {tol:g}); "
                     "the covariance may be near-singular")


def risk_parity(
    returns: pd.DataFrame | None = None,
    *,
    cov: pd.DataFrame | np.ndarray | None = None,
    budget: pd.Series | np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> RiskParityResult:
    """Equal-risk-contribution (or risk-budget) weights.

    Parameters
    ----------
    returns : DataFrame, optional
        One column of returns per asset or strategy; rows with a NaN are left
        out. The sample covariance (ddof 1) of the rest is used.
    cov : DataFrame or 2-d array, optional
        Instead of ``returns``: the covariance matrix (symmetric, positive
        definite, same labels on index and columns).
    budget : Series or array, optional
        Target shares of risk, positive (normalised to sum to 1); default
        equal shares.
    tol : float, default 1e-12
        Largest relative change of a weight in a sweep at convergence.
    max_iter : int, default 10000
        Sweeps before giving up.

    Returns
    -------
    RiskParityResult

    Raises
    ------
    ValueError
        Without exactly one of ``returns`` and ``cov``; on an infinite
        value, an asymmetric or not positive-definite covariance, too few
        complete rows (assets + 1), a bad budget, or no convergence.
    TypeError
        If an input has the wrong type.

    Notes
    -----
    Solves Spinu's (2013) convex problem
    :math:`\\min_{x>0} \\tfrac12 x^\\top\\Sigma x - \\sum_i b_i \\ln x_i`, whose
    first-order condition :math:`x_i(\\Sigma x)_i = b_i` is the risk budget,
    by cyclical coordinate descent (Griveau-Billion, Richard and Roncalli,
    2013): each coordinate in turn is the positive root of
    :math:`\\Sigma_{ii}x_i^2 + (\\Sigma x - \\Sigma_{ii}x_i)_i\\,x_i - b_i = 0`;
    then :math:`w = x/\\sum x`. The problem is strictly convex for a
    positive-definite :math:`\\Sigma`, so the solution is unique and equals
    that of riskfolio-lib's ``rp_optimization`` or a cvxpy solve of the same
    objective (the tests compare with PyPortfolioOpt's convex optimiser to
    1e-6). Weights are scale-free: a covariance in any unit gives the same
    weights.
    """
    c, n_obs = _covariance(returns, cov)
    tol = _validate.check_number(tol, "tol", positive=True)
    max_iter = _validate.check_int(max_iter, "max_iter", 1)
    n = c.shape[0]
    _validate.need("risk_parity", 1, "assets", n)
    sigma = c.to_numpy()
    try:
        np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError as exc:
        raise ValueError("risk_parity: the covariance is not positive definite (a constant or duplicated "
                         "asset, or fewer rows than assets); drop the offending columns") from exc
    if budget is None:
        b = np.full(n, 1.0 / n)
    else:
        bs = budget.reindex(c.columns) if isinstance(budget, pd.Series) else budget
        b = np.asarray(bs, dtype=np.float64)
        if b.shape != (n,):
            raise ValueError(f"risk_parity: budget needs one share per asset ({n}), got shape {b.shape}")
        if not np.all(np.isfinite(b)) or not np.all(b > 0):
            raise ValueError(f"risk_parity: budget shares must be finite and > 0 (every asset named), got {b!r}")
        b = b / b.sum()
    # solve on a unit-scaled covariance: the weights are unchanged and the roots stay well conditioned
    scale = float(np.mean(np.diag(sigma)))
    x, sweeps = _ccd(sigma / scale, b, tol, max_iter)
    w = x / x.sum()
    var = float(w @ sigma @ w)
    rc = w * (sigma @ w) / var
    ew = np.full(n, 1.0 / n)
    labels = c.columns
    return RiskParityResult(
        weights=pd.Series(w, index=labels, name="weight"),
        risk_contributions=pd.Series(rc, index=labels, name="risk_contribution"),
        budget=pd.Series(b, index=labels, name="budget"),
        volatility=math.sqrt(var),
        equal_weight_volatility=math.sqrt(float(ew @ sigma @ ew)),
        max_error=float(np.max(np.abs(rc - b))),
        iterations=sweeps,
        n_assets=n,
        n_obs=n_obs,
    )
