"""The alert engine: rules evaluated by the ingestion writer, once per trade and once per quote.

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
``corr-breakdown``, ``basis-z``; a pair's bar counts as closed once both legs
traded past its end). An alert's ``fired_at`` is the time of the triggering trade;
cooldowns run on trade time, so a replay fires the same alerts as the live
run did.

Order books
-----------
The writer also calls :meth:`AlertEngine.book_batch` after each append of
order-book data: ``spread-above`` and ``imbalance-beyond`` rules are judged at
every new quote (``fired_at`` its exchange time, ``trade_id`` its update id
``u``), ``book-stale`` rules once per call, from the continuity ledger and how
long each book has been out of sync (``fired_at``: the gap's exchange time
plus that; ``trade_id``: the update id that revealed the gap). The books'
positions and open episodes go into the checkpoint; on start the engine
judges the quotes stored after each book's position (``store.quotes``), as
it does trades, so a restart stores no quote alert twice and loses none.

Perpetuals
----------
The writer calls :meth:`AlertEngine.perp_batch` with the mark updates and
liquidations it stored: ``funding-above`` and ``funding-below`` are judged at
every mark, ``liquidation-burst`` at every liquidation (``fired_at`` its
time, ``trade_id`` that time in ns). The time of the last judged row of each
kind per instrument goes into the checkpoint, and on start the rows stored
after it are judged (``store.mark``, ``store.liquidations``). ``basis-z`` is a
bar rule on the trades of its two legs (perpetual and spot), as ``zscore``.

Risk
----
``drawdown`` is a bar rule on one instrument (held long) or a pair (the
pairs strategy on its closes): at every closed bar, the fall of that paper
position's equity from its peak of the last ``window`` bars, in %
(:func:`quantify.analytics.paper_equity`,
:func:`quantify.analytics.trailing_drawdown`, the DrawdownMonitor's numbers).

Evaluation of each rule kind is in :mod:`quantify.alerts._kinds`, the bar
and tick histories it reads in :mod:`quantify.alerts._history`; this module
holds the engine's lifecycle, batch loop, alert storing and checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from quantify.alerts._eval import BookEpisodes
from quantify.alerts._history import BAR_KINDS, MarketHistory
from quantify.alerts._kinds import Fired, RuleEvaluator
from quantify.alerts.channels import DEFAULT_RETRY, Channel, Dispatcher, LoggingChannel, RetryPolicy
from quantify.model.rules import Rule
from quantify.store.alerts import AlertBook

__all__ = ["AlertEngine"]

logger = logging.getLogger(__name__)


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
            "checkpoints": 0, "book_batches": 0, "quotes": 0, "catchup_quotes": 0,
            "perp_batches": 0, "marks": 0, "liquidations": 0, "catchup_perp": 0,
        }
        #: kind ("mark", "liquidations") -> instrument -> time (ns) of the last judged row
        self.perp_pos: dict[str, dict[str, int]] = {"mark": {}, "liquidations": {}}
        self._history = MarketHistory(store)
        self.book_episodes = BookEpisodes()  # each book's last evaluated quote and open episode out of sync
        # state, pos, book_episodes and _stats are shared with the evaluator: updated in place, never rebound
        self._evaluator = RuleEvaluator(self._history, self.state, self.pos, self._stats, self.book_episodes)

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
            self.pos.clear()
            self.pos.update({s: (int(i), int(t)) for s, (i, t) in cp["pos"].items()})
            self.state.clear()
            self.state.update({k: dict(v) for k, v in cp["state"].items()})
            self.book_episodes.load(cp.get("books", {}))
            for kind, rows in cp.get("perp", {}).items():
                self.perp_pos.setdefault(kind, {}).update({k: int(v) for k, v in rows.items()})
            for _, row in self.book._history_after(int(cp["next_alert_id"]) - 1).iterrows():
                key = (row["rule_id"], row["trigger_symbol"], int(row["trade_id"]))
                self._seen.add(key)
                self._redeliver[key] = int(row["alert_id"])
        self._reload_rules(force=True)
        caught = self._catch_up()
        quotes = self._catch_up_books()
        perp = self._catch_up_perp()
        logger.info("alert engine started: %d rule(s), %d stored trade(s), %d quote(s) and %d perpetual row(s) "
                    "re-evaluated, %d alert(s) stored before a restart", len(self.rules), caught, quotes, perp,
                    len(self._seen))

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
        self._evaluator.index(rules.values())
        self._history.prepare(rules.values(), self.pos)
        self._history.prepare_liquidations(rules.values(), self.perp_pos["liquidations"])
        for rule in rules.values():
            st = self.state[rule.id]
            if st.pop("new", False) and rule.kind in BAR_KINDS:
                # A new rule judges bars closed from now on, not history.
                st["last_bar"] = self._history.pair_closed(rule)
        logger.debug("alert rules reloaded (version %d): %d enabled", version, len(rules))

    def _catch_up(self) -> int:
        """Evaluate stored trades after the evaluated position (after a restart)."""
        frames = {}
        for sym, (tid, _) in self.store.last_trades().items():
            if sym in self.pos and tid > self.pos[sym][0]:
                last_id, last_t = self.pos[sym]
                t, p, ids = self._history.read(sym, last_t, tid, after_id=last_id)
                frames[sym] = (t, p, ids)
        n = sum(len(v[0]) for v in frames.values())
        if n:
            self._stats["catchup_trades"] += n
            self._process(frames, time.perf_counter())
        return n

    def _catch_up_books(self) -> int:
        """Evaluate stored quotes after each book's evaluated position (after a restart).

        The ledger is not read back: a ``book-stale`` firing is keyed by its
        episode, so one stored after the checkpoint is not stored twice.
        """
        quotes = {}
        for inst, (_, last_t) in list(self.book_episodes.pos.items()):
            if self.store.has_book(inst):
                frame = self.book_episodes.new_quotes(inst, self.store.quotes(inst, start=pd.Timestamp(last_t, tz="UTC")))
                if len(frame):
                    quotes[inst] = frame
        n = sum(len(f) for f in quotes.values())
        if n:
            self._stats["catchup_quotes"] += n
            self._book_process(quotes, {}, {}, time.perf_counter())
        return n

    def _catch_up_perp(self) -> int:
        """Judge the marks and liquidations stored after each instrument's judged position (after a restart)."""
        reads = {"mark": self.store.mark, "liquidations": self.store.liquidations}
        frames: dict[str, dict[str, pd.DataFrame]] = {"mark": {}, "liquidations": {}}
        for kind, positions in self.perp_pos.items():
            for inst, last_t in list(positions.items()):
                frame = reads[kind](inst, start=pd.Timestamp(last_t, tz="UTC"))
                frame = frame[frame.index.asi8 > last_t]
                if len(frame):
                    frames[kind][inst] = frame
        n = sum(len(f) for by in frames.values() for f in by.values())
        if n:
            self._stats["catchup_perp"] += n
            self._perp_process(frames["mark"], frames["liquidations"], time.perf_counter())
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
                    mt, mp, mids = self._history.read(sym, last_t, int(ids[0]) - 1, after_id=last_id)
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
        ev = self._evaluator
        fired: list[Fired] = []
        for sym, (t, p, ids) in batch.items():
            fired += ev.price(sym, t, p, ids)
            fired += ev.pct(sym, t, p, ids)
            fired += ev.gap(sym, t, ids)
            self._history.update_bars(sym, t, p, ids)
        fired += ev.bars()
        fired += ev.stale(batch)
        for sym, (t, _, ids) in batch.items():
            self.pos[sym] = (int(ids[-1]), int(t[-1]))
            self._stats["trades"] += len(ids)
        self._stats["batches"] += 1
        self._finish(fired, received)

    def book_batch(self, quotes: Mapping[str, pd.DataFrame], ledger: Mapping[str, pd.DataFrame],
                   stale_seconds: Mapping[str, float]) -> None:
        """Evaluate the book rules on one append of order-book data (the ingestion writer calls this).

        Parameters
        ----------
        quotes : mapping of str to DataFrame
            Instrument key -> the quotes just stored (a quotes frame:
            ``bid_price, bid_qty, ask_price, ask_qty, update_id``, exchange-time
            index); a quote already evaluated is skipped.
        ledger : mapping of str to DataFrame
            Instrument key -> the continuity events just stored (``kind``,
            ``got_id``, ``stale_seconds``, exchange-time index).
        stale_seconds : mapping of str to float
            Instrument key -> how long its book has been out of sync now (0: live).
        """
        received = time.perf_counter()
        if not self.started:
            self.start(self.store)
        self._reload_rules()
        self._stats["book_batches"] += 1
        self._book_process(quotes, ledger, stale_seconds, received)

    def _book_process(self, quotes: Mapping[str, pd.DataFrame], ledger: Mapping[str, pd.DataFrame],
                      stale_seconds: Mapping[str, float], received: float) -> None:
        ev = self._evaluator
        fired: list[Fired] = []
        for inst, frame in quotes.items():
            new = self.book_episodes.new_quotes(inst, frame)
            if not len(new):
                continue
            fired += ev.quotes(inst, new)
            ids = new["update_id"].to_numpy()
            self.book_episodes.pos[inst] = (int(ids[-1]), int(new.index.asi8[-1]))
            self._stats["quotes"] += len(new)
        fired += ev.book_stale(ledger, stale_seconds)
        self._finish(fired, received)

    def perp_batch(self, marks: Mapping[str, pd.DataFrame], liquidations: Mapping[str, pd.DataFrame]) -> None:
        """Evaluate the perpetual rules on one append of marks and liquidations (the ingestion writer calls this).

        Parameters
        ----------
        marks : mapping of str to DataFrame
            Instrument key -> the mark updates just stored (a ``mark`` frame of
            :mod:`quantify.model.perp`); a row at or before the last judged
            one is skipped.
        liquidations : mapping of str to DataFrame
            Instrument key -> the liquidations just stored (a ``liquidations`` frame).
        """
        received = time.perf_counter()
        if not self.started:
            self.start(self.store)
        self._reload_rules()
        self._stats["perp_batches"] += 1
        self._perp_process(marks, liquidations, received)

    def _perp_process(self, marks: Mapping[str, pd.DataFrame], liquidations: Mapping[str, pd.DataFrame],
                      received: float) -> None:
        ev = self._evaluator
        fired: list[Fired] = []
        for kind, by_inst in (("mark", marks), ("liquidations", liquidations)):
            positions = self.perp_pos[kind]
            for inst, frame in by_inst.items():
                if not len(frame):
                    continue
                last = positions.get(inst)
                if last is not None and frame.index.asi8[0] <= last:
                    frame = frame[frame.index.asi8 > last]
                    if not len(frame):
                        continue
                if kind == "mark":
                    fired += ev.marks(inst, frame)
                    self._stats["marks"] += len(frame)
                else:
                    tail = self._history.liquidations.get(inst)
                    if tail is not None:
                        fired += ev.liquidations(inst, frame, tail)
                        self._history.add_liquidations(inst, frame)
                    self._stats["liquidations"] += len(frame)
                positions[inst] = int(frame.index.asi8[-1])
        self._finish(fired, received)

    def _finish(self, fired: list[Fired], received: float) -> None:
        """Store the batch's alerts, time the batch, checkpoint when due."""
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

    # -- storing and delivering -------------------------------------------

    def _store(self, fired: list[Fired]) -> None:
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

    def _row(self, rule: Rule, f: Fired, alert_id: int) -> dict[str, Any]:
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
            "books": self.book_episodes.to_state(), "perp": {k: dict(v) for k, v in self.perp_pos.items()},
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
        ``alerts_book_batches``, ``alerts_quotes`` (order-book calls and quotes judged),
        ``alerts_catchup_quotes`` (stored quotes judged after a restart),
        ``alerts_perp_batches``, ``alerts_marks``, ``alerts_liquidations`` (perpetual calls and
        rows judged), ``alerts_catchup_perp`` (stored ones judged after a restart),
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
