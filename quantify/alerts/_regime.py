"""Judging a ``regime-change`` rule at one closed bar: fit, filter, compare with the bar before.

The same numbers as a notebook's :func:`quantify.analytics.fit_regimes` on the
same closes (the rule's ``lookback`` bars ending at the judged bar).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from quantify.analytics.regimes import fit_regimes

__all__ = ["RegimeStep", "bars_needed", "judge"]


class RegimeStep(NamedTuple):
    """The filtered most-likely state at the judged bar and the bar before, and the new one's probability."""

    state: int
    previous: int
    prob: float

    @property
    def changed(self) -> bool:
        return self.state != self.previous


def bars_needed(params: Mapping[str, Any]) -> int:
    """Closed bars a regime rule's series keeps: one fit's ``lookback``."""
    return int(params["lookback"])


def judge(closes: np.ndarray, params: Mapping[str, Any]) -> RegimeStep | None:
    """Fit on ``closes`` (ending at the judged bar) and compare its last two filtered states.

    None until ``lookback`` closes are kept (a fit on fewer bars would change
    with every new one), on a constant price, or when the bars do not define
    both states; a ``ValueError`` from the fit means the bars cannot be fitted.
    """
    if len(closes) < int(params["lookback"]) or np.ptp(closes) == 0:
        return None
    res = fit_regimes(pd.Series(closes), int(params["states"]), window=int(params["window"]),
                      seed=int(params["seed"]), periods_per_year=1.0)
    regime = res.regime.to_numpy()
    if np.isnan(regime[-2:]).any():
        return None
    state, previous = int(regime[-1]), int(regime[-2])
    return RegimeStep(state, previous, float(res.filtered.iloc[-1, state]))
