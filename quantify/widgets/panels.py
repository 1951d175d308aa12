"""ControlPanel (drives charts) and StatusBar (what the writer is doing)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import ipywidgets as W

from quantify.model.status import WriterState, WriterStatus
from quantify.model.timeframes import WIDGET_TIMEFRAMES
from quantify.store import Store
from quantify.store.status import writer_status
from quantify.widgets._base import esc
from quantify.widgets.frames import FrameTimer
from quantify.widgets.source import attached_service, resolve_store
from quantify.widgets.theme import Theme, get_theme, panel_css

__all__ = ["REPLAY_BADGE", "ControlPanel", "StatusBar", "is_replay"]

logger = logging.getLogger(__name__)

#: Timeframes offered by the control panel.
#: Shown whenever the data comes from the replay server, never from Binance.
REPLAY_BADGE = "REPLAY — recorded Binance trades, 2024-08-08"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_replay(ws_url: str | None) -> bool:
    """True if ``ws_url`` is the local replay server (loopback), not Binance."""
    if not ws_url:
        return False
    return (urlsplit(ws_url).hostname or "") in _LOOPBACK


class ControlPanel(W.VBox):
    """Symbols, timeframe, rolling window and hedge method for a set of charts.

    Parameters
    ----------
    targets : sequence of LiveChart / PairMonitor
        Widgets the panel drives: a change of symbols or timeframe redraws
        them from history; window and hedge apply to pair monitors.
    symbols : sequence of str, optional
        Symbols offered (default: those in the targets' store).
    y, x : str, optional
        Initially selected pair (default: the first target's symbols).
    """

    def __init__(self, targets: Sequence[Any] = (), *, symbols: Iterable[str] | None = None,
                 y: str | None = None, x: str | None = None, timeframe: str | None = None,
                 window: int | None = None, hedge: str | None = None, theme: str | Theme = "light",
                 pair: bool = True) -> None:
        super().__init__()
        self.add_class("qf-root")
        self.targets = list(targets)
        first = self.targets[0] if self.targets else None
        self.theme = get_theme(theme)
        if symbols is None:
            symbols = first.store.symbols() if first is not None else []
        syms = list(dict.fromkeys([*(first.symbols if first is not None else []), *symbols]))
        y = y or (syms[0] if syms else "")
        x = x or (syms[1] if len(syms) > 1 else y)
        tf = timeframe or (first.timeframe if first is not None else "1m")
        options = list(WIDGET_TIMEFRAMES) if tf in WIDGET_TIMEFRAMES else [tf, *WIDGET_TIMEFRAMES]
        small = W.Layout(width="150px")
        self.y = W.Dropdown(options=syms, value=y or None, description="Symbol" if not pair else "Y",
                            layout=small)
        self.x = W.Dropdown(options=syms, value=x or None, description="X", layout=small)
        self.timeframe = W.Dropdown(options=options, value=tf, description="Bars", layout=W.Layout(width="140px"))
        self.window = W.BoundedIntText(value=window or getattr(first, "window", 120), min=3, max=100_000,
                                       description="Window", layout=W.Layout(width="150px"))
        self.hedge = W.ToggleButtons(options=[("OLS", "ols"), ("Kalman", "kalman")],
                                     value=hedge or getattr(first, "hedge", "ols"), description="Hedge",
                                     style={"button_width": "76px"})
        self.message = W.HTML()
        for w in (self.y, self.x, self.window, self.timeframe):
            w.style.description_width = "52px"
        controls: list[W.Widget] = [self.y, self.x] if pair else [self.y]
        controls.append(self.timeframe)
        if any(hasattr(t, "configure") for t in self.targets):
            controls += [self.window, self.hedge]
        row = W.HBox(controls, layout=W.Layout(flex_flow="row wrap", align_items="center"))
        row.add_class("qf-row")  # spaced by panel_css: ipywidgets' Layout has no ``gap``
        self.children = [W.HTML(panel_css(self.theme), layout=W.Layout(height="0px")), row,
                         self.message]
        self.y.observe(self._on_symbols, "value")
        self.x.observe(self._on_symbols, "value")
        self.timeframe.observe(self._on_timeframe, "value")
        self.window.observe(self._on_pair_settings, "value")
        self.hedge.observe(self._on_pair_settings, "value")
        self._pair = pair

    def _apply(self, action: str, fn: Any) -> None:
        try:
            for target in self.targets:
                fn(target)
            self.message.value = ""
        except Exception as exc:  # noqa: BLE001 - shown in the panel: the user can fix it
            logger.warning("control panel: %s failed: %s", action, exc)
            self.message.value = f'<span class="qf-error">{esc(action)}: {esc(exc)}</span>'

    def _on_symbols(self, _change: object = None) -> None:
        y, x = self.y.value, self.x.value
        syms = [y, x] if self._pair and x and x != y else [y]
        if self._pair and x == y:
            self.message.value = '<span class="qf-error">choose two different symbols</span>'
            return
        self._apply("symbols", lambda t: t.set_symbols(syms) if (len(syms) == 2 or not hasattr(t, "configure"))
                    else None)

    def _on_timeframe(self, change: Any) -> None:
        self._apply("timeframe", lambda t: t.set_timeframe(self.timeframe.value))

    def _on_pair_settings(self, _change: object = None) -> None:
        self._apply("settings", lambda t: t.configure(window=int(self.window.value), hedge=self.hedge.value)
                    if hasattr(t, "configure") else None)


class StatusBar(W.HBox):
    """One line: data source, writer state, ticks/s, store lag, gaps, last update.

    Reads the status of this kernel's ingestion service when it runs here,
    else the status the writer publishes in the store, once a second. A
    replay source is flagged with :data:`REPLAY_BADGE`, so recorded data is
    never mistaken for live.
    """

    def __init__(self, store: Store | str | None = None, *, theme: str | Theme = "light",
                 interval: float = 1.0, autostart: bool = True) -> None:
        super().__init__(layout=W.Layout(align_items="center", width="100%"))
        self.add_class("qf-root")
        self.store = resolve_store(store)
        self.theme = get_theme(theme)
        self.html = W.HTML()
        self.children = [W.HTML(panel_css(self.theme), layout=W.Layout(height="0px", width="0px")), self.html]
        self.status: WriterStatus | None = None
        self._timer = FrameTimer(self.refresh, 1.0 / interval, name="StatusBar")
        self.refresh()
        if autostart:
            self._timer.start()

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def close(self) -> None:
        self.stop()
        super().close()

    def read(self) -> WriterStatus | None:
        """The in-process service's status, else the one the writer published (one read)."""
        service = attached_service(self.store)
        if service is not None:
            return service.snapshot()  # type: ignore[no-any-return]
        return writer_status(self.store)

    def refresh(self) -> None:
        self.status = status = self.read()
        self.html.value = self.render(status)

    def render(self, status: WriterStatus | None) -> str:
        """The bar's HTML for ``status`` (``None``: nothing has written the store yet)."""
        if status is None:
            return ('<span class="qf-badge qf-badge-off">NO WRITER</span>'
                    f'<span class="qf-status">nothing has written to {esc(self.store.uri)} yet</span>')
        age = time.time() - (status.heartbeat or 0.0)
        state = status.state.value
        alive = age < 5 and status.state is not WriterState.STOPPED
        if status.replay:
            badge = f'<span class="qf-badge qf-badge-replay">{esc(REPLAY_BADGE)}</span>'
        else:
            badge = '<span class="qf-badge qf-badge-live">LIVE — Binance</span>'
        syms = status.instruments
        gaps = sum(v.gaps_found for v in syms.values())
        open_gaps = sum(v.gaps_open for v in syms.values())
        lat = status.store_latency_ms.get("p50")
        writer = f"<b>{esc(state)}</b>" if alive else f'<b style="color:{self.theme.down}">{esc(state)} · silent {age:,.0f} s</b>'
        parts = [
            f"writer {writer}",
            f"<b>{status.ticks_per_second:,.0f}</b> ticks/s",
            f"lag <b>{'–' if lat is None else f'{lat:,.0f} ms'}</b>",
            f"gaps <b>{gaps}</b>" + (f" ({open_gaps} open)" if open_gaps else ""),
            f"stored <b>{status.trades_stored:,}</b>",
            f"{esc(', '.join(syms))}",
        ]
        return badge + '<span class="qf-status">' + " · ".join(parts) + "</span>"
