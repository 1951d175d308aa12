"""BookMonitor: one instrument's order book, live: depth chart, ladder, spread and microprice."""

from __future__ import annotations

import logging
import time

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.analytics import imbalance, microprice, mid, quoted_spread
from quantify.model.book import BookLevels
from quantify.store.book import stale_at
from quantify.widgets._base import LiveWidget, esc, fmt_price, points_html
from quantify.widgets.frames import MAX_POINTS, downsample
from quantify.widgets.source import BookTail, book_feed_for

__all__ = ["BookMonitor", "stale_since"]

logger = logging.getLogger(__name__)

_QUOTE_COLUMNS = ["bid_price", "bid_qty", "ask_price", "ask_qty", "update_id"]

def stale_since(ledger: pd.DataFrame) -> pd.Timestamp | None:
    """When the book went out of sync, if it still is at the end of ``ledger``.

    Parameters
    ----------
    ledger : DataFrame
        A stored book ledger frame (``kind`` column, time index), in stored order.

    Returns
    -------
    Timestamp or None
        The time of the event that opened the last stale stretch (a gap,
        crossed book or ``bookTicker`` mismatch: the store's
        :func:`~quantify.store.book.stale_at`), if no resync closed it; None
        while the book is in sync (or the ledger is empty).
    """
    if not len(ledger):
        return None
    state = stale_at(ledger, ledger.index.asi8)
    if not state[-1]:
        return None
    fresh = np.flatnonzero(~state)
    return ledger.index[fresh[-1] + 1 if len(fresh) else 0]  # type: ignore[no-any-return]


def _readouts(quotes: pd.DataFrame) -> dict[str, float]:
    """Mid, spread (bps), L1 imbalance and microprice of the last quote (``quantify.analytics``)."""
    last = quotes.iloc[-1:]
    if not len(last) or not np.isfinite(last[["bid_price", "ask_price"]].to_numpy()).all():
        # no quote yet, or a side beyond the book's known range: unknown, never a guess
        return {"mid": np.nan, "spread_bps": np.nan, "imbalance": np.nan, "microprice": np.nan}
    return {"mid": float(mid(last).iloc[0]), "spread_bps": float(quoted_spread(last, "bps").iloc[0]),
            "imbalance": float(imbalance(last).iloc[0]), "microprice": float(microprice(last).iloc[0])}



def _cumulative(side: np.ndarray, is_bid: bool) -> tuple[np.ndarray, np.ndarray]:
    """Prices in ascending order and the size resting at or beyond each, from the best level out."""
    if not len(side):
        return np.empty(0), np.empty(0)
    depth = np.cumsum(side[:, 1])
    prices = side[:, 0]
    return (prices[::-1], depth[::-1]) if is_bid else (prices, depth)


