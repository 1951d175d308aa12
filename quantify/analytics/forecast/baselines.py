"""The honest baselines every forecaster is measured against: zero return, AR(1), last sign.

Each is fitted on a training fold's rows and predicts from the last completed
``horizon``-bar return :math:`p_t = \\ln(c_t / c_{t-h})`, a quantity known at
the close of bar ``t``. A prediction is a return and a direction (+1, -1, or 0
for no call).
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []


class Baseline:
    """A forecaster of the ``horizon``-bar return from the last one; subclasses set ``name``."""

    name = "baseline"

    def fit(self, past: np.ndarray, target: np.ndarray) -> Baseline:
        """Fit on a training fold (``past`` and ``target`` of the same rows)."""
        return self

    def predict(self, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted returns and directions for the rows of ``past``."""
        raise NotImplementedError


class ZeroReturn(Baseline):
    """Predicts a zero return and makes no directional call (a random walk in prices)."""

    name = "zero"

    def predict(self, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros(len(past))
        return zeros, zeros.copy()


class AR1(Baseline):
    """``target = a + b * past`` by least squares on the training fold; direction its sign."""

    name = "ar1"

    def __init__(self) -> None:
        self.coef = (0.0, 0.0)

    def fit(self, past: np.ndarray, target: np.ndarray) -> AR1:
        xc = past - past.mean()
        sxx = float(xc @ xc)
        b = float(xc @ (target - target.mean())) / sxx if sxx > 0 else 0.0
        self.coef = (float(target.mean()) - b * float(past.mean()), b)
        return self

    def predict(self, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ret = self.coef[0] + self.coef[1] * past
        return ret, np.sign(ret)


class LastSign(Baseline):
    """Persistence: predicts the last return again, so its direction is the last sign."""

    name = "last_sign"

    def predict(self, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return past.copy(), np.sign(past)


BASELINES: tuple[type[Baseline], ...] = (ZeroReturn, AR1, LastSign)
