"""Delivery: webhook to a local server, failures retried and counted, slow channels never block."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from quantify import alerts as qa

FAST = qa.RetryPolicy(attempts=3, initial=0.01, maximum=0.05, queue_size=5)


@pytest.fixture
def webhook():
    received: list[dict] = []
    failures = {"left": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if failures["left"] > 0:
                failures["left"] -= 1
                self.send_response(503)
            else:
                received.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", received, failures
    server.shutdown()
    server.server_close()


def test_webhook_posts_json_and_retries(webhook) -> None:
    url, received, failures = webhook
    failures["left"] = 2  # two 503s, then success
    dispatcher = qa.Dispatcher([qa.WebhookChannel(url, timeout=2)], FAST)
    dispatcher.publish({"alert_id": 7, "message": "BTCUSDT above 62000", "value": 62001.5})
    assert dispatcher.drain(10)
    assert received == [{"alert_id": 7, "message": "BTCUSDT above 62000", "value": 62001.5}]
    stats = dispatcher.stats()[f"webhook:{url}"]
    assert stats["delivered"] == 1 and stats["retries"] == 2 and stats["failed"] == 0
    dispatcher.close()


def test_failing_channel_is_counted_and_does_not_block_others() -> None:
    got: list[dict] = []
    release = threading.Event()

    def broken(alert: dict) -> None:
        raise RuntimeError("receiver down")

    def stuck(alert: dict) -> None:
        release.wait(10)

    dispatcher = qa.Dispatcher([qa.CallbackChannel(broken), qa.CallbackChannel(stuck),
                                qa.CallbackChannel(got.append, name="ok")], FAST)
    t0 = time.perf_counter()
    for i in range(8):
        dispatcher.publish({"alert_id": i})
        time.sleep(0.02)  # let the healthy channel keep up with its queue of 5
    assert time.perf_counter() - t0 < 2.0  # publishing never waits for a channel
    deadline = time.monotonic() + 10
    while (len(got) < 8 or dispatcher.stats()["callback:broken"]["failed"] < 8) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [a["alert_id"] for a in got] == list(range(8))
    stats = dispatcher.stats()
    assert stats["callback:stuck"]["dropped"] >= 2  # its queue of 5 overflowed
    assert stats["callback:broken"]["failed"] == 8 and stats["callback:broken"]["retries"] == 16
    assert "receiver down" in stats["callback:broken"]["last_error"]
    release.set()
    dispatcher.close(1.0)


def test_engine_delivers_to_webhook_without_slowing_the_writer(store, sample, make_engine, webhook) -> None:
    url, received, _ = webhook
    btc = sample["BTCUSDT"].iloc[:2000]
    qa.AlertBook(store).add(qa.price_below("BTCUSDT", float(btc["price"].min()) + 0.01), check_symbols=False)
    slow = qa.CallbackChannel(lambda alert: time.sleep(0.5), name="slow")
    engine = make_engine(store, channels=[qa.WebhookChannel(url), slow])
    engine.start(store)
    store.append_ticks({"BTCUSDT": btc})
    t0 = time.perf_counter()
    engine({"BTCUSDT": btc})
    assert time.perf_counter() - t0 < 1.0
    engine.dispatcher.drain(0.5)
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(received) == 1 and received[0]["kind"] == "price-below" and received[0]["alert_id"] == 0
    assert received[0]["fired_at"].startswith("2024-08-08T")
    stats = engine.stats()
    assert stats["alerts_fired"] == 1 and stats["alerts_delivered"] >= 1
    assert set(stats["alerts_channels"]) == {f"webhook:{url}", "slow"}
