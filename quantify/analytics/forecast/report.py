"""The result of a walk-forward evaluation: per-fold and pooled errors, beside the baselines."""

from __future__ import annotations

import dataclasses
import html
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantify.analytics._plotting import bqplot
from quantify.analytics._results import Result

__all__ = ["WalkForwardReport"]

#: The baselines' names, in the order reported.
BASELINE_NAMES = ("zero", "ar1", "last_sign")
_COLOURS = ["#999999", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b"]


def hits(direction: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per row with a non-zero actual return: 1 for the right sign, 0 for the wrong one, 1/2 for no call."""
    moved = actual != 0
    d, a = np.sign(direction[moved]), np.sign(actual[moved])
    return np.where(d == 0, 0.5, (d == a).astype(float))


def scores(pred: np.ndarray, direction: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """MSE and MAE of the return, hit rate of the direction and its standard error, row count."""
    err = pred - actual
    h = hits(direction, actual)
    rate = float(h.mean()) if h.size else float("nan")
    se = float(np.sqrt(rate * (1.0 - rate) / h.size)) if h.size else float("nan")
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "hit_rate": rate,
            "hit_se": se, "n": len(actual)}


def verdict(overall: pd.DataFrame, models: list[str]) -> str:
    """One sentence per model: does it beat every baseline on MSE and on hit rate (by 2 standard errors)?"""
    if not models:
        return "baselines only: no model was evaluated"
    base = overall.loc[list(BASELINE_NAMES)]
    best_mse, best_hit = base["mse"].idxmin(), base["hit_rate"].idxmax()
    lines = []
    for m in models:
        row = overall.loc[m]
        mse_ratio = row["mse"] / base.loc[best_mse, "mse"]
        hit_gap = row["hit_rate"] - base.loc[best_hit, "hit_rate"]
        beats_mse = mse_ratio < 1.0
        beats_hit = hit_gap > 2.0 * row["hit_se"]
        status = ("beats the baselines" if beats_mse and beats_hit else
                  "beats the baselines on MSE only" if beats_mse else
                  "beats the baselines on direction only" if beats_hit else "does not beat the baselines")
        lines.append(f"{m} {status}: MSE {mse_ratio:.3f}x the best baseline's ({best_mse}), hit rate "
                     f"{100 * row['hit_rate']:.1f}% vs {100 * base.loc[best_hit, 'hit_rate']:.1f}% ({best_hit})")
    return "; ".join(lines)


@dataclasses.dataclass(frozen=True, repr=False)
class WalkForwardReport(Result):
    """Result of :func:`~quantify.analytics.walk_forward`.

    Attributes
    ----------
    overall : DataFrame
        One row per model (the baselines ``zero``, ``ar1``, ``last_sign``
        first), pooled over every test row: ``mse`` and ``mae`` of the
        return, ``hit_rate`` of the direction and its standard error
        ``hit_se``, ``r2_oos`` (``1 - mse / mse of zero``: out-of-sample R²
        against a zero forecast) and ``n`` test rows.
    folds : DataFrame
        One row per fold and model: ``fold``, ``model``, ``train_start``,
        ``train_end``, ``test_start``, ``test_end`` (index labels),
        ``n_train``, ``n_test``, ``mse``, ``mae``, ``hit_rate``.
    predictions : DataFrame
        On the test rows' index: ``actual`` (the target), ``fold``, and the
        predicted return of each model.
    directions : DataFrame
        The direction each model called (+1, -1, 0 for no call) on the same rows.
    verdict : str
        Per model, whether it beats every baseline: a lower pooled MSE than
        the best baseline's, and a hit rate above the best baseline's by more
        than two of its standard errors.
    models : tuple of str
        The models evaluated besides the baselines.
    horizon, n_folds, purge, embargo, lookback, seed : int
    features : tuple of str
        The feature columns the networks read.
    """

    _title: ClassVar[str] = "Walk-forward forecast evaluation"
    _summary_fields: ClassVar[tuple[str, ...]] = (
        "verdict", "models", "horizon", "n_folds", "purge", "embargo", "lookback", "seed", "n_test",
    )
    overall: pd.DataFrame
    folds: pd.DataFrame
    predictions: pd.DataFrame
    directions: pd.DataFrame
    verdict: str
    models: tuple[str, ...]
    horizon: int
    n_folds: int
    purge: int
    embargo: int
    lookback: int
    seed: int
    features: tuple[str, ...]

    @property
    def n_test(self) -> int:
        """Test rows over all folds."""
        return len(self.predictions)

    def _table(self) -> pd.DataFrame:
        return self.overall[["mse", "mae", "hit_rate", "hit_se", "r2_oos", "n"]]

    def summary(self) -> str:
        """The scalar fields, then the pooled table of every model."""
        with pd.option_context("display.float_format", "{:.6g}".format, "display.width", 120):
            return f"{super().summary()}\n\n{self._table().to_string()}"

    def _repr_html_(self) -> str:
        table = self._table().to_html(float_format=lambda v: f"{v:.6g}", border=0)
        return f"{super()._repr_html_()}<br>{table}"

    def plot(self, metric: str = "mse") -> Any:
        """One line per model of ``metric`` by fold (MSE and MAE relative to the zero forecast).

        Parameters
        ----------
        metric : {"mse", "mae", "hit_rate"}, default "mse"

        Returns
        -------
        bqplot.Figure

        Raises
        ------
        ValueError
            On an unknown metric.
        ImportError
            If bqplot is not installed (``pip install bqplot``).
        """
        if metric not in ("mse", "mae", "hit_rate"):
            raise ValueError(f"metric must be 'mse', 'mae' or 'hit_rate', got {metric!r}")
        bq = bqplot("WalkForwardReport.plot")
        table = self.folds.pivot(index="fold", columns="model", values=metric)
        names = [*BASELINE_NAMES, *self.models]
        table = table[names]
        if metric != "hit_rate":
            table = table.div(table["zero"], axis=0)
        xs, ys = bq.LinearScale(), bq.LinearScale()
        lines = bq.Lines(x=table.index.to_numpy(dtype=float), y=table.to_numpy().T, scales={"x": xs, "y": ys},
                         colors=_COLOURS[: len(names)], labels=names, display_legend=True, marker="circle")
        label = metric if metric == "hit_rate" else f"{metric} / zero forecast's"
        axes = [bq.Axis(scale=xs, label="fold", tick_format="d"),
                bq.Axis(scale=ys, side="left", label=label)]
        return bq.Figure(marks=[lines], axes=axes, title=f"{self._title}: {html.escape(label)} by fold")
