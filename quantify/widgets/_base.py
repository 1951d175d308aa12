"""What every live widget shares: a store, a feed, a frame timer, a theme."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Iterable

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.exceptions import UnknownSymbol
from quantify.model.bars import resample
from quantify.model.instrument import instrument_key
from quantify.model.timeframes import timeframe_to_offset
from quantify.store import Store
from quantify.widgets.frames import DEFAULT_FPS, MAX_POINTS, FrameTimer
from quantify.widgets.source import BAR_COLUMNS, StoreTail, feed_for, resolve_store, update_bars
from quantify.widgets.theme import Theme, get_theme, panel_css, style_figure

__all__ = ["LiveWidget", "finite_tail", "read_history"]

logger = logging.getLogger(__name__)


def _empty_bars() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in BAR_COLUMNS},
                        index=pd.DatetimeIndex([], tz="UTC", name="time"))


def read_history(store: Store, symbol: str, timeframe: str, bars: int) -> tuple[pd.DataFrame, tuple | None]:
    """The last ``bars`` candles of ``symbol`` and the ``(time, trade_id)`` of its last trade.

    Complete bars come from the store's candles when it has them
    (``Store.ohlcv``); the current, still open bar from its ticks, so the
    live feed continues it exactly.
    """
    step = timeframe_to_offset(timeframe)
    try:
        info = store.describe(symbol)
    except UnknownSymbol:
        return _empty_bars(), None
    if info["last_time"] is None:
        return _empty_bars(), None
    current = info["last_time"].floor(step)
    start = current - step * (bars - 1)
    ohlcv = getattr(store, "ohlcv", None)
    if ohlcv is not None:
        done = ohlcv(symbol, timeframe, start=start, end=current)[BAR_COLUMNS]
        # bars before the first trade have no price (NaN): never sent to the browser
        first = done["close"].first_valid_index()
        done = done.loc[first:] if first is not None else done.iloc[:0]
        ticks = store.ticks(symbol, start=current)
    else:
        done, ticks = _empty_bars(), store.ticks(symbol, start=start)
    if not len(ticks):
        return done.tail(bars), None
    out = update_bars(done, ticks, timeframe, bars) if len(done) else resample(ticks, timeframe)[BAR_COLUMNS]
    return out.tail(bars), (ticks.index[-1], int(ticks["trade_id"].iloc[-1]))


class LiveWidget(W.VBox):
    """Base of the live widgets: keeps candles per symbol up to date, frame by frame.

    Subclasses build their figures in ``_build()`` and draw in ``_draw()``;
    :meth:`refresh` runs one frame (the timer calls it; tests call it directly).
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        timeframe: str = "1m",
        store: Store | str | None = None,
        bars: int = MAX_POINTS,
        theme: str | Theme = "light",
        fps: float = DEFAULT_FPS,
        autostart: bool = True,
        **kwargs: object,
    ) -> None:
        timeframe_to_offset(timeframe)  # validates
        if not isinstance(bars, int) or bars < 2:
            raise ValueError(f"bars must be an integer >= 2, got {bars!r}")
        super().__init__(**kwargs)
        self.add_class("qf-root")
        self.store = resolve_store(store)
        self.theme = get_theme(theme)
        self.timeframe = timeframe
        self.max_bars = bars
        self.symbols = [instrument_key(s) for s in symbols]
        self.bars: dict[str, pd.DataFrame] = {}
        self._last_id: dict[str, int] = {}
        self._lock = threading.RLock()
        self._dirty = True
        self.frames_drawn = 0
        self._feed = feed_for(self.store, self.symbols)
        self._timer = FrameTimer(self.refresh, fps, name=type(self).__name__)
        self._css = W.HTML(panel_css(self.theme), layout=W.Layout(height="0px", margin="0"))
        self._build()
        self._load()
        self.refresh()
        if autostart:
            self.start()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Start (or resume) live updates."""
        self._timer.start()

    def stop(self) -> None:
        """Stop live updates (the frame timer's thread ends)."""
        timer = getattr(self, "_timer", None)  # absent if __init__ failed
        if timer is not None:
            timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.running

    def close(self) -> None:
        """Stop updates, release the feed, close the widget and its children."""
        self.stop()
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.close()
        for child in self._owned_widgets():
            child.close()
        super().close()

    def _owned_widgets(self) -> list[W.Widget]:
        return list(getattr(self, "figures", {}).values())

    # -- data -------------------------------------------------------------

    def _load(self) -> None:
        """(Re)read history for every symbol and follow the feed from there."""
        with self._lock:
            since = {}
            for sym in self.symbols:
                bars, last = read_history(self.store, sym, self.timeframe, self.max_bars)
                self.bars[sym] = bars
                if last is not None:
                    since[sym] = last
                    self._last_id[sym] = last[1]
                else:
                    self._last_id.pop(sym, None)
            if isinstance(self._feed, StoreTail):
                self._feed.reset(self.symbols, since)
            else:
                self._feed.reset(self.symbols)
            self._dirty = True

    def set_timeframe(self, timeframe: str) -> None:
        """Redraw from history at ``timeframe``."""
        timeframe_to_offset(timeframe)
        with self._lock:
            self.timeframe = timeframe
            self._load()
        self.refresh()

    def set_symbols(self, symbols: Iterable[str]) -> None:
        with self._lock:
            self.symbols = [instrument_key(s) for s in symbols]
            self._load()
            self._rebuild()
        self.refresh()

    def _rebuild(self) -> None:
        """Symbols changed: close the figures and build them again (subclasses reset more first)."""
        for fig in getattr(self, "figures", {}).values():
            fig.close()
        self._build()

    def refresh(self) -> None:
        """Run one frame: take new trades from the feed and redraw what changed."""
        with self._lock:
            new = self._feed.poll()
            for sym, ticks in new.items():
                if sym not in self.bars:
                    continue
                last = self._last_id.get(sym)
                if last is not None:
                    ticks = ticks[ticks["trade_id"].to_numpy() > last]
                if not len(ticks):
                    continue
                self._last_id[sym] = int(ticks["trade_id"].iloc[-1])
                self.bars[sym] = update_bars(self.bars[sym], ticks, self.timeframe, self.max_bars)
                self._dirty = True
            if self._dirty:
                self._dirty = False
                self._draw()
                self.frames_drawn += 1

    # -- drawing helpers --------------------------------------------------

    def _build(self) -> None:
        raise NotImplementedError

    def _draw(self) -> None:
        raise NotImplementedError

    def _figure(self, title: str, marks: list, axes: list, height: str, **kwargs: object) -> bq.Figure:
        fig = bq.Figure(
            title=title, marks=marks, axes=axes, animation_duration=0,
            fig_margin={"top": 30, "bottom": 28, "left": 64, "right": 16},
            layout=W.Layout(width="100%", height=height, min_height=height), **kwargs,
        )
        style_figure(fig, self.theme)
        return fig

    def _time_axis(self, scale: bq.DateScale, visible: bool = True) -> bq.Axis:
        return bq.Axis(scale=scale, tick_format="%H:%M:%S", label="", grid_lines="none",
                       num_ticks=6, visible=visible)


def finite_tail(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The bars from the first defined value on, gaps carried forward; and whether any exist.

    The browser cannot draw NaN (bqplot writes it into SVG paths), and a figure
    whose points span no time (none, or one) has a zero-width time domain, which
    bqplot turns into ``translate(undefined, ...)``. A series with fewer than
    two defined bars — the z-score while it warms up over ``2 * window - 1``
    bars — is therefore sent as an invisible placeholder spanning the time range
    (at least one second).
    """
    first = y[0] if y.ndim > 1 else y
    ok = np.flatnonzero(np.isfinite(first))
    if len(ok) < 2 or x[int(ok[0])] == x[-1]:
        if not len(x):
            return x, np.zeros((*y.shape[:-1], 0)), False
        span = np.array([x[0], max(x[-1], x[0] + np.timedelta64(1, "s"))], dtype=x.dtype)
        return span, np.zeros((*y.shape[:-1], 2)), False
    start = int(ok[0])
    x, y = x[start:], y[..., start:]
    if not np.isfinite(y).all():
        y = pd.DataFrame(np.atleast_2d(y).T).ffill().bfill().to_numpy().T.reshape(y.shape)
    return x, y, True


def points_html(count: int) -> str:
    """A hidden marker of how many points are drawn (read by the browser tests)."""
    return f'<span class="qf-points" data-points="{int(count)}" style="display:none"></span>'


def fmt_price(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:,.2f}" if value >= 1 else f"{value:.6g}"


def esc(text: object) -> str:
    return html.escape(str(text))
