"""Live widgets: charts, pair monitor, perpetual monitor, order-book monitor, drawdown monitor, control, alert and status panels (ipywidgets + bqplot).

Every widget is a model (tested through ``get_state()`` without a browser),
updates in frames (at most 10 per second, one ``hold_sync`` per figure),
draws bounded series, and is fed in-process in the kernel that runs the
ingestion service or by tailing the store anywhere else. ``close()`` or
``stop()`` ends its timer; :func:`stop_all` ends every timer of the process.
"""

from __future__ import annotations

from quantify.model.timeframes import WIDGET_TIMEFRAMES
from quantify.widgets.alerts import AlertPanel
from quantify.widgets.book import BookMonitor
from quantify.widgets.charts import LiveChart
from quantify.widgets.drawdown import DrawdownMonitor
from quantify.widgets.frames import MAX_POINTS, downsample, live_timers, stop_all
from quantify.widgets.microstructure import MicrostructurePanels
from quantify.widgets.pairs import PairMonitor
from quantify.widgets.panels import REPLAY_BADGE, ControlPanel, StatusBar, is_replay
from quantify.widgets.perp import PerpMonitor
from quantify.widgets.theme import DARK, LIGHT, Theme

__all__ = [
    "DARK",
    "LIGHT",
    "MAX_POINTS",
    "REPLAY_BADGE",
    "WIDGET_TIMEFRAMES",
    "AlertPanel",
    "BookMonitor",
    "ControlPanel",
    "DrawdownMonitor",
    "LiveChart",
    "MicrostructurePanels",
    "PairMonitor",
    "PerpMonitor",
    "StatusBar",
    "Theme",
    "downsample",
    "is_replay",
    "live_timers",
    "stop_all",
]
