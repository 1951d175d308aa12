"""Constructing, refreshing and closing every widget and dashboard warns of nothing.

An argument that is not a trait of the installed ipywidgets/bqplot (``Layout(gap=...)``,
``Axis(orientation=...)``) is silently dropped with only a DeprecationWarning to tell,
so a warning here is a layout that is not applied.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from quantify.widgets import AlertPanel, ControlPanel, LiveChart, PairMonitor, StatusBar, stop_all
from quantify.widgets.dashboards import DownloadButton, alerts_dashboard, market_overview, pairs_monitor
from quantify.widgets.drawdown import DrawdownMonitor


@pytest.fixture
def strict() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # pandas, called by ArcticDB's reads: not ours, and not about widgets
        warnings.filterwarnings("ignore", message="Passing a BlockManager", category=DeprecationWarning)
        yield
    stop_all()


def _chart(store: Any) -> Any:
    return LiveChart(["BTCUSDT", "ETHUSDT"], "1m", store=store, autostart=False, theme="dark")


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "LiveChart candles": _chart,
    "LiveChart line": lambda s: LiveChart("BTCUSDT", "1s", kind="line", store=s, autostart=False),
    "PairMonitor": lambda s: PairMonitor("BTCUSDT", "ETHUSDT", "1s", 60, store=s, autostart=False),
    "DrawdownMonitor": lambda s: DrawdownMonitor("BTCUSDT", "ETHUSDT", "1s", 60, level=1.0, store=s,
                                                 autostart=False),
    "PairMonitor kalman": lambda s: PairMonitor("BTCUSDT", "ETHUSDT", "1m", 5, hedge="kalman", store=s,
                                                autostart=False),
    "ControlPanel": lambda s: ControlPanel([_chart(s)], symbols=["BTCUSDT", "ETHUSDT"], theme="dark"),
    "StatusBar": lambda s: StatusBar(s, autostart=False),
    "AlertPanel": lambda s: AlertPanel(s, autostart=False),
    "DownloadButton": lambda s: DownloadButton(s, _chart(s)),
    "pairs_monitor": lambda s: pairs_monitor(s),
    "market_overview": lambda s: market_overview(s, theme="light"),
    "alerts_dashboard": lambda s: alerts_dashboard(s),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_constructing_a_widget_warns_of_nothing(sample_store, strict, name):
    widget = BUILDERS[name](sample_store)
    refresh = getattr(widget, "refresh", None)
    if refresh is not None:
        refresh()
    widget.close()
