"""A parameter sweep of the pairs backtest: one row per combination of a grid, on any executor.

Each combination is a :func:`~quantify.analytics.backtest_pairs` run on the
same two legs; chunks of combinations go to a local process pool or any
:class:`concurrent.futures.Executor` (a Dask client's ``get_executor()``),
with the legs shipped with each task or loaded by each worker from a
:class:`~quantify.analytics.parallel.ClosesSource`.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantify.analytics.backtest import backtest_pairs
from quantify.analytics.parallel import ClosesSource, check_executor, chunked, closes_of, run_chunks

__all__ = ["SWEEP_METRICS", "sweep_backtest"]

#: Result columns after the grid's parameters, from each run's :class:`~quantify.analytics.BacktestResult`.
SWEEP_METRICS: tuple[str, ...] = (
    "total_return", "sharpe", "max_drawdown", "turnover", "costs", "funding", "n_trades", "note",
)

# below this many combinations the sweep runs inline
_INLINE_RUNS = 4
# what a grid or a fixed argument may set: backtest_pairs' keywords
_PARAMETERS = tuple(inspect.signature(backtest_pairs).parameters)[2:]


@dataclass(frozen=True)
class _Legs:
    y: str
    x: str
    fixed: tuple[tuple[str, Any], ...]


def _sweep_chunk(closes: pd.DataFrame | ClosesSource, combos: list[dict[str, Any]], legs: _Legs) -> list[dict]:
    """Backtest each combination; runs in a worker process (loading a source there)."""
    frame = closes_of(closes, "sweep_backtest")
    y, x = frame[legs.y], frame[legs.x]
    rows = []
    for combo in combos:
        row: dict[str, Any] = dict(combo)
        try:
            res = backtest_pairs(y, x, **dict(legs.fixed), **combo)
        except ValueError as exc:  # e.g. exit >= entry: that combination has no result
            row.update({m: math.nan for m in SWEEP_METRICS[:-2]}, n_trades=0, note=str(exc))
        else:
            row.update({m: getattr(res, m) for m in SWEEP_METRICS})
        rows.append(row)
    return rows


def _tried(values: Any) -> list[Any]:
    """A grid entry as a list: a list, range or numpy array (as Python numbers), or a lone value."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return [values]
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def sweep_backtest(
    closes: pd.DataFrame | ClosesSource,
    y: str,
    x: str,
    grid: Mapping[str, Sequence[Any]],
    *,
    executor: cf.Executor | None = None,
    chunksize: int | None = None,
    progress: bool = True,
    **fixed: Any,
) -> pd.DataFrame:
    """Backtest the pair ``y``/``x`` at every combination of ``grid``.

    Parameters
    ----------
    closes : DataFrame or ClosesSource
        Prices (not log prices), one column per symbol, holding ``y`` and
        ``x``. A source (e.g. :class:`quantify.cluster.StoreCloses` with
        ``log=False``) is loaded by each worker itself.
    y, x : str
        Columns of the two legs, as :func:`~quantify.analytics.backtest_pairs`' ``y`` and ``x``.
    grid : mapping of str to sequence
        Keyword of ``backtest_pairs`` → the values to try, e.g.
        ``{"entry": [1.5, 2, 2.5], "exit": [0, 0.5], "window": [60, 120]}``.
    executor : concurrent.futures.Executor, optional
        As in :func:`~quantify.analytics.scan_pairs`: a local process pool by
        default (inline for at most 4 runs), or any executor, not shut down.
    chunksize : int, optional
        Combinations per task; default ~4 tasks per CPU.
    progress : bool, default True
        A ``tqdm.auto`` progress bar over the runs.
    **fixed
        Other ``backtest_pairs`` keywords, the same for every run (``cost_bps=2``).

    Returns
    -------
    DataFrame
        One row per combination in grid order: the grid's keywords, then
        :data:`SWEEP_METRICS`. A combination ``backtest_pairs`` refuses (such
        as ``exit >= entry``) has NaN metrics and the reason in ``note``.

    Raises
    ------
    ValueError
        If the grid is empty, names a keyword ``backtest_pairs`` does not
        take, has an empty list, or shares a keyword with ``fixed``; or if
        ``y`` or ``x`` is not a column.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("sweep_backtest: grid must map backtest_pairs keywords to lists of values")
    for name in (*grid, *fixed):
        if name not in _PARAMETERS:
            raise ValueError(f"sweep_backtest: backtest_pairs has no keyword {name!r}; "
                             f"choose from {', '.join(_PARAMETERS)}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"sweep_backtest: {both!r} both swept and fixed")
    values = {name: _tried(v) for name, v in grid.items()}
    empty = [name for name, v in values.items() if not v]
    if empty:
        raise ValueError(f"sweep_backtest: nothing to try for {empty!r}")
    check_executor(executor, chunksize)
    frame = closes_of(closes, "sweep_backtest")
    missing = [c for c in (y, x) if c not in frame.columns]
    if missing:
        raise ValueError(f"sweep_backtest: closes has no column {missing!r}; columns are {list(frame.columns)!r}")

    combos = [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
    shipped = frame[[y, x]] if isinstance(closes, pd.DataFrame) else closes
    rows = run_chunks(_sweep_chunk, shipped, chunked(combos, chunksize), _Legs(y, x, tuple(fixed.items())),
                      executor=executor, progress=progress, desc="backtests", unit="run",
                      inline=executor is None and len(combos) <= _INLINE_RUNS)
    out = pd.DataFrame(rows, columns=[*values, *SWEEP_METRICS])
    out["n_trades"] = out["n_trades"].astype("int64")
    out.attrs.update(y=y, x=x, fixed=dict(fixed))
    return out
