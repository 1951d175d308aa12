"""How the alert panel shows rules and fired alerts: condition text, list rows, feed rows, style, beep.

The rows are plain widget bundles; their buttons call back into whatever
implements :class:`RowActions` (the :class:`~quantify.widgets.alerts.AlertPanel`).
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.alerts import KINDS, Rule
from quantify.widgets._base import esc
from quantify.widgets.theme import Theme

__all__ = ["RULE_COLUMNS", "AlertRow", "RowActions", "RuleRow", "alerts_css", "beep_uri", "cells",
           "describe", "fmt_seconds"]


class RowActions(Protocol):
    """What the rows' buttons call (implemented by the panel)."""

    def _run(self, action: str, fn: Callable[[], None]) -> None: ...

    def set_enabled(self, rule_id: str, enabled: bool) -> None: ...

    def begin_edit(self, rule_id: str) -> None: ...

    def delete_rule(self, rule_id: str) -> None: ...

    def acknowledge(self, alert_id: int) -> None: ...


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
    if k == "spread-above":
        return f"spread > {num(p['bps'])} bps{margin}"
    if k == "imbalance-beyond":
        imb = {"abs-above": "|imbalance| >", "above": "imbalance >", "below": "imbalance <"}[p["op"]]
        return f"{imb} {num(p['level'])}{margin}"
    if k == "book-stale":
        return f"book out of sync for {fmt_seconds(p['seconds'])}"
    if k in ("funding-above", "funding-below"):
        unit = " bps" if p["unit"] == "bps" else ""
        return f"funding {'≥' if k == 'funding-above' else '≤'} {num(p['level'])}{unit}{margin}"
    if k == "basis-z":
        z = {"abs-above": "|z| >", "above": "z >", "below": "z <"}[p["op"]]
        return f"basis {z} {num(p['level'])} · {p['window']} × {p['timeframe']}{margin}"
    if k == "drawdown":
        return f"drawdown > {num(p['level'])} % of the peak over {p['window']} × {p['timeframe']}{margin}"
    if k == "liquidation-burst":
        what = f"{p['count']} liquidations" if p["count"] is not None else f"{num(p['notional'])} liquidated"
        return f"≥ {what} within {fmt_seconds(p['window'])}"
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


def alerts_css(theme: Theme) -> str:
    """The panel's own style rules (on top of the shared ``panel_css``), in ``theme``'s palette."""
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


#: Columns of the rule list: heading and width in pixels.
RULE_COLUMNS = (("Symbol", 170), ("Kind", 110), ("Condition", 250), ("Severity", 80), ("Cooldown", 80),
                 ("Message", 190))


def cells(texts: list[str], cls: str = "qf-cell") -> str:
    """One row of the rule list as fixed-width cells (one widget per row keeps long lists cheap)."""
    spans = "".join(f'<span class="{cls}" style="width:{w}px">{c}</span>'
                    for c, (_h, w) in zip(texts, RULE_COLUMNS, strict=True))
    return f'<div class="qf-cells">{spans}</div>'


class RuleRow:
    """The widgets of one rule in the list."""

    def __init__(self, panel: RowActions, rule: Rule) -> None:
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
        self.html = W.HTML(cells([
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


class AlertRow:
    """One fired alert in the feed, with its acknowledge button."""

    def __init__(self, panel: RowActions, alert: dict[str, Any]) -> None:
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
        # flex "0 0 auto": in the scrolling feed a row keeps its height instead of shrinking
        self.box = W.HBox([self.html, self.ack],
                          layout=W.Layout(align_items="center", padding="3px 0", flex="0 0 auto"))
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
