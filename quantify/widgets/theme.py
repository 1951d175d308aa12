"""Light and dark themes for QuantiFy's figures and panels."""

from __future__ import annotations

from dataclasses import dataclass

import bqplot as bq

__all__ = ["DARK", "LIGHT", "SEVERITY_COLOURS", "THEMES", "Theme", "get_theme"]


@dataclass(frozen=True)
class Theme:
    """Colours of one theme.

    ``palette`` colours the series in order; ``up``/``down`` the candles;
    ``bands`` the z-score entry/exit bands; ``severity`` the alert
    severities (:data:`quantify.alerts.SEVERITIES`: critical red, high
    orange, medium yellow, low grey), the one severity palette every widget
    and dashboard uses (through :meth:`severity_colour` or
    :data:`SEVERITY_COLOURS`).
    """

    name: str
    background: str
    panel: str
    foreground: str
    muted: str
    grid: str
    palette: tuple[str, ...]
    up: str
    down: str
    bands: str
    severity: tuple[tuple[str, str], ...]
    font: str = "-apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

    def severity_colour(self, severity: str) -> str:
        """Colour of an alert severity (``muted`` for an unknown one)."""
        return dict(self.severity).get(str(severity).lower(), self.muted)


LIGHT = Theme(
    name="light", background="#ffffff", panel="#f6f8fa", foreground="#1f2328", muted="#656d76",
    grid="#e6e9ed", palette=("#0969da", "#d1242f", "#1a7f37", "#8250df", "#bf8700"),
    up="#1a7f37", down="#d1242f", bands="#8c959f",
    severity=(("critical", "#cf222e"), ("high", "#d15704"), ("medium", "#b08800"), ("low", "#6e7781")),
)
DARK = Theme(
    name="dark", background="#0d1117", panel="#161b22", foreground="#e6edf3", muted="#8d96a0",
    grid="#262c36", palette=("#4493f8", "#f47067", "#3fb950", "#b083f0", "#d29922"),
    up="#3fb950", down="#f85149", bands="#6e7681",
    severity=(("critical", "#f85149"), ("high", "#f0883e"), ("medium", "#d29922"), ("low", "#8b949e")),
)
THEMES = {"light": LIGHT, "dark": DARK}

#: The severity palette per theme name: ``SEVERITY_COLOURS["dark"]["high"]``.
SEVERITY_COLOURS: dict[str, dict[str, str]] = {name: dict(t.severity) for name, t in THEMES.items()}


def get_theme(theme: str | Theme) -> Theme:
    """The theme named ``theme`` (``"light"`` or ``"dark"``), or ``theme`` itself."""
    if isinstance(theme, Theme):
        return theme
    try:
        return THEMES[theme]
    except (KeyError, TypeError):
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}") from None


def style_figure(fig: bq.Figure, theme: Theme) -> None:
    """Apply ``theme`` to a figure and its axes."""
    fig.background_style = {"fill": theme.background}
    fig.title_style = {"fill": theme.foreground, "font-size": "13px", "font-weight": "600"}
    fig.legend_style = {"fill": theme.panel, "stroke": theme.grid}
    fig.legend_text = {"fill": theme.foreground}
    for axis in fig.axes:
        axis.color = theme.muted
        axis.label_color = theme.muted
        axis.grid_color = theme.grid
        axis.tick_style = {"fill": theme.muted, "font-size": "11px"}


def panel_css(theme: Theme) -> str:
    """CSS for QuantiFy's panels (an ``<style>`` block shown once per view)."""
    t = theme
    return f"""<style>
.qf-root {{ background:{t.background}; color:{t.foreground}; font-family:{t.font};
  padding:8px 12px; border-radius:8px; }}
.qf-root .widget-label, .qf-root .widget-html-content, .qf-root label {{ color:{t.foreground}; }}
.qf-root .widget-inline-hbox .widget-label {{ color:{t.muted}; }}
.qf-title {{ font-size:18px; font-weight:650; letter-spacing:.2px; }}
.qf-sub {{ color:{t.muted}; font-size:12px; }}
.qf-row {{ gap:6px; }}
.qf-stat {{ display:inline-block; margin-right:18px; }}
.qf-stat b {{ font-variant-numeric:tabular-nums; font-size:15px; }}
.qf-stat span {{ color:{t.muted}; font-size:11px; letter-spacing:.4px;
  display:block; }}
.qf-badge {{ display:inline-block; padding:2px 8px; border-radius:10px; font-size:11px;
  font-weight:700; letter-spacing:.5px; margin-right:10px; }}
.qf-badge-replay {{ background:#d29922; color:#111; }}
.qf-badge-live {{ background:#2ea043; color:#fff; }}
.qf-badge-off {{ background:{t.muted}; color:{t.background}; }}
.qf-status {{ font-size:12px; color:{t.muted}; font-variant-numeric:tabular-nums; }}
.qf-status b {{ color:{t.foreground}; font-weight:600; }}
.qf-error {{ color:{t.down}; font-size:12px; }}
.qf-table {{ border-collapse:collapse; font-size:12px; width:100%; }}
.qf-table th {{ color:{t.muted}; text-align:left; font-weight:600; border-bottom:1px solid {t.grid};
  padding:4px 6px; }}
.qf-table td {{ padding:4px 6px; border-bottom:1px solid {t.grid}; font-variant-numeric:tabular-nums; }}
</style>"""