class BookMonitor(LiveWidget):
    """Live monitor of one instrument's order book.

    A depth chart (cumulative size of each side, out from the mid), a ladder
    of the best levels, readouts of the spread (bps), the L1 imbalance and the
    microprice, and small charts of the spread and of the mid and microprice
    over the last ``window``. A book out of sync is drawn grey under a
    "STALE since ..." label: the levels shown are then the last ones known
    before the gap, never passed off as current.

    Parameters
    ----------
    symbol : str
        The instrument (anything ``Instrument.parse`` reads: ``"BTCUSDT"``,
        ``"usdm:BTCUSDT"``...).
    depth : int, default 50
        Levels per side in the depth chart.
    ladder : int, default 10
        Levels per side in the ladder.
    window : str or Timedelta, default "5min"
        Exchange time of quotes kept for the spread and microprice charts.
    levels_every : float, default 0.25
        Seconds at least between two reads of the levels (``store.book``,
        some 20 ms on LMDB): the readouts and charts follow every quote, the
        ladder and depth chart at most four times a second.
    **kwargs
        ``store``, ``theme``, ``fps``, ``autostart`` as for
        :class:`~quantify.widgets.LiveChart`.

    Notes
    -----
    The readouts are :func:`quantify.analytics.quoted_spread` (bps),
    :func:`~quantify.analytics.imbalance` (level 1) and
    :func:`~quantify.analytics.microprice` of the last stored quote, the same
    numbers a notebook gets from ``store.quotes``. The levels are
    ``store.book(symbol, at)`` at the last quote, re-read when new quotes
    arrived (at most once per ``levels_every``). A book is stale when the store's book says so, when the
    writer of this kernel reports it out of sync, or when the continuity
    ledger's last loss of sync (gap, crossed book, bookTicker mismatch) has
    no resync after it.
    """

    def __init__(self, symbol: str = "BTCUSDT", *, depth: int = 50, ladder: int = 10,
                 window: str | pd.Timedelta = "5min", levels_every: float = 0.25, **kwargs: object) -> None:
        for name, value in (("depth", depth), ("ladder", ladder)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer of levels, got {value!r}")
        try:
            span = pd.Timedelta(window)
        except (TypeError, ValueError):
            raise ValueError(f"window must be a duration such as '5min', got {window!r}") from None
        if not span > pd.Timedelta(0):
            raise ValueError(f"window must be positive, got {window!r}")
        if isinstance(levels_every, bool) or not isinstance(levels_every, (int, float)) or not levels_every >= 0:
            raise ValueError(f"levels_every must be seconds >= 0, got {levels_every!r}")
        self.depth, self.ladder, self.window = int(depth), int(ladder), span
        self.levels_every = float(levels_every)
        self._levels_due = False
        self._levels_read = -float("inf")
        self.quotes = pd.DataFrame()
        self.ledger = pd.DataFrame()
        self.levels: BookLevels | None = None
        self.readouts: dict[str, float] = _readouts(pd.DataFrame())
        self.stale = False
        self.stale_from: pd.Timestamp | None = None
        self.last_trade: tuple[pd.Timestamp, float] | None = None
        self._writer_stale: float | None = None
        self._book: BookTail | None = None
        for name in ("timeframe", "bars"):  # a book has neither: every quote is drawn
            kwargs.pop(name, None)
        super().__init__([symbol], timeframe="1s", bars=2, **kwargs)  # type: ignore[arg-type]

    @property
    def symbol(self) -> str:
        return self.symbols[0]

    # -- figures ----------------------------------------------------------

    def _build(self) -> None:
        t = self.theme
        sx, sy = bq.LinearScale(), bq.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._depth_scale = sy
        empty = np.empty(0)
        self._bid_depth = bq.Lines(x=empty, y=empty, scales={"x": sx, "y": sy}, colors=[t.up], fill="bottom",
                                   fill_colors=[t.up], fill_opacities=[0.25], interpolation="step-before",
                                   stroke_width=1.5, labels=["bids"], display_legend=True)
        self._ask_depth = bq.Lines(x=empty, y=empty, scales={"x": sx, "y": sy}, colors=[t.down], fill="bottom",
                                   fill_colors=[t.down], fill_opacities=[0.25], interpolation="step-after",
                                   stroke_width=1.5, labels=["asks"], display_legend=True)
        self._mid_rule = bq.Lines(x=empty, y=empty, scales={"x": sx, "y": sy}, colors=[t.muted],
                                  line_style="dashed", stroke_width=1.0)
        depth_axes = [bq.Axis(scale=sx, tick_format=",.2f", num_ticks=5, grid_lines="none"),
                      bq.Axis(scale=sy, side="left", tick_format=",.3~s", num_ticks=4,
                              grid_lines="solid")]
        tx = bq.DateScale()
        s_spread, s_price = bq.LinearScale(), bq.LinearScale()
        empty_t = np.array([], dtype="datetime64[ms]")
        self._spread = bq.Lines(x=empty_t, y=empty, scales={"x": tx, "y": s_spread}, colors=[t.palette[3]],
                                stroke_width=1.3, interpolation="step-after")
        self._prices = bq.Lines(x=empty_t, y=np.zeros((2, 0)), scales={"x": tx, "y": s_price},
                                colors=[t.muted, t.palette[0]], stroke_width=1.3, labels=["mid", "microprice"],
                                display_legend=True, interpolation="step-after")

        def vaxis(scale: bq.LinearScale, fmt: str) -> bq.Axis:
            return bq.Axis(scale=scale, side="left", tick_format=fmt, grid_lines="solid",
                           num_ticks=4)

        self.figures = {
            "depth": self._figure(f"{self.symbol} depth (cumulative size)",
                                  [self._bid_depth, self._ask_depth, self._mid_rule], depth_axes, "280px",
                                  legend_location="top-right"),
            "spread": self._figure("spread (bps)", [self._spread], [self._time_axis(tx), vaxis(s_spread, ".2f")],
                                   "180px"),
            "prices": self._figure("mid and microprice", [self._prices],
                                   [self._time_axis(tx), vaxis(s_price, ",.2f")], "180px",
                                   legend_location="top-left"),
        }
        for name in ("spread", "prices"):
            self.figures[name].layout.width = "50%"
        self.figures["depth"].layout.width = "64%"
        self._header = W.HTML()
        self._state = W.HTML()
        self._ladder = W.HTML(layout=W.Layout(width="36%", overflow="hidden"))
        self.children = [
            self._css,
            W.HBox([self._header, self._state], layout=W.Layout(justify_content="space-between",
                                                                align_items="center")),
            W.HBox([self.figures["depth"], self._ladder], layout=W.Layout(width="100%")),
            W.HBox([self.figures["spread"], self.figures["prices"]], layout=W.Layout(width="100%")),
        ]

    @property
    def points(self) -> dict[str, int]:
        """Points plotted per figure."""
        return {"depth": len(self._bid_depth.x) + len(self._ask_depth.x), "spread": len(self._spread.x),
                "prices": len(self._prices.x)}

    # -- data -------------------------------------------------------------

    def _load(self) -> None:
        """(Re)read the last ``window`` of quotes, the ledger and the book; follow the store from there."""
        with self._lock:
            if self._book is not None:
                self._book.close()
            self._book = book_feed_for(self.store, self.symbol)
            quotes, ledger = self._book.history(self.window)
            self.quotes = quotes[_QUOTE_COLUMNS] if len(quotes) else quotes
            self.ledger = ledger
            self._writer_stale = None
            self.levels = self._book.levels(None, max(self.depth, self.ladder)) if len(quotes) else None
            self._levels_read, self._levels_due = time.monotonic(), False
            self._feed.reset(self.symbols)
            self._dirty = True

    def set_symbol(self, symbol: str) -> None:
        """Follow another instrument (redraws from its history)."""
        self.set_symbols([symbol])

    def set_timeframe(self, timeframe: str) -> None:
        """A book has no timeframe: ``ValueError``."""
        raise ValueError(f"BookMonitor draws every quote; it has no timeframe (got {timeframe!r})")

    def close(self) -> None:
        book = getattr(self, "_book", None)
        if book is not None:
            book.close()
        super().close()

    def refresh(self) -> None:
        """Run one frame: take new quotes, ledger events and trades; re-read the book if it moved."""
        with self._lock:
            book = self._book
            if book is None:
                return
            trades = self._feed.poll().get(self.symbol)
            if trades is not None and len(trades):
                self.last_trade = (trades.index[-1], float(trades["price"].iloc[-1]))
                self._dirty = True
            update = book.poll()
            if update.stale_seconds != self._writer_stale:
                self._writer_stale = update.stale_seconds
                self._dirty = True
            if len(update.ledger):
                self.ledger = pd.concat([self.ledger, update.ledger]) if len(self.ledger) else update.ledger
                self._dirty = True
            if len(update.quotes):
                q = update.quotes[_QUOTE_COLUMNS]
                quotes = pd.concat([self.quotes, q]) if len(self.quotes) else q
                self.quotes = quotes[quotes.index >= quotes.index[-1] - self.window]
                self._levels_due = self._dirty = True
            if self._levels_due and time.monotonic() - self._levels_read >= self.levels_every:
                self.levels = book.levels(None, max(self.depth, self.ladder))
                self._levels_read = time.monotonic()
                self._levels_due = False
                self._dirty = True
            if self._dirty:
                self._dirty = False
                self._draw()
                self.frames_drawn += 1

    # -- drawing ----------------------------------------------------------

    def _stale_state(self) -> tuple[bool, pd.Timestamp | None]:
        since = stale_since(self.ledger)
        writer = self._writer_stale
        if writer is not None and writer > 0 and since is None:
            since = pd.Timestamp(time.time_ns() - int(writer * 1e9), unit="ns", tz="UTC")
        stale = since is not None or bool(writer) or bool(self.levels is not None and self.levels.stale)
        return stale, since

    def _draw(self) -> None:
        self.stale, self.stale_from = self._stale_state()
        self.readouts = _readouts(self.quotes)
        self._draw_depth()
        self._draw_series()
        self._ladder.value = self._ladder_html()
        self._header.value = self._header_html()
        self._state.value = self._state_html()

    def _draw_depth(self) -> None:
        t = self.theme
        levels = self.levels
        bids = levels.bids[: self.depth] if levels is not None else np.empty((0, 2))
        asks = levels.asks[: self.depth] if levels is not None else np.empty((0, 2))
        bx, by = _cumulative(bids, True)
        ax, ay = _cumulative(asks, False)
        m = levels.mid if levels is not None else np.nan
        top = max(float(by.max()) if len(by) else 0.0, float(ay.max()) if len(ay) else 0.0)
        bid_colour, ask_colour = (t.muted, t.muted) if self.stale else (t.up, t.down)
        fig = self.figures["depth"]
        with fig.hold_sync(), self._bid_depth.hold_sync(), self._ask_depth.hold_sync(), self._mid_rule.hold_sync():
            self._bid_depth.x, self._bid_depth.y = bx, by
            self._ask_depth.x, self._ask_depth.y = ax, ay
            for mark, colour in ((self._bid_depth, bid_colour), (self._ask_depth, ask_colour)):
                if mark.colors != [colour]:
                    mark.colors, mark.fill_colors = [colour], [colour]
            ceiling = top * 1.05 if top > 0 else 1.0
            if self._depth_scale.max != ceiling:
                self._depth_scale.max = ceiling
            if np.isfinite(m) and top > 0:
                self._mid_rule.x, self._mid_rule.y = np.array([m, m]), np.array([0.0, top])
            else:
                self._mid_rule.x, self._mid_rule.y = np.empty(0), np.empty(0)
            title = f"{self.symbol} depth (cumulative size, {len(bids)} × {len(asks)} levels)"
            if self.stale:
                title += " — STALE"
            if fig.title != title:
                fig.title = title

    def _draw_series(self) -> None:
        q = self.quotes
        unknown = 0
        if len(q):
            both = np.isfinite(q["bid_price"].to_numpy()) & np.isfinite(q["ask_price"].to_numpy())
            unknown = int((~both).sum())
            q = q[both]
        if not len(q):
            x = np.array([], dtype="datetime64[ms]")
            spread, prices = np.empty(0), np.zeros((2, 0))
        else:
            x = q.index.tz_convert(None).values.astype("datetime64[ms]")
            spread = quoted_spread(q, "bps").to_numpy(float)
            prices = np.vstack([mid(q).to_numpy(float), microprice(q).to_numpy(float)])
            # quotes with a side beyond the known range are left out: the browser cannot draw NaN
        left_out = f" · {unknown:,} quotes with a side unknown left out" if unknown else ""
        for name, mark, y in (("spread", self._spread, spread), ("prices", self._prices, prices)):
            px, py = downsample(x, y, MAX_POINTS)
            fig = self.figures[name]
            title = ("spread (bps)" if name == "spread" else "mid and microprice") + left_out
            with fig.hold_sync(), mark.hold_sync():
                if fig.title != title:
                    fig.title = title
                mark.x, mark.y = px, py
                colours = [self.theme.muted] * len(mark.colors) if self.stale else None
                if name == "spread":
                    want = colours or [self.theme.palette[3]]
                else:
                    want = colours or [self.theme.muted, self.theme.palette[0]]
                if mark.colors != want:
                    mark.colors = want

    def _ladder_html(self) -> str:
        levels = self.levels
        if levels is None:
            return f'<div class="qf-sub">no order book stored for {esc(self.symbol)}</div>'
        frame = levels.to_frame().head(self.ladder)
        t = self.theme
        bid_c, ask_c = (t.muted, t.muted) if self.stale else (t.up, t.down)
        top = float(np.nanmax(frame[["bid_qty", "ask_qty"]].to_numpy())) if len(frame) else 0.0

        def qty(v: float, colour: str, align: str) -> str:
            if not np.isfinite(v):
                return "<td></td>"
            share = v / top * 100 if top > 0 else 0.0
            bar = (f"background:linear-gradient(to {align}, {colour}33 {share:.0f}%, transparent {share:.0f}%)")
            return f'<td style="text-align:right;{bar}">{v:,.4f}</td>'

        rows = []
        for _, r in frame.iterrows():
            rows.append(
                "<tr>" + qty(float(r["bid_qty"]), bid_c, "left")
                + f'<td style="color:{bid_c};text-align:right">{fmt_price(float(r["bid_price"]))}</td>'
                + f'<td style="color:{ask_c}">{fmt_price(float(r["ask_price"]))}</td>'
                + qty(float(r["ask_qty"]), ask_c, "right") + "</tr>")
        note = ""
        if not levels.complete:
            empty = [name for name, side in (("bid", levels.bids), ("ask", levels.asks)) if not len(side)]
            note = ("no known " + " or ".join(empty) + ": the best levels lie beyond the snapshot's range "
                    "(a new snapshot restores them)" if empty else "deeper levels unknown (beyond the snapshot)")
            note = f'<div class="qf-sub">{esc(note)}</div>'
        opacity = ' style="opacity:.6"' if self.stale else ""
        return (f'<table class="qf-table qf-ladder"{opacity}><tr><th style="text-align:right">bid size</th>'
                '<th style="text-align:right">bid</th><th>ask</th><th>ask size</th></tr>'
                + "".join(rows) + "</table>" + note)

    def _header_html(self) -> str:
        r = self.readouts

        def cell(label: str, value: str, colour: str | None = None) -> str:
            style = f' style="color:{colour}"' if colour else ""
            return f'<div class="qf-stat"><span>{esc(label)}</span><b{style}>{value}</b></div>'

        def num(v: float, fmt: str) -> str:
            return format(v, fmt) if np.isfinite(v) else "–"

        muted = self.theme.muted if self.stale else None
        imb = r["imbalance"]
        imb_c = muted or (self.theme.up if imb > 0 else self.theme.down if imb < 0 else None)
        parts = [
            cell("instrument", esc(self.symbol)),
            cell("mid", fmt_price(r["mid"]), muted),
            cell("spread", f"{num(r['spread_bps'], '.2f')} bps", muted),
            cell("L1 imbalance", num(imb, "+.2f"), imb_c),
            cell("microprice", fmt_price(r["microprice"]), muted),
        ]
        if self.last_trade is not None:
            parts.append(cell("last trade", fmt_price(self.last_trade[1])))
        return "".join(parts) + points_html(len(self.quotes))

    def _state_html(self) -> str:
        levels = self.levels
        if levels is None and not len(self.quotes):
            return '<span class="qf-badge qf-badge-off">NO BOOK</span>'
        at = self.quotes.index[-1] if len(self.quotes) else levels.time if levels is not None else None
        when = f"{at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC" if at is not None else ""
        uid = f" · update {levels.update_id:,}" if levels is not None else ""
        if self.stale:
            since = self.stale_from
            label = "STALE since " + (f"{since:%Y-%m-%d %H:%M:%S} UTC" if since is not None else "a gap")
            if self._writer_stale:
                label += f" ({self._writer_stale:,.0f} s)"
            return (f'<span class="qf-badge qf-badge-off qf-stale" style="background:{self.theme.muted}">'
                    f'{esc(label)}</span><span class="qf-status">last book {esc(when)}{esc(uid)}</span>')
        return (f'<span class="qf-badge qf-badge-live">IN SYNC</span>'
                f'<span class="qf-status">{esc(when)}{esc(uid)}</span>')

