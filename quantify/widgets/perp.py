"""PerpMonitor: a perpetual against its spot market, live: prices, basis, funding, open interest, liquidations."""

from __future__ import annotations

import logging
import time
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.analytics import basis
from quantify.exceptions import QuantifyError
from quantify.model.instrument import Instrument, Market
from quantify.model.timeframes import timeframe_to_offset
from quantify.widgets._base import LiveWidget, esc, finite_tail, fmt_price, points_html
from quantify.widgets.frames import downsample

__all__ = ["PERP_PANELS", "PerpMonitor", "funding_countdown"]

logger = logging.getLogger(__name__)

#: The figures of the monitor, top to bottom.
PERP_PANELS = ("prices", "basis", "funding", "open_interest")

_EMPTY_T = np.array([], dtype="datetime64[ms]")


def funding_countdown(marks: pd.DataFrame) -> pd.Timedelta | None:
    """Time from the last mark to its ``next_funding_time`` (None without a mark that says).

    Counted on the exchange's clock, from the last mark's own time, so that a
    replay or a recording shows the countdown it had then.
    """
    if not len(marks):
        return None
    nxt = marks["next_funding_time"].iloc[-1]
    if pd.isna(nxt):
        return None
    return max(pd.Timestamp(nxt) - marks.index[-1], pd.Timedelta(0))


def _fmt_span(span: pd.Timedelta) -> str:
    seconds = int(span.total_seconds())
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _x(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.tz_convert(None).values.astype("datetime64[ms]"))


