"""Evaluation of each rule kind on one batch: price levels, moves, gaps, silences, closed bars, books, perpetuals.

:class:`RuleEvaluator` indexes the enabled rules by kind and symbol and turns a
batch of trades (and the bars it closes), or a batch of quotes and continuity
events of the order books, into :class:`Fired` records, advancing each rule's
state (armed, side, last firing, last bar) in place. It neither stores nor
delivers: the engine does, in the order it documents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantify.alerts import _eval, _regime
from quantify.alerts._history import BAR_KINDS, NS, MarketHistory
from quantify.analytics import basis, imbalance, quoted_spread, zscore
from quantify.analytics.drawdown import paper_equity, trailing_drawdown
from quantify.analytics.pairs import pair_zscore
from quantify.model.rules import Rule

__all__ = ["LIQUIDATION_KINDS", "MARK_KINDS", "PRICE_KINDS", "QUOTE_KINDS", "Fired", "RuleEvaluator"]

logger = logging.getLogger(__name__)

PRICE_KINDS = ("price-above", "price-below", "price-crosses")
#: Book kinds judged at every quote (the best bid and offer after each applied depth event).
QUOTE_KINDS = ("spread-above", "imbalance-beyond")
#: Perpetual kinds judged at every mark update, and at every liquidation.
MARK_KINDS = ("funding-above", "funding-below")
LIQUIDATION_KINDS = ("liquidation-burst",)


@dataclass(frozen=True)
class Fired:
    """One firing, before it is stored.

    ``trade_id`` is the triggering trade's id; for the book kinds, the
    quote's update id ``u`` (or, ``book-stale``, the update id that revealed
    the gap), so that the key is unique per firing all the same.
    """

    t: int
    rule_id: str
    trade_id: int
    trigger_symbol: str
    value: float

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.rule_id, self.trigger_symbol, self.trade_id)


class _PriceGroup:
    """The price-level rules of one symbol as arrays, for one numpy pass per batch."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.level = np.array([r.params["level"] for r in rules], dtype=float)
        self.margin = np.array([r.params["margin"] for r in rules], dtype=float)
        self.above = np.array([r.kind == "price-above" for r in rules])
        self.crosses = np.array([r.kind == "price-crosses" for r in rules])


