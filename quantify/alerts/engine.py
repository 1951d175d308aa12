"""The alert engine: rules evaluated by the ingestion writer, once per trade.

:class:`AlertEngine` is an ingestion batch listener::

    service.add_batch_listener(AlertEngine(service.store))

The writer calls it with each batch it stored, so every trade is evaluated
once, in the writer process, however many notebooks are open.

Exactly once across restarts
----------------------------
ArcticDB has no transactions, so the engine orders its writes:

1. evaluate the batch (rule state and evaluated position advance in memory);
2. append the fired alerts to ``history``, skipping any whose key
   ``(rule_id, trigger symbol, trigger trade id)`` is already there;
3. every ``checkpoint_interval`` seconds, write the checkpoint: the last
   evaluated trade id per symbol, every rule's state (armed, side, last
   firing, last bar) and the next ``alert_id``.

On start the engine loads the checkpoint, reads the history written after
it (alerts stored but not checkpointed), and re-evaluates every stored trade
after the checkpoint. Evaluation depends only on the trades and the
checkpointed state, so it regenerates exactly the alerts it had stored before
a crash — skipped by key, re-delivered to channels marked ``redelivered`` —
and the ones it never got to. Bar and tick histories are rebuilt from the
store, so the checkpoint stays small.

Timing
------
Values are compared with thresholds at every trade (price, ``pct-move``,
``gap``, ``stale``) or at every closed bar (``zscore``, ``vol-breakout``,
``corr-breakdown``; a pair's bar counts as closed once both legs traded past
its end). An alert's ``fired_at`` is the time of the triggering trade;
cooldowns run on trade time, so a replay fires the same alerts as the live
run did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantify.alerts import _eval
from quantify.alerts.channels import DEFAULT_RETRY, Channel, Dispatcher, LoggingChannel, RetryPolicy
from quantify.analytics.pairs import pair_zscore
from quantify.model.rules import MAX_BARS, Rule
from quantify.model.timeframes import timeframe_to_offset
from quantify.store.alerts import AlertBook

__all__ = ["AlertEngine"]

logger = logging.getLogger(__name__)

_NS = 1_000_000_000
_PRICE_KINDS = ("price-above", "price-below", "price-crosses")
_BAR_KINDS = ("zscore", "vol-breakout", "corr-breakdown")
#: Least bars a z-score rule's series keep. The Kalman filter is causal, so its z
#: depends on where the history starts, and the rolling kernels' rounding (about
#: 1e-13) on it too: with a long history the engine's z equals the PairMonitor's on
#: the same bars (bit for bit when both start at the same bar).
_PAIR_BARS = min(1_000, MAX_BARS)


def _bars_needed(rule: Rule) -> int:
    """Closed bars a bar rule's series must keep."""
    p = rule.params
    if rule.kind == "vol-breakout":
        return int(p["long"]) + 1
    if rule.kind == "zscore":
        # the first z needs 2 * window - 1 bars (rolling hedge, then rolling z); one more
        # so that the bar before the first evaluated one is known too
        return max(2 * int(p["window"]), _PAIR_BARS)
    return int(p["window"]) + 1


@dataclass(frozen=True)
class _Fired:
    """One firing, before it is stored."""

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


