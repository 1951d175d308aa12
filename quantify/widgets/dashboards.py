"""Dashboards: the widgets composed into pages (the Voilà notebooks call these)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from quantify.model.instrument import Instrument, Market
from quantify.model.timeframes import WIDGET_TIMEFRAMES
from quantify.store import Store
from quantify.widgets._base import esc
from quantify.widgets.alerts import AlertPanel
from quantify.widgets.book import BookMonitor
from quantify.widgets.charts import LiveChart
from quantify.widgets.microstructure import MicrostructurePanels
from quantify.widgets.pairs import PairMonitor
from quantify.widgets.panels import ControlPanel, StatusBar
from quantify.widgets.perp import PerpMonitor
from quantify.widgets.source import resolve_store
from quantify.widgets.theme import get_theme, panel_css

__all__ = ["DownloadButton", "alerts_dashboard", "market_overview", "microstructure_dashboard", "pairs_monitor",
           "perpetuals_dashboard"]


def _page(title: str, subtitle: str, body: list[W.Widget], theme: str) -> W.VBox:
    t = get_theme(theme)
    header = W.HTML(
        panel_css(t)
        + f'<div class="qf-title">QuantiFy · {esc(title)}</div><div class="qf-sub">{esc(subtitle)}</div>'
    )
    page = W.VBox([header, *body], layout=W.Layout(width="100%", max_width="1280px", margin="0 auto"))
    page.add_class("qf-root")
    return page


def _symbols(store: Store) -> list[str]:
    syms = store.symbols()
    return syms or ["BTCUSDT", "ETHUSDT"]


def market_overview(store: Store | str | None = None, *, timeframe: str = "5s", theme: str = "dark") -> W.VBox:
    """Candles and volume of the store's first two symbols, with controls and status."""
    st = resolve_store(store)
    syms = _symbols(st)[:2]
    status = StatusBar(st, theme=theme)
    chart = LiveChart(syms, timeframe, kind="candles", store=st, theme=theme, bars=300)
    controls = ControlPanel([chart], symbols=_symbols(st), theme=theme)
    return _page("Market overview", "Trades → candles, UTC. Pan/zoom with the toolbar.",
                 [status, controls, DownloadButton(st, chart), chart], theme)


class DownloadButton(W.HBox):
    """A button that exports the candles a chart shows and offers them as a CSV download.

    The file is built in the kernel with :meth:`Store.export` (candles of the
    chart's symbols and timeframe, the whole stored range) and handed to the
    browser as a ``data:`` link, so nothing is written on the server and no
    path comes from the page.
    """

    def __init__(self, store: Store, chart: Any) -> None:
        self.store, self.chart = store, chart
        self.button = W.Button(description="Export candles (CSV)", icon="download",
                               layout=W.Layout(width="auto"))
        self.link = W.HTML()
        self.button.on_click(lambda _: self.prepare())
        super().__init__([self.button, self.link], layout=W.Layout(align_items="center"))

    def prepare(self) -> None:
        """Export the chart's candles now and show the download link."""
        import base64
        import io

        links = []
        for sym in self.chart.symbols:
            buf = io.BytesIO()
            try:
                self.store.export(sym, buf, kind="ohlcv", timeframe=self.chart.timeframe, format="csv")
            except Exception as exc:  # noqa: BLE001 - shown to the user instead of a silent failure
                links.append(f'<span class="qf-error">{esc(sym)}: {esc(str(exc))}</span>')
                continue
            data = base64.b64encode(buf.getvalue()).decode()
            name = f"{sym}_{self.chart.timeframe}.csv"
            links.append(f'<a download="{esc(name)}" href="data:text/csv;base64,{data}">{esc(name)}</a>')
        self.link.value = " · ".join(links)


def pairs_monitor(store: Store | str | None = None, *, y: str | None = None, x: str | None = None,
                  timeframe: str = "1s", window: int = 60, theme: str = "dark") -> W.VBox:
    """The pair monitor with controls and status."""
    st = resolve_store(store)
    syms = _symbols(st)
    y = y or syms[0]
    x = x or (syms[1] if len(syms) > 1 else "ETHUSDT")
    status = StatusBar(st, theme=theme)
    monitor = PairMonitor(y, x, timeframe, window, store=st, theme=theme, bars=1500)
    controls = ControlPanel([monitor], symbols=syms, theme=theme)
    return _page("Pairs monitor", "log Y = β·log X + α · spread, z-score bands ±2 (entry) and ±0.5 (exit)",
                 [status, controls, DownloadButton(st, monitor), monitor], theme)


