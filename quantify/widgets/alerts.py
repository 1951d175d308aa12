"""AlertPanel: create, list, edit and delete alert rules; watch fired alerts arrive.

The panel only edits the store's :class:`~quantify.alerts.AlertBook`; the
ingestion writer evaluates the rules (in whatever process it runs) and
appends fired alerts to the book's history, which the panel tails on a
:class:`~quantify.widgets.frames.FrameTimer` (``history(since=last seen)``).
Every argument is validated by :mod:`quantify.model.rules` itself; the panel
shows its ``ValueError`` inline, next to the form, and creates nothing.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import wave
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.alerts import KINDS, SEVERITIES, AlertBook, Rule, make_rule
from quantify.model.timeframes import WIDGET_TIMEFRAMES
from quantify.store import Store
from quantify.widgets._base import esc
from quantify.widgets.frames import MAX_FPS, FrameTimer
from quantify.widgets.source import resolve_store
from quantify.widgets.theme import Theme, get_theme, panel_css

__all__ = ["AlertPanel"]

logger = logging.getLogger(__name__)


_LABELS = {
    "level": "Level", "margin": "Margin", "pct": "Move %", "window": "Window", "direction": "Direction",
    "op": "When", "timeframe": "Bars", "hedge": "Hedge", "k": "k × baseline", "short": "Short bars",
    "long": "Long bars", "seconds": "Silent for",
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "direction": ("abs", "up", "down"), "op": ("abs-above", "above", "below"), "hedge": ("ols", "kalman"),
    "timeframe": WIDGET_TIMEFRAMES,
}
#: Parameters the form leaves at their defaults (tuning for experts; make_rule takes them).
_HIDDEN = frozenset({"delta"})
#: What to write in a required field, as a placeholder.
_EXAMPLES = {"level": "e.g. 61700", "pct": "e.g. 0.5", "window": "e.g. 5m", "k": "e.g. 3",
             "seconds": "e.g. 30s"}
#: The parameter an edit changes as "threshold" (``level`` unless listed; gap rules have none).
_THRESHOLD: dict[str, str | None] = {"pct-move": "pct", "vol-breakout": "k", "stale": "seconds", "gap": None}


def _threshold_param(kind: str) -> str | None:
    return _THRESHOLD.get(kind, "level")


def _placeholder(default: Any, name: str) -> str:
    """A field's hint: its default (left empty, the default applies), or an example if it is required."""
    if isinstance(default, bool) or not isinstance(default, (int, float, str)):
        return _EXAMPLES.get(name, "")
    return f"{default:g}" if isinstance(default, float) else str(default)


