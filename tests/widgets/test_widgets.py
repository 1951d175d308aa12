"""Widget models, tested through get_state() and counted comm messages, without a browser."""

from __future__ import annotations

import collections
import contextlib

import ipywidgets
import numpy as np
import pandas as pd
import pytest

from quantify.model.status import WriterStatus
from quantify.widgets import (
    ControlPanel,
    LiveChart,
    PairMonitor,
    StatusBar,
    downsample,
    is_replay,
    live_timers,
)
from quantify.widgets.source import StoreTail


@contextlib.contextmanager
def count_messages():
    """Count comm messages per widget model id by hooking Widget._send."""
    counts: collections.Counter[str] = collections.Counter()
    original = ipywidgets.Widget._send

    def send(self, msg, buffers=None):
        counts[self.model_id] += 1
        return original(self, msg, buffers)

    ipywidgets.Widget._send = send
    try:
        yield counts
    finally:
        ipywidgets.Widget._send = original


def figure_ids(fig) -> set[str]:
    ids = {fig.model_id}
    for mark in fig.marks:
        ids.add(mark.model_id)
        ids.update(s.model_id for s in mark.scales.values())
    for axis in fig.axes:
        ids.update({axis.model_id, axis.scale.model_id})
    return ids


def test_live_chart_candles_state(sample_store):
    chart = LiveChart(["BTCUSDT", "ETHUSDT"], "1m", store=sample_store, autostart=False)
    try:
        ohlc = chart.figures["BTCUSDT"].marks[1]
        state = ohlc.get_state()
        assert state["marker"] == "candle"
        assert len(chart.bars["BTCUSDT"]) == 12  # 23:54 .. 00:05
        assert np.asarray(ohlc.y).shape == (12, 4)
        axis = chart.figures["BTCUSDT"].axes[0]
        assert axis.tick_format == "%H:%M:%S"
        assert not chart.running
    finally:
        chart.close()


def test_live_chart_line_downsamples_and_timeframe_redraws(sample_store):
    chart = LiveChart("BTCUSDT", "1s", kind="line", store=sample_store, autostart=False, bars=5000)
    try:
        assert len(chart.bars["BTCUSDT"]) > 600
        chart.set_timeframe("1m")
        assert chart.points["BTCUSDT"] == 12
        assert "1m" in chart.figures["BTCUSDT"].title
    finally:
        chart.close()


def test_downsample_bounds_and_keeps_extremes():
    x = np.arange(100_000)
    y = np.sin(x / 1000.0)
    y[54_321] = 50.0
    dx, dy = downsample(x, y, 2000)
    assert len(dx) <= 2100 and dy.max() == 50.0 and dx[0] == 0 and dx[-1] == 99_999


def test_frames_send_one_message_per_mark_and_feed_in_new_ticks(sample_store, tmp_path):
    from quantify.store import open_store
    from quantify.venues.binance.recordings import read_trades, sample_files

    store = open_store(f"lmdb://{tmp_path / 's'}", create=True)
    btc = pd.concat([f["BTCUSDT"] for f in map(read_trades, sample_files()) if "BTCUSDT" in f]).sort_index()
    store.append_ticks({"BTCUSDT": btc.iloc[:5000]})
    chart = LiveChart("BTCUSDT", "1s", store=store, autostart=False)
    assert isinstance(chart._feed, StoreTail)
    before = chart.points["BTCUSDT"]
    fig = chart.figures["BTCUSDT"]
    with count_messages() as counts:
        for i in range(10):  # ten frames, each with new trades
            store.append_ticks({"BTCUSDT": btc.iloc[5000 + i * 500: 5500 + i * 500]})
            chart.refresh()
    try:
        assert chart.points["BTCUSDT"] > before
        per_figure = sum(counts[m] for m in figure_ids(fig))
        assert per_figure <= 10 * 3, counts  # price mark + volume bars (+ volume scale) per frame
        assert chart.bars["BTCUSDT"]["trades"].sum() == 10_000
    finally:
        chart.close()


