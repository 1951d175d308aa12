"""The alert panel's forms: the new-rule form (fields per kind, inline validation) and the edit bar.

Every value is validated by :mod:`quantify.model.rules` itself: a field is
checked on its own when it changes, and the whole rule by
:func:`~quantify.alerts.make_rule`; the messages are shown next to the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W

from quantify.alerts import KINDS, SEVERITIES, Rule, make_rule
from quantify.model.timeframes import WIDGET_TIMEFRAMES
from quantify.widgets._alert_view import fmt_seconds
from quantify.widgets._base import esc

__all__ = ["LABELS", "EditBar", "RuleForm", "field", "label", "threshold_param"]


LABELS = {
    "level": "Level", "margin": "Margin", "pct": "Move %", "window": "Window", "direction": "Direction",
    "op": "When", "timeframe": "Bars", "hedge": "Hedge", "k": "k × baseline", "short": "Short bars",
    "long": "Long bars", "seconds": "Silent for", "bps": "Spread bps", "levels": "Book levels",
    "unit": "Unit", "count": "Liquidations", "notional": "or notional",
    "states": "States", "lookback": "Fit on bars", "seed": "Seed", "prob": "Least probability",
    "entry": "Pair entry |z|", "exit": "Pair exit |z|",
}
#: Labels that depend on the kind (the same parameter means another thing there).
_KIND_LABELS = {("book-stale", "seconds"): "Out of sync for", ("funding-above", "level"): "Funding rate",
                ("funding-below", "level"): "Funding rate", ("liquidation-burst", "window"): "Within",
                ("basis-z", "level"): "|z| level", ("basis-z", "window"): "z window (bars)",
                ("drawdown", "level"): "Drawdown %", ("drawdown", "window"): "Peak over (bars)",
                ("regime-change", "window"): "Vol window (bars)"}
#: Labels of the two symbol fields of a two-symbol kind: (first, second).
_PAIR_LABELS = {"basis-z": ("Perpetual", "Spot")}
_CHOICES: dict[str, tuple[str, ...]] = {
    "direction": ("abs", "up", "down"), "op": ("abs-above", "above", "below"), "hedge": ("ols", "kalman"),
    "timeframe": WIDGET_TIMEFRAMES, "unit": ("rate", "bps"),
}
#: Parameters the form leaves at their defaults (tuning for experts, or one value for now; make_rule
#: takes them).
_HIDDEN = frozenset({"delta", "levels"})
#: What to write in a required field, as a placeholder.
_EXAMPLES = {"level": "e.g. 61700", "pct": "e.g. 0.5", "window": "e.g. 5m", "k": "e.g. 3",
             "seconds": "e.g. 30s", "bps": "e.g. 2", "count": "e.g. 5", "notional": "e.g. 1e6"}
#: Examples that depend on the kind.
_KIND_EXAMPLES = {("funding-above", "level"): "e.g. 0.0005", ("funding-below", "level"): "e.g. -0.0001",
                  ("liquidation-burst", "window"): "e.g. 1m", ("drawdown", "level"): "e.g. 5"}
#: The parameter an edit changes as "threshold" (``level`` unless listed; gap rules have none).
_THRESHOLD: dict[str, str | None] = {"pct-move": "pct", "vol-breakout": "k", "stale": "seconds", "gap": None,
                                     "spread-above": "bps", "book-stale": "seconds", "regime-change": "prob"}


def label(kind: str, name: str) -> str:
    """The label of parameter ``name`` in a ``kind`` rule's form."""
    return _KIND_LABELS.get((kind, name), LABELS[name])


def threshold_param(kind: str, params: dict[str, Any] | None = None) -> str | None:
    """The parameter an edit changes as the threshold of a ``kind`` rule (None: it has none).

    A ``liquidation-burst`` rule's is ``count``, or ``notional`` if ``params`` say it counts that.
    """
    if kind == "liquidation-burst":
        return "notional" if params is not None and params.get("notional") is not None else "count"
    return _THRESHOLD.get(kind, "level")


