"""The alert book: rules and fired alerts, kept in the store's ``alerts`` library.

Symbols of the ``alerts`` library:

``rules``
    One row per rule (:meth:`Rule.to_record`), rewritten whole on each change.
    Its version number is what the writer polls to notice changes.
``history``
    Fired alerts, appended by the writer only. ``alert_id`` is the row number,
    so ``history(since=id)`` reads only the new rows.
``acks``
    Acknowledgements ``(alert_id, acked_at)``, appended by any process.
``checkpoint``
    The engine's evaluated position and per-rule state (see
    :mod:`quantify.alerts.engine`).

Every process on the store sees the same rules and history. Concurrent rule
edits from two processes within the same instant are last-writer-wins
(ArcticDB has no transactions); history has a single writer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import arcticdb as adb
import numpy as np
import pandas as pd

from quantify.model.rules import SEVERITIES, Rule
from quantify.model.times import TimeLike, parse_time
from quantify.store._libraries import ALERTS

__all__ = ["HISTORY_COLUMNS", "AlertBook"]

logger = logging.getLogger(__name__)

RULES = "rules"
HISTORY = "history"
ACKS = "acks"
CHECKPOINT = "checkpoint"

#: Columns of :meth:`AlertBook.history`, in order.
HISTORY_COLUMNS = (
    "alert_id", "rule_id", "fired_at", "symbol", "kind", "value", "threshold", "severity", "message",
    "trade_id", "trigger_symbol", "recorded_at", "acknowledged",
)

_RULE_COLUMNS = ("id", "kind", "symbols", "params", "severity", "cooldown", "message", "enabled",
                 "name", "created")


def _empty_history() -> pd.DataFrame:
    frame = pd.DataFrame({
        "alert_id": pd.Series(dtype="int64"), "rule_id": pd.Series(dtype=object),
        "fired_at": pd.Series(dtype="datetime64[ns, UTC]"), "symbol": pd.Series(dtype=object),
        "kind": pd.Series(dtype=object), "value": pd.Series(dtype="float64"),
        "threshold": pd.Series(dtype="float64"), "severity": pd.Series(dtype=object),
        "message": pd.Series(dtype=object), "trade_id": pd.Series(dtype="int64"),
        "trigger_symbol": pd.Series(dtype=object),
        "recorded_at": pd.Series(dtype="datetime64[ns, UTC]"), "acknowledged": pd.Series(dtype=bool),
    })
    return frame


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    # ArcticDB keeps datetime columns without their time zone; every QuantiFy time is UTC.
    for col in ("fired_at", "recorded_at"):
        if col in frame and getattr(frame[col].dt, "tz", None) is None:
            frame[col] = frame[col].dt.tz_localize("UTC")
    return frame


class AlertBook:
    """Alert rules and history of one store (``store.alerts``).

    Parameters
    ----------
    store : quantify.Store
        Any process may add, change and remove rules and read history; only
        the ingestion writer evaluates rules and appends history.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.lib = store.library(ALERTS)

    def __repr__(self) -> str:
        return f"<quantify.alerts.AlertBook {self.store.uri}: {len(self._rules_frame())} rule(s)>"

    # -- rules --------------------------------------------------------------

    def _rules_frame(self) -> pd.DataFrame:
        if not self.lib.has_symbol(RULES):
            return pd.DataFrame(columns=list(_RULE_COLUMNS))
        return self.lib.read(RULES).data

    def _write_rules(self, frame: pd.DataFrame) -> None:
        frame = frame.reset_index(drop=True)
        if "created" in frame:
            frame["created"] = pd.to_datetime(frame["created"], utc=True)
        self.lib.write(RULES, frame, metadata={"updated": time.time()}, prune_previous_versions=True)

    def rules_version(self) -> int:
        """Version of the rules; changes whenever a rule is added, changed or removed (-1: none yet).

        Cheap (reads no data), so the writer polls it.
        """
        try:
            return int(self.lib.read_metadata(RULES).version) if self.lib.has_symbol(RULES) else -1
        except adb.exceptions.ArcticException:  # deleted between the two calls: no rules yet
            return -1

    def check(self, rule: Rule, *, check_symbols: bool = True) -> Rule:
        """Check ``rule`` against this store; raise ``ValueError`` naming what to fix."""
        if not isinstance(rule, Rule):
            raise TypeError(f"rule must be a quantify.alerts.Rule, not {type(rule).__name__}")
        if check_symbols:
            known = set(self.store.symbols()) | set(self.store.perp_symbols())
            for sym in rule.symbols:
                if sym not in known:
                    have = ", ".join(sorted(known)) or "none yet"
                    raise ValueError(
                        f"symbols: unknown symbol {sym!r} in store {self.store.uri} (symbols: {have}); "
                        "check the spelling, or ingest it first (or pass check_symbols=False; --no-symbol-check on the command line)"
                    )
        return rule

    def add(self, rule: Rule, *, check_symbols: bool = True) -> str:
        """Store ``rule`` and return its id (a new id unless the rule has one not in use).

        Raises
        ------
        ValueError
            If a symbol is not in the store (``check_symbols=False`` allows
            rules on symbols not ingested yet) or the id is taken.
        """
        self.check(rule, check_symbols=check_symbols)
        frame = self._rules_frame()
        rule_id = rule.id or uuid.uuid4().hex[:10]
        if rule_id in set(frame["id"]):
            raise ValueError(f"id: a rule with id {rule_id!r} exists; update it or choose another id")
        rule = rule.replace(id=rule_id, created=rule.created or pd.Timestamp.now(tz="UTC"))
        row = pd.DataFrame([rule.to_record()], columns=list(_RULE_COLUMNS))
        self._write_rules(pd.concat([frame, row], ignore_index=True) if len(frame) else row)
        logger.info("alert rule %s added: %s %s", rule_id, rule.kind, rule.symbol)
        return rule_id

    def list(self, *, enabled: bool | None = None) -> list[Rule]:
        """Every rule, oldest first (only enabled or disabled ones if ``enabled`` is given)."""
        rules = [Rule.from_record(r) for r in self._rules_frame().to_dict("records")]
        if enabled is not None:
            rules = [r for r in rules if r.enabled == enabled]
        return rules

    def frame(self) -> pd.DataFrame:
        """The rules as a table (for notebooks and ``quantify alerts list``)."""
        return self._rules_frame().set_index("id")

    def get(self, rule_id: str) -> Rule:
        """The rule with id ``rule_id``; ``KeyError`` if there is none."""
        for rule in self.list():
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no alert rule with id {rule_id!r}")

    def update(self, rule_id: str, *, check_symbols: bool = True, **changes: Any) -> Rule:
        """Change fields or parameters of a rule (``level=63000``, ``enabled=False``); return it.

        The writer resets the rule's armed state (its cooldown still runs).
        """
        if "id" in changes or "created" in changes:
            raise ValueError("id and created cannot be changed; add a new rule instead")
        frame = self._rules_frame()
        hits = np.flatnonzero(frame["id"].to_numpy() == rule_id)
        if not len(hits):
            raise KeyError(f"no alert rule with id {rule_id!r}")
        old = Rule.from_record(frame.iloc[hits[0]].to_dict())
        new = self.check(old.replace(**changes), check_symbols=check_symbols and "symbols" in changes)
        records = frame.to_dict("records")
        records[hits[0]] = new.to_record()
        self._write_rules(pd.DataFrame(records, columns=list(_RULE_COLUMNS)))
        logger.info("alert rule %s changed: %s", rule_id, ", ".join(changes))
        return new

    def remove(self, rule_id: str) -> None:
        """Delete a rule (its history stays); ``KeyError`` if there is none."""
        frame = self._rules_frame()
        keep = frame["id"].to_numpy() != rule_id
        if keep.all():
            raise KeyError(f"no alert rule with id {rule_id!r}")
        self._write_rules(frame[keep])
        logger.info("alert rule %s removed", rule_id)

    # -- history ------------------------------------------------------------

    def latest_id(self) -> int:
        """``alert_id`` of the newest fired alert (-1 if none): poll it to notice new alerts."""
        if not self.lib.has_symbol(HISTORY):
            return -1
        return int(self.lib.get_description(HISTORY).row_count) - 1

    def history(
        self, start: TimeLike | None = None, end: TimeLike | None = None, *,
        severity: str | None = None, rule_id: str | None = None, since: int | None = None,
    ) -> pd.DataFrame:
        """Fired alerts, oldest first.

        Parameters
        ----------
        start, end : datetime, str or None
            Bounds on ``fired_at`` (the triggering trade's time), inclusive-exclusive.
        severity : str, optional
            Only this severity (``"high"``).
        rule_id : str, optional
            Only alerts of this rule.
        since : int, optional
            Only alerts with ``alert_id > since``; reads only those rows, so
            widgets can tail cheaply with ``since=latest_id_seen``.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`HISTORY_COLUMNS`; ``acknowledged`` is True for
            acknowledged alerts.
        """
        if severity is not None and str(severity).lower() not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        if not self.lib.has_symbol(HISTORY):
            return _empty_history()
        if since is not None:
            first = int(since) + 1
            if first > self.latest_id():
                return _empty_history()
            data = self.lib.read(HISTORY, row_range=(max(first, 0), self.latest_id() + 1)).data
        else:
            data = self.lib.read(HISTORY).data
        data = _utc(data.reset_index())
        t0, t1 = parse_time(start), parse_time(end)
        if t0 is not None:
            data = data[data["fired_at"] >= t0]
        if t1 is not None:
            data = data[data["fired_at"] < t1]
        if severity is not None:
            data = data[data["severity"] == str(severity).lower()]
        if rule_id is not None:
            data = data[data["rule_id"] == rule_id]
        data = data.assign(acknowledged=data["alert_id"].isin(self._acked()))
        return data[list(HISTORY_COLUMNS)].reset_index(drop=True)

    def _acked(self) -> set[int]:
        if not self.lib.has_symbol(ACKS):
            return set()
        return set(self.lib.read(ACKS).data["alert_id"].astype(int))

    def acknowledge(self, alert_id: int) -> None:
        """Mark a fired alert as seen (any process may)."""
        aid = int(alert_id)
        if not 0 <= aid <= self.latest_id():
            raise KeyError(f"no fired alert with alert_id {alert_id!r}")
        now = pd.Timestamp.now(tz="UTC")
        row = pd.DataFrame({"alert_id": [aid]}, index=pd.DatetimeIndex([now], name="acked_at"))
        if self.lib.has_symbol(ACKS):
            last = self.lib.tail(ACKS, 1).data.index
            if len(last) and last[-1] >= now:  # keep the index increasing across clock steps
                row.index = pd.DatetimeIndex([last[-1] + pd.Timedelta(1, "ns")], name="acked_at")
            self.lib.append(ACKS, row, prune_previous_versions=True)
        else:
            self.lib.write(ACKS, row)

    # -- writer side (engine only) --------------------------------------------

    def _append_history(self, rows: pd.DataFrame) -> None:
        """Append fired alerts (indexed by ``recorded_at``); the writer only."""
        if self.lib.has_symbol(HISTORY):
            self.lib.append(HISTORY, rows, prune_previous_versions=True)
        else:
            self.lib.write(HISTORY, rows)

    def _history_after(self, alert_id: int) -> pd.DataFrame:
        if not self.lib.has_symbol(HISTORY) or self.latest_id() <= alert_id:
            return _empty_history()
        return _utc(self.lib.read(HISTORY, row_range=(alert_id + 1, self.latest_id() + 1)).data.reset_index())

    def _last_recorded_at(self) -> pd.Timestamp | None:
        if not self.lib.has_symbol(HISTORY):
            return None
        tail = self.lib.tail(HISTORY, 1).data
        return tail.index[-1] if len(tail) else None

    def _read_checkpoint(self) -> dict[str, Any] | None:
        if not self.lib.has_symbol(CHECKPOINT):
            return None
        return dict(json.loads(self.lib.read(CHECKPOINT).data))

    def _write_checkpoint(self, state: dict[str, Any]) -> None:
        # JSON, not pickle: readable by any client and by other Python versions.
        self.lib.write_pickle(CHECKPOINT, json.dumps(state, default=_jsonable), prune_previous_versions=True)

    def engine_stats(self) -> dict[str, Any] | None:
        """The writer's alert counters as of its last checkpoint (``None``: never ran)."""
        cp = self._read_checkpoint()
        return None if cp is None else dict(cp.get("stats", {}))
