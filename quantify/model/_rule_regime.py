"""Fields of the ``regime-change`` alert kind: the regime model a rule fits on an instrument's bars.

Kept beside :mod:`quantify.model.rules` (which registers the kind with these
fields) so the rule module stays one registry; the constructor is
:func:`quantify.model.rules_regime.regime_change`.
"""

from __future__ import annotations

from typing import Any, Final

from quantify.model._rule_fields import bars, finite, timeframe

__all__ = ["MAX_REGIME_STATES", "MAX_REGIME_WINDOW", "MIN_LOOKBACK", "REGIME_CHANGE_MESSAGE", "REGIME_CHANGE_PARAMS"]

#: Most hidden states a regime rule may fit (the analytics' palette of regimes).
MAX_REGIME_STATES: Final = 6
#: Longest realised-volatility window, and the fewest bars a fit may use: the window plus
#: 10 bars per state of the largest model (what :func:`quantify.analytics.fit_regimes` needs).
MAX_REGIME_WINDOW: Final = 40
MIN_LOOKBACK: Final = MAX_REGIME_WINDOW + 10 * MAX_REGIME_STATES

def _states(value: Any) -> int:
    n = bars("states")(value)
    if not 2 <= n <= MAX_REGIME_STATES:
        raise ValueError(f"states must be a whole number from 2 to {MAX_REGIME_STATES}, got {value!r}")
    return n

def _seed(value: Any) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"seed must be a whole number >= 0, got {value!r}")
    return int(text)

def _prob(value: Any) -> float:
    x = finite("prob", value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"prob must be a probability in [0, 1), got {value!r}")
    return x


def _window(value: Any) -> int:
    n = bars("window", 2)(value)
    if n > MAX_REGIME_WINDOW:
        raise ValueError(f"window must be at most {MAX_REGIME_WINDOW} bars (the realised-volatility window), got {n}")
    return n


#: name -> (check, default). ``lookback``: closed bars each fit uses (ending at the judged bar);
#: ``window``: bars of the realised volatility feature; ``prob``: least filtered probability of
#: the new regime for a change to count.
REGIME_CHANGE_PARAMS: Final[dict[str, tuple[Any, Any]]] = {
    "timeframe": (timeframe, "1m"),
    "states": (_states, 2),
    "window": (_window, 20),
    "lookback": (bars("lookback", MIN_LOOKBACK), 500),
    "seed": (_seed, 0),
    "prob": (_prob, 0.0),
}

REGIME_CHANGE_MESSAGE: Final = "{symbol}: regime changed to state {value:.0f} (0 = calmest)"