def test_pair_monitor_statistics_and_bands(sample_store):
    mon = PairMonitor("BTCUSDT", "ETHUSDT", "1s", 60, store=sample_store, autostart=False)
    try:
        data = mon.compute()
        assert {"beta", "spread", "z", "corr"} <= set(data.columns)
        assert np.isfinite(mon.stats["beta"]) and np.isfinite(mon.stats["z"])
        z = np.asarray(mon._z.y)
        assert z.shape[0] == 6 and np.allclose(z[1], 2.0) and np.allclose(z[4], -0.5)
        mon.configure(hedge="kalman")
        assert mon.hedge == "kalman"
        with pytest.raises(ValueError, match="window"):
            mon.configure(window="12O")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="hedge"):
            PairMonitor("BTCUSDT", "ETHUSDT", hedge="tls", store=sample_store, autostart=False)
    finally:
        mon.close()


def test_control_panel_drives_charts(sample_store):
    chart = LiveChart(["BTCUSDT", "ETHUSDT"], "1m", store=sample_store, autostart=False)
    mon = PairMonitor("BTCUSDT", "ETHUSDT", "1m", 5, store=sample_store, autostart=False)
    panel = ControlPanel([chart, mon])
    try:
        panel.timeframe.value = "5m"
        assert chart.timeframe == mon.timeframe == "5m"
        assert chart.points["BTCUSDT"] == 4  # 23:50, 23:55, 00:00, 00:05
        panel.window.value = 4
        assert mon.window == 4
        panel.x.value = "BTCUSDT"
        assert "different" in panel.message.value
    finally:
        chart.close()
        mon.close()
        panel.close()


def test_timers_stop_on_close(sample_store):
    chart = LiveChart("BTCUSDT", "1m", store=sample_store, fps=10)
    assert chart.running and chart._timer in live_timers()
    chart.close()
    assert not chart.running and chart._timer not in live_timers()


def test_status_bar_flags_replay(sample_store):
    bar = StatusBar(sample_store, autostart=False)
    status = {"state": "running", "heartbeat": pd.Timestamp.now().timestamp(), "ws_url": "ws://127.0.0.1:555",
              "ticks_per_second": 12.0, "store_latency_ms": {"p50": 3.0}, "trades_stored": 10,
              "symbols": {"BTCUSDT": {"gaps_found": 1, "gaps_open": 0}}}
    html = bar.render(WriterStatus.from_dict(status))
    assert "REPLAY — recorded Binance trades, 2024-08-08" in html and "12</b> ticks/s" in html
    assert "LIVE" in bar.render(WriterStatus.from_dict({**status, "ws_url": "wss://stream.binance.com:9443"}))
    assert is_replay("ws://localhost:1") and not is_replay("wss://stream.binance.com:9443")
    bar.close()


def test_dark_theme_applies(sample_store):
    chart = LiveChart("BTCUSDT", "1m", store=sample_store, autostart=False, theme="dark")
    assert chart.figures["BTCUSDT"].background_style["fill"] == "#0d1117"
    chart.close()
    with pytest.raises(ValueError, match="theme"):
        LiveChart("BTCUSDT", store=sample_store, autostart=False, theme="pink")


def test_pair_monitor_regime_band_off_by_default_and_drawn_on_request(sample_store):
    from quantify.analytics import fit_regimes

    plain = PairMonitor("BTCUSDT", "ETHUSDT", "5s", 20, store=sample_store, autostart=False)
    mon = PairMonitor("BTCUSDT", "ETHUSDT", "5s", 20, regimes=2, store=sample_store, autostart=False)
    try:
        assert plain.regimes is None and "regime" not in plain.figures and "regime" not in plain.compute()
        assert "regime" in mon.figures and mon.points["regime"] > 0
        data = mon.compute()
        closed = data["y"].iloc[:-1]
        want = fit_regimes(closed, 2, window=20).regime
        np.testing.assert_array_equal(data["regime"].iloc[:-1].to_numpy(), want.to_numpy())
        assert np.isnan(data["regime"].iloc[-1])  # the open bar has no regime yet
        state = mon._regime.get_state()
        assert state["colors"] == ["#2ca02c", "#ff7f0e"] and state["fill"] == "bottom"
        strip = np.asarray(mon._regime.y)
        assert strip.shape[0] == 2 and set(np.unique(strip)) <= {0.0, 1.0}
        assert (strip.sum(axis=0) <= 1.0).all() and strip[0].sum() > 0
        with pytest.raises(ValueError, match="regimes"):
            PairMonitor("BTCUSDT", "ETHUSDT", regimes=1, store=sample_store, autostart=False)
    finally:
        plain.close()
        mon.close()
