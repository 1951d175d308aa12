"""DrawdownMonitor: the equity and the underwater curve of a paper position, live."""

from __future__ import annotations

from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.analytics.drawdown import paper_equity, trailing_drawdown
from quantify.widgets._base import LiveWidget, esc, finite_tail, points_html
from quantify.widgets.frames import downsample

__all__ = ["DrawdownMonitor"]


class DrawdownMonitor(LiveWidget):
    """Live equity and drawdown of a paper position on bar closes.

    Parameters
    ----------
    y : str
        The instrument held long, or the ``y`` leg of a pair.
    x : str, optional
        The pair's ``x`` leg: the position is then the z-score strategy of
        :func:`quantify.analytics.backtest_pairs` on the two legs' closes.
    timeframe : str, default "1m"
        Bars the position is marked on.
    window : int, default 120
        Bars over which the peak of the drawdown is taken; for a pair also
        the strategy's hedge and z-score window.
    entry, exit : float, default 2.0 and 0.5
        The pair strategy's z-score bands.
    level : float, optional
        A drawdown level in % drawn as a line on the underwater curve (the
        level of a ``drawdown`` alert rule), and flagged when crossed.
    **kwargs
        ``store``, ``bars``, ``theme``, ``fps``, ``autostart`` as for
        :class:`~quantify.widgets.LiveChart`.

    Notes
    -----
    The equity is :func:`quantify.analytics.paper_equity` of the closes the
    widget holds (capital 1) and the drawdown
    :func:`quantify.analytics.trailing_drawdown` over ``window`` bars, in %:
    the numbers a ``drawdown`` alert rule with the same parameters fires on.
    The last bar is the open one, so its values move until it closes.
    """

    def __init__(self, y: str = "BTCUSDT", x: str | None = None, timeframe: str = "1m", window: int = 120, *,
                 entry: float = 2.0, exit: float = 0.5, level: float | None = None, **kwargs: object) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 3:
            raise ValueError(f"window must be an integer number of bars >= 3, got {window!r}")
        if not 0 <= float(exit) < float(entry):
            raise ValueError(f"need 0 <= exit < entry, got entry={entry!r}, exit={exit!r}")
        if level is not None and not 0 < float(level) < 100:
            raise ValueError(f"level is a drawdown in % of the peak, in (0, 100), got {level!r}")
        self.window, self.entry, self.exit = int(window), float(entry), float(exit)
        self.level = None if level is None else float(level)
        self.stats: dict[str, float] = {}
        self.note = ""
        super().__init__([y] if x is None else [y, x], timeframe=timeframe, **kwargs)  # type: ignore[arg-type]

    # -- figures ----------------------------------------------------------

    def _build(self) -> None:
        t = self.theme
        sx = bq.DateScale()
        empty_x = np.array([], dtype="datetime64[ms]")

        def lines(colors: list[str], **kw: Any) -> tuple[bq.Lines, bq.LinearScale]:
            sy = bq.LinearScale()
            return bq.Lines(x=empty_x, y=np.zeros((len(colors), 0)), scales={"x": sx, "y": sy},
                            colors=colors, stroke_width=1.5, **kw), sy

        self._equity, s1 = lines([t.palette[0]])
        # the underwater curve (<= 0, in %), then the alert level
        self._under, s2 = lines([t.down, t.bands], fill="bottom", fill_opacities=[0.25, 0.0])
        s2.max = 0.0

        def vaxis(scale: bq.LinearScale, fmt: str) -> bq.Axis:
            return bq.Axis(scale=scale, side="left", tick_format=fmt, grid_lines="solid", num_ticks=4)

        what = " / ".join(self.symbols) if len(self.symbols) == 2 else f"long {self.symbols[0]}"
        self.figures = {
            "equity": self._figure(f"paper position: {what} (equity, capital 1)", [self._equity],
                                   [self._time_axis(sx), vaxis(s1, ".4f")], "240px"),
            "underwater": self._figure(f"drawdown from the peak of the last {self.window} bars (%)",
                                       [self._under], [self._time_axis(sx), vaxis(s2, ".2f")], "180px"),
        }
        self._stats = W.HTML()
        self.children = [self._css, self._stats, self.figures["equity"], self.figures["underwater"]]

    @property
    def points(self) -> dict[str, int]:
        """Points plotted per figure."""
        return {"equity": len(self._equity.x), "underwater": len(self._under.x)}

    # -- statistics -------------------------------------------------------

    def compute(self) -> pd.DataFrame:
        """Aligned closes, the paper position's ``equity`` and its ``drawdown`` (%, >= 0) per bar."""
        closes = pd.concat({s: self.bars[s]["close"] for s in self.symbols}, axis=1).ffill().dropna()
        out = closes.copy()
        out["equity"] = np.nan
        out["drawdown"] = np.nan
        self.note = ""
        pair = len(self.symbols) == 2
        need = 2 * self.window if pair else 2
        if len(closes) < need:
            self.note = f"warming up: the paper position needs {need} bars, {len(closes)} so far"
            return out
        cols = [closes[s].to_numpy() for s in self.symbols]
        equity = paper_equity(*cols, window=self.window, entry=self.entry, exit=self.exit)
        out["equity"] = equity.to_numpy()
        out["drawdown"] = 100.0 * trailing_drawdown(equity, self.window).to_numpy()
        return out

    def _draw(self) -> None:
        data = self.compute()
        x = data.index.tz_convert(None).values.astype("datetime64[ms]")
        dd = data["drawdown"].to_numpy(float)
        level = np.full(len(x), -self.level if self.level is not None else np.nan)
        under = np.vstack([-dd, np.where(np.isfinite(dd), level, np.nan)]) if self.level is not None \
            else -dd[None, :]
        for fig, mark, y in ((self.figures["equity"], self._equity, data["equity"].to_numpy(float)),
                             (self.figures["underwater"], self._under, under)):
            fx, fy, defined = finite_tail(x, y)
            px, py = downsample(fx, fy)
            with fig.hold_sync(), mark.hold_sync():
                mark.x, mark.y = px, py
                if mark.visible != defined:
                    mark.visible = defined
        self._stats.value = self._stats_html(data)

    def _stats_html(self, data: pd.DataFrame) -> str:
        eq = data["equity"].dropna()
        dd = data["drawdown"].dropna()
        stats = {"equity": float(eq.iloc[-1]) if len(eq) else np.nan,
                 "drawdown": float(dd.iloc[-1]) if len(dd) else np.nan,
                 "max_drawdown": float(dd.max()) if len(dd) else np.nan}
        self.stats = stats
        breach = self.level is not None and np.isfinite(stats["drawdown"]) and stats["drawdown"] > self.level
        colour = self.theme.down if breach else None

        def cell(label: str, value: str, colour: str | None = None) -> str:
            style = f' style="color:{colour}"' if colour else ""
            return f'<div class="qf-stat"><span>{esc(label)}</span><b{style}>{value}</b></div>'

        def num(v: float, fmt: str) -> str:
            return format(v, fmt) if np.isfinite(v) else "–"

        parts = [
            cell("position", esc(" / ".join(self.symbols) if len(self.symbols) == 2 else f"long {self.symbols[0]}")),
            cell("equity", num(stats["equity"], ".4f")),
            cell("drawdown", num(stats["drawdown"], ".2f") + " %", colour),
            cell(f"max over {len(dd):,} bars", num(stats["max_drawdown"], ".2f") + " %"),
        ]
        if self.level is not None:
            parts.append(cell("alert level", f"{self.level:g} %"))
        parts.append(cell("bars", f"{len(data):,} × {esc(self.timeframe)}"))
        note = f'<div class="qf-sub">{esc(self.note)}</div>' if self.note else ""
        return "".join(parts) + note + points_html(len(data))