def alerts_dashboard(store: Store | str | None = None, *, theme: str = "dark") -> W.VBox:
    """Alert rules and fired alerts, with a price chart to see them against.

    The chart shows the symbol chosen in the panel's form (its Y leg for a
    pair rule): closes of 5-second bars over the last 12.5 minutes.
    """
    st = resolve_store(store)
    status = StatusBar(st, theme=theme)
    panel = AlertPanel(st, theme=theme)
    # Context only, so cheap for the browser: 5-second closes over 12.5 minutes, two frames a second.
    chart = LiveChart([panel.symbol.value or _symbols(st)[0]], "5s", kind="line", store=st, theme=theme,
                      bars=150, fps=2.0)

    def follow(change: dict[str, Any]) -> None:
        if change["new"] and [change["new"]] != chart.symbols:
            chart.set_symbols([change["new"]])

    panel.symbol.observe(follow, "value")
    return _page("Alerts", "Rules are evaluated by the writer on every trade it stores; fired alerts appear "
                 "below, newest first.", [status, panel, chart], theme)


def microstructure_dashboard(store: Store | str | None = None, *, symbol: str | None = None,
                             theme: str = "dark") -> W.VBox:
    """The live order book of one of the store's books, and its microstructure panels below.

    The instrument menu lists the store's books (``Store.book_symbols``);
    the monitor redraws at four frames a second, the panels every five seconds.
    """
    st = resolve_store(store)
    books = st.book_symbols() or ["BTCUSDT"]
    sym = symbol or books[0]
    status = StatusBar(st, theme=theme)
    pick = W.Dropdown(options=list(dict.fromkeys([sym, *books])), value=sym, description="Book",
                      layout=W.Layout(width="240px"))
    monitor = BookMonitor(sym, store=st, theme=theme, fps=4.0)
    panels = MicrostructurePanels(sym, store=st, theme=theme)

    def follow(change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != monitor.symbol:
            monitor.set_symbol(change["new"])
            panels.set_symbol(change["new"])

    pick.observe(follow, "value")
    return _page("Microstructure", "Order book (depth, ladder, spread, imbalance, microprice), then spread, "
                 "imbalance and markouts of the stored quotes and trades. Exchange time, UTC.",
                 [status, pick, monitor, panels], theme)


def _perp_legs(store: Store) -> tuple[list[str], list[str]]:
    """The store's perpetuals (with trades or perpetual data) and its spot symbols."""
    keys = list(dict.fromkeys([*store.symbols(), *store.perp_symbols()]))
    markets = {k: Instrument.parse(k).market for k in keys}
    perps = [k for k in keys if markets[k] != Market.SPOT] or ["binance-usdm:BTCUSDT"]
    spots = [k for k in keys if markets[k] == Market.SPOT] or ["BTCUSDT"]
    return perps, spots


def perpetuals_dashboard(store: Store | str | None = None, *, perp: str | None = None, spot: str | None = None,
                         timeframe: str = "1s", theme: str = "dark") -> W.VBox:
    """A perpetual against its spot market: prices, basis, funding with its countdown, open interest.

    The perpetual menu lists the store's perpetuals; the spot menu defaults
    to the perpetual's own symbol on spot (``binance-usdm:BTCUSDT`` ->
    ``BTCUSDT``) when the store has it. The monitor reads the stored marks,
    open interest and liquidations once a second.
    """
    st = resolve_store(store)
    perps, spots = _perp_legs(st)
    perp = perp or perps[0]
    same = Instrument.parse(perp).symbol
    spot = spot or (same if same in spots else spots[0])
    status = StatusBar(st, theme=theme)
    monitor = PerpMonitor(perp, spot, timeframe, store=st, theme=theme, bars=1500, fps=4.0)
    pick_perp = W.Dropdown(options=list(dict.fromkeys([perp, *perps])), value=perp, description="Perpetual",
                           layout=W.Layout(width="320px"))
    pick_spot = W.Dropdown(options=list(dict.fromkeys([spot, *spots])), value=spot, description="Spot",
                           layout=W.Layout(width="200px"))
    options = list(WIDGET_TIMEFRAMES) if timeframe in WIDGET_TIMEFRAMES else [timeframe, *WIDGET_TIMEFRAMES]
    pick_tf = W.Dropdown(options=options, value=timeframe, description="Bars", layout=W.Layout(width="140px"))
    message = W.HTML()

    def legs(_change: dict[str, Any]) -> None:
        try:
            monitor.set_symbols([pick_perp.value, pick_spot.value])
            message.value = ""
        except ValueError as exc:
            message.value = f'<span class="qf-error">{esc(str(exc))}</span>'

    pick_perp.observe(legs, "value")
    pick_spot.observe(legs, "value")
    pick_tf.observe(lambda ch: monitor.set_timeframe(ch["new"]), "value")
    controls = W.HBox([pick_perp, pick_spot, pick_tf, message], layout=W.Layout(align_items="center"))
    return _page("Perpetuals", "Perpetual vs spot: basis in bps of spot, funding rate of the marks with the time "
                 "to the next settlement, open interest, liquidations on the prices. Exchange time, UTC.",
                 [status, controls, monitor], theme)
