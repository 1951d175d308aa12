"""AlertPanel: create, list, edit and delete alert rules; watch fired alerts arrive.

The panel only edits the store's :class:`~quantify.alerts.AlertBook`; the
ingestion writer evaluates the rules (in whatever process it runs) and
appends fired alerts to the book's history, which the panel tails on a
:class:`~quantify.widgets.frames.FrameTimer` (``history(since=last seen)``).
Every argument is validated by :mod:`quantify.model.rules` itself; the panel
shows its ``ValueError`` inline, next to the form, and creates nothing.

This module composes the panel and holds its actions; the forms are in
:mod:`quantify.widgets._alert_form`, the rows, texts and style in
:mod:`quantify.widgets._alert_view`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from quantify.alerts import AlertBook, Rule
from quantify.store import Store
from quantify.widgets._alert_form import EditBar, RuleForm
from quantify.widgets._alert_view import RULE_COLUMNS, AlertRow, RuleRow, alerts_css, beep_uri, cells
from quantify.widgets._base import esc
from quantify.widgets.frames import MAX_FPS, FrameTimer
from quantify.widgets.source import resolve_store
from quantify.widgets.theme import Theme, get_theme, panel_css

__all__ = ["AlertPanel"]

logger = logging.getLogger(__name__)


class AlertPanel(W.VBox):
    """Create, list, edit and delete alert rules; a live feed of fired alerts.

    Parameters
    ----------
    store : Store, str or None
        The store whose :class:`~quantify.alerts.AlertBook` the panel edits
        (default: this kernel's ingestion store, else the default store).
    theme : {"light", "dark"} or Theme
    poll : float
        Seconds between reads of new fired alerts and rule changes (at least 0.1).
    toast : bool
        Show a banner for a few seconds when a critical alert fires.
    sound : bool
        Also beep (an HTML5 audio clip) with the banner.
    toast_seconds : float
        How long the banner stays.
    max_alerts : int
        Fired alerts kept in the feed (newest first).
    autostart : bool
        Start polling now (else call :meth:`start`, or :meth:`refresh` by hand).

    Notes
    -----
    The form's fields are plain text: what was typed goes unchanged to
    :func:`quantify.alerts.make_rule`, whose ``ValueError`` (naming the field,
    e.g. ``window must be a positive integer number of bars, got '12O'``) is
    shown in ``error``. A field is also checked on its own when it changes.
    Acknowledgements made in other processes show after the panel is rebuilt.
    """

    def __init__(self, store: Store | str | None = None, *, theme: str | Theme = "light", poll: float = 1.0,
                 toast: bool = True, sound: bool = False, toast_seconds: float = 6.0, max_alerts: int = 50,
                 autostart: bool = True) -> None:
        if not isinstance(poll, (int, float)) or not 1.0 / MAX_FPS <= poll:
            raise ValueError(f"poll must be at least {1.0 / MAX_FPS:g} seconds, got {poll!r}")
        if not isinstance(max_alerts, int) or max_alerts < 1:
            raise ValueError(f"max_alerts must be a positive integer, got {max_alerts!r}")
        super().__init__()
        self.add_class("qf-root")
        self.add_class("qf-alerts")
        self.store = resolve_store(store)
        self.book = AlertBook(self.store)
        self.theme = get_theme(theme)
        self.toast_enabled, self.sound, self.toast_seconds = toast, sound, float(toast_seconds)
        self.max_alerts = max_alerts
        self._lock = threading.RLock()
        self._rules_version = -2
        self._last_alert_id = -1
        self._toast_until = 0.0
        self._next_symbols = 0.0
        self._editing: str | None = None
        self.rule_rows: dict[str, RuleRow] = {}
        self.alert_rows: dict[int, AlertRow] = {}
        self.form = RuleForm(self._symbols(), self._run)
        f = self.form  # its widgets are the panel's attributes too (panel.kind, panel.fields, ...)
        self.kind, self.symbol, self.symbol_x, self.fields = f.kind, f.symbol, f.symbol_x, f.fields
        self.severity, self.cooldown, self.message, self.error = f.severity, f.cooldown, f.message, f.error
        self.add_button, self.form_card = f.add_button, f.card
        self._symbol_x_box, self._params_box = f.symbol_x_box, f.params_box
        self.add_button.on_click(lambda _b: self.add_rule())
        self.edit_bar = EditBar()
        e = self.edit_bar
        self.edit_threshold, self.edit_cooldown, self.edit_severity = e.threshold, e.cooldown, e.severity
        self.edit_save, self.edit_cancel, self.edit_error, self.edit_box = e.save, e.cancel, e.error, e.box
        self.edit_save.on_click(lambda _b: self.save_edit())
        self.edit_cancel.on_click(lambda _b: self.end_edit())
        self.rules_box = W.VBox()
        self.feed_box = W.VBox(layout=W.Layout(max_height="360px", overflow="auto"))
        self.toast = W.HTML(layout=W.Layout(display="none", margin="0 0 8px 0"))
        self.toast.add_class("qf-toast-box")
        self.summary = W.HTML()
        rules_header = W.HBox([W.HTML(cells([h for h, _w in RULE_COLUMNS], "qf-cell qf-th")),
                               W.HTML('<span class="qf-cell qf-th">On</span>')])
        rules_card = W.VBox([rules_header, self.rules_box, self.edit_box])
        feed_card = W.VBox([self.feed_box])
        for card in (self.form_card, rules_card, feed_card):
            card.add_class("qf-card")
        self.children = [
            W.HTML(panel_css(self.theme) + alerts_css(self.theme), layout=W.Layout(height="0px", margin="0")),
            self.toast,
            W.HTML('<div class="qf-section">New rule</div>'), self.form_card,
            W.HTML('<div class="qf-section">Rules</div>'), rules_card,
            W.HBox([W.HTML('<div class="qf-section">Fired alerts · newest first</div>'), self.summary],
                   layout=W.Layout(justify_content="space-between", align_items="center")),
            feed_card,
        ]
        self._timer = FrameTimer(self.refresh, 1.0 / poll, name="AlertPanel")
        self._load_alerts()
        self.refresh()
        if autostart:
            self.start()

    # -- form ---------------------------------------------------------------

    def form_rule(self) -> Rule:
        """The rule the form describes (``ValueError`` naming the field if it is not valid)."""
        return self.form.rule()

    def add_rule(self) -> str | None:
        """Add the form's rule to the store; its id, or None with the reason shown in ``error``."""
        with self._lock:
            try:
                rid = self.book.add(self.form_rule())
            except ValueError as exc:
                self.form.show_errors(str(exc))
                return None
            except Exception as exc:  # the store failed: say so in the panel, keep the form
                logger.exception("alert panel: adding a rule failed")
                self.form.show_errors(f"could not store the rule: {exc}")
                return None
            self.form.field_errors.clear()
            self.error.value = f'<div class="qf-ok">✓ rule {esc(rid)} added; the writer evaluates it from now on</div>'
            self._render_rules()
            return rid

    # -- rule list ------------------------------------------------------------

    def begin_edit(self, rule_id: str) -> None:
        """Open the edit bar on a rule: its threshold, cooldown and severity."""
        with self._lock:
            rule = self.rule_rows[rule_id].rule
            self._editing = rule_id
            self.edit_bar.show(rule)

    def end_edit(self) -> None:
        """Close the edit bar without storing."""
        self._editing = None
        self.edit_bar.hide()

    def save_edit(self) -> Rule | None:
        """Store the edit bar's values; the changed rule, or None with the reason shown."""
        with self._lock:
            rid = self._editing
            if rid is None:
                return None
            rule = self.rule_rows[rid].rule if rid in self.rule_rows else None
            changes = self.edit_bar.changes(rule)
            try:
                new = self.book.update(rid, **changes)
            except (ValueError, KeyError) as exc:
                msg = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                self.edit_bar.show_error(msg)
                return None
            self.end_edit()
            self._render_rules()
            return new

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        with self._lock:
            self.book.update(rule_id, enabled=bool(enabled))
            self._render_rules()

    def delete_rule(self, rule_id: str) -> None:
        with self._lock:
            self.book.remove(rule_id)
            if self._editing == rule_id:
                self.end_edit()
            self._render_rules()

    def _run(self, action: str, fn: Callable[[], None]) -> None:
        """Run a button's action; a failure is logged and shown in the panel, never lost."""
        try:
            fn()
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self.form.show_errors(f"{action}: {msg}")
        except Exception as exc:
            logger.exception("alert panel: %s failed", action)
            self.form.show_errors(f"{action} failed: {exc}")

    def _render_rules(self) -> None:
        with self._lock:
            self._rules_version = self.book.rules_version()
            rules = self.book.list()
            old, self.rule_rows = self.rule_rows, {r.id: RuleRow(self, r) for r in rules}
            if self.rule_rows:
                self.rules_box.children = [row.box for row in self.rule_rows.values()]
            else:
                self.rules_box.children = [W.HTML('<div class="qf-empty">No rules yet: add one above.</div>')]
            for row in old.values():
                row.close()
            if self._editing is not None and self._editing not in self.rule_rows:
                self.end_edit()
            self._update_summary()

    def _symbols(self) -> list[str]:
        """The store's instruments with trades, then those with perpetual data only (marks, liquidations)."""
        syms = self.store.symbols()
        return [*syms, *(s for s in self.store.perp_symbols() if s not in syms)]

    def _refresh_symbols(self) -> None:
        self.form.set_symbols(self._symbols())

    # -- fired alerts ---------------------------------------------------------

    def _load_alerts(self) -> None:
        latest = self.book.latest_id()
        self._last_alert_id = max(-1, latest - self.max_alerts)
        self._poll_alerts(toast=False)

    def _poll_alerts(self, toast: bool = True) -> None:
        latest = self.book.latest_id()
        if latest <= self._last_alert_id:
            return
        new = self.book.history(since=self._last_alert_id)
        if not len(new):
            return
        self._last_alert_id = int(new["alert_id"].max())
        rows = [AlertRow(self, rec) for rec in new.to_dict("records")[::-1]]
        for row in rows:
            self.alert_rows[row.alert_id] = row
        ordered = sorted(self.alert_rows, reverse=True)
        for aid in ordered[self.max_alerts:]:
            self.alert_rows.pop(aid).close()
        self.feed_box.children = [self.alert_rows[a].box for a in ordered[:self.max_alerts]]
        critical = [r for r in rows if r.severity == "critical"]
        if toast and critical and self.toast_enabled:
            self.show_toast(new[new["severity"] == "critical"].iloc[-1].to_dict(), len(critical))
        self._update_summary()

    def show_toast(self, alert: dict[str, Any], count: int = 1) -> None:
        """Show the critical-alert banner (and beep, if ``sound``) for ``toast_seconds``."""
        more = f" (+{count - 1} more)" if count > 1 else ""
        audio = f'<audio autoplay src="{beep_uri()}"></audio>' if self.sound else ""
        self.toast.value = (f'<div class="qf-toast">CRITICAL · <b>{esc(alert["symbol"])}</b> · '
                            f'{esc(alert["message"])}{esc(more)}</div>{audio}')
        self.toast.layout.display = ""
        self._toast_until = time.monotonic() + self.toast_seconds

    def hide_toast(self) -> None:
        self.toast.layout.display = "none"
        self.toast.value = ""
        self._toast_until = 0.0

    def acknowledge(self, alert_id: int) -> None:
        """Mark a fired alert as seen, in the store and in the feed."""
        with self._lock:
            self.book.acknowledge(alert_id)
            row = self.alert_rows.get(int(alert_id))
            if row is not None:
                row.mark_acknowledged()
            self._update_summary()

    def _update_summary(self) -> None:
        open_ = sum(not r.acknowledged for r in self.alert_rows.values())
        if not self.alert_rows:
            self.feed_box.children = [W.HTML('<div class="qf-empty">No alerts have fired yet.</div>')]
        self.summary.value = (f'<span class="qf-status"><b>{len(self.rule_rows)}</b> rule(s) · '
                              f'<b>{len(self.alert_rows)}</b> shown · <b>{open_}</b> not acknowledged</span>')

    # -- lifecycle ------------------------------------------------------------

    def refresh(self) -> None:
        """One poll: rule changes (from any process), new fired alerts, the banner's timeout."""
        with self._lock:
            now = time.monotonic()
            if now >= self._next_symbols:
                self._next_symbols = now + 10.0
                self._refresh_symbols()
            if self.book.rules_version() != self._rules_version:
                self._render_rules()
            self._poll_alerts()
            if self._toast_until and now >= self._toast_until:
                self.hide_toast()

    def start(self) -> None:
        """Start (or resume) polling."""
        self._timer.start()

    def stop(self) -> None:
        """Stop polling (the timer's thread ends)."""
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.running

    def close(self) -> None:
        """Stop polling and close the panel and its rows."""
        self.stop()
        rows = [*getattr(self, "rule_rows", {}).values(), *getattr(self, "alert_rows", {}).values()]
        for row in rows:  # (absent if __init__ failed)
            row.close()
        super().close()
