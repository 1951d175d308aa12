"""What the results' ``plot()`` methods share: bqplot, imported on demand, and a time axis.

bqplot is a Jupyter dependency; the analytics import without it, and a
``plot()`` says how to get it. A time axis takes the index as it is: a
``DatetimeIndex`` becomes a date scale with naive UTC ``datetime64`` values
(bqplot turns tz-aware values into objects, and warns), any other index the
bar number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["bqplot", "time_axis"]


def bqplot(owner: str) -> Any:
    """The bqplot module; ``ImportError`` naming ``owner`` and the install command without it."""
    try:
        import bqplot as bq  # optional: Jupyter only
    except ImportError as exc:
        raise ImportError(f"{owner} needs bqplot: pip install bqplot") from exc
    return bq


def time_axis(bq: Any, index: pd.Index) -> tuple[Any, np.ndarray, str]:
    """``(scale, x values, axis label)`` for plotting against ``index``."""
    if isinstance(index, pd.DatetimeIndex):
        naive = index.tz_convert(None) if index.tz is not None else index
        return bq.DateScale(), naive.to_numpy(), "time"
    return bq.LinearScale(), np.arange(len(index)), "bar"
