"""The dashboards' CSV download: candles exported in the kernel, offered as a data: link."""

from __future__ import annotations

import base64
import io

import pandas as pd

from quantify.widgets.dashboards import DownloadButton, pairs_monitor


class _Chart:
    symbols = ("BTCUSDT", "ETHUSDT")
    timeframe = "1m"


def test_download_link_holds_the_exported_candles(sample_store) -> None:
    button = DownloadButton(sample_store, _Chart())
    assert button.link.value == ""
    button.button.click()
    html = button.link.value
    assert 'download="BTCUSDT_1m.csv"' in html and 'download="ETHUSDT_1m.csv"' in html
    payload = html.split("data:text/csv;base64,", 1)[1].split('"', 1)[0]
    csv = pd.read_csv(io.BytesIO(base64.b64decode(payload)))
    expected = sample_store.ohlcv("BTCUSDT", "1m")
    assert len(csv) == len(expected)
    assert list(csv.columns) == ["time", *expected.columns]
    assert csv["close"].tolist() == expected["close"].tolist()


def test_bad_timeframe_is_shown_not_raised(sample_store) -> None:
    chart = _Chart()
    chart.timeframe = "7 parsecs"
    button = DownloadButton(sample_store, chart)
    button.prepare()
    assert "qf-error" in button.link.value and "timeframe" in button.link.value.lower()


def test_pairs_dashboard_offers_the_download(sample_store) -> None:
    page = pairs_monitor(sample_store, theme="light")
    try:
        assert any(isinstance(child, DownloadButton) for child in page.children)
    finally:
        for child in page.children:
            stop = getattr(child, "stop", None)
            if stop:
                stop()