class PerpMonitor(LiveWidget):
    """Live monitor of a perpetual against its spot market.

    Parameters
    ----------
    perp : str
        The perpetual (``binance-usdm:BTCUSDT``).
    spot : str
        Its spot market (``BTCUSDT``).
    timeframe : str, default "1m"
        Bar length of the closes the prices and the basis are drawn from.
    funding_interval : str, default "8h"
        The perpetual's funding interval (the annualised basis is over it).
    perp_every : float, default 1.0
        Seconds between reads of the stored marks, open interest and
        liquidations (trades come frame by frame from the feed).
    history : str or Timedelta, default "30min"
        How far before the last stored row marks and open interest are shown
        when none fall inside the plotted bars (a recording of another day).
    **kwargs
        ``store``, ``bars``, ``theme``, ``fps``, ``autostart`` as for
        :class:`~quantify.widgets.LiveChart`.

    Notes
    -----
    The basis is :func:`quantify.analytics.basis` of the two legs' bar closes
    (``basis_bps = 1e4 * (perp - spot) / spot``, bars both legs have), the
    number a ``basis-z`` alert rule standardises. The funding panel plots
    ``funding_rate`` of the stored marks (``store.mark``) in bps and counts
    down to the last mark's ``next_funding_time``; open interest is
    ``store.open_interest`` and the price chart's markers are
    ``store.liquidations`` at their average price (a sample: Binance pushes
    at most one a second), in the theme's up colour for a short closed (a
    ``BUY`` liquidation order), its down colour for a long. A kind the store
    does not hold is said so instead of drawn.
    """

    def __init__(self, perp: str = "binance-usdm:BTCUSDT", spot: str = "BTCUSDT", timeframe: str = "1m", *,
                 funding_interval: str = "8h", perp_every: float = 1.0, history: str | pd.Timedelta = "30min",
                 **kwargs: Any) -> None:
        self._legs(perp, spot)
        if not perp_every > 0:
            raise ValueError(f"perp_every must be positive seconds, got {perp_every!r}")
        try:
            self.history = pd.Timedelta(history)
        except (TypeError, ValueError):
            raise ValueError(f"history must be a duration such as '30min', got {history!r}") from None
        try:
            timeframe_to_offset(funding_interval)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"funding_interval: {exc}") from None
        self.funding_interval = funding_interval
        self.perp_every = float(perp_every)
        self.data = pd.DataFrame()
        self.marks = pd.DataFrame()
        self.open_interest = pd.DataFrame()
        self.liquidations = pd.DataFrame()
        self.notes: dict[str, str] = {}
        self._perp_due = 0.0
        self._perp_seen: tuple[object, ...] = ()
        self._from: dict[str, pd.Timestamp | None] = {}  # kind -> where its rows held were read from
        super().__init__(self._legs(perp, spot), timeframe=timeframe, **kwargs)

    @staticmethod
    def _legs(perp: str, spot: str) -> list[str]:
        p, s = Instrument.parse(perp), Instrument.parse(spot)
        if p.market == Market.SPOT:
            raise ValueError(f"perp must be a perpetual such as binance-usdm:BTCUSDT, got {perp!r} (spot)")
        if s.market != Market.SPOT:
            raise ValueError(f"spot must be a spot market such as BTCUSDT, got {spot!r}")
        return [p.key, s.key]

    def set_symbols(self, symbols: Any) -> None:
        """Show another ``(perp, spot)`` pair (redraws from history)."""
        legs = list(symbols)
        if len(legs) != 2:
            raise ValueError(f"a perpetual monitor shows (perp, spot), got {legs!r}")
        super().set_symbols(self._legs(*legs))

    @property
    def pair(self) -> tuple[str, str]:
        """``(perp, spot)`` instrument keys."""
        return self.symbols[0], self.symbols[1]

    # -- figures ----------------------------------------------------------

    def _build(self) -> None:
        t = self.theme
        perp, spot = self.pair
        sx, sp = bq.DateScale(), bq.LinearScale()
        self._prices = bq.Lines(x=_EMPTY_T, y=np.zeros((2, 0)), scales={"x": sx, "y": sp},
                                colors=[t.palette[0], t.palette[1]], stroke_width=1.4, labels=[perp, spot],
                                display_legend=True)
        self._liq = bq.Scatter(x=_EMPTY_T, y=np.zeros(0), scales={"x": sx, "y": sp}, colors=[t.down],
                               marker="triangle-down", default_size=48, stroke=t.foreground, visible=False)
        sb = bq.LinearScale()
        self._basis = bq.Lines(x=_EMPTY_T, y=np.zeros((2, 0)), scales={"x": sx, "y": sb},
                               colors=[t.palette[3], t.muted], stroke_width=1.3, opacities=[1.0, 0.6])
        fx, fy = bq.DateScale(), bq.LinearScale()
        self._funding = bq.Lines(x=_EMPTY_T, y=np.zeros(0), scales={"x": fx, "y": fy}, colors=[t.palette[4]],
                                 stroke_width=1.4, interpolation="step-after")
        ox, oy = bq.DateScale(), bq.LinearScale()
        self._oi = bq.Lines(x=_EMPTY_T, y=np.zeros(0), scales={"x": ox, "y": oy}, colors=[t.palette[2]],
                            stroke_width=1.4)

        def vaxis(scale: bq.LinearScale, fmt: str) -> bq.Axis:
            return bq.Axis(scale=scale, side="left", tick_format=fmt, grid_lines="solid", num_ticks=4)

        self.figures = {
            "prices": self._figure(f"{perp} and {spot} · {self.timeframe} closes · liquidations ▼",
                                   [self._prices, self._liq], [self._time_axis(sx), vaxis(sp, ",.2f")], "260px",
                                   legend_location="top-left"),
            "basis": self._figure("basis, bps of spot", [self._basis], [self._time_axis(sx), vaxis(sb, ".2f")],
                                  "200px"),
            "funding": self._figure("funding rate (bps per interval, marks)", [self._funding],
                                    [self._time_axis(fx), vaxis(fy, ".3f")], "200px"),
            "open_interest": self._figure("open interest (contracts)", [self._oi],
                                          [self._time_axis(ox), vaxis(oy, ",.0f")], "160px"),
        }
        self._stats = W.HTML()
        self._empty = {name: W.HTML() for name in ("funding", "open_interest")}
        # a kind not stored leaves its figure out of the page (a figure of no size draws negative rects)
        self._boxes = {name: W.VBox([self._empty[name]], layout=W.Layout(width="50%" if name == "funding"
                                                                          else "100%"))
                       for name in ("funding", "open_interest")}
        self.figures["basis"].layout.width = "50%"
        self.figures["funding"].layout.width = "100%"
        self.children = [
            self._css, self._stats, self.figures["prices"],
            W.HBox([self.figures["basis"], self._boxes["funding"]], layout=W.Layout(width="100%")),
            self._boxes["open_interest"],
        ]

    def shown(self, name: str) -> bool:
        """Whether figure ``name`` is on the page (``funding`` and ``open_interest`` only when stored)."""
        return name in ("prices", "basis") or self.figures[name] in self._boxes[name].children

    def _rebuild(self) -> None:
        self._perp_seen = ()
        self._from = {}
        self.marks, self.open_interest, self.liquidations = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
        self._perp_due = 0.0
        super()._rebuild()

    @property
    def points(self) -> dict[str, int]:
        """Points plotted per figure (liquidation markers under ``liquidations``)."""
        return {"prices": len(self._prices.x), "basis": len(self._basis.x), "funding": len(self._funding.x),
                "open_interest": len(self._oi.x), "liquidations": len(self._liq.x) if self._liq.visible else 0}

    # -- data -------------------------------------------------------------

    def refresh(self) -> None:
        """Run one frame; every ``perp_every`` seconds read the stored marks, open interest and liquidations."""
        now = time.monotonic()
        if now >= self._perp_due:
            self._perp_due = now + self.perp_every
            with self._lock:
                self._read_perp()
        super().refresh()

    def _window_start(self) -> pd.Timestamp | None:
        starts = [b.index[0] for b in self.bars.values() if len(b)]
        return min(starts) if starts else None

    def _read_kind(self, kind: str, start: pd.Timestamp | None, current: pd.DataFrame,
                   read_from: pd.Timestamp | None) -> tuple[pd.DataFrame, bool]:
        """Rows of ``kind`` in the plotted window; else the last ``history`` of them; and whether in the window.

        In the window, only rows after the last one held (``current``, read
        from ``read_from`` on) are read, so a redraw costs the new rows, not
        the window.
        """
        perp = self.pair[0]
        read = {"mark": self.store.mark, "open_interest": self.store.open_interest,
                "liquidations": self.store.liquidations}[kind]
        last = self.store.last_perp_time(kind, perp)
        if last is None:
            return pd.DataFrame(), False
        if start is not None and last >= start:
            if read_from is not None and read_from <= start and len(current):
                held = current[current.index >= start]
                if last <= current.index[-1]:
                    return held, True
                new = read(perp, start=current.index[-1])
                return pd.concat([held, new[new.index > current.index[-1]]]), True
            return read(perp, start=start), True
        if kind == "liquidations":
            return pd.DataFrame(), False  # markers belong on the plotted prices only
        return read(perp, start=last - self.history), False

    def _read_perp(self) -> None:
        start = self._window_start()
        try:
            marks, marks_in = self._read_kind("mark", start, self.marks, self._from.get("mark"))
            oi, oi_in = self._read_kind("open_interest", start, self.open_interest, self._from.get("open_interest"))
            liq, liq_in = self._read_kind("liquidations", start, self.liquidations, self._from.get("liquidations"))
        except QuantifyError as exc:  # a read racing a compaction: the next read sees it
            logger.debug("perpetual read of %s failed: %s", self.pair[0], exc)
            return
        seen = (len(marks), marks.index[-1] if len(marks) else None, len(oi), len(liq),
                liq.index[-1] if len(liq) else None, start)
        if seen == self._perp_seen:
            return
        self._perp_seen = seen
        self.marks, self.open_interest, self.liquidations = marks, oi, liq
        self._from = {k: start for k, inside in (("mark", marks_in), ("open_interest", oi_in),
                                                 ("liquidations", liq_in)) if inside}
        perp = self.pair[0]
        self.notes = {}
        if not len(marks):
            self.notes["funding"] = f"no marks of {perp} stored: funding shows once mark prices are ingested or loaded"
        elif not marks_in:
            self.notes["funding"] = (f"marks of {perp} end {marks.index[-1]:%Y-%m-%d %H:%M:%S} UTC, before the "
                                     "plotted bars: the last stored ones are shown")
        if not len(oi):
            self.notes["open_interest"] = (f"no open interest of {perp} stored "
                                           "(quantify backfill --kind open_interest)")
        elif not oi_in:
            self.notes["open_interest"] = (f"open interest of {perp} ends {oi.index[-1]:%Y-%m-%d %H:%M} UTC, "
                                           "before the plotted bars")
        self._dirty = True

    def compute(self) -> pd.DataFrame:
        """The basis of the bars both legs have: columns perp, spot, basis, basis_bps, basis_annualised.

        :func:`quantify.analytics.basis` of the closes (the last bar is the
        open one, so its values move until it closes); empty until both legs
        have a bar in common.
        """
        perp, spot = self.pair
        p, s = self.bars[perp]["close"], self.bars[spot]["close"]
        if not (len(p) and len(s)) or not p.index.isin(s.index).any():
            return pd.DataFrame(columns=["perp", "spot", "basis", "basis_bps", "basis_annualised"],
                                index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)
        try:
            return basis(p, s, funding_interval=self.funding_interval)
        except ValueError as exc:  # no finite bar in common yet
            logger.debug("basis not computed: %s", exc)
            return pd.DataFrame(columns=["perp", "spot", "basis", "basis_bps", "basis_annualised"],
                                index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)

    # -- drawing ----------------------------------------------------------

    def _set(self, name: str, mark: bq.Mark, x: np.ndarray, y: np.ndarray) -> None:
        fx, fy, defined = finite_tail(x, y)
        px, py = downsample(fx, fy)
        with self.figures[name].hold_sync(), mark.hold_sync():
            mark.x, mark.y = px, py
            if mark.visible != defined:
                mark.visible = defined

    def _draw(self) -> None:
        data = self.compute()
        self.data = data
        x = _x(data.index)
        self._set("prices", self._prices, x, data[["perp", "spot"]].to_numpy(float).T)
        bps = data["basis_bps"].to_numpy(float)
        self._set("basis", self._basis, x, np.vstack([bps, np.zeros(len(bps))]))
        self._draw_liquidations(data)
        m = self.marks
        if len(m):
            self._set("funding", self._funding, _x(m.index), m["funding_rate"].to_numpy(float) * 1e4)
        oi = self.open_interest
        if len(oi):
            self._set("open_interest", self._oi, _x(oi.index), oi["open_interest"].to_numpy(float))
        for name in ("funding", "open_interest"):
            box = self._boxes[name]
            children = (self._empty[name], self.figures[name]) if len(m if name == "funding" else oi) \
                else (self._empty[name],)
            if tuple(box.children) != children:
                box.children = children
            note = self.notes.get(name, "")
            self._empty[name].value = f'<div class="qf-sub qf-empty-{name}">{esc(note)}</div>' if note else ""
        self._stats.value = self._stats_html(data)

    def _draw_liquidations(self, data: pd.DataFrame) -> None:
        liq = self.liquidations
        if len(liq) and len(data):
            liq = liq[(liq.index >= data.index[0]) & np.isfinite(liq["avg_price"].to_numpy(float))]
        ok = bool(len(liq) and len(data))
        colours = [self.theme.up if s > 0 else self.theme.down for s in liq["side"]] if ok else [self.theme.down]
        with self.figures["prices"].hold_sync(), self._liq.hold_sync():
            if ok:
                price = liq["avg_price"].to_numpy(float)
                price = np.where(price > 0, price, liq["price"].to_numpy(float))
                self._liq.x, self._liq.y = _x(liq.index), price
                self._liq.colors = colours
            else:
                self._liq.x, self._liq.y = _EMPTY_T, np.zeros(0)
            if self._liq.visible != ok:
                self._liq.visible = ok

    def _stats_html(self, data: pd.DataFrame) -> str:
        perp, spot = self.pair

        def cell(label: str, value: str, colour: str | None = None) -> str:
            style = f' style="color:{colour}"' if colour else ""
            return f'<div class="qf-stat"><span>{esc(label)}</span><b{style}>{value}</b></div>'

        parts = [cell("pair", f"{esc(perp)} / {esc(spot)}")]
        if len(data):
            last = data.iloc[-1]
            bps = float(last["basis_bps"])
            colour = self.theme.up if bps >= 0 else self.theme.down
            parts += [cell("perp", fmt_price(float(last["perp"]))), cell("spot", fmt_price(float(last["spot"]))),
                      cell("basis", f"{bps:+.2f} bps", colour),
                      cell(f"annualised ({self.funding_interval})", f"{float(last['basis_annualised']) * 100:+.2f}%")]
        else:
            parts.append(cell("basis", "waiting for bars of both legs…"))
        m = self.marks
        if len(m):
            rate = float(m["funding_rate"].iloc[-1])
            parts.append(cell("funding rate", f"{rate * 100:+.4f}% ({rate * 1e4:+.3f} bps)" if np.isfinite(rate)
                              else "–"))
            left = funding_countdown(m)
            if left is not None:
                at = pd.Timestamp(m["next_funding_time"].iloc[-1])
                parts.append(cell("next funding in", f"{esc(_fmt_span(left))} (at {at:%H:%M} UTC)"))
        else:
            parts.append(cell("funding", "no marks stored"))
        n_liq = len(self.liquidations)
        parts.append(cell("liquidations", f"{n_liq:,}" if n_liq else "none stored"))
        parts.append(cell("bars", f"{len(data):,} × {esc(self.timeframe)}"))
        return "".join(parts) + points_html(len(data))