def _placeholder(default: Any, name: str) -> str:
    """A field's hint: its default (left empty, the default applies), or an example if it is required."""
    if isinstance(default, bool) or not isinstance(default, (int, float, str)):
        return _EXAMPLES.get(name, "")
    return f"{default:g}" if isinstance(default, float) else str(default)


def field(label: str, widget: W.Widget, width: str) -> W.VBox:
    """``widget`` at ``width`` under a small label."""
    widget.layout.width = width
    box = W.VBox([W.HTML(f'<div class="qf-field-label">{esc(label)}</div>'), widget],
                 layout=W.Layout(margin="0 8px 4px 0"))
    return box


class RuleForm:
    """The new-rule form: kind, symbol(s), the kind's parameters, severity, cooldown, message.

    Parameters
    ----------
    symbols : list of str
        The store's symbols, the choices of the symbol dropdowns.
    guarded : callable
        ``guarded(action, fn)`` calls a field check, reporting a failure (the panel's ``_run``).
    """

    def __init__(self, symbols: list[str], guarded: Callable[[str, Callable[[], None]], None]) -> None:
        syms = symbols
        self.field_errors: dict[str, str] = {}
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
                    w.observe(lambda ch, n=name: guarded("check", lambda: self.check_field(n)), "value")
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
        self.field_boxes = {name: field(LABELS[name], w, "150px" if name == "op" else "110px")
                            for name, w in self.fields.items()}
        self.symbol_box = field("Symbol", self.symbol, "130px")
        self.symbol_x_box = field("X (hedge)", self.symbol_x, "130px")
        self.params_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        common = [field("Severity", self.severity, "100px"), field("Cooldown", self.cooldown, "100px"),
                  field("Message (optional)", self.message, "260px")]
        self.card = W.VBox([
            W.HBox([field("Kind", self.kind, "140px"), self.symbol_box, self.symbol_x_box, self.params_box],
                   layout=W.Layout(flex_flow="row wrap", align_items="flex-end")),
            W.HBox([*common, W.VBox([W.HTML('<div class="qf-field-label">&nbsp;</div>'), self.add_button]),
                    self.error], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
        ])
        self.kind.observe(lambda _ch: self.on_kind(), "value")
        self.on_kind()

    def on_kind(self) -> None:
        """Show the chosen kind's fields, with its defaults as hints, and check them."""
        kind = self.kind.value
        spec = KINDS[kind]
        shown = [n for n in spec.params if n not in _HIDDEN]
        self.params_box.children = [self.field_boxes[n] for n in shown]
        pair = spec.n_symbols == 2
        self.symbol_x_box.layout.display = "" if pair else "none"
        first, second = _PAIR_LABELS.get(kind, ("Y", "X (hedge)")) if pair else ("Symbol", "")
        self.symbol_box.children[0].value = f'<div class="qf-field-label">{esc(first)}</div>'
        if pair:
            self.symbol_x_box.children[0].value = f'<div class="qf-field-label">{esc(second)}</div>'
        for name in shown:
            self.field_boxes[name].children[0].value = f'<div class="qf-field-label">{esc(label(kind, name))}</div>'
            w = self.fields[name]
            if isinstance(w, W.Text):
                w.placeholder = _KIND_EXAMPLES.get((kind, name)) or _placeholder(spec.params[name][1], name)
            elif isinstance(w, W.Dropdown):
                w.value = spec.params[name][1]
        self.message.placeholder = spec.message
        self.field_errors = {n: e for n, e in self.field_errors.items() if n in shown}
        for name in shown:
            self.check_field(name)
        self.show_errors()

    def check_field(self, name: str) -> None:
        """Check one parameter field as the rule will (inline message; nothing stored)."""
        w = self.fields[name]
        spec = KINDS[self.kind.value].params.get(name)
        self.field_errors.pop(name, None)
        if spec is not None and isinstance(w, W.Text) and w.value.strip():
            try:
                spec[0](w.value.strip())
            except ValueError as exc:
                self.field_errors[name] = str(exc)
        self.show_errors()

    def show_errors(self, extra: str = "") -> None:
        """Show the fields' messages, and ``extra``, under the form."""
        msgs = list(dict.fromkeys([*self.field_errors.values(), *([extra] if extra else [])]))
        self.error.value = "".join(f'<div class="qf-error">⚠ {esc(m)}</div>' for m in msgs)

    def rule(self) -> Rule:
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

    def set_symbols(self, syms: list[str]) -> None:
        """New choices for the symbol dropdowns, keeping the picks that are still there."""
        if list(self.symbol.options) == syms:
            return
        for dd, pick in ((self.symbol, 0), (self.symbol_x, 1)):
            keep = dd.value
            dd.options = syms
            dd.value = keep if keep in syms else (syms[min(pick, len(syms) - 1)] if syms else None)


class EditBar:
    """The bar under the rule list that edits one rule's threshold, cooldown and severity."""

    def __init__(self) -> None:
        self.label = W.HTML()
        self.threshold = W.Text(layout=W.Layout(width="110px"), continuous_update=False)
        self.cooldown = W.Text(layout=W.Layout(width="100px"), continuous_update=False)
        self.severity = W.Dropdown(options=list(SEVERITIES), layout=W.Layout(width="100px"))
        self.save = W.Button(description="Save", button_style="primary", layout=W.Layout(width="70px"))
        self.cancel = W.Button(description="Cancel", layout=W.Layout(width="70px"))
        self.error = W.HTML(layout=W.Layout(margin="18px 0 0 8px"))
        for name, w in [("threshold", self.threshold), ("cooldown", self.cooldown),
                        ("severity", self.severity), ("save", self.save), ("cancel", self.cancel)]:
            w.add_class(f"qf-edit-{name}")
        self.threshold_box = field("Threshold", self.threshold, "110px")
        blank = '<div class="qf-field-label">&nbsp;</div>'
        self.box = W.HBox([
            W.VBox([W.HTML(blank), self.label], layout=W.Layout(margin="0 8px 0 0")),
            self.threshold_box, field("Cooldown", self.cooldown, "100px"),
            field("Severity", self.severity, "100px"),
            W.VBox([W.HTML(blank), W.HBox([self.save, self.cancel])]),
            self.error,
        ], layout=W.Layout(display="none", flex_flow="row wrap", align_items="flex-start", margin="8px 0 0 0"))

    def show(self, rule: Rule) -> None:
        """Open the bar on ``rule``'s current values."""
        param = threshold_param(rule.kind, dict(rule.params))
        self.threshold_box.layout.display = "none" if param is None else ""
        if param is not None:
            self.threshold_box.children[0].value = f'<div class="qf-field-label">{esc(label(rule.kind, param))}</div>'
            value = rule.params[param]
            self.threshold.value = fmt_seconds(value) if param == "seconds" else f"{value:g}"
        self.cooldown.value = fmt_seconds(rule.cooldown)
        self.severity.value = rule.severity
        self.label.value = f'<div class="qf-cell">Editing <b>{esc(rule.symbol)}</b> {esc(rule.kind)}</div>'
        self.error.value = ""
        self.box.layout.display = "flex"

    def hide(self) -> None:
        """Close the bar."""
        self.box.layout.display = "none"
        self.error.value = ""

    def changes(self, rule: Rule | None) -> dict[str, Any]:
        """The bar's values as :meth:`AlertBook.update` keywords for ``rule``."""
        changes: dict[str, Any] = {"cooldown": self.cooldown.value.strip() or 0, "severity": self.severity.value}
        param = threshold_param(rule.kind, dict(rule.params)) if rule is not None else None
        if param is not None:
            changes[param] = self.threshold.value.strip()
        return changes

    def show_error(self, msg: str) -> None:
        """Show why the edit was not stored."""
        self.error.value = f'<div class="qf-error">⚠ {esc(msg)}</div>'
