"""MicrostructurePanels: spread, imbalance and markouts of an instrument's stored quotes and trades."""

from __future__ import annotations

import logging
import threading

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.analytics import QUOTE_COLUMNS, MarkoutResult, imbalance, markouts, quoted_spread
from quantify.exceptions import UnknownSymbol
from quantify.model.instrument import instrument_key
from quantify.store import Store
from quantify.widgets._base import esc, points_html
from quantify.widgets.frames import MAX_POINTS, FrameTimer, downsample
from quantify.widgets.source import recent_start, resolve_store
from quantify.widgets.theme import Theme, get_theme, panel_css, style_figure

__all__ = ["MARKOUT_HORIZONS", "MicrostructurePanels"]

logger = logging.getLogger(__name__)


def _duration(span: pd.Timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


#: Horizons of the markouts panel.
MARKOUT_HORIZONS = ("1s", "5s", "30s")


class MicrostructurePanels(W.VBox):
    """Microstructure of the stored quotes and trades: spread and imbalance over time, markouts.

    Redrawn every ``interval`` seconds from the last ``window`` of the
    store (heavier than a frame of :class:`BookMonitor`, so slower).

    Parameters
    ----------
    symbol : str
        The instrument.
    store : Store, str or None
        As for :class:`BookMonitor`.
    window : str or Timedelta, default "15min"
        Exchange time read back from the last stored trade.
    every : str, default "1s"
        The grid of the spread and imbalance series (the last quote of each step).
    interval : float, default 5.0
        Seconds between redraws.
    theme : {"light", "dark"}
    autostart : bool

    Notes
    -----
    The series are :func:`quantify.analytics.quoted_spread` (bps) and
    :func:`~quantify.analytics.imbalance` (level 1) of the last quote of
    each step; the bars are :func:`~quantify.analytics.markouts` of every
    trade in the window at :data:`MARKOUT_HORIZONS`, signed by Binance's
    aggressor flag, in bps (the means as bars, the quantity-weighted means
    in the summary line).
    """

    def __init__(self, symbol: str = "BTCUSDT", *, store: Store | str | None = None,
                 window: str | pd.Timedelta = "15min", every: str = "1s", interval: float = 5.0,
                 theme: str | Theme = "light", autostart: bool = True) -> None:
        try:
            span, step = pd.Timedelta(window), pd.Timedelta(every)
        except (TypeError, ValueError):
            raise ValueError(f"window and every must be durations, got {window!r} and {every!r}") from None
        if not (span > pd.Timedelta(0) and step > pd.Timedelta(0)):
            raise ValueError(f"window and every must be positive, got {window!r} and {every!r}")
        if not interval > 0:
            raise ValueError(f"interval must be positive seconds, got {interval!r}")
        super().__init__()
        self.add_class("qf-root")
        self.store = resolve_store(store)
        self.theme = get_theme(theme)
        self.symbol = instrument_key(symbol)
        self.window, self.every = span, step
        self.series = pd.DataFrame()
        self.markouts: MarkoutResult | None = None
        self.note = ""
        self.frames_drawn = 0
        self._lock = threading.RLock()
        self._build()
        self.refresh()
        self._timer = FrameTimer(self.refresh, 1.0 / interval, name="MicrostructurePanels")
        if autostart:
            self._timer.start()

    def _build(self) -> None:
        t = self.theme
        tx = bq.DateScale()
        s_spread, s_imb = bq.LinearScale(), bq.LinearScale(min=-1.0, max=1.0)
        empty_t = np.array([], dtype="datetime64[ms]")
        self._spread = bq.Lines(x=empty_t, y=np.empty(0), scales={"x": tx, "y": s_spread}, colors=[t.palette[3]],
                                stroke_width=1.2, interpolation="step-after")
        self._imbalance = bq.Lines(x=empty_t, y=np.empty(0), scales={"x": tx, "y": s_imb}, colors=[t.palette[0]],
                                   stroke_width=1.0, interpolation="step-after")
        sx, sy = bq.OrdinalScale(), bq.LinearScale()
        # one bar per horizon (bqplot 0.13 draws no "grouped" bars); the qty-weighted means are in the summary
        self._markouts = bq.Bars(x=list(MARKOUT_HORIZONS), y=np.zeros(len(MARKOUT_HORIZONS)),
                                 scales={"x": sx, "y": sy}, colors=[t.palette[2]], padding=0.35)

        def time_axis(scale: bq.DateScale) -> bq.Axis:
            return bq.Axis(scale=scale, tick_format="%H:%M:%S", label="", grid_lines="none", num_ticks=6)

        def vaxis(scale: bq.Scale, fmt: str) -> bq.Axis:
            return bq.Axis(scale=scale, side="left", tick_format=fmt, grid_lines="solid", num_ticks=4)

        def figure(title: str, marks: list, axes: list, **kw: object) -> bq.Figure:
            fig = bq.Figure(title=title, marks=marks, axes=axes, animation_duration=0,
                            fig_margin={"top": 30, "bottom": 28, "left": 64, "right": 16},
                            layout=W.Layout(width="100%", height="200px", min_height="200px"), **kw)
            style_figure(fig, self.theme)
            return fig

        self.figures = {
            "spread": figure(f"quoted spread (bps, last quote per {self._step_text()})", [self._spread],
                             [time_axis(tx), vaxis(s_spread, ".3f")]),
            "imbalance": figure("L1 imbalance (+1 all bids, -1 all asks)", [self._imbalance],
                                [time_axis(tx), vaxis(s_imb, ".1f")]),
            "markouts": figure("aggressor markouts, mean (bps)", [self._markouts],
                               [bq.Axis(scale=sx, grid_lines="none"), vaxis(sy, ".2f")]),
        }
        for fig, width in zip(self.figures.values(), ("36%", "36%", "28%"), strict=True):
            fig.layout.width = width
        self._summary = W.HTML()
        self.children = [W.HTML(panel_css(self.theme), layout=W.Layout(height="0px", margin="0")),
                         self._summary, W.HBox(list(self.figures.values()), layout=W.Layout(width="100%"))]

    def _step_text(self) -> str:
        return _duration(self.every)

    def set_symbol(self, symbol: str) -> None:
        """Show another instrument (redraws at once)."""
        with self._lock:
            self.symbol = instrument_key(symbol)
        self.refresh()

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.running

    def close(self) -> None:
        self.stop()
        for fig in getattr(self, "figures", {}).values():
            fig.close()
        super().close()

    def _read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        start = recent_start(self.store, self.symbol, self.window)
        if not self.store.has_book(self.symbol):
            return pd.DataFrame(), pd.DataFrame()
        quotes = self.store.quotes(self.symbol, start=start)
        try:
            trades = self.store.ticks(self.symbol, start=start)
        except UnknownSymbol:
            trades = pd.DataFrame()
        return quotes, trades

    def refresh(self) -> None:
        """Read the window again and redraw every panel."""
        with self._lock:
            quotes, trades = self._read()
            known = quotes[np.isfinite(quotes["bid_price"].to_numpy()) & np.isfinite(quotes["ask_price"].to_numpy())] \
                if len(quotes) else quotes
            if len(known):
                last = known[list(QUOTE_COLUMNS)].resample(self.every, label="right", closed="right").last().dropna()
                self.series = pd.DataFrame({"spread_bps": quoted_spread(last, "bps"), "imbalance": imbalance(last)})
            else:
                self.series = pd.DataFrame({"spread_bps": pd.Series(dtype=float), "imbalance": pd.Series(dtype=float)})
            self.markouts = None
            self.note = ""
            if len(known) and len(trades):
                try:
                    self.markouts = markouts(trades, quotes, list(MARKOUT_HORIZONS))
                except ValueError as exc:  # too few trades or quotes in the window
                    self.note = str(exc)
            elif not len(trades):
                self.note = f"no trades of {self.symbol} stored: no markouts"
            self._draw(len(quotes), len(quotes) - len(known), len(trades))
            self.frames_drawn += 1

    def _draw(self, n_quotes: int, n_unknown: int, n_trades: int) -> None:
        s = self.series
        x = s.index.tz_convert(None).values.astype("datetime64[ms]") if len(s) else np.array([], "datetime64[ms]")
        for name, mark, y in (("spread", self._spread, s["spread_bps"].to_numpy(float)),
                              ("imbalance", self._imbalance, s["imbalance"].to_numpy(float))):
            px, py = downsample(x, y, MAX_POINTS)
            with self.figures[name].hold_sync(), mark.hold_sync():
                mark.x, mark.y = px, py
        mk = self.markouts
        bars = np.zeros(len(MARKOUT_HORIZONS))
        if mk is not None:
            bars = np.nan_to_num(mk.mean.to_numpy(float))
        with self.figures["markouts"].hold_sync(), self._markouts.hold_sync():
            self._markouts.y = bars
        cells = [f'<div class="qf-stat"><span>window</span><b>{esc(self.symbol)} · last {esc(_duration(self.window))}</b></div>',
                 f'<div class="qf-stat"><span>quotes</span><b>{n_quotes:,}</b></div>',
                 f'<div class="qf-stat"><span>a side unknown</span><b>{n_unknown:,}</b></div>',
                 f'<div class="qf-stat"><span>trades</span><b>{n_trades:,}</b></div>']
        if len(s):
            cells.append(f'<div class="qf-stat"><span>median spread</span>'
                         f'<b>{s["spread_bps"].median():.4f} bps</b></div>')
        if mk is not None:
            cells.append('<div class="qf-stat"><span>markout 1s (mean ± se)</span>'
                         f'<b>{mk.mean.iloc[0]:+.3f} ± {mk.stderr.iloc[0]:.3f} bps</b></div>')
            weighted = " · ".join(f"{h} {v:+.3f}" for h, v in mk.weighted_mean.items())
            cells.append(f'<div class="qf-stat"><span>qty-weighted markouts (bps)</span><b>{esc(weighted)}</b></div>')
        note = f'<div class="qf-sub">{esc(self.note)}</div>' if self.note else ""
        self._summary.value = "".join(cells) + note + points_html(len(s))
