"""PairMonitor: a pair's normalised prices, spread, z-score and correlation, live."""

from __future__ import annotations

import logging
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd

from quantify.analytics import PAIR_ZSCORE_COLUMNS, fit_regimes, half_life, pair_zscore, rolling_corr
from quantify.analytics.pairs import HEDGES
from quantify.analytics.regimes import REGIME_COLORS
from quantify.widgets._base import LiveWidget, esc, finite_tail, points_html
from quantify.widgets.frames import downsample

__all__ = ["HEDGE_METHODS", "PairMonitor"]

logger = logging.getLogger(__name__)

HEDGE_METHODS = HEDGES


class PairMonitor(LiveWidget):
    """Live monitor of the pair ``y ~ beta * x + alpha`` on log prices.

    Parameters
    ----------
    y, x : str
        Symbols of the pair (``y`` is regressed on ``x``).
    timeframe : str, default "1m"
        Bar length of the closes the statistics use.
    window : int, default 120
        Rolling window, in bars, of the hedge ratio, z-score and correlation.
    hedge : {"ols", "kalman"}
        Rolling OLS hedge ratio or a Kalman filter's.
    entry, exit : float
        z-score bands drawn at ``±entry`` and ``±exit``.
    regimes : int, optional
        Draw a strip under the z-score coloured by the regime of ``y``: the
        filtered most-likely state of a ``regimes``-state Gaussian HMM
        (:func:`quantify.analytics.fit_regimes`, seed 0, realised volatility
        over ``regime_window`` bars) fitted on the closed bars shown, refitted
        when a bar closes; state 0 (green) is the calmest. Default: no strip.
    regime_window : int, default 20
        Bars of the realised-volatility feature of the regime model.
    **kwargs
        ``store``, ``bars``, ``theme``, ``fps``, ``autostart`` as for
        :class:`~quantify.widgets.LiveChart`.

    Notes
    -----
    On bars of closes :math:`Y_t, X_t`: :math:`s_t = \\log Y_t - \\beta_t \\log X_t - \\alpha_t`,
    :math:`z_t` is :math:`s_t` standardised over the last ``window`` bars
    (:func:`quantify.analytics.pair_zscore`, the alert rules' z-score), the
    correlation is of one-bar log returns, and the half-life that of an AR(1)
    fit of the spread (``quantify.analytics``). Prices are normalised to 100 at
    the first plotted bar.
    """

    def __init__(self, y: str = "BTCUSDT", x: str = "ETHUSDT", timeframe: str = "1m", window: int = 120, *,
                 hedge: str = "ols", entry: float = 2.0, exit: float = 0.5, regimes: int | None = None,
                 regime_window: int = 20, **kwargs: object) -> None:
        self._check(window, hedge, entry, exit)
        if regimes is not None and (isinstance(regimes, bool) or not isinstance(regimes, (int, np.integer))
                                    or not 2 <= regimes <= len(REGIME_COLORS)):
            raise ValueError(f"regimes must be None or a number of states from 2 to {len(REGIME_COLORS)}, "
                             f"got {regimes!r}")
        if isinstance(regime_window, bool) or not isinstance(regime_window, (int, np.integer)) or regime_window < 2:
            raise ValueError(f"regime_window must be an integer number of bars >= 2, got {regime_window!r}")
        self.window, self.hedge, self.entry, self.exit = int(window), hedge, float(entry), float(exit)
        self.regimes, self.regime_window = regimes, int(regime_window)
        self._regime_cache: tuple[Any, pd.Series] | None = None
        self.stats: dict[str, float] = {}
        self.note = ""
        super().__init__([y, x], timeframe=timeframe, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _check(window: object, hedge: object, entry: object, exit: object) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 3:
            raise ValueError(f"window must be an integer number of bars >= 3, got {window!r}")
        if hedge not in HEDGE_METHODS:
            raise ValueError(f"hedge must be one of {', '.join(HEDGE_METHODS)}, got {hedge!r}")
        if not 0 <= float(exit) < float(entry):  # type: ignore[arg-type]
            raise ValueError(f"need 0 <= exit < entry, got entry={entry!r}, exit={exit!r}")

    @property
    def pair(self) -> tuple[str, str]:
        return self.symbols[0], self.symbols[1]

    def configure(self, *, window: int | None = None, hedge: str | None = None) -> None:
        """Change the rolling window and/or hedge method; redraws."""
        window = self.window if window is None else window
        hedge = self.hedge if hedge is None else hedge
        self._check(window, hedge, self.entry, self.exit)
        with self._lock:
            self.window, self.hedge = int(window), hedge
            self._dirty = True
        self.refresh()

    # -- figures ----------------------------------------------------------

    def _build(self) -> None:
        t = self.theme
        sx = bq.DateScale()
        self._scale_x = sx
        empty_x = np.array([], dtype="datetime64[ms]")

        def lines(colors: list[str], **kw: Any) -> tuple[bq.Lines, bq.LinearScale]:
            sy = bq.LinearScale()
            return bq.Lines(x=empty_x, y=np.zeros((len(colors), 0)), scales={"x": sx, "y": sy},
                            colors=colors, stroke_width=1.5, **kw), sy

        y, x = self.pair
        self._prices, s1 = lines(list(t.palette[:2]), labels=[y, x], display_legend=True)
        self._spread, s2 = lines([t.palette[3]])
        # z-score, then its bands: +entry, -entry, +exit, -exit, zero.
        self._z, s3 = lines([t.palette[4], t.down, t.down, t.bands, t.bands, t.muted],
                            line_style="solid")
        self._z.opacities = [1.0, 0.7, 0.7, 0.7, 0.7, 0.5]
        self._corr, s4 = lines([t.palette[2]])
        s4.min, s4.max = -1.0, 1.0
        # one filled line per state: 1 on its bars, 0 elsewhere (a strip of colours; NaN cannot be drawn)
        k = self.regimes or 0
        self._regime, s5 = lines(list(REGIME_COLORS[:k]), fill="bottom", fill_opacities=[0.6] * k,
                                 labels=[f"state {i}" for i in range(k)])
        s5.min, s5.max = 0.0, 1.0

        def vaxis(scale: bq.LinearScale, fmt: str) -> bq.Axis:
            return bq.Axis(scale=scale, side="left", tick_format=fmt, grid_lines="solid", num_ticks=4)

        self.figures = {
            "prices": self._figure(f"{y} vs {x}, normalised (100 = first bar)", [self._prices],
                                   [self._time_axis(sx), vaxis(s1, ".2f")], "260px",
                                   legend_location="top-left"),
            # side by side: one height, so their time axes line up
            "spread": self._figure("spread (log)", [self._spread], [self._time_axis(sx), vaxis(s2, ".4f")],
                                   "200px"),
            "zscore": self._figure("z-score", [self._z], [self._time_axis(sx), vaxis(s3, ".1f")], "200px"),
            "corr": self._figure("rolling correlation of returns", [self._corr],
                                 [self._time_axis(sx), vaxis(s4, ".1f")], "150px"),
        }
        zbox: W.Widget = self.figures["zscore"]
        if self.regimes:
            self.figures["regime"] = self._figure(f"regime of {y} (0 = calmest)", [self._regime],
                                                  [self._time_axis(sx, visible=False)], "70px")
            zbox = W.VBox([self.figures["zscore"], self.figures["regime"]], layout=W.Layout(width="50%"))
            self.figures["zscore"].layout.width = self.figures["regime"].layout.width = "100%"
        self._stats = W.HTML()
        self._toolbar = bq.Toolbar(figure=self.figures["prices"])
        self.children = [
            self._css,
            W.HBox([self._stats, self._toolbar], layout=W.Layout(justify_content="space-between",
                                                                 align_items="center")),
            self.figures["prices"],
            W.HBox([self.figures["spread"], zbox], layout=W.Layout(width="100%")),
            self.figures["corr"],
        ]
        for name in ("spread", "zscore")[: 1 if self.regimes else 2]:
            self.figures[name].layout.width = "50%"

    @property
    def points(self) -> dict[str, int]:
        """Points plotted per figure."""
        out = {"prices": len(self._prices.x), "spread": len(self._spread.x), "zscore": len(self._z.x),
               "corr": len(self._corr.x)}
        if self.regimes:
            out["regime"] = len(self._regime.x)
        return out

    # -- statistics -------------------------------------------------------

    def compute(self) -> pd.DataFrame:
        """Aligned closes and the pair statistics per bar (columns y, x, beta, alpha, spread, z, corr).

        ``beta``, ``alpha``, ``spread`` and ``z`` are
        :func:`quantify.analytics.pair_zscore` of the closes (log prices,
        ``window``, ``hedge``): the z-score a ``zscore`` alert rule with the
        same timeframe, window and hedge fires on. The last bar is the open
        one, so its values move until it closes.
        """
        ysym, xsym = self.pair
        closes = pd.concat({"y": self.bars[ysym]["close"], "x": self.bars[xsym]["close"]}, axis=1)
        closes = closes.ffill().dropna()
        out = closes.copy()
        for col in (*PAIR_ZSCORE_COLUMNS, "corr"):
            out[col] = np.nan
        self.note = ""
        self.effective_window = self.window
        if len(closes) < 3:
            return out
        need = 2 * self.window - 1  # hedge window (rolling OLS, or the Kalman warm-up), then z window
        if len(closes) < need:
            self.note = f"warming up: the z-score needs {need} bars, {len(closes)} so far"
        pz = pair_zscore(closes["y"], closes["x"], self.window, hedge=self.hedge)  # type: ignore[arg-type]  # checked in _check
        for col in PAIR_ZSCORE_COLUMNS:
            out[col] = pz[col]
        rets = np.log(closes).diff()
        out["corr"] = rolling_corr(rets["y"], rets["x"], self.window)
        if self.regimes:
            out["regime"] = self._regime_of(closes["y"])
        return out

    def _regime_of(self, closes: pd.Series) -> pd.Series:
        """Filtered most-likely state of ``y`` on its closed bars (NaN on the open bar, or too few bars)."""
        done = closes.iloc[:-1]  # the last bar is still open
        key = (len(done), done.index[-1] if len(done) else None, float(done.iloc[-1]) if len(done) else None)
        if self._regime_cache is not None and self._regime_cache[0] == key:
            return self._regime_cache[1].reindex(closes.index)
        regime = pd.Series(np.nan, index=done.index)
        try:
            regime = fit_regimes(done, int(self.regimes or 2), window=self.regime_window).regime
        except ValueError as exc:  # warming up, or a flat price: no strip yet
            logger.debug("regimes not fitted: %s", exc)
        self._regime_cache = (key, regime)
        return regime.reindex(closes.index)

    def _draw(self) -> None:
        data = self.compute()
        x = data.index.tz_convert(None).values.astype("datetime64[ms]")
        norm = (data[["y", "x"]] / data[["y", "x"]].iloc[0] * 100).to_numpy().T if len(data) else np.zeros((2, 0))
        bands = np.array([self.entry, -self.entry, self.exit, -self.exit, 0.0])[:, None] * np.ones(len(x))
        z = np.vstack([data["z"].to_numpy(float)[None, :], bands])
        series = [
            (self.figures["prices"], self._prices, norm),
            (self.figures["spread"], self._spread, data["spread"].to_numpy(float)),
            (self.figures["zscore"], self._z, z),
            (self.figures["corr"], self._corr, data["corr"].to_numpy(float)),
        ]
        if self.regimes:
            reg = data["regime"].to_numpy(float)
            strip = (reg[None, :] == np.arange(self.regimes)[:, None]).astype(float)  # NaN: no state
            series.append((self.figures["regime"], self._regime, strip))
        for fig, mark, y in series:
            fx, fy, defined = finite_tail(x, y)
            px, py = downsample(fx, fy)
            with fig.hold_sync(), mark.hold_sync():
                mark.x, mark.y = px, py
                if mark.visible != defined:
                    mark.visible = defined
        self._stats.value = self._stats_html(data)

    def _stats_html(self, data: pd.DataFrame) -> str:
        last = data.iloc[-1] if len(data) else None
        stats = {"beta": np.nan, "alpha": np.nan, "z": np.nan, "corr": np.nan, "half_life": np.nan}
        if last is not None:
            stats.update({k: float(last[k]) for k in ("beta", "alpha", "z", "corr")})
            spread = data["spread"].dropna().tail(self.window)
            if len(spread) >= 3:
                try:
                    stats["half_life"] = float(half_life(spread).half_life)
                except (ValueError, ArithmeticError) as exc:
                    logger.debug("half-life not computed: %s", exc)
        self.stats = stats
        z = stats["z"]
        zc = self.theme.down if np.isfinite(z) and abs(z) >= self.entry else self.theme.foreground

        def cell(label: str, value: str, colour: str | None = None) -> str:
            style = f' style="color:{colour}"' if colour else ""
            return f'<div class="qf-stat"><span>{esc(label)}</span><b{style}>{value}</b></div>'

        def num(v: float, fmt: str) -> str:
            return format(v, fmt) if np.isfinite(v) else "–"

        hl: float = stats["half_life"]
        hl_text = f"{hl:,.1f} bars" if np.isfinite(hl) else "–"
        y, x = self.pair
        parts = [
            cell("pair", f"{esc(y)} / {esc(x)}"),
            cell(f"hedge ratio ({self.hedge})", num(stats["beta"], ".4f")),
            cell("z-score", num(z, "+.2f"), zc),
            cell("half-life", hl_text),
            cell(f"corr ({self.effective_window})", num(stats["corr"], ".2f")),
            cell("bars", f"{len(data):,} × {esc(self.timeframe)}"),
        ]
        note = f'<div class="qf-sub">{esc(self.note)}</div>' if self.note else ""
        return "".join(parts) + note + points_html(len(data))
