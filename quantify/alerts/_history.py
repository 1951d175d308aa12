"""The market history the alert engine keeps: bounded bar series and tick windows per symbol.

:class:`MarketHistory` holds, for the enabled rules, the closed bars of every
``(symbol, timeframe)`` a bar rule reads, the recent trades of every symbol a
``pct-move`` rule reads and the recent liquidations of every perpetual a
``liquidation-burst`` rule reads, each bounded to what the rules need. It is warmed from
the store (so the engine's checkpoint stays small) and read back from it when
the engine must evaluate stored trades it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from quantify.alerts import _eval, _regime
from quantify.model.rules import MAX_BARS, Rule
from quantify.model.timeframes import timeframe_to_offset

__all__ = ["BAR_KINDS", "NS", "MarketHistory", "bars_needed"]

NS = _eval.NS
BAR_KINDS = ("zscore", "vol-breakout", "corr-breakdown", "basis-z", "drawdown", "regime-change")
#: Least bars a z-score rule's series keep. The Kalman filter is causal, so its z
#: depends on where the history starts, and the rolling kernels' rounding (about
#: 1e-13) on it too: with a long history the engine's z equals the PairMonitor's on
#: the same bars (bit for bit when both start at the same bar).
_PAIR_BARS = min(1_000, MAX_BARS)


def bars_needed(rule: Rule) -> int:
    """Closed bars a bar rule's series must keep."""
    p = rule.params
    if rule.kind == "vol-breakout":
        return int(p["long"]) + 1
    if rule.kind == "regime-change":
        return _regime.bars_needed(p)
    if rule.kind == "zscore":
        # the first z needs 2 * window - 1 bars (rolling hedge, then rolling z); one more
        # so that the bar before the first evaluated one is known too
        return max(2 * int(p["window"]), _PAIR_BARS)
    if rule.kind == "drawdown":
        # a full peak window before every new bar (a pair: its strategy's 2 * window bars, then the peak)
        return 3 * int(p["window"]) if len(rule.symbols) == 2 else 2 * int(p["window"]) + 1
    return int(p["window"]) + 1


