"""Input checks shared by every public analytics function.

Each public function validates its arguments here, at entry, before any
arithmetic: a bad input is a ``TypeError`` (wrong type or shape) or a
``ValueError`` naming the function, the argument, the problem and the
minimum the function needs, e.g. ``"coint needs at least 20 aligned, finite
observations of y and x; got 0"``. Nothing reaches numpy with an input that
would make it warn.

Missing values follow one rule per kind of function (``nan=`` below):

- ``"refuse"``: tests and simulations whose result depends on which rows are
  neighbours (ADF, Engle-Granger, Johansen, the pair scan, the backtest):
  dropping a row would silently join two sides of a gap, so a NaN is an
  error that asks the caller to drop or fill;
- ``"drop"``: static estimates (OLS hedge ratio, half-life, Hurst,
  volatility): rows with a NaN are left out, as statsmodels' ``missing="drop"``
  and pandas' reductions do, and the minimum counts the rows that remain;
- ``"keep"``: windowed transforms (rolling statistics, z-scores, the Kalman
  filter): the output keeps the input's rows and is NaN where a window (or the
  filter's update) meets a NaN, as pandas' ``rolling(...)`` with
  ``min_periods=window``.

Infinite values are refused everywhere: they are never missing data. So are
magnitudes whose squares overflow or underflow float64 (beyond 1e150 or, for
a series whose largest value is not zero, all below 1e-150): rescale first.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__: list[str] = []

SeriesLike: TypeAlias = pd.Series | np.ndarray | ArrayLike
NanPolicy: TypeAlias = Literal["refuse", "drop", "keep"]


def as_series(values: Any, name: str) -> pd.Series:
    """``values`` as a float64 Series (a copy only when needed), or TypeError naming it."""
    if isinstance(values, pd.DataFrame):
        raise TypeError(f"{name} must be one-dimensional, got a DataFrame with shape {values.shape}")
    if isinstance(values, pd.Series):
        s = values
    else:
        if isinstance(values, (str, bytes)) or values is None or np.isscalar(values):
            raise TypeError(f"{name} must be a Series or a 1-d array, got {type(values).__name__}")
        arr: np.ndarray = np.asarray(values)
        if arr.ndim != 1:
            raise TypeError(f"{name} must be one-dimensional, got shape {arr.shape}")
        s = pd.Series(arr)
    if s.dtype == object or not (
        pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)
    ):
        try:
            return s.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric, got dtype {s.dtype}") from exc
    return s.astype(np.float64, copy=False)


def _bad_counts(values: np.ndarray) -> tuple[int, int]:
    """``(NaN count, inf count)`` of a float array."""
    nan = int(np.count_nonzero(np.isnan(values)))
    inf = int(np.count_nonzero(np.isinf(values)))
    return nan, inf


#: Largest magnitude accepted: its square (and sums of thousands of squares) stays finite.
MAX_MAGNITUDE = 1e150
#: A series whose largest magnitude is below this (and not 0) has squares that underflow.
MIN_MAGNITUDE = 1e-150


def check_values(func: str, name: str, values: np.ndarray, nan: NanPolicy) -> None:
    """Refuse infinite values and out-of-range magnitudes always, NaN under ``nan="refuse"``."""
    n_nan, n_inf = _bad_counts(values)
    if n_inf:
        raise ValueError(f"{func}: {name} has {n_inf} infinite value(s); only finite values or NaN are allowed")
    if values.size > n_nan:
        top = float(np.nanmax(np.abs(values)))
        if top > MAX_MAGNITUDE or 0.0 < top < MIN_MAGNITUDE:
            raise ValueError(
                f"{func}: {name} has magnitudes up to {top:.3g}, outside [{MIN_MAGNITUDE:g}, "
                f"{MAX_MAGNITUDE:g}] where sums of squares stay finite and non-zero; rescale it"
            )
    if n_nan and nan == "refuse":
        raise ValueError(
            f"{func}: {name} has {n_nan} NaN value(s); {func} needs consecutive rows, "
            "so drop or fill them first (e.g. .dropna() on the aligned frame, or .ffill())"
        )


def need(func: str, minimum: int, what: str, got: int) -> None:
    """Raise the one 'too little data' message when ``got < minimum``."""
    if got < minimum:
        raise ValueError(f"{func} needs at least {minimum} {what}; got {got}")


def series(
    values: Any, name: str, func: str, *, nan: NanPolicy, minimum: int = 1
) -> pd.Series:
    """One validated series: numeric, 1-d, no inf, NaN per ``nan``, at least ``minimum`` finite rows.

    With ``nan="drop"`` the NaN rows are removed from the returned series.
    """
    s = as_series(values, name)
    v = s.to_numpy()
    check_values(func, name, v, nan)
    if nan == "drop" and np.isnan(v).any():
        s = s[~np.isnan(v)]
    finite = int(np.count_nonzero(~np.isnan(s.to_numpy())))
    need(func, minimum, f"finite observations of {name}", finite)
    return s


def pair(
    y: Any,
    x: Any,
    func: str,
    *,
    nan: NanPolicy,
    minimum: int = 1,
    names: tuple[str, str] = ("y", "x"),
) -> tuple[pd.Series, pd.Series]:
    """Two aligned, validated series: same length, same index if both are Series.

    Returns the full series (NaN rows included, even with ``nan="drop"``:
    the caller keeps its output on the input's index); ``minimum`` counts
    the rows where both are finite. An array-born series takes the other's
    index; the caller's objects are never modified.
    """
    ys = as_series(y, names[0])
    xs = as_series(x, names[1])
    if len(ys) != len(xs):
        raise ValueError(
            f"{func}: {names[0]} and {names[1]} differ in length: {len(ys)} != {len(xs)}; align them first"
        )
    if isinstance(y, pd.Series) and isinstance(x, pd.Series) and not ys.index.equals(xs.index):
        overlap = len(ys.index.intersection(xs.index))
        raise ValueError(
            f"{func}: {names[0]} and {names[1]} have different indexes ({overlap} labels in common); "
            "align them first (e.g. pd.concat([y, x], axis=1).dropna())"
        )
    if not isinstance(y, pd.Series) and isinstance(x, pd.Series):
        ys = pd.Series(ys.to_numpy(), index=xs.index)
    elif not isinstance(x, pd.Series):
        xs = pd.Series(xs.to_numpy(), index=ys.index)
    yv, xv = ys.to_numpy(), xs.to_numpy()
    check_values(func, names[0], yv, nan)
    check_values(func, names[1], xv, nan)
    complete = int(np.count_nonzero(~(np.isnan(yv) | np.isnan(xv))))
    need(func, minimum, f"aligned, finite observations of {names[0]} and {names[1]}", complete)
    return ys, xs


def check_int(value: Any, name: str, minimum: int, *, what: str = "an integer") -> int:
    """An integer ``>= minimum`` (bools refused), or TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_window(window: Any, minimum: int = 2, name: str = "window") -> int:
    """A window of rows: an integer ``>= minimum``."""
    return check_int(window, name, minimum, what="an integer number of rows")


def check_number(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonneg: bool = False,
    upper: float | None = None,
) -> float:
    """A finite real number (``> 0``, ``>= 0`` or ``< upper`` as asked), or TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and not (positive and not v > 0) and not (nonneg and v < 0)
    if upper is not None and not v < upper:
        ok = False
    if not ok:
        rule = "> 0" if positive else ">= 0" if nonneg else "finite"
        if upper is not None:
            rule = f"in (0, {upper})" if positive else f"below {upper}"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return v


def check_positive_prices(func: str, name: str, values: np.ndarray) -> None:
    """Refuse a price that is not > 0 (NaN is left to the NaN policy)."""
    bad = np.flatnonzero(values <= 0)
    if bad.size:
        raise ValueError(
            f"{func}: {name} must be positive to take logs; found {bad.size} value(s) <= 0 "
            f"(first {values[bad[0]]!r} at row {int(bad[0])})"
        )


def check_not_constant(func: str, name: str, values: np.ndarray, *, why: str = "") -> None:
    """Refuse a series whose finite values are all equal."""
    v = values[~np.isnan(values)]
    if v.size and float(v.max()) == float(v.min()):
        tail = f": {why}" if why else ""
        raise ValueError(f"{func}: {name} is constant ({float(v[0])!r}){tail}")


def check_frame(frame: Any, func: str, columns: tuple[str, ...], *, name: str) -> pd.DataFrame:
    """``frame`` if it is a DataFrame holding ``columns``, else TypeError/ValueError naming what lacks."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{func}: {name} must be a DataFrame with columns {list(columns)}, "
                        f"got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{func}: {name} lacks column(s) {missing}; it has {list(frame.columns)}")
    return frame
