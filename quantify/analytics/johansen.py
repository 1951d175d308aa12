"""Johansen's cointegration test for several series.

Equal to statsmodels' ``coint_johansen`` (trace and maximum-eigenvalue
statistics, critical values from statsmodels' own ``c_sjt``/``c_sja`` tables).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.linalg import eigh
from statsmodels.tsa.coint_tables import c_sja, c_sjt

from quantify.analytics import _validate
from quantify.analytics._results import Result

__all__ = ["JohansenResult", "johansen"]


@dataclasses.dataclass(frozen=True, repr=False)
class JohansenResult(Result):
    """Result of :func:`johansen`.

    Attributes
    ----------
    trace_stat, max_eig_stat : ndarray
        Statistics for the null ``rank <= r``, r = 0..k-1.
    trace_crit, max_eig_crit : DataFrame
        Critical values, rows r, columns ``"90%", "95%", "99%"`` (Osterwald-Lenum
        tables via statsmodels' ``c_sjt``/``c_sja``).
    eigenvalues : ndarray
        Descending.
    eigenvectors : DataFrame
        Cointegrating vectors in columns (same order), normalised
        :math:`v' S_{11} v = 1`.
    nobs, det_order, k_ar_diff : int
    """

    _title: ClassVar[str] = "Johansen cointegration test"
    trace_stat: np.ndarray
    max_eig_stat: np.ndarray
    trace_crit: pd.DataFrame
    max_eig_crit: pd.DataFrame
    eigenvalues: np.ndarray
    eigenvectors: pd.DataFrame
    nobs: int
    det_order: int
    k_ar_diff: int

    @property
    def rank(self) -> int:
        """Cointegration rank chosen by the trace test at 95%."""
        below = self.trace_stat < self.trace_crit["95%"].to_numpy()
        return int(np.argmax(below)) if below.any() else len(self.trace_stat)

    def _rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("nobs", self.nobs), ("det_order", self.det_order), ("k_ar_diff", self.k_ar_diff),
        ]
        for r in range(len(self.trace_stat)):
            tc = self.trace_crit.iloc[r]
            mc = self.max_eig_crit.iloc[r]
            rows.append((f"trace r<={r}", f"{self.trace_stat[r]:.4f} (95%: {tc['95%']:.4f})"))
            rows.append((f"max-eig r<={r}", f"{self.max_eig_stat[r]:.4f} (95%: {mc['95%']:.4f})"))
        rows.append(("rank (trace, 95%)", self.rank))
        return rows


# as :data:`quantify.analytics.stationarity.MIN_OBS`: fewer rows make no meaningful test
_MIN_OBS = 20


def _detrend(a: np.ndarray, order: int) -> np.ndarray:
    if order < 0:
        return a
    v = np.vander(np.linspace(-1, 1, a.shape[0]), order + 1)
    coef, *_ = np.linalg.lstsq(v, a, rcond=None)
    return a - v @ coef


def _partial_out(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    if z.size == 0:
        return a
    coef, *_ = np.linalg.lstsq(z, a, rcond=None)
    return a - z @ coef


def johansen(frame: pd.DataFrame | np.ndarray, det_order: int = 0, k_ar_diff: int = 1) -> JohansenResult:
    """Johansen trace and maximum-eigenvalue cointegration tests.

    Parameters
    ----------
    frame : DataFrame or 2-d array
        One column per series (2 to 12 columns), finite (a NaN is refused),
        no constant column, at least ``max(20, k (k_ar_diff + 1) + k_ar_diff
        + 2)`` rows.
    det_order : {-1, 0, 1}
        -1 no deterministic terms, 0 constant, 1 linear trend (polynomial
        detrending of the levels, as statsmodels).
    k_ar_diff : int
        Lagged differences in the VECM.

    Returns
    -------
    JohansenResult

    Notes
    -----
    With :math:`R_0` (differences) and :math:`R_1` (lagged levels) purged of the
    lagged differences, :math:`S_{ij} = R_i'R_j/T`, the eigenvalues solve
    :math:`|\\lambda S_{11} - S_{10}S_{00}^{-1}S_{01}| = 0`; trace
    :math:`= -T\\sum_{i>r}\\log(1-\\lambda_i)`, max-eig :math:`= -T\\log(1-\\lambda_{r+1})`.
    Same steps as ``statsmodels.tsa.vector_ar.vecm.coint_johansen``. Where we
    differ: the symmetric-definite generalised eigenproblem is solved with
    ``scipy.linalg.eigh`` rather than ``eig`` of :math:`S_{11}^{-1}S_{10}S_{00}^{-1}S_{01}`,
    and each eigenvector's sign is fixed so its first non-zero element is
    positive (statsmodels flips all columns by the sign of the [0, 0] element
    only), so columns can differ from statsmodels' in sign only.
    """
    if isinstance(frame, pd.DataFrame):
        names = [str(c) for c in frame.columns]
    else:
        names = []
    if not isinstance(frame, (pd.DataFrame, np.ndarray)):
        raise TypeError(f"frame must be a DataFrame or a 2-d array, got {type(frame).__name__}")
    try:
        data = np.asarray(frame, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"frame must be numeric, got {type(frame).__name__}") from exc
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError(f"frame must be 2-d with at least 2 columns, got shape {data.shape}")
    if data.shape[1] > 12:
        raise ValueError(f"critical values exist for at most 12 series, got {data.shape[1]}")
    if isinstance(det_order, bool) or det_order not in (-1, 0, 1):
        raise ValueError(f"det_order must be -1, 0 or 1, got {det_order!r}")
    if isinstance(k_ar_diff, bool) or not isinstance(k_ar_diff, (int, np.integer)) or k_ar_diff < 0:
        raise ValueError(f"k_ar_diff must be an int >= 0, got {k_ar_diff!r}")
    nobs, k = data.shape
    names = names or [f"y{i}" for i in range(k)]
    for j in range(k):
        _validate.check_values("johansen", f"column {names[j]!r}", data[:, j], "refuse")
    minimum = max(k * (k_ar_diff + 1) + k_ar_diff + 2, _MIN_OBS)
    _validate.need(
        "johansen", minimum, f"finite rows of frame for {k} series and k_ar_diff={k_ar_diff}", nobs
    )
    for j in range(k):
        _validate.check_not_constant("johansen", f"column {names[j]!r}", data[:, j],
                                     why="a constant series has no stochastic trend to test")
    try:
        return _johansen(data, names, det_order, int(k_ar_diff))
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"johansen: the columns of frame are (nearly) collinear or their differences are; "
            f"the moment matrices are singular ({exc})"
        ) from exc


def _johansen(data: np.ndarray, names: list[str], det_order: int, k_ar_diff: int) -> JohansenResult:
    """The test on validated input."""
    k = data.shape[1]
    f = 0 if det_order > -1 else det_order
    levels = _detrend(data, det_order)
    dx = np.diff(levels, axis=0)
    t = dx.shape[0] - k_ar_diff
    z = np.empty((t, k * k_ar_diff))
    for j in range(1, k_ar_diff + 1):
        z[:, (j - 1) * k : j * k] = dx[k_ar_diff - j : k_ar_diff - j + t]
    z = _detrend(z, f)
    r0 = _partial_out(_detrend(dx[k_ar_diff:], f), z)
    # y_{t-k_ar_diff} as statsmodels; any lag of the level spans the same space here
    r1 = _partial_out(_detrend(levels[1 : 1 + t], f), z)
    s11 = r1.T @ r1 / t
    s10 = r1.T @ r0 / t
    s00 = r0.T @ r0 / t
    sig = s10 @ np.linalg.solve(s00, s10.T)
    sig = 0.5 * (sig + sig.T)
    eigval, eigvec = eigh(sig, s11)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    for j in range(k):
        nz = np.flatnonzero(eigvec[:, j])
        if nz.size and eigvec[nz[0], j] < 0:
            eigvec[:, j] = -eigvec[:, j]
    if not np.all((eigval > -1e-12) & (eigval < 1.0)):
        raise np.linalg.LinAlgError(f"eigenvalues {eigval!r} outside [0, 1)")
    log1m = np.log(1.0 - eigval)
    trace = -t * np.cumsum(log1m[::-1])[::-1]
    max_eig = -t * log1m
    cols = ["90%", "95%", "99%"]
    cvt = pd.DataFrame([c_sjt(k - i, det_order) for i in range(k)], columns=cols)
    cvm = pd.DataFrame([c_sja(k - i, det_order) for i in range(k)], columns=cols)
    return JohansenResult(
        trace_stat=trace,
        max_eig_stat=max_eig,
        trace_crit=cvt,
        max_eig_crit=cvm,
        eigenvalues=eigval,
        eigenvectors=pd.DataFrame(eigvec, index=names),
        nobs=t,
        det_order=det_order,
        k_ar_diff=int(k_ar_diff),
    )