def fmt_seconds(seconds: float) -> str:
    """``900.0 -> "15m"``, ``90 -> "90s"``, ``0 -> "0"``: how durations are shown and edited."""
    s = float(seconds)
    if s == 0:
        return "0"
    for unit, size in (("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s / size:g}{unit}"
    return f"{s:g}s"


def describe(rule: Rule) -> str:
    """The condition of ``rule`` in a few words (``"≤ 61,700"``, ``"|z| > 2.5 · 120 × 1m · ols"``)."""
    p, k = rule.params, rule.kind

    def num(x: float) -> str:
        return f"{x:,.2f}".rstrip("0").rstrip(".") if abs(x) >= 1000 else f"{x:g}"

    margin = f" (re-arm ±{num(p['margin'])})" if p.get("margin") else ""
    if k == "price-above":
        return f"price ≥ {num(p['level'])}{margin}"
    if k == "price-below":
        return f"price ≤ {num(p['level'])}{margin}"
    if k == "price-crosses":
        return f"price crosses {num(p['level'])}{margin}"
    if k == "pct-move":
        sign = {"abs": "±", "up": "+", "down": "−"}[p["direction"]]
        return f"moves {sign}{num(p['pct'])}% within {fmt_seconds(p['window'])}{margin}"
    if k == "zscore":
        z = {"abs-above": "|z| >", "above": "z >", "below": "z <"}[p["op"]]
        return f"{z} {num(p['level'])} · {p['window']} × {p['timeframe']} · {p['hedge']}{margin}"
    if k == "vol-breakout":
        return f"vol {p['short']}/{p['long']} × {p['timeframe']} > {num(p['k'])}×{margin}"
    if k == "corr-breakdown":
        return f"corr {p['window']} × {p['timeframe']} < {num(p['level'])}{margin}"
    if k == "stale":
        return f"no trade for {fmt_seconds(p['seconds'])}"
    return "trade ids missing"


def beep_uri(frequency: float = 880.0, seconds: float = 0.18, rate: int = 8000) -> str:
    """A short sine beep as a ``data:audio/wav`` URI (the critical-alert sound)."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) * 40)  # no clicks at the ends
    samples = (128 + 90 * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.uint8)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _css(theme: Theme) -> str:
    t = theme
    sev = dict(t.severity)  # the one palette (quantify.widgets.theme)
    rules = "".join(f".qf-alerts .qf-sev-{s} {{ background:{c}; }} .qf-alerts .qf-alert-{s} {{ border-left-color:{c}; }}\n"
                    for s, c in sev.items())
    return f"""<style>
.qf-alerts .qf-section {{ font-size:12px; font-weight:700; letter-spacing:.6px; text-transform:uppercase;
  color:{t.muted}; margin:10px 0 4px 0; }}
.qf-alerts .qf-card {{ background:{t.panel}; border:1px solid {t.grid}; border-radius:8px; padding:8px 10px; }}
.qf-alerts .qf-field-label {{ font-size:11px; color:{t.muted}; letter-spacing:.3px; line-height:16px; }}
.qf-alerts .qf-ok {{ color:{t.up}; font-size:12px; }}
.qf-alerts .qf-error {{ color:{t.down}; font-size:12px; font-weight:600; white-space:normal; }}
.qf-alerts .qf-th {{ font-size:11px; color:{t.muted}; font-weight:600; letter-spacing:.4px;
  text-transform:uppercase; }}
.qf-alerts .qf-cells {{ display:flex; gap:4px; align-items:center; }}
.qf-alerts .qf-cell {{ font-size:12px; font-variant-numeric:tabular-nums; white-space:nowrap;
  overflow:hidden; text-overflow:ellipsis; flex:none; }}
.qf-alerts .qf-mono {{ font-family:ui-monospace, SFMono-Regular, Menlo, monospace; color:{t.muted}; font-size:11px; }}
.qf-alerts .qf-row {{ border-bottom:1px solid {t.grid}; }}
.qf-alerts .qf-row-off .qf-cell {{ opacity:.5; }}
.qf-alerts .qf-pill {{ display:inline-block; padding:0 7px; border-radius:9px; font-size:10px; font-weight:700;
  line-height:17px; letter-spacing:.5px; text-transform:uppercase; color:#fff; vertical-align:middle; }}
.qf-alerts .qf-pill.qf-sev-medium {{ color:#111; }}
{".qf-alerts .qf-pill.qf-sev-low { color:#111; }" if t.name == "dark" else ""}
.qf-alerts .qf-alert {{ border-left:4px solid {t.muted}; padding-left:8px; border-bottom:1px solid {t.grid}; }}
.qf-alerts .qf-alert-acked {{ opacity:.5; }}
.qf-alerts .qf-empty {{ color:{t.muted}; font-size:12px; font-style:italic; padding:6px 0; }}
.qf-alerts .qf-toast {{ background:{sev['critical']}; color:#fff; border-radius:8px; padding:10px 14px;
  font-weight:600; font-size:13px; box-shadow:0 4px 14px rgba(0,0,0,.25); }}
{rules}</style>"""


def _field(label: str, widget: W.Widget, width: str) -> W.VBox:
    widget.layout.width = width
    box = W.VBox([W.HTML(f'<div class="qf-field-label">{esc(label)}</div>'), widget],
                 layout=W.Layout(margin="0 8px 4px 0"))
    return box


#: Columns of the rule list: heading and width in pixels.
_RULE_COLUMNS = (("Symbol", 170), ("Kind", 110), ("Condition", 250), ("Severity", 80), ("Cooldown", 80),
                 ("Message", 190))


def _cells(cells: list[str], cls: str = "qf-cell") -> str:
    """One row of the rule list as fixed-width cells (one widget per row keeps long lists cheap)."""
    spans = "".join(f'<span class="{cls}" style="width:{w}px">{c}</span>'
                    for c, (_h, w) in zip(cells, _RULE_COLUMNS, strict=True))
    return f'<div class="qf-cells">{spans}</div>'


class _RuleRow:
    """The widgets of one rule in the list."""

    def __init__(self, panel: AlertPanel, rule: Rule) -> None:
        self.rule = rule
        self.enabled = W.Checkbox(value=rule.enabled, indent=False, layout=W.Layout(width="40px"))
        self.enabled.add_class("qf-rule-enabled")
        self.edit = W.Button(description="Edit", layout=W.Layout(width="58px", height="26px"))
        self.delete = W.Button(description="Delete", button_style="danger",
                               layout=W.Layout(width="64px", height="26px"))
        self.edit.add_class("qf-rule-edit")
        self.delete.add_class("qf-rule-delete")
        self.enabled.observe(lambda ch: panel._run("enable", lambda: panel.set_enabled(rule.id, ch["new"])),
                             "value")
        self.edit.on_click(lambda _b: panel.begin_edit(rule.id))
        self.delete.on_click(lambda _b: panel._run("delete", lambda: panel.delete_rule(rule.id)))
        message = rule.message if rule.message != KINDS[rule.kind].message else "default message"
        self.html = W.HTML(_cells([
            f"<b>{esc(rule.symbol)}</b>", esc(rule.kind), esc(describe(rule)),
            f'<span class="qf-pill qf-sev-{esc(rule.severity)}">{esc(rule.severity)}</span>',
            esc(fmt_seconds(rule.cooldown)), esc(message),
        ]))
        self.box = W.HBox([self.html, self.enabled, self.edit, self.delete,
                           W.HTML(f'<span class="qf-mono">{esc(rule.id)}</span>')],
                          layout=W.Layout(align_items="center", padding="2px 0"))
        self.box.add_class("qf-row")
        self.box.add_class("qf-rule")
        if not rule.enabled:
            self.box.add_class("qf-row-off")

    def close(self) -> None:
        for child in self.box.children:
            child.close()
        self.box.close()


class _AlertRow:
    """One fired alert in the feed, with its acknowledge button."""

    def __init__(self, panel: AlertPanel, alert: dict[str, Any]) -> None:
        self.alert_id = int(alert["alert_id"])
        self.severity = str(alert["severity"])
        fired = pd.Timestamp(alert["fired_at"])
        self.html = W.HTML(
            f'<div class="qf-cell"><span class="qf-pill qf-sev-{esc(self.severity)}">{esc(self.severity)}</span> '
            f'<span class="qf-mono" title="{esc(fired.isoformat())}">{fired:%Y-%m-%d %H:%M:%S} UTC</span> '
            f'&nbsp;<b>{esc(alert["symbol"])}</b> &nbsp;{esc(alert["message"])}</div>',
            layout=W.Layout(flex="1 1 auto", width="auto"),
        )
        self.ack = W.Button(description="Acknowledge", layout=W.Layout(width="112px", height="26px"))
        self.ack.add_class("qf-ack")
        self.ack.on_click(lambda _b: panel._run("acknowledge", lambda: panel.acknowledge(self.alert_id)))
        self.box = W.HBox([self.html, self.ack], layout=W.Layout(align_items="center", padding="3px 0"))
        self.box.add_class("qf-alert")
        self.box.add_class(f"qf-alert-{self.severity}")
        self.acknowledged = False
        if bool(alert.get("acknowledged", False)):
            self.mark_acknowledged()

    def mark_acknowledged(self) -> None:
        self.acknowledged = True
        self.ack.description = "✓ seen"
        self.ack.disabled = True
        self.box.add_class("qf-alert-acked")

    def close(self) -> None:
        for w in (self.html, self.ack, self.box):
            w.close()


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
        self._field_errors: dict[str, str] = {}
        self._next_symbols = 0.0
        self._editing: str | None = None
        self.rule_rows: dict[str, _RuleRow] = {}
        self.alert_rows: dict[int, _AlertRow] = {}
        self._build_form()
        self._build_edit()
        self.rules_box = W.VBox()
        self.feed_box = W.VBox(layout=W.Layout(max_height="360px", overflow="auto"))
        self.toast = W.HTML(layout=W.Layout(display="none", margin="0 0 8px 0"))
        self.toast.add_class("qf-toast-box")
        self.summary = W.HTML()
        rules_header = W.HBox([W.HTML(_cells([h for h, _w in _RULE_COLUMNS], "qf-cell qf-th")),
                               W.HTML('<span class="qf-cell qf-th">On</span>')])
        rules_card = W.VBox([rules_header, self.rules_box, self.edit_box])
        feed_card = W.VBox([self.feed_box])
        for card in (self.form_card, rules_card, feed_card):
            card.add_class("qf-card")
        self.children = [
            W.HTML(panel_css(self.theme) + _css(self.theme), layout=W.Layout(height="0px", margin="0")),
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

    def _build_form(self) -> None:
        syms = self.store.symbols()
        self.kind = W.Dropdown(options=list(KINDS), value="price-above")
        self.symbol = W.Dropdown(options=syms, value=syms[0] if syms else None)
        self.symbol_x = W.Dropdown(options=syms, value=syms[1] if len(syms) > 1 else (syms[0] if syms else None))
        self.fields: dict[str, W.Widget] = {}
        for kind in KINDS.values():
            for name, (_check, default) in kind.params.items():
                if name in _HIDDEN or name in self.fields:
                    continue
                if name in _CHOICES:
                    w: W.Widget = W.Dropdown(options=list(_CHOICES[name]), value=default)
                else:
                    w = W.Text(continuous_update=False)
                    w.observe(lambda ch, n=name: self._run("check", lambda: self._check_field(n)), "value")
                w.add_class(f"qf-field-{name}")
                self.fields[name] = w
        self.severity = W.Dropdown(options=list(SEVERITIES), value="medium")
        self.cooldown = W.Text(placeholder="0, 90s, 15m", continuous_update=False)
        self.message = W.Text(continuous_update=False)
        self.add_button = W.Button(description="Add rule", button_style="primary", icon="plus",
                                   layout=W.Layout(width="110px"))
        self.error = W.HTML(layout=W.Layout(flex="1 1 240px", min_width="240px", margin="18px 0 0 8px"))
        self.error.add_class("qf-form-message")
        for name, w in [("kind", self.kind), ("symbol", self.symbol), ("symbol_x", self.symbol_x),
                        ("severity", self.severity), ("cooldown", self.cooldown), ("message", self.message)]:
            w.add_class(f"qf-field-{name}")
        self.add_button.add_class("qf-add")
        self._field_boxes = {name: _field(_LABELS[name], w, "150px" if name == "op" else "110px")
                             for name, w in self.fields.items()}
        self._symbol_box = _field("Symbol", self.symbol, "130px")
        self._symbol_x_box = _field("X (hedge)", self.symbol_x, "130px")
        self._params_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        common = [_field("Severity", self.severity, "100px"), _field("Cooldown", self.cooldown, "100px"),
                  _field("Message (optional)", self.message, "260px")]
        self.form_card = W.VBox([
            W.HBox([_field("Kind", self.kind, "140px"), self._symbol_box, self._symbol_x_box, self._params_box],
                   layout=W.Layout(flex_flow="row wrap", align_items="flex-end")),
            W.HBox([*common, W.VBox([W.HTML('<div class="qf-field-label">&nbsp;</div>'), self.add_button]),
                    self.error], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
        ])
        self.kind.observe(lambda _ch: self._on_kind(), "value")
        self.add_button.on_click(lambda _b: self.add_rule())
        self._on_kind()

    def _on_kind(self) -> None:
        kind = self.kind.value
        spec = KINDS[kind]
        shown = [n for n in spec.params if n not in _HIDDEN]
        self._params_box.children = [self._field_boxes[n] for n in shown]
        pair = spec.n_symbols == 2
        self._symbol_x_box.layout.display = "" if pair else "none"
        self._symbol_box.children[0].value = f'<div class="qf-field-label">{"Y" if pair else "Symbol"}</div>'
        for name in shown:
            w = self.fields[name]
            if isinstance(w, W.Text):
                w.placeholder = _placeholder(spec.params[name][1], name)
            elif isinstance(w, W.Dropdown):
                w.value = spec.params[name][1]
        self.message.placeholder = spec.message
        self._field_errors = {n: e for n, e in self._field_errors.items() if n in shown}
        for name in shown:
            self._check_field(name)
        self._show_errors()

    def _check_field(self, name: str) -> None:
        """Check one parameter field as the rule will (inline message; nothing stored)."""
        w = self.fields[name]
        spec = KINDS[self.kind.value].params.get(name)
        self._field_errors.pop(name, None)
        if spec is not None and isinstance(w, W.Text) and w.value.strip():
            try:
                spec[0](w.value.strip())
            except ValueError as exc:
                self._field_errors[name] = str(exc)
        self._show_errors()

    def _show_errors(self, extra: str = "") -> None:
        msgs = list(dict.fromkeys([*self._field_errors.values(), *([extra] if extra else [])]))
        self.error.value = "".join(f'<div class="qf-error">⚠ {esc(m)}</div>' for m in msgs)

    def form_rule(self) -> Rule:
        """The rule the form describes (``ValueError`` naming the field if it is not valid)."""
        kind = self.kind.value
        spec = KINDS[kind]
        symbols = [self.symbol.value or ""]
        if spec.n_symbols == 2:
            symbols.append(self.symbol_x.value or "")
        params: dict[str, Any] = {}
        for name in spec.params:
            if name in _HIDDEN:
                continue
            value = self.fields[name].value
            if isinstance(value, str):
                value = value.strip() or None  # empty: the kind's default (or "needs <field>")
            params[name] = value
        return make_rule(kind, symbols, severity=self.severity.value, cooldown=self.cooldown.value.strip() or 0,
                         message=self.message.value, **params)

    def add_rule(self) -> str | None:
        """Add the form's rule to the store; its id, or None with the reason shown in ``error``."""
        with self._lock:
            try:
                rid = self.book.add(self.form_rule())
            except ValueError as exc:
                self._show_errors(str(exc))
                return None
            except Exception as exc:  # the store failed: say so in the panel, keep the form
                logger.exception("alert panel: adding a rule failed")
                self._show_errors(f"could not store the rule: {exc}")
                return None
            self._field_errors.clear()
            self.error.value = f'<div class="qf-ok">✓ rule {esc(rid)} added; the writer evaluates it from now on</div>'
            self._render_rules()
            return rid

    # -- rule list ------------------------------------------------------------

    def _build_edit(self) -> None:
        self.edit_label = W.HTML()
        self.edit_threshold = W.Text(layout=W.Layout(width="110px"), continuous_update=False)
        self.edit_cooldown = W.Text(layout=W.Layout(width="100px"), continuous_update=False)
        self.edit_severity = W.Dropdown(options=list(SEVERITIES), layout=W.Layout(width="100px"))
        self.edit_save = W.Button(description="Save", button_style="primary", layout=W.Layout(width="70px"))
        self.edit_cancel = W.Button(description="Cancel", layout=W.Layout(width="70px"))
        self.edit_error = W.HTML(layout=W.Layout(margin="18px 0 0 8px"))
        for name, w in [("threshold", self.edit_threshold), ("cooldown", self.edit_cooldown),
                        ("severity", self.edit_severity), ("save", self.edit_save), ("cancel", self.edit_cancel)]:
            w.add_class(f"qf-edit-{name}")
        self._edit_threshold_box = _field("Threshold", self.edit_threshold, "110px")
        blank = '<div class="qf-field-label">&nbsp;</div>'
        self.edit_box = W.HBox([
            W.VBox([W.HTML(blank), self.edit_label], layout=W.Layout(margin="0 8px 0 0")),
            self._edit_threshold_box, _field("Cooldown", self.edit_cooldown, "100px"),
            _field("Severity", self.edit_severity, "100px"),
            W.VBox([W.HTML(blank), W.HBox([self.edit_save, self.edit_cancel])]),
            self.edit_error,
        ], layout=W.Layout(display="none", flex_flow="row wrap", align_items="flex-start", margin="8px 0 0 0"))
        self.edit_save.on_click(lambda _b: self.save_edit())
        self.edit_cancel.on_click(lambda _b: self.end_edit())

    def begin_edit(self, rule_id: str) -> None:
        """Open the edit bar on a rule: its threshold, cooldown and severity."""
        with self._lock:
            rule = self.rule_rows[rule_id].rule
            self._editing = rule_id
            param = _threshold_param(rule.kind)
            self._edit_threshold_box.layout.display = "none" if param is None else ""
            if param is not None:
                self._edit_threshold_box.children[0].value = (
                    f'<div class="qf-field-label">{esc(_LABELS[param])}</div>')
                value = rule.params[param]
                self.edit_threshold.value = fmt_seconds(value) if param == "seconds" else f"{value:g}"
            self.edit_cooldown.value = fmt_seconds(rule.cooldown)
            self.edit_severity.value = rule.severity
            self.edit_label.value = f'<div class="qf-cell">Editing <b>{esc(rule.symbol)}</b> {esc(rule.kind)}</div>'
            self.edit_error.value = ""
            self.edit_box.layout.display = "flex"

    def end_edit(self) -> None:
        self._editing = None
        self.edit_box.layout.display = "none"
        self.edit_error.value = ""

    def save_edit(self) -> Rule | None:
        """Store the edit bar's values; the changed rule, or None with the reason shown."""
        with self._lock:
            rid = self._editing
            if rid is None:
                return None
            rule = self.rule_rows[rid].rule if rid in self.rule_rows else None
            changes: dict[str, Any] = {"cooldown": self.edit_cooldown.value.strip() or 0,
                                       "severity": self.edit_severity.value}
            param = _threshold_param(rule.kind) if rule is not None else None
            if param is not None:
                changes[param] = self.edit_threshold.value.strip()
            try:
                new = self.book.update(rid, **changes)
            except (ValueError, KeyError) as exc:
                msg = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                self.edit_error.value = f'<div class="qf-error">⚠ {esc(msg)}</div>'
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
            self._show_errors(f"{action}: {msg}")
        except Exception as exc:
            logger.exception("alert panel: %s failed", action)
            self._show_errors(f"{action} failed: {exc}")

    def _render_rules(self) -> None:
        with self._lock:
            self._rules_version = self.book.rules_version()
            rules = self.book.list()
            old, self.rule_rows = self.rule_rows, {r.id: _RuleRow(self, r) for r in rules}
            if self.rule_rows:
                self.rules_box.children = [row.box for row in self.rule_rows.values()]
            else:
                self.rules_box.children = [W.HTML('<div class="qf-empty">No rules yet: add one above.</div>')]
            for row in old.values():
                row.close()
            if self._editing is not None and self._editing not in self.rule_rows:
                self.end_edit()
            self._update_summary()

    def _refresh_symbols(self) -> None:
        syms = self.store.symbols()
        if list(self.symbol.options) == syms:
            return
        for dd, pick in ((self.symbol, 0), (self.symbol_x, 1)):
            keep = dd.value
            dd.options = syms
            dd.value = keep if keep in syms else (syms[min(pick, len(syms) - 1)] if syms else None)

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
        rows = [_AlertRow(self, rec) for rec in new.to_dict("records")[::-1]]
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
