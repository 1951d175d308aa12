"""Delivery of fired alerts: logging, Python callbacks, HTTP webhooks.

The store's history is always written first, by the engine, in the writer
thread. Channels get the alert afterwards, from a :class:`Dispatcher`: each
channel has its own bounded queue and background thread, retries with
capped exponential backoff, and counts what it delivered, retried, gave up
on and dropped. A slow or failing channel therefore never blocks ingestion,
nor the other channels.

A channel is any object with ``name`` and ``send(alert: dict) -> None`` that
raises on failure. Alerts are plain dicts (``alert_id``, ``rule_id``,
``fired_at`` as ISO string, ``symbol``, ``kind``, ``value``, ``threshold``,
``severity``, ``message``, ``trade_id``, ``redelivered``); receivers that
must not see an alert twice de-duplicate on ``alert_id`` (a writer killed
after storing an alert but before delivering it re-delivers it on restart).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx

__all__ = [
    "DEFAULT_RETRY",
    "CallbackChannel",
    "Channel",
    "Dispatcher",
    "LoggingChannel",
    "RetryPolicy",
    "WebhookChannel",
]

logger = logging.getLogger(__name__)


class Channel(Protocol):
    """Where alerts go besides the store."""

    name: str

    def send(self, alert: Mapping[str, Any]) -> None:
        """Deliver one alert; raise on failure (the dispatcher retries)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries a failed delivery.

    Attributes
    ----------
    attempts : int
        Tries per alert, the first included.
    initial, maximum : float
        Backoff before the second try, doubling up to ``maximum`` seconds.
    queue_size : int
        Alerts waiting per channel; beyond, new alerts are dropped (counted).
    """

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0
    queue_size: int = 10_000

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts!r}")
        if not 0 <= self.initial <= self.maximum:
            raise ValueError(f"need 0 <= initial <= maximum, got {self.initial!r}, {self.maximum!r}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size!r}")


DEFAULT_RETRY: Final = RetryPolicy()


class LoggingChannel:
    """Log each alert at INFO (``critical``/``high`` at WARNING) on ``quantify.alerts``."""

    name = "logging"

    def __init__(self, logger_name: str = "quantify.alerts") -> None:
        self._log = logging.getLogger(logger_name)

    def send(self, alert: Mapping[str, Any]) -> None:
        level = logging.WARNING if alert.get("severity") in ("critical", "high") else logging.INFO
        self._log.log(level, "alert %s [%s] %s at %s", alert.get("alert_id"), alert.get("severity"),
                      alert.get("message"), alert.get("fired_at"))


class CallbackChannel:
    """Call ``fn(alert)`` for each alert (in the channel's thread, not the writer's)."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self.fn = fn
        self.name = name or f"callback:{getattr(fn, '__name__', 'fn')}"

    def send(self, alert: Mapping[str, Any]) -> None:
        self.fn(alert)


class WebhookChannel:
    """POST each alert as JSON to ``url``; any non-2xx status counts as a failure.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` endpoint.
    timeout : float
        Seconds per request.
    headers : mapping, optional
        Extra headers (an ``Authorization`` token, say).
    transport : httpx.BaseTransport, optional
        Replaces the network (tests).
    """

    def __init__(self, url: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.url = url
        self.name = f"webhook:{url}"
        self._client = httpx.Client(timeout=timeout, headers=dict(headers or {}), transport=transport)

    def send(self, alert: Mapping[str, Any]) -> None:
        response = self._client.post(self.url, json=dict(alert))
        response.raise_for_status()

    def close(self) -> None:
        self._client.close()


class _Lane:
    """One channel's queue, thread and counters."""

    def __init__(self, channel: Channel, retry: RetryPolicy) -> None:
        self.channel = channel
        self.retry = retry
        self.queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(retry.queue_size)
        self.delivered = 0
        self.retries = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"quantify-alerts-{channel.name}", daemon=True)
        self.thread.start()

    def put(self, alert: Mapping[str, Any]) -> None:
        try:
            self.queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            logger.warning("alert channel %s: queue full, alert %s dropped", self.channel.name,
                           alert.get("alert_id"))

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            if alert is None:
                return
            self._deliver(alert)
            self.queue.task_done()

    def _deliver(self, alert: Mapping[str, Any]) -> None:
        delay = self.retry.initial
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.channel.send(alert)
                self.delivered += 1
                return
            except Exception as exc:  # noqa: BLE001 - any channel failure is retried, then counted
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt == self.retry.attempts or self._stop.is_set():
                    self.failed += 1
                    logger.warning("alert channel %s: giving up on alert %s after %d attempt(s): %s",
                                   self.channel.name, alert.get("alert_id"), attempt, self.last_error)
                    return
                self.retries += 1
                logger.debug("alert channel %s: attempt %d failed (%s); retrying in %.1f s",
                             self.channel.name, attempt, self.last_error, delay)
                if self._stop.wait(delay):
                    self.failed += 1
                    return
                delay = min(delay * 2, self.retry.maximum)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            pass  # the thread is a daemon; it ends with the process
        self.thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retries": self.retries, "failed": self.failed,
                "dropped": self.dropped, "queued": self.queue.qsize(), "last_error": self.last_error}


class Dispatcher:
    """Fan alerts out to channels without ever blocking the caller.

    Parameters
    ----------
    channels : sequence of Channel
    retry : RetryPolicy
    """

    def __init__(self, channels: list[Channel] | tuple[Channel, ...] = (), retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.retry = retry
        self._lanes: list[_Lane] = []
        self._lock = threading.Lock()
        for channel in channels:
            self.add(channel)

    def add(self, channel: Channel) -> None:
        """Start delivering to ``channel`` too."""
        if not callable(getattr(channel, "send", None)):
            raise TypeError(f"a channel needs a send(alert) method, got {channel!r}")
        with self._lock:
            self._lanes.append(_Lane(channel, self.retry))

    def publish(self, alert: Mapping[str, Any]) -> None:
        """Queue ``alert`` on every channel (never blocks; a full queue drops and counts)."""
        for lane in self._lanes:
            lane.put(alert)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was delivered or given up; True if all done in time."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            while lane.queue.unfinished_tasks:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the channel threads (alerts still queued are abandoned after ``timeout``)."""
        for lane in self._lanes:
            lane.stop(timeout)
            close = getattr(lane.channel, "close", None)
            if close is not None:
                close()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per channel name: delivered, retries, failed, dropped, queued, last_error."""
        return {lane.channel.name: lane.stats() for lane in self._lanes}