class AlertEngine:
    """Evaluate the store's alert rules on every batch the ingestion writer stores.

    Parameters
    ----------
    store : quantify.Store
        The store the writer appends to; rules, history and checkpoint live
        in its ``alerts`` library.
    channels : iterable of Channel
        Delivered to after the history (see :mod:`quantify.alerts.channels`).
    log_alerts : bool
        Also deliver to a :class:`LoggingChannel`.
    retry : RetryPolicy
        Queue size and retries of every channel.
    poll_interval : float
        Seconds between checks of the rules' version (changes made by any
        process take effect within about this, plus the store's read cache).
    checkpoint_interval : float
        Seconds between checkpoints (after a crash, at most this much is
        re-evaluated; nothing is lost or stored twice either way).
    """

    def __init__(
        self, store: Any, *, channels: Iterable[Channel] = (), log_alerts: bool = True,
        retry: RetryPolicy = DEFAULT_RETRY, poll_interval: float = 0.5, checkpoint_interval: float = 1.0,
    ) -> None:
        if not poll_interval >= 0 or not checkpoint_interval >= 0:
            raise ValueError(f"poll_interval and checkpoint_interval must be >= 0 seconds, "
                             f"got {poll_interval!r}, {checkpoint_interval!r}")
        self.store = store
        self.book = AlertBook(store)
        self.dispatcher = Dispatcher([*([LoggingChannel()] if log_alerts else []), *channels], retry)
        self.poll_interval = poll_interval
        self.checkpoint_interval = checkpoint_interval
        self.started = False
        self.rules: dict[str, Rule] = {}
        self.state: dict[str, dict[str, Any]] = {}
        self.pos: dict[str, tuple[int, int]] = {}  # symbol -> (last evaluated id, its time ns)
        self._bars: dict[tuple[str, int], _eval.BarSeries] = {}
        self._ticks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tick_window: dict[str, int] = {}
        self._price: dict[str, _PriceGroup] = {}
        self._tf: dict[str, int] = {}
        self._by_kind: dict[tuple[str, str], list[Rule]] = {}
        self._bar_rules: list[Rule] = []
        self._bars_of: dict[str, list[_eval.BarSeries]] = {}
        self._stale_rules: list[Rule] = []
        self._version = -2
        self._next_poll = 0.0
        self._next_checkpoint = 0.0
        self._next_alert_id = 0
        self._last_recorded = 0
        self._seen: set[tuple[str, str, int]] = set()  # stored since the last checkpoint
        self._redeliver: dict[tuple[str, str, int], int] = {}  # stored, delivery unknown -> alert_id
        self._unstored: list[dict[str, Any]] = []
        self._stats: dict[str, Any] = {
            "batches": 0, "trades": 0, "fired": 0, "suppressed": 0, "deduplicated": 0,
            "redelivered": 0, "catchup_trades": 0, "store_errors": 0, "rule_errors": 0,
            "eval_ms_last": 0.0, "eval_ms_max": 0.0, "latency_ms_last": 0.0, "latency_ms_max": 0.0,
            "checkpoints": 0,
        }

    def __repr__(self) -> str:
        return f"<quantify.alerts.AlertEngine {len(self.rules)} rule(s) on {self.store.uri}>"

    # -- lifecycle --------------------------------------------------------

    def start(self, store: Any = None, *, _frames: Mapping[str, pd.DataFrame] | None = None) -> None:
        """Load rules and the checkpoint, then evaluate stored trades not yet evaluated.

        Called by the ingestion service in the writer thread before streaming
        (and by the first batch if the service notified one before that).
        """
        if self.started:
            return
        self.started = True
        cp = self.book._read_checkpoint()
        self._next_alert_id = self.book.latest_id() + 1
        last = self.book._last_recorded_at()
        self._last_recorded = 0 if last is None else int(last.value)
        if cp is None:
            # First run on this store: alerts start with the trades stored from now on.
            for sym, (tid, ts) in self.store.last_trades().items():
                self.pos[sym] = (tid, int(ts.value))
            for sym, frame in (_frames or {}).items():
                if len(frame):
                    self.pos[sym] = (int(frame["trade_id"].iloc[0]) - 1, int(frame.index[0].value))
        else:
            self.pos = {s: (int(i), int(t)) for s, (i, t) in cp["pos"].items()}
            self.state = {k: dict(v) for k, v in cp["state"].items()}
            for _, row in self.book._history_after(int(cp["next_alert_id"]) - 1).iterrows():
                key = (row["rule_id"], row["trigger_symbol"], int(row["trade_id"]))
                self._seen.add(key)
                self._redeliver[key] = int(row["alert_id"])
        self._reload_rules(force=True)
        caught = self._catch_up()
        logger.info("alert engine started: %d rule(s), %d stored trade(s) re-evaluated, %d alert(s) "
                    "stored before a restart", len(self.rules), caught, len(self._seen))

    def close(self, timeout: float = 5.0) -> None:
        """Write a final checkpoint and stop the delivery threads."""
        if self.started and not self._unstored:
            self._checkpoint()
        self.dispatcher.close(timeout)

    def add_channel(self, channel: Channel) -> None:
        """Deliver future alerts to ``channel`` too."""
        self.dispatcher.add(channel)

    # -- rules ------------------------------------------------------------

    def _reload_rules(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + self.poll_interval
        version = self.book.rules_version()
        if version == self._version and not force:
            return
        self._version = version
        rules = {r.id: r for r in self.book.list(enabled=True)}
        for rid in list(self.state):
            if rid not in rules:
                del self.state[rid]
        for rid, rule in rules.items():
            stamp = repr(sorted(rule.to_record().items()))
            st = self.state.get(rid)
            if st is None or st.get("stamp") != stamp:
                # New or changed: armed afresh; a running cooldown keeps running.
                self.state[rid] = {"stamp": stamp, "armed": True, "side": None,
                                   "last_fired": None if st is None else st.get("last_fired"),
                                   "last_bar": None, "new": True}
        self.rules = rules
        self._price = {}
        by_symbol: dict[str, list[Rule]] = {}
        for rule in rules.values():
            if rule.kind in _PRICE_KINDS:
                by_symbol.setdefault(rule.symbols[0], []).append(rule)
        self._price = {sym: _PriceGroup(rs) for sym, rs in by_symbol.items()}
        self._by_kind = {}
        for rule in rules.values():
            if rule.kind in ("pct-move", "gap"):
                self._by_kind.setdefault((rule.kind, rule.symbols[0]), []).append(rule)
        self._bar_rules = [r for r in rules.values() if r.kind in _BAR_KINDS]
        self._stale_rules = [r for r in rules.values() if r.kind == "stale"]
        self._prepare_series()
        logger.debug("alert rules reloaded (version %d): %d enabled", version, len(rules))

    def _prepare_series(self) -> None:
        """Create and warm the bar and tick histories the rules need."""
        need_bars: dict[tuple[str, int], int] = {}
        need_ticks: dict[str, int] = {}
        for rule in self.rules.values():
            p = rule.params
            if rule.kind in _BAR_KINDS:
                tf = int(timeframe_to_offset(p["timeframe"]).value)
                n = _bars_needed(rule)
                for sym in rule.symbols:
                    need_bars[(sym, tf)] = max(need_bars.get((sym, tf), 0), n)
            elif rule.kind == "pct-move":
                sym = rule.symbols[0]
                need_ticks[sym] = max(need_ticks.get(sym, 0), int(p["window"] * _NS))
        for key in [k for k in self._bars if k not in need_bars]:
            del self._bars[key]
        for (sym, tf), n in need_bars.items():
            series = self._bars.get((sym, tf))
            if series is None or series.keep < n:
                series = _eval.BarSeries(tf, max(n, 2))
                if sym in self.pos:
                    last_id, last_t = self.pos[sym]
                    t, prices, ids = self._read(sym, last_t - (n + 2) * tf, last_id)
                    series.update(t, prices, ids)
                self._bars[(sym, tf)] = series
        for sym in [s for s in self._ticks if s not in need_ticks]:
            del self._ticks[sym]
        for sym, window in need_ticks.items():
            if self._tick_window.get(sym, -1) < window or sym not in self._ticks:
                t, prices = np.empty(0, dtype=np.int64), np.empty(0)
                if sym in self.pos:
                    last_id, last_t = self.pos[sym]
                    t, prices, _ = self._read(sym, last_t - 2 * window - 60 * _NS, last_id)
                self._ticks[sym] = (t, prices)
        self._tick_window = need_ticks
        self._bars_of = {}
        for (sym, _), series in self._bars.items():
            self._bars_of.setdefault(sym, []).append(series)
        for rule in self.rules.values():
            st = self.state[rule.id]
            if st.pop("new", False) and rule.kind in _BAR_KINDS:
                # A new rule judges bars closed from now on, not history.
                st["last_bar"] = self._pair_closed(rule)

    def _series(self, rule: Rule) -> list[_eval.BarSeries]:
        tf = self._tf.get(rule.params["timeframe"])
        if tf is None:
            tf = self._tf[rule.params["timeframe"]] = int(timeframe_to_offset(rule.params["timeframe"]).value)
        return [self._bars[(sym, tf)] for sym in rule.symbols]

    def _pair_closed(self, rule: Rule) -> int | None:
        lasts = [s.last_closed for s in self._series(rule)]
        return None if any(x is None for x in lasts) else min(lasts)  # type: ignore[type-var]

    # -- store reads ------------------------------------------------------

    def _read(self, sym: str, t_from: int, upto_id: int, after_id: int | None = None
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

    def _catch_up(self) -> int:
        """Evaluate stored trades after the evaluated position (after a restart)."""
        frames = {}
        for sym, (tid, _) in self.store.last_trades().items():
            if sym in self.pos and tid > self.pos[sym][0]:
                last_id, last_t = self.pos[sym]
                t, p, ids = self._read(sym, last_t, tid, after_id=last_id)
                frames[sym] = (t, p, ids)
        n = sum(len(v[0]) for v in frames.values())
        if n:
            self._stats["catchup_trades"] += n
            self._process(frames, time.perf_counter())
        return n

    # -- the listener -----------------------------------------------------

    def __call__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """Evaluate one batch of stored trades (the ingestion writer calls this)."""
        received = time.perf_counter()
        if not self.started:
            self.start(self.store, _frames=frames)
        self._reload_rules()
        batch: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for sym, frame in frames.items():
            if not len(frame):
                continue
            ids = frame["trade_id"].to_numpy()
            t = np.asarray(frame.index.asi8)
            p = frame["price"].to_numpy(dtype=float)
            if sym in self.pos:
                last_id, last_t = self.pos[sym]
                if ids[0] > last_id + 1:
                    # Stored but never evaluated (the engine joined late): read them back.
                    mt, mp, mids = self._read(sym, last_t, int(ids[0]) - 1, after_id=last_id)
                    if len(mids):
                        self._stats["catchup_trades"] += len(mids)
                        t, p, ids = np.concatenate([mt, t]), np.concatenate([mp, p]), np.concatenate([mids, ids])
                keep = ids > last_id
                if not keep.all():
                    t, p, ids = t[keep], p[keep], ids[keep]
            if len(ids):
                batch[sym] = (t, p, ids)
        self._process(batch, received)

    def _process(self, batch: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], received: float) -> None:
        fired: list[_Fired] = []
        for sym, (t, p, ids) in batch.items():
            fired += self._eval_price(sym, t, p, ids)
            fired += self._eval_pct(sym, t, p, ids)
            fired += self._eval_gap(sym, t, ids)
            for series in self._bars_of.get(sym, ()):
                series.update(t, p, ids)
        fired += self._eval_bars()
        fired += self._eval_stale(batch)
        for sym, (t, _, ids) in batch.items():
            self.pos[sym] = (int(ids[-1]), int(t[-1]))
            self._stats["trades"] += len(ids)
        self._stats["batches"] += 1
        evaluated = time.perf_counter()
        self._store(fired)
        done = time.perf_counter()
        st = self._stats
        st["eval_ms_last"] = round((evaluated - received) * 1e3, 3)
        st["eval_ms_max"] = max(st["eval_ms_max"], st["eval_ms_last"])
        st["latency_ms_last"] = round((done - received) * 1e3, 3)
        st["latency_ms_max"] = max(st["latency_ms_max"], st["latency_ms_last"])
        if time.monotonic() >= self._next_checkpoint and not self._unstored:
            self._checkpoint()

    # -- evaluation -------------------------------------------------------

    def _cooldown_ns(self, rule: Rule) -> int:
        return int(rule.cooldown * _NS)

    def _collect(self, rule: Rule, idx: list[int], suppressed: int, t: np.ndarray, ids: np.ndarray,
                 values: np.ndarray, trigger: str) -> list[_Fired]:
        self._stats["suppressed"] += suppressed
        return [_Fired(int(t[i]), rule.id, int(ids[i]), trigger, float(values[i])) for i in idx]

    def _eval_price(self, sym: str, t: np.ndarray, p: np.ndarray, ids: np.ndarray) -> list[_Fired]:
        group = self._price.get(sym)
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
        out: list[_Fired] = []
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

    def _eval_pct(self, sym: str, t: np.ndarray, p: np.ndarray, ids: np.ndarray) -> list[_Fired]:
        if sym not in self._ticks:
            return []
        bt, bp = self._ticks[sym]
        all_t, all_p = np.concatenate([bt, t]), np.concatenate([bp, p])
        out: list[_Fired] = []
        cache: dict[int, np.ndarray] = {}
        for rule in self._by_kind.get(("pct-move", sym), ()):
            w = int(rule.params["window"] * _NS)
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
        first = int(np.searchsorted(all_t, all_t[-1] - self._tick_window[sym], side="right")) - 1
        self._ticks[sym] = (all_t[max(first, 0):], all_p[max(first, 0):])
        return out

    def _eval_gap(self, sym: str, t: np.ndarray, ids: np.ndarray) -> list[_Fired]:
        rules = self._by_kind.get(("gap", sym))
        if not rules or sym not in self.pos:
            return []
        missing = np.diff(np.concatenate([[self.pos[sym][0]], ids])) - 1
        jumps = np.flatnonzero(missing > 0)
        out: list[_Fired] = []
        for rule in rules:
            st = self.state[rule.id]
            for i in jumps:
                if _eval._cooled(st, int(t[i]), self._cooldown_ns(rule)):
                    st["last_fired"] = int(t[i])
                    out.append(_Fired(int(t[i]), rule.id, int(ids[i]), sym, float(missing[i])))
                else:
                    self._stats["suppressed"] += 1
        return out

    def _eval_stale(self, batch: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[_Fired]:
        rules = self._stale_rules
        if not rules or not batch:
            return []
        syms = sorted(batch)
        t = np.concatenate([batch[s][0] for s in syms])
        ids = np.concatenate([batch[s][2] for s in syms])
        code = np.concatenate([np.full(len(batch[s][0]), k) for k, s in enumerate(syms)])
        order = np.argsort(t, kind="stable")
        t, ids, code = t[order], ids[order], code[order]
        out: list[_Fired] = []
        for rule in rules:
            sym = rule.symbols[0]
            is_s = code == syms.index(sym) if sym in batch else np.zeros(len(t), dtype=bool)
            # Seconds since the symbol's previous trade, at every trade of the batch (NaN: never traded).
            prev0 = float(self.pos[sym][1]) if sym in self.pos else np.nan
            own = np.where(is_s, t.astype(float), np.nan)
            before = np.fmax.accumulate(np.concatenate([[prev0], own[:-1]]))
            values = (t - before) / _NS
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
                        out.append(_Fired(int(t[i]), rule.id, int(ids[i]), syms[code[i]], float(values[i])))
                    else:
                        self._stats["suppressed"] += 1
                    st["armed"] = bool(is_s[i])  # the symbol's own trade ends the silence
                else:
                    i = _eval.first_true(is_s, pos)
                    if i < 0:
                        break
                    st["armed"] = True
                pos = i + 1
        return out

    def _eval_bars(self) -> list[_Fired]:
        out: list[_Fired] = []
        for rule in self._bar_rules:
            series = self._series(rule)
            closed = self._pair_closed(rule)
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
            if rule.kind == "zscore":
                if k <= closed:
                    try:
                        out += self._eval_zscore(rule, series, k, closed, st)
                    except (ValueError, FloatingPointError) as exc:
                        self._stats["rule_errors"] += 1
                        logger.warning("alert rule %s: bars %s..%s not evaluated: %s", rule.id, k, closed, exc)
                    st["last_bar"] = closed
                continue
            while k <= closed:
                try:
                    out += self._eval_bar(rule, series, k, st)
                except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                    self._stats["rule_errors"] += 1
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

    def _eval_zscore(self, rule: Rule, series: list[_eval.BarSeries], k: int, closed: int,
                     st: dict[str, Any]) -> list[_Fired]:
        """Evaluate the pair z-score at every closed bar from ``k`` to ``closed``, in order.

        One :func:`~quantify.analytics.pair_zscore` over the bars both legs
        keep (the monitor's number, on the same closes), then the level
        trigger walks the new bars.
        """
        p = rule.params
        tf = series[0].tf
        firsts = [s.first for s in series]
        if any(f is None for f in firsts):
            return []
        start = max(f for f in firsts if f is not None)
        k = max(k, start)
        n = (closed - start) // tf + 1
        y, x = (s.window(closed, n) for s in series)
        if y is None or x is None:
            return []
        z = pair_zscore(y, x, int(p["window"]), hedge=p["hedge"], delta=p["delta"])["z"].to_numpy()
        z = z[(k - start) // tf:]
        trig = [self._trigger(series, b) for b in range(k, closed + 1, tf)]
        op = p["op"]
        test = np.abs(z) if op == "abs-above" else z
        times = np.array([t for t, _, _ in trig], dtype=np.int64)
        idx, sup = _eval.scan_level(test, times, above=op != "below", level=p["level"], margin=p["margin"],
                                    strict=True, state=st, cooldown_ns=self._cooldown_ns(rule))
        self._stats["suppressed"] += sup
        return [_Fired(trig[i][0], rule.id, trig[i][1], rule.symbols[trig[i][2]], float(z[i])) for i in idx]

    def _eval_bar(self, rule: Rule, series: list[_eval.BarSeries], k: int, st: dict[str, Any]) -> list[_Fired]:
        p = rule.params
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
        self._stats["suppressed"] += sup
        return [_Fired(tt, rule.id, tid, rule.symbols[trig], value)] if idx else []

    # -- storing and delivering -------------------------------------------

    def _store(self, fired: list[_Fired]) -> None:
        fired.sort(key=lambda f: (f.t, f.rule_id, f.trade_id))
        rows, deliver = [], []
        for f in fired:
            rule = self.rules[f.rule_id]
            if f.key in self._seen:
                self._stats["deduplicated"] += 1
                if f.key in self._redeliver:
                    self._stats["redelivered"] += 1
                    deliver.append(self._row(rule, f, self._redeliver.pop(f.key)) | {"redelivered": True})
                continue
            self._seen.add(f.key)
            row = self._row(rule, f, self._next_alert_id)
            self._next_alert_id += 1
            rows.append(row)
        self._unstored += rows
        if self._unstored:
            frame = pd.DataFrame(self._unstored)
            now = max(time.time_ns(), self._last_recorded + 1)
            recorded = pd.DatetimeIndex(pd.to_datetime(np.arange(len(frame)) + now, utc=True), name="recorded_at")
            frame.index = recorded
            frame["fired_at"] = pd.to_datetime(frame["fired_at"], utc=True)
            try:
                self.book._append_history(frame)
            except Exception as exc:  # noqa: BLE001 - the store refused: keep the rows, retry with the next batch
                self._stats["store_errors"] += 1
                logger.warning("alert history not stored (%d alert(s) kept for the next batch): %s",
                               len(self._unstored), exc)
                return
            self._last_recorded = int(recorded[-1].value)
            deliver += [{**r, "redelivered": False} for r in self._unstored]
            self._stats["fired"] += len(self._unstored)
            self._unstored = []
        for row in deliver:
            alert = {**row, "fired_at": pd.Timestamp(row["fired_at"], tz="UTC").isoformat()}
            self.dispatcher.publish(alert)

    def _row(self, rule: Rule, f: _Fired, alert_id: int) -> dict[str, Any]:
        fired_at = pd.Timestamp(f.t, tz="UTC")
        try:
            message = rule.format_message(value=f.value, time=fired_at)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            message = f"{rule.kind} {rule.symbol}: {f.value:g} (message template failed: {exc})"
        return {
            "alert_id": alert_id, "rule_id": rule.id, "fired_at": f.t, "symbol": rule.symbol,
            "kind": rule.kind, "value": f.value, "threshold": rule.threshold, "severity": rule.severity,
            "message": message, "trade_id": f.trade_id, "trigger_symbol": f.trigger_symbol,
        }

    def _checkpoint(self) -> None:
        state = {
            "version": 1, "pos": dict(self.pos), "next_alert_id": self._next_alert_id,
            "state": {rid: {k: v for k, v in st.items() if k != "new"} for rid, st in self.state.items()},
            "saved_at": time.time(), "stats": self.stats(),
        }
        try:
            self.book._write_checkpoint(state)
        except Exception as exc:  # noqa: BLE001 - retried at the next batch; nothing is lost meanwhile
            self._stats["store_errors"] += 1
            logger.warning("alert checkpoint not written: %s", exc)
            return
        self._stats["checkpoints"] += 1
        self._seen.clear()
        self._redeliver.clear()
        self._next_checkpoint = time.monotonic() + self.checkpoint_interval

    # -- reporting --------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for ``quantify status``, keys prefixed ``alerts_``.

        ``alerts_rules`` (enabled), ``alerts_batches``, ``alerts_trades``,
        ``alerts_fired``, ``alerts_suppressed`` (by cooldown),
        ``alerts_deduplicated`` / ``alerts_redelivered`` (after a restart),
        ``alerts_catchup_trades``, ``alerts_store_errors``, ``alerts_rule_errors``,
        ``alerts_unstored``, ``alerts_checkpoints``, ``alerts_eval_ms_last``/``_max``
        (evaluation of one batch), ``alerts_latency_ms_last``/``_max`` (batch
        received to alerts stored), ``alerts_delivered``, ``alerts_delivery_retries``,
        ``alerts_delivery_failed``, ``alerts_delivery_dropped``, ``alerts_delivery_queued``
        (all channels) and ``alerts_channels`` (the same per channel).
        """
        channels = self.dispatcher.stats()
        out = {"alerts_rules": len(self.rules), **{f"alerts_{k}": v for k, v in self._stats.items()},
               "alerts_unstored": len(self._unstored)}
        for key, name in (("delivered", "delivered"), ("retries", "delivery_retries"),
                          ("failed", "delivery_failed"), ("dropped", "delivery_dropped"),
                          ("queued", "delivery_queued")):
            out[f"alerts_{name}"] = sum(c[key] for c in channels.values())
        out["alerts_channels"] = channels
        return out