class RuleEvaluator:
    """The enabled rules indexed by kind, evaluated batch by batch.

    Parameters
    ----------
    history : MarketHistory
        The bar series and tick windows the rules read.
    state : dict
        Rule id -> the rule's state, shared with (and persisted by) the engine.
    pos : dict
        Symbol -> (last evaluated trade id, its time ns), shared with the engine;
        read here, advanced by the engine after each batch.
    stats : dict
        The engine's counters; ``suppressed`` and ``rule_errors`` are counted here.
    books : _eval.BookEpisodes
        Each book's position (last evaluated quote) and its current episode out
        of sync, shared with the engine (which checkpoints them).
    """

    def __init__(self, history: MarketHistory, state: dict[str, dict[str, Any]],
                 pos: dict[str, tuple[int, int]], stats: dict[str, Any], books: _eval.BookEpisodes) -> None:
        self.history = history
        self.state = state
        self.pos = pos
        self.stats = stats
        self.books = books
        self.price_groups: dict[str, _PriceGroup] = {}
        self.by_kind: dict[tuple[str, str], list[Rule]] = {}
        self.bar_rules: list[Rule] = []
        self.stale_rules: list[Rule] = []
        self.quote_rules: dict[str, list[Rule]] = {}
        self.book_stale_rules: list[Rule] = []
        self.mark_rules: dict[str, list[Rule]] = {}
        self.liquidation_rules: dict[str, list[Rule]] = {}

    def index(self, rules: Iterable[Rule]) -> None:
        """Index ``rules`` (the enabled ones) by kind and symbol."""
        rules = list(rules)
        by_symbol: dict[str, list[Rule]] = {}
        for rule in rules:
            if rule.kind in PRICE_KINDS:
                by_symbol.setdefault(rule.symbols[0], []).append(rule)
        self.price_groups = {sym: _PriceGroup(rs) for sym, rs in by_symbol.items()}
        self.by_kind = {}
        for rule in rules:
            if rule.kind in ("pct-move", "gap"):
                self.by_kind.setdefault((rule.kind, rule.symbols[0]), []).append(rule)
        self.bar_rules = [r for r in rules if r.kind in BAR_KINDS]
        self.stale_rules = [r for r in rules if r.kind == "stale"]
        self.quote_rules = {}
        for rule in rules:
            if rule.kind in QUOTE_KINDS:
                self.quote_rules.setdefault(rule.symbols[0], []).append(rule)
        self.book_stale_rules = [r for r in rules if r.kind == "book-stale"]
        self.mark_rules, self.liquidation_rules = {}, {}
        for rule in rules:
            if rule.kind in MARK_KINDS:
                self.mark_rules.setdefault(rule.symbols[0], []).append(rule)
            elif rule.kind in LIQUIDATION_KINDS:
                self.liquidation_rules.setdefault(rule.symbols[0], []).append(rule)

    def _cooldown_ns(self, rule: Rule) -> int:
        return int(rule.cooldown * NS)

    def _collect(self, rule: Rule, idx: list[int], suppressed: int, t: np.ndarray, ids: np.ndarray,
                 values: np.ndarray, trigger: str) -> list[Fired]:
        self.stats["suppressed"] += suppressed
        return [Fired(int(t[i]), rule.id, int(ids[i]), trigger, float(values[i])) for i in idx]

    def price(self, sym: str, t: np.ndarray, p: np.ndarray, ids: np.ndarray) -> list[Fired]:
        """Price-level rules of ``sym`` at every trade of the batch."""
        group = self.price_groups.get(sym)
        if group is None:
            return []
        lo, hi = float(p.min()), float(p.max())
        armed = np.array([self.state[r.id]["armed"] for r in group.rules])
        undecided = np.array([self.state[r.id]["side"] is None for r in group.rules])
        # Only rules whose trigger or re-arm level lies within the batch's range can change.
        lv, m = group.level, group.margin
        above = np.where(armed, hi >= lv, lo < lv - m)
        below = np.where(armed, lo <= lv, hi > lv + m)
        cross = (lo <= lv + m) & (hi >= lv - m) | undecided
        candidate = np.where(group.crosses, cross, np.where(group.above, above, below))
        out: list[Fired] = []
        for j in np.flatnonzero(candidate):
            rule = group.rules[j]
            st = self.state[rule.id]
            if group.crosses[j]:
                idx, sup = _eval.scan_crosses(p, t, level=lv[j], margin=m[j], state=st,
                                              cooldown_ns=self._cooldown_ns(rule))
            else:
                idx, sup = _eval.scan_level(p, t, above=bool(group.above[j]), level=lv[j], margin=m[j],
                                            strict=False, state=st, cooldown_ns=self._cooldown_ns(rule))
            out += self._collect(rule, idx, sup, t, ids, p, sym)
        return out

    def pct(self, sym: str, t: np.ndarray, p: np.ndarray, ids: np.ndarray) -> list[Fired]:
        """``pct-move`` rules of ``sym`` at every trade (the tick window is advanced here)."""
        if sym not in self.history.ticks:
            return []
        bt, bp = self.history.ticks[sym]
        all_t, all_p = np.concatenate([bt, t]), np.concatenate([bp, p])
        out: list[Fired] = []
        cache: dict[int, np.ndarray] = {}
        for rule in self.by_kind.get(("pct-move", sym), ()):
            w = int(rule.params["window"] * NS)
            move = cache.get(w)
            if move is None:
                ref = np.searchsorted(all_t, t - w, side="right") - 1
                ok = ref >= 0
                move = np.full(len(t), np.nan)
                move[ok] = (p[ok] / all_p[ref[ok]] - 1.0) * 100.0
                cache[w] = move
            direction = rule.params["direction"]
            values = move if direction == "up" else (-move if direction == "down" else np.abs(move))
            idx, sup = _eval.scan_level(values, t, above=True, level=rule.params["pct"],
                                        margin=rule.params["margin"], strict=False,
                                        state=self.state[rule.id], cooldown_ns=self._cooldown_ns(rule))
            out += self._collect(rule, idx, sup, t, ids, move, sym)
        # Keep one trade before the longest window so the reference price is always known.
        first = int(np.searchsorted(all_t, all_t[-1] - self.history.tick_window[sym], side="right")) - 1
        self.history.ticks[sym] = (all_t[max(first, 0):], all_p[max(first, 0):])
        return out

    def gap(self, sym: str, t: np.ndarray, ids: np.ndarray) -> list[Fired]:
        """``gap`` rules of ``sym``: trade ids missing before a trade of the batch."""
        rules = self.by_kind.get(("gap", sym))
        if not rules or sym not in self.pos:
            return []
        missing = np.diff(np.concatenate([[self.pos[sym][0]], ids])) - 1
        jumps = np.flatnonzero(missing > 0)
        out: list[Fired] = []
        for rule in rules:
            st = self.state[rule.id]
            for i in jumps:
                if _eval._cooled(st, int(t[i]), self._cooldown_ns(rule)):
                    st["last_fired"] = int(t[i])
                    out.append(Fired(int(t[i]), rule.id, int(ids[i]), sym, float(missing[i])))
                else:
                    self.stats["suppressed"] += 1
        return out

    def stale(self, batch: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[Fired]:
        """``stale`` rules: seconds since their symbol's last trade, at every trade of any symbol."""
        rules = self.stale_rules
        if not rules or not batch:
            return []
        syms = sorted(batch)
        t = np.concatenate([batch[s][0] for s in syms])
        ids = np.concatenate([batch[s][2] for s in syms])
        code = np.concatenate([np.full(len(batch[s][0]), k) for k, s in enumerate(syms)])
        order = np.argsort(t, kind="stable")
        t, ids, code = t[order], ids[order], code[order]
        out: list[Fired] = []
        for rule in rules:
            sym = rule.symbols[0]
            is_s = code == syms.index(sym) if sym in batch else np.zeros(len(t), dtype=bool)
            # Seconds since the symbol's previous trade, at every trade of the batch (NaN: never traded).
            prev0 = float(self.pos[sym][1]) if sym in self.pos else np.nan
            own = np.where(is_s, t.astype(float), np.nan)
            before = np.fmax.accumulate(np.concatenate([[prev0], own[:-1]]))
            values = (t - before) / NS
            limit = rule.params["seconds"]
            st = self.state[rule.id]
            cooldown = self._cooldown_ns(rule)
            pos, n = 0, len(t)
            while pos < n:
                if st["armed"]:
                    i = _eval.first_true(values > limit, pos)
                    if i < 0:
                        break
                    if _eval._cooled(st, int(t[i]), cooldown):
                        st["last_fired"] = int(t[i])
                        out.append(Fired(int(t[i]), rule.id, int(ids[i]), syms[code[i]], float(values[i])))
                    else:
                        self.stats["suppressed"] += 1
                    st["armed"] = bool(is_s[i])  # the symbol's own trade ends the silence
                else:
                    i = _eval.first_true(is_s, pos)
                    if i < 0:
                        break
                    st["armed"] = True
                pos = i + 1
        return out

    def bars(self) -> list[Fired]:
        """Bar rules at every bar closed since their last evaluated bar (series already updated)."""
        out: list[Fired] = []
        for rule in self.bar_rules:
            series = self.history.series(rule)
            closed = self.history.pair_closed(rule)
            st = self.state[rule.id]
            if closed is None:
                continue
            tf = series[0].tf
            if st["last_bar"] is None:
                firsts = [s.first for s in series]
                if any(f is None for f in firsts):
                    continue
                k = max(f for f in firsts if f is not None)
            else:
                k = st["last_bar"] + tf
            if rule.kind in ("zscore", "basis-z", "drawdown"):
                if k <= closed:
                    try:
                        judge = {"zscore": self._zscore, "basis-z": self._basis_z,
                                 "drawdown": self._drawdown}[rule.kind]
                        out += judge(rule, series, k, closed, st)
                    except (ValueError, FloatingPointError) as exc:
                        self.stats["rule_errors"] += 1
                        logger.warning("alert rule %s: bars %s..%s not evaluated: %s", rule.id, k, closed, exc)
                    st["last_bar"] = closed
                continue
            while k <= closed:
                try:
                    out += self._bar(rule, series, k, st)
                except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                    self.stats["rule_errors"] += 1
                    logger.warning("alert rule %s: bar %s not evaluated: %s", rule.id, k, exc)
                st["last_bar"] = k
                k += tf
        return out

    @staticmethod
    def _trigger(series: list[_eval.BarSeries], k: int) -> tuple[int, int, int]:
        """``(time, trade id, leg)`` of the trade that closed the pair's bar ``k``.

        The pair's bar is known closed at the later of its legs' closing trades.
        """
        i = [s.index(k) for s in series]
        trig = max(range(len(series)), key=lambda j: (series[j].trig_t[i[j]], j))
        return series[trig].trig_t[i[trig]], series[trig].trig_id[i[trig]], trig

    def _zscore(self, rule: Rule, series: list[_eval.BarSeries], k: int, closed: int,
                     st: dict[str, Any]) -> list[Fired]:
        """The pair z-score: one :func:`~quantify.analytics.pair_zscore` over the bars both legs keep.

        The monitor's number, on the same closes (see :meth:`_two_leg_z`).
        """
        p = rule.params
        return self._two_leg_z(rule, series, k, closed, st, lambda y, x: pair_zscore(
            y, x, int(p["window"]), hedge=p["hedge"], delta=p["delta"])["z"].to_numpy())

    def _basis_z(self, rule: Rule, series: list[_eval.BarSeries], k: int, closed: int,
                 st: dict[str, Any]) -> list[Fired]:
        """The basis z-score: :func:`~quantify.analytics.basis` in bps of the closes, by :func:`~quantify.analytics.zscore`.

        Legs perpetual, then spot, standardised over ``window`` bars: the
        monitor's numbers on the same bars (see :meth:`_two_leg_z`).
        """
        window = int(rule.params["window"])
        return self._two_leg_z(rule, series, k, closed, st,
                               lambda perp, spot: zscore(basis(perp, spot)["basis_bps"], window).to_numpy())

    def _two_leg_z(self, rule: Rule, series: list[_eval.BarSeries], k: int, closed: int, st: dict[str, Any],
                   z_of: Callable[[Any, Any], np.ndarray]) -> list[Fired]:
        """Evaluate a two-leg z-score at every closed bar from ``k`` to ``closed``, in order.

        ``z_of(first_leg, second_leg)`` gives the z-score of every bar both
        legs keep; the level trigger then walks the new bars.
        """
        p = rule.params
        tf = series[0].tf
        firsts = [s.first for s in series]
        if any(f is None for f in firsts):
            return []
        start = max(f for f in firsts if f is not None)
        k = max(k, start)
        n = (closed - start) // tf + 1
        first, second = (s.window(closed, n) for s in series)
        if first is None or second is None:
            return []
        z = z_of(first, second)[(k - start) // tf:]
        trig = [self._trigger(series, b) for b in range(k, closed + 1, tf)]
        op = p["op"]
        test = np.abs(z) if op == "abs-above" else z
        times = np.array([t for t, _, _ in trig], dtype=np.int64)
        idx, sup = _eval.scan_level(test, times, above=op != "below", level=p["level"], margin=p["margin"],
                                    strict=True, state=st, cooldown_ns=self._cooldown_ns(rule))
        self.stats["suppressed"] += sup
        return [Fired(trig[i][0], rule.id, trig[i][1], rule.symbols[trig[i][2]], float(z[i])) for i in idx]

    def _drawdown(self, rule: Rule, series: list[_eval.BarSeries], k: int, closed: int,
                  st: dict[str, Any]) -> list[Fired]:
        """Evaluate a paper position's drawdown (%) at every closed bar from ``k`` to ``closed``, in order.

        :func:`~quantify.analytics.paper_equity` of the closes the series keep
        (one leg held long, or the pairs strategy), then
        :func:`~quantify.analytics.trailing_drawdown` over ``window`` bars:
        the DrawdownMonitor's numbers on the same bars. A bar is judged once
        ``window`` bars up to it are kept (a pair: ``2 * window``, when its
        strategy can first trade).
        """
        p = rule.params
        tf = series[0].tf
        firsts = [s.first for s in series]
        if any(f is None for f in firsts):
            return []
        start = max(f for f in firsts if f is not None)
        w = int(p["window"])
        # judged once a full peak window is kept (a pair: once its strategy can trade, 2 * window bars)
        k = max(k, start + ((2 * w if len(series) == 2 else w) - 1) * tf)
        if k > closed:
            return []
        n = (closed - start) // tf + 1
        closes = [s.window(closed, n) for s in series]
        if any(c is None for c in closes):
            return []
        equity = paper_equity(*closes, window=w, entry=p["entry"], exit=p["exit"])
        dd = 100.0 * trailing_drawdown(equity, w).to_numpy()[(k - start) // tf:]
        trig = [self._trigger(series, b) for b in range(k, closed + 1, tf)]
        times = np.array([t for t, _, _ in trig], dtype=np.int64)
        idx, sup = _eval.scan_level(dd, times, above=True, level=p["level"], margin=p["margin"], strict=True,
                                    state=st, cooldown_ns=self._cooldown_ns(rule))
        self.stats["suppressed"] += sup
        return [Fired(trig[i][0], rule.id, trig[i][1], rule.symbols[trig[i][2]], float(dd[i])) for i in idx]

    def _bar(self, rule: Rule, series: list[_eval.BarSeries], k: int, st: dict[str, Any]) -> list[Fired]:
        p = rule.params
        if rule.kind == "regime-change":
            return self._regime(rule, series[0], k, st)
        n = p["long"] + 1 if rule.kind == "vol-breakout" else p["window"]
        if rule.kind == "corr-breakdown":
            n += 1  # window returns need window + 1 closes
        windows = [s.window(k, n) for s in series]
        if any(w is None for w in windows):
            return []
        if rule.kind == "vol-breakout":
            value = test = _eval.vol_ratio(windows[0], p["short"], p["long"])  # type: ignore[arg-type]
            above, level = True, p["k"]
        else:
            value = test = _eval.corr_value(*windows)  # type: ignore[arg-type]
            above, level = False, p["level"]
        tt, tid, trig = self._trigger(series, k)
        idx, sup = _eval.scan_level(np.array([test]), np.array([tt]), above=above, level=level,
                                    margin=p["margin"], strict=True, state=st,
                                    cooldown_ns=self._cooldown_ns(rule))
        self.stats["suppressed"] += sup
        return [Fired(tt, rule.id, tid, rule.symbols[trig], value)] if idx else []

    def _regime(self, rule: Rule, series: _eval.BarSeries, k: int, st: dict[str, Any]) -> list[Fired]:
        """Fire at bar ``k`` when the filtered regime of the ``lookback`` closes ending at ``k`` changed."""
        p = rule.params
        closes = series.window(k, int(p["lookback"]))
        step = None if closes is None else _regime.judge(closes, p)
        if step is None or not step.changed or step.prob < p["prob"]:
            return []
        tt, tid, _ = self._trigger([series], k)
        if not _eval._cooled(st, int(tt), self._cooldown_ns(rule)):
            self.stats["suppressed"] += 1
            return []
        st["last_fired"] = int(tt)
        return [Fired(tt, rule.id, tid, rule.symbols[0], float(step.state))]

    # -- order books -------------------------------------------------------

    def quotes(self, inst: str, quotes: pd.DataFrame) -> list[Fired]:
        """Spread and imbalance rules of ``inst`` at every quote of the batch (new quotes only).

        The values are those of :func:`~quantify.analytics.quoted_spread` (bps)
        and :func:`~quantify.analytics.imbalance` on the same quotes frame a
        notebook reads from ``store.quotes``; a quote with a side unknown is NaN
        and neither fires nor re-arms.
        """
        rules = self.quote_rules.get(inst)
        if not rules or not len(quotes):
            return []
        t = np.asarray(quotes.index.asi8)
        ids = quotes["update_id"].to_numpy()
        out: list[Fired] = []
        cache: dict[tuple[str, int], np.ndarray] = {}
        for rule in rules:
            p = rule.params
            key = (rule.kind, int(p.get("levels", 1)))
            try:
                values = cache.get(key)
                if values is None:
                    values = cache[key] = _book_value(quotes, *key)
            except ValueError as exc:
                self.stats["rule_errors"] += 1
                logger.warning("alert rule %s: quotes of %s not evaluated: %s", rule.id, inst, exc)
                continue
            if rule.kind == "spread-above":
                test, above, level = values, True, p["bps"]
            else:
                op = p["op"]
                test, above, level = (np.abs(values) if op == "abs-above" else values), op != "below", p["level"]
            idx, sup = _eval.scan_level(test, t, above=above, level=level, margin=p["margin"], strict=True,
                                        state=self.state[rule.id], cooldown_ns=self._cooldown_ns(rule))
            out += self._collect(rule, idx, sup, t, ids, values, inst)
        return out

    def book_stale(self, ledger: Mapping[str, pd.DataFrame], stale_seconds: Mapping[str, float]) -> list[Fired]:
        """``book-stale`` rules: once per episode out of sync longer than the rule's seconds.

        Every book's episodes advance here (rules or not): the ledger's gaps
        open one, its resyncs close one (the resync's ``stale_seconds`` is the
        episode's length: an episode that started and ended between two calls
        is judged too), and ``stale_seconds`` is the open episode's length now.
        """
        steps = self.books.advance(ledger, stale_seconds)
        out: list[Fired] = []
        for rule in self.book_stale_rules:
            inst = rule.symbols[0]
            st = self.state[rule.id]
            limit = rule.params["seconds"]
            cooldown = self._cooldown_ns(rule)
            for step in steps.get(inst, ()):
                if step.value <= 0:
                    st["armed"] = True  # back in sync: the next episode may fire
                elif st["armed"] and step.value > limit:
                    if _eval._cooled(st, step.t, cooldown):
                        st["last_fired"] = step.t
                        out.append(Fired(step.t, rule.id, step.episode, inst, step.value))
                    else:
                        self.stats["suppressed"] += 1
                    st["armed"] = False
        return out


    # -- perpetuals --------------------------------------------------------

    def marks(self, inst: str, marks: pd.DataFrame) -> list[Fired]:
        """Funding rules of ``inst`` at every mark update of the batch (new marks only).

        The value is the mark's ``funding_rate`` (a fraction), times 1e4 for
        a rule in bps; ``trade_id`` of a firing is the mark's time in ns.
        """
        rules = self.mark_rules.get(inst)
        if not rules or not len(marks):
            return []
        t = np.asarray(marks.index.asi8)
        rate = marks["funding_rate"].to_numpy(dtype=float)
        out: list[Fired] = []
        for rule in rules:
            p = rule.params
            values = rate * 1e4 if p["unit"] == "bps" else rate
            idx, sup = _eval.scan_level(values, t, above=rule.kind == "funding-above", level=p["level"],
                                        margin=p["margin"], strict=False, state=self.state[rule.id],
                                        cooldown_ns=self._cooldown_ns(rule))
            out += self._collect(rule, idx, sup, t, t, values, inst)
        return out

    def liquidations(self, inst: str, frame: pd.DataFrame, tail: tuple[np.ndarray, np.ndarray]) -> list[Fired]:
        """Burst rules of ``inst`` at every new liquidation: count or notional in ``(t - window, t]``.

        ``tail`` holds the times (ns) and notionals of the liquidations before
        the batch (at least the longest window's); ``trade_id`` of a firing is
        the liquidation's time in ns.
        """
        rules = self.liquidation_rules.get(inst)
        if not rules or not len(frame):
            return []
        t = np.asarray(frame.index.asi8)
        all_t = np.concatenate([tail[0], t])
        cum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.concatenate(
            [tail[1], frame["notional"].to_numpy(dtype=float)])))])
        last = np.arange(len(tail[0]), len(all_t)) + 1  # rows up to and including each new one
        out: list[Fired] = []
        for rule in rules:
            p = rule.params
            first = np.searchsorted(all_t, t - int(p["window"] * NS), side="right")
            if p["count"] is not None:
                values, level = (last - first).astype(float), float(p["count"])
            else:
                values, level = cum[last] - cum[first], float(p["notional"])
            idx, sup = _eval.scan_level(values, t, above=True, level=level, margin=0.0, strict=False,
                                        state=self.state[rule.id], cooldown_ns=self._cooldown_ns(rule))
            out += self._collect(rule, idx, sup, t, t, values, inst)
        return out


def _book_value(quotes: pd.DataFrame, kind: str, levels: int) -> np.ndarray:
    """The value a quote rule compares, per quote: the spread in bps, or the imbalance."""
    cols = ("bid_price", "ask_price") if kind == "spread-above" else ("bid_price", "bid_qty", "ask_price", "ask_qty")
    known = np.ones(len(quotes), dtype=bool)
    for c in cols:
        known &= ~np.isnan(quotes[c].to_numpy(dtype=float))
    if not known.any():
        return np.full(len(quotes), np.nan)  # every quote has a side unknown: nothing to judge
    if kind == "spread-above":
        return quoted_spread(quotes, unit="bps").to_numpy()
    return imbalance(quotes, levels=levels).to_numpy()