class MarketHistory:
    """Bar series and tick windows of the symbols the rules read, bounded and warmed from the store.

    Parameters
    ----------
    store : quantify.Store
        Read for warming and for trades stored but not yet evaluated.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.bars: dict[tuple[str, int], _eval.BarSeries] = {}
        self.ticks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.tick_window: dict[str, int] = {}
        self.bars_of: dict[str, list[_eval.BarSeries]] = {}
        self._tf: dict[str, int] = {}
        self.liquidations: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.liquidation_window: dict[str, int] = {}

    def read(self, sym: str, t_from: int, upto_id: int, after_id: int | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stored trades of ``sym`` from time ``t_from`` with ``after_id < id <= upto_id``."""
        if sym not in self.store.symbols():
            e = np.empty(0, dtype=np.int64)
            return e, np.empty(0), e
        frame = self.store.ticks(sym, start=pd.Timestamp(max(t_from, 0), tz="UTC"))
        ids = frame["trade_id"].to_numpy()
        keep = ids <= upto_id
        if after_id is not None:
            keep &= ids > after_id
        return (np.asarray(frame.index.asi8)[keep], frame["price"].to_numpy(dtype=float)[keep], ids[keep])

    def prepare(self, rules: Iterable[Rule], pos: Mapping[str, tuple[int, int]]) -> None:
        """Create and warm the bar and tick histories ``rules`` need, drop the rest.

        ``pos`` is the engine's evaluated position (symbol -> last evaluated id,
        its time in ns): histories are warmed with the stored trades up to it.
        """
        need_bars: dict[tuple[str, int], int] = {}
        need_ticks: dict[str, int] = {}
        for rule in rules:
            p = rule.params
            if rule.kind in BAR_KINDS:
                tf = int(timeframe_to_offset(p["timeframe"]).value)
                n = bars_needed(rule)
                for sym in rule.symbols:
                    need_bars[(sym, tf)] = max(need_bars.get((sym, tf), 0), n)
            elif rule.kind == "pct-move":
                sym = rule.symbols[0]
                need_ticks[sym] = max(need_ticks.get(sym, 0), int(p["window"] * NS))
        for key in [k for k in self.bars if k not in need_bars]:
            del self.bars[key]
        for (sym, tf), n in need_bars.items():
            series = self.bars.get((sym, tf))
            if series is None or series.keep < n:
                series = _eval.BarSeries(tf, max(n, 2))
                if sym in pos:
                    last_id, last_t = pos[sym]
                    t, prices, ids = self.read(sym, last_t - (n + 2) * tf, last_id)
                    series.update(t, prices, ids)
                self.bars[(sym, tf)] = series
        for sym in [s for s in self.ticks if s not in need_ticks]:
            del self.ticks[sym]
        for sym, window in need_ticks.items():
            if self.tick_window.get(sym, -1) < window or sym not in self.ticks:
                t, prices = np.empty(0, dtype=np.int64), np.empty(0)
                if sym in pos:
                    last_id, last_t = pos[sym]
                    t, prices, _ = self.read(sym, last_t - 2 * window - 60 * NS, last_id)
                self.ticks[sym] = (t, prices)
        self.tick_window = need_ticks
        self.bars_of = {}
        for (sym, _), series in self.bars.items():
            self.bars_of.setdefault(sym, []).append(series)

    def update_bars(self, sym: str, t: np.ndarray, p: np.ndarray, ids: np.ndarray) -> None:
        """Feed one batch of ``sym``'s trades to every bar series of ``sym``."""
        for series in self.bars_of.get(sym, ()):
            series.update(t, p, ids)

    def series(self, rule: Rule) -> list[_eval.BarSeries]:
        """The bar series of a bar rule's symbols, in the rule's order."""
        tf = self._tf.get(rule.params["timeframe"])
        if tf is None:
            tf = self._tf[rule.params["timeframe"]] = int(timeframe_to_offset(rule.params["timeframe"]).value)
        return [self.bars[(sym, tf)] for sym in rule.symbols]

    def pair_closed(self, rule: Rule) -> int | None:
        """Start (ns) of the last bar closed on every leg of a bar rule, or None."""
        lasts = [s.last_closed for s in self.series(rule)]
        return None if any(x is None for x in lasts) else min(lasts)  # type: ignore[type-var]

    def prepare_liquidations(self, rules: Iterable[Rule], pos: Mapping[str, int]) -> None:
        """Keep (and warm from the store) the liquidations ``liquidation-burst`` rules need.

        ``pos`` is instrument -> time (ns) of the last evaluated liquidation:
        the tail is warmed with the stored ones in the window before it.
        """
        need: dict[str, int] = {}
        for rule in rules:
            if rule.kind == "liquidation-burst":
                inst = rule.symbols[0]
                need[inst] = max(need.get(inst, 0), int(rule.params["window"] * NS))
        for inst in [i for i in self.liquidations if i not in need]:
            del self.liquidations[inst]
        for inst, window in need.items():
            if inst in self.liquidations and self.liquidation_window.get(inst, -1) >= window:
                continue
            t, notional = np.empty(0, dtype=np.int64), np.empty(0)
            if inst in pos:
                frame = self.store.liquidations(inst, start=pd.Timestamp(pos[inst] - window, tz="UTC"))
                keep = frame.index.asi8 <= pos[inst]
                t, notional = np.asarray(frame.index.asi8)[keep], frame["notional"].to_numpy(dtype=float)[keep]
            self.liquidations[inst] = (t, notional)
        self.liquidation_window = need

    def add_liquidations(self, inst: str, frame: pd.DataFrame) -> None:
        """Append a batch's liquidations to ``inst``'s tail and drop those older than its window."""
        if inst not in self.liquidations or not len(frame):
            return
        bt, bn = self.liquidations[inst]
        t = np.concatenate([bt, np.asarray(frame.index.asi8)])
        n = np.concatenate([bn, frame["notional"].to_numpy(dtype=float)])
        first = int(np.searchsorted(t, t[-1] - self.liquidation_window[inst], side="right"))
        self.liquidations[inst] = (t[first:], n[first:])
