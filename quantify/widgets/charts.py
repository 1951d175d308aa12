"""LiveChart: live prices or OHLC candles with volume, one figure per symbol."""

from __future__ import annotations

from collections.abc import Iterable

import bqplot as bq
import ipywidgets as W
import numpy as np

from quantify.widgets._base import LiveWidget, esc, fmt_price, points_html
from quantify.widgets.frames import downsample

__all__ = ["LiveChart"]

KINDS = ("candles", "line")


class LiveChart(LiveWidget):
    """Live price chart of one or more symbols, fed by the stream.

    Parameters
    ----------
    symbols : str or iterable of str
        Binance symbols; one figure each (prices of different assets do not
        share an axis).
    timeframe : str, default "1m"
        Candle length (``"1s"``, ``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``...).
    kind : {"candles", "line"}
        OHLC candles (bqplot ``OHLC`` mark) or a line of closes.
    store : Store, str or None
        The store to follow (default: this kernel's ingestion store, else
        the default store).
    bars : int
        Candles kept per symbol (the plotted series stays bounded).
    theme : {"light", "dark"}
    fps : float
        Frames per second, at most 10.
    autostart : bool
        Start live updates at once (else call :meth:`start`).

    Notes
    -----
    Times are UTC. Each frame sends at most two messages per figure (price
    mark and volume bars, inside one ``hold_sync``).
    """

    def __init__(self, symbols: str | Iterable[str] = ("BTCUSDT",), timeframe: str = "1m", *,
                 kind: str = "candles", **kwargs: object) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        if not syms:
            raise ValueError("LiveChart needs at least one symbol")
        super().__init__(syms, timeframe=timeframe, **kwargs)  # type: ignore[arg-type]

    def _build(self) -> None:
        self.figures: dict[str, bq.Figure] = {}
        self._marks: dict[str, tuple[bq.Mark, bq.Bars]] = {}
        self._headers: dict[str, W.HTML] = {}
        rows: list[W.Widget] = [self._css]
        for i, sym in enumerate(self.symbols):
            colour = self.theme.palette[i % len(self.theme.palette)]
            sx, sy = bq.DateScale(), bq.LinearScale()
            sv = bq.LinearScale(min=0)
            if self.kind == "candles":
                price: bq.Mark = bq.OHLC(
                    x=np.array([], dtype="datetime64[ms]"), y=np.zeros((0, 4)), scales={"x": sx, "y": sy},
                    marker="candle", colors=[self.theme.up, self.theme.down], stroke=self.theme.muted,
                    stroke_width=1.0, format="ohlc",
                )
            else:
                price = bq.Lines(x=np.array([], dtype="datetime64[ms]"), y=np.array([]),
                                 scales={"x": sx, "y": sy}, colors=[colour], stroke_width=1.6)
            volume = bq.Bars(x=np.array([], dtype="datetime64[ms]"), y=np.array([]), scales={"x": sx, "y": sv},
                             colors=[self.theme.grid], opacities=[0.9], padding=0.2)
            axes = [self._time_axis(sx),
                    bq.Axis(scale=sy, side="left", tick_format=",.2f", grid_lines="solid",
                            num_ticks=5)]
            fig = self._figure(f"{sym} · {self.timeframe}", [volume, price], axes, "300px")
            toolbar = bq.Toolbar(figure=fig)
            self.figures[sym] = fig
            self._marks[sym] = (price, volume)
            self._volume_scales = getattr(self, "_volume_scales", {})
            self._volume_scales[sym] = sv
            self._headers[sym] = W.HTML()
            rows.append(W.VBox([W.HBox([self._headers[sym], toolbar],
                                       layout=W.Layout(justify_content="space-between", align_items="center")),
                                fig]))
        self.children = rows

    @property
    def points(self) -> dict[str, int]:
        """Points plotted per symbol."""
        return {sym: len(marks[0].x) for sym, marks in self._marks.items()}

    def _draw(self) -> None:
        for sym in self.symbols:
            bars = self.bars.get(sym)
            if bars is None:
                continue
            price, volume = self._marks[sym]
            fig = self.figures[sym]
            x = bars.index.tz_convert(None).values.astype("datetime64[ms]")
            close = bars["close"].to_numpy(float)
            with fig.hold_sync():
                fig.title = f"{sym} · {self.timeframe} · UTC"
                with price.hold_sync(), volume.hold_sync():
                    if self.kind == "candles":
                        price.x = x
                        price.y = bars[["open", "high", "low", "close"]].to_numpy(float)
                    else:
                        px, py = downsample(x, close)
                        price.x, price.y = px, py
                    vol = bars["volume"].to_numpy(float)
                    volume.x, volume.y = x, vol
                # Volume fills the bottom quarter of the figure.
                top = float(vol.max()) * 4 if len(vol) and vol.max() > 0 else 1.0
                if self._volume_scales[sym].max != top:
                    self._volume_scales[sym].max = top
            self._headers[sym].value = self._header(sym, close)

    def _header(self, sym: str, close: np.ndarray) -> str:
        if not len(close):
            return (f'<div class="qf-stat"><span>{esc(sym)}</span><b>waiting for trades…</b></div>'
                    + points_html(0))
        last, first = close[-1], close[0]
        change = (last / first - 1) * 100 if first else 0.0
        colour = self.theme.up if change >= 0 else self.theme.down
        return (
            f'<div class="qf-stat"><span>{esc(sym)}</span><b>{fmt_price(last)}</b></div>'
            f'<div class="qf-stat"><span>change</span><b style="color:{colour}">{change:+.2f}%</b></div>'
            f'<div class="qf-stat"><span>bars</span><b>{len(close):,}</b></div>'
            + points_html(len(close))
        )
