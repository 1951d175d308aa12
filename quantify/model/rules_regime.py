"""The ``regime-change`` alert kind: the filtered regime of an instrument's bars changes.

At every closed bar of ``timeframe`` the writer fits a Gaussian hidden Markov
model (:func:`quantify.analytics.fit_regimes`, ``states`` states, seeded) to
the last ``lookback`` closes ending at that bar (judging starts once that
many bars are kept), on log returns and realised
volatility over ``window`` bars, and takes the filtered most-likely state of
the bar and of the bar before, under that fit. The rule fires when the two
differ and the new state's filtered probability is at least ``prob``. The
value is the new state, numbered calmest first (0 is the lowest volatility of
returns). Nothing later than the judged bar is used: the fit and the filter
end at it.
"""

from __future__ import annotations

from typing import Any

from quantify.model._rule_regime import MAX_REGIME_STATES, MAX_REGIME_WINDOW, MIN_LOOKBACK
from quantify.model.rules import Rule, make_rule

__all__ = ["MAX_REGIME_STATES", "MAX_REGIME_WINDOW", "MIN_LOOKBACK", "regime_change"]


def regime_change(symbol: str, *, timeframe: str = "1m", states: int = 2, window: int = 20,
                  lookback: int = 500, seed: int = 0, prob: float = 0.0, **common: Any) -> Rule:
    """Fire when the filtered most-likely regime of ``symbol``'s closed bars changes.

    Parameters
    ----------
    symbol : str
        The instrument (``BTCUSDT``, ``binance-usdm:BTCUSDT``).
    timeframe : str, default "1m"
        Bars the model is fitted on.
    states : int, default 2
        Hidden states, 2 to 6.
    window : int, default 20
        Bars of the realised-volatility feature, at most 40.
    lookback : int, default 500
        Closed bars of each fit (at least 100, at most the 5,000 the writer keeps).
    seed : int, default 0
        Seed of the fit: the same bars give the same regimes.
    prob : float, default 0.0
        Least filtered probability of the new state for a change to count
        (0: every change of the most likely state).
    **common
        ``severity``, ``cooldown``, ``message``, ``enabled``, ``name``.

    Returns
    -------
    Rule
    """
    return make_rule("regime-change", symbol, timeframe=timeframe, states=states, window=window,
                     lookback=lookback, seed=seed, prob=prob, **common)
