"""Prometheus metrics and health checks of the ingestion service, as a view of its status.

``quantify ingest --metrics-port N`` (``IngestConfig.metrics_port``) serves,
on one port, while the service runs:

``/metrics``
    The Prometheus text format (OpenMetrics if the scraper asks), written by
    the official ``prometheus_client`` from a private registry whose one
    collector (:class:`StatusCollector`) reads a fresh
    :meth:`IngestService.snapshot() <quantify.ingest.service.IngestService.snapshot>`
    at every scrape and turns it into metric families (:func:`status_metrics`).
    There is no second set of counters: every number is a field of the
    :class:`~quantify.model.status.WriterStatus` that ``quantify status
    --json`` shows, and :data:`METRICS` names them all.
``/healthz``
    200 while the service's event loop runs and answers (it runs a no-op on
    the loop, waiting :data:`HEALTH_TIMEOUT` s at most), else 503.
``/readyz``
    200 once the service streams and writes (:func:`readiness`), else 503
    with a short JSON reason: ``{"ready": false, "reason": "..."}``.

The server (:class:`MetricsServer`, ``wsgiref`` on a daemon thread, one
thread per request) listens on 127.0.0.1 unless told otherwise; on any other
address every request must carry the configured bearer token
(``Authorization: Bearer TOKEN``, ``QUANTIFY_METRICS_TOKEN``), or it gets 401.

Per-instrument metrics carry the labels ``instrument`` (the key,
``BTCUSDT``, ``binance-usdm:BTCUSDT``) and ``venue`` (``binance``,
``binance-usdm``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from quantify.model.instrument import Instrument
from quantify.model.status import WriterState, WriterStatus

__all__ = ["HEALTH_TIMEOUT", "METRICS", "MetricsServer", "StatusCollector", "call_on_loop", "readiness", "sample_names",
           "status_metrics"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds ``/healthz`` waits for the service loop to answer.
HEALTH_TIMEOUT = 2.0

_C, _G, _H = "counter", "gauge", "histogram"

#: Every metric the service exports: sample name -> (type, HELP text). Counters end in
#: ``_total``; the histogram's samples are ``<name>_bucket``, ``_sum`` and ``_count``.
METRICS: dict[str, tuple[str, str]] = {
    # the service
    "quantify_ingest_state": (_G, "1 for the service's lifecycle state (label state), 0 for the others"),
    "quantify_ingest_degraded": (_G, "1 while degraded for the reason of the label: store (appends refused, "
                                     "trades wait in memory), unreachable (an endpoint), book_stale (a book "
                                     "out of sync)"),
    "quantify_ingest_started_timestamp_seconds": (_G, "When the service started (seconds since the epoch)"),
    "quantify_ingest_connections": (_G, "WebSocket connections the run streams trades over"),
    "quantify_ingest_endpoint_up": (_G, "1 if the endpoint (venue, kind, url) is reached, else 0"),
    "quantify_ingest_frames_received_total": (_C, "WebSocket frames received"),
    "quantify_ingest_malformed_frames_total": (_C, "Frames the parser rejected, by reason"),
    "quantify_ingest_ticks_per_second": (_G, "Trades stored per second, recently"),
    "quantify_ingest_store_latency_seconds": (_H, "Seconds from receipt of a batch's newest event to the end "
                                                  "of its append"),
    "quantify_ingest_appends_total": (_C, "Appends of trades to the store"),
    "quantify_ingest_compactions_total": (_C, "Compactions of stored segments"),
    "quantify_ingest_store_errors_total": (_C, "Store calls that failed (retried)"),
    "quantify_ingest_reconnects_total": (_C, "WebSocket reconnections after a drop"),
    "quantify_ingest_server_shutdowns_total": (_C, "serverShutdown events received (the connection switched)"),
    "quantify_ingest_rotations_total": (_C, "Connections replaced before their 24 h limit"),
    "quantify_ingest_trades_backfilled_total": (_C, "Trades fetched over REST to fill gaps"),
    "quantify_ingest_rest_requests_total": (_C, "REST requests made"),
    "quantify_ingest_rest_rate_limited_total": (_C, "REST requests answered 429 or 418"),
    "quantify_ingest_rest_errors_total": (_C, "REST requests that failed (retried)"),
    "quantify_ingest_journal_recovered_trades_total": (_C, "Trades recovered from a predecessor's journal"),
    "quantify_ingest_journal_errors_total": (_C, "Journal writes or syncs that failed"),
    "quantify_ingest_listener_errors_total": (_C, "Batch listener calls (candles, alerts) that raised"),
    # per instrument
    "quantify_ingest_trades_received_total": (_C, "Trades received from the stream"),
    "quantify_ingest_trades_stored_total": (_C, "Trades stored this run"),
    "quantify_ingest_trades_pending": (_G, "Trades received and waiting to be stored"),
    "quantify_ingest_duplicates_dropped_total": (_C, "Trades received twice and dropped by id"),
    "quantify_ingest_trades_lost_total": (_C, "Trades in gaps given up on"),
    "quantify_ingest_gaps_found_total": (_C, "Trade id gaps found"),
    "quantify_ingest_gaps_filled_total": (_C, "Trade id gaps filled over REST"),
    "quantify_ingest_gaps_unfilled_total": (_C, "Trade id gaps given up on (their trades lost)"),
    "quantify_ingest_gaps_open": (_G, "Trade id gaps waiting to be filled"),
    "quantify_ingest_last_trade_timestamp_seconds": (_G, "Exchange time of the last stored trade"),
    "quantify_ingest_lease_owned": (_G, "Shared stores: 1 if this worker holds the instrument's lease, 0 if "
                                        "another live worker does"),
    "quantify_ingest_lease_errors_total": (_C, "Shared stores: lease renewals that failed"),
    # order books, per instrument
    "quantify_ingest_book_quotes_stored_total": (_C, "Quotes stored, one per applied depth event (its diffs "
                                                     "are stored with it)"),
    "quantify_ingest_book_events_applied_total": (_C, "Depth events applied to the local book"),
    "quantify_ingest_book_gaps_total": (_C, "Update id gaps in the depth stream"),
    "quantify_ingest_book_resyncs_total": (_C, "Resyncs of the book from a fresh snapshot"),
    "quantify_ingest_book_live": (_G, "1 while the book is in sync, else 0"),
    "quantify_ingest_book_stale_seconds_total": (_C, "Seconds the book was out of sync, in total"),
    # perpetuals, per instrument
    "quantify_ingest_perp_marks_stored_total": (_C, "Mark-price updates stored"),
    "quantify_ingest_perp_liquidations_stored_total": (_C, "Liquidation orders stored"),
    # the alert engine (when the writer evaluates alerts)
    "quantify_alerts_rules": (_G, "Enabled alert rules"),
    "quantify_alerts_evaluations_total": (_C, "Batches the alert rules were evaluated on, by kind (trades, "
                                              "book, perp)"),
    "quantify_alerts_fired_total": (_C, "Alerts fired"),
    "quantify_alerts_suppressed_total": (_C, "Alerts suppressed by a rule's cooldown"),
    "quantify_alerts_rule_errors_total": (_C, "Rule evaluations that raised"),
    "quantify_alerts_delivered_total": (_C, "Alerts delivered to their channels"),
    "quantify_alerts_delivery_failed_total": (_C, "Alert deliveries that failed after retries"),
}

_FAMILY = {_C: CounterMetricFamily, _G: GaugeMetricFamily}


def sample_names() -> set[str]:
    """Every sample name a scrape can show (the histogram's ``_bucket``, ``_sum``, ``_count`` included)."""
    out = set()
    for name, (kind, _) in METRICS.items():
        out |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == _H else {name}
    return out


class _Families:
    """Metric families built sample by sample, in :data:`METRICS`' names and HELP."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}
        self._scalars: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

    def add(self, name: str, value: float, **labels: str) -> None:
        family = self._scalars.get(name)
        if family is None:
            kind, text = METRICS[name]
            family = self._scalars[name] = _FAMILY[kind](name, text, labels=list(labels))
            self._families[name] = family
        family.add_metric(list(labels.values()), float(value))

    def histogram(self, name: str, buckets: Sequence[tuple[str, float]], total: float) -> None:
        self._families[name] = HistogramMetricFamily(name, METRICS[name][1], buckets=buckets, sum_value=total)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def _labels(key: str) -> dict[str, str]:
    try:
        venue = Instrument.parse(key).venue
    except ValueError:
        venue = ""
    return {"instrument": key, "venue": venue}


def status_metrics(status: WriterStatus) -> list[Metric]:
    """The metric families of ``status`` (what one scrape shows), named as in :data:`METRICS`."""
    f = _Families()
    for state in WriterState:
        f.add("quantify_ingest_state", state is status.state, state=state.value)
    f.add("quantify_ingest_degraded", status.state is WriterState.DEGRADED, reason="store")
    f.add("quantify_ingest_degraded", bool(status.unreachable), reason="unreachable")
    f.add("quantify_ingest_degraded", any(b.state == "stale" for b in status.books.values()), reason="book_stale")
    if status.started is not None:
        f.add("quantify_ingest_started_timestamp_seconds", status.started)
    f.add("quantify_ingest_connections", status.connections)
    for e in status.endpoints:
        f.add("quantify_ingest_endpoint_up", e.reached, venue=e.venue, kind=e.kind, url=e.url)
    f.add("quantify_ingest_frames_received_total", status.frames)
    for reason, n in sorted(status.malformed_by_reason.items()):
        f.add("quantify_ingest_malformed_frames_total", n, reason=reason)
    f.add("quantify_ingest_ticks_per_second", status.ticks_per_second)
    hist = status.store_latency_histogram
    f.histogram("quantify_ingest_store_latency_seconds",
                [(floatToGoString(b), c) for b, c in zip(hist.bounds, hist.cumulative)]
                + [("+Inf", hist.count)], hist.sum)
    for name, value in (("appends", status.appends), ("compactions", status.compactions),
                        ("store_errors", status.store_errors), ("reconnects", status.reconnects),
                        ("server_shutdowns", status.server_shutdowns), ("rotations", status.rotations),
                        ("trades_backfilled", status.backfilled), ("rest_requests", status.rest_requests),
                        ("rest_rate_limited", status.rest_rate_limited), ("rest_errors", status.rest_errors),
                        ("journal_recovered_trades", status.journal_recovered),
                        ("journal_errors", status.journal_errors), ("listener_errors", status.listener_errors)):
        f.add(f"quantify_ingest_{name}_total", value)
    for key, inst in status.instruments.items():
        labels = _labels(key)
        for name, value in (("trades_received_total", inst.trades_received),
                            ("trades_stored_total", inst.rows_this_run), ("trades_pending", inst.pending),
                            ("duplicates_dropped_total", inst.duplicates_dropped),
                            ("trades_lost_total", inst.trades_lost), ("gaps_found_total", inst.gaps_found),
                            ("gaps_filled_total", inst.gaps_filled), ("gaps_unfilled_total", inst.gaps_unfilled),
                            ("gaps_open", inst.gaps_open)):
            f.add(f"quantify_ingest_{name}", value, **labels)
        if inst.last_time is not None:
            f.add("quantify_ingest_last_trade_timestamp_seconds", inst.last_time.value / 1e9, **labels)
    if status.sharded:
        for key in status.owned:
            f.add("quantify_ingest_lease_owned", 1, **_labels(key))
        for key in status.skipped:
            f.add("quantify_ingest_lease_owned", 0, **_labels(key))
        f.add("quantify_ingest_lease_errors_total", status.lease_errors)
    for key, book in status.books.items():
        labels = _labels(key)
        values: tuple[tuple[str, float], ...] = (
            ("quotes_stored_total", book.quotes_stored), ("events_applied_total", book.events),
            ("gaps_total", book.gaps), ("resyncs_total", book.resyncs),
            ("live", book.state == "live"), ("stale_seconds_total", book.stale_seconds))
        for name, number in values:
            f.add(f"quantify_ingest_book_{name}", number, **labels)
    for key, perp in status.perps.items():
        f.add("quantify_ingest_perp_marks_stored_total", perp.marks_stored, **_labels(key))
        f.add("quantify_ingest_perp_liquidations_stored_total", perp.liquidations_stored, **_labels(key))
    _alert_metrics(f, status.listeners)
    return list(f)


def _alert_metrics(f: _Families, stats: dict[str, Any]) -> None:
    """The alert engine's counters, when it runs (its ``alerts_*`` listener statistics)."""
    if "alerts_rules" not in stats:
        return

    def num(key: str) -> float:
        value = stats.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    f.add("quantify_alerts_rules", num("alerts_rules"))
    for kind, key in (("trades", "alerts_batches"), ("book", "alerts_book_batches"),
                      ("perp", "alerts_perp_batches")):
        f.add("quantify_alerts_evaluations_total", num(key), kind=kind)
    for name in ("fired", "suppressed", "rule_errors", "delivered", "delivery_failed"):
        f.add(f"quantify_alerts_{name}_total", num(f"alerts_{name}"))


def call_on_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` run on ``loop``, from any thread; directly when ``loop`` does not run (or runs this thread).

    Raises ``TimeoutError`` if the loop does not run it within ``timeout`` s.
    """
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if loop is None or loop.is_closed() or not loop.is_running() or current is loop:
        return fn()
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def call() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            done.set_exception(exc)

    try:
        loop.call_soon_threadsafe(call)
    except RuntimeError:  # closed meanwhile
        return fn()
    return done.result(timeout)


class StatusCollector(Collector):
    """A collector whose every scrape is :func:`status_metrics` of ``read()`` (a fresh status)."""

    def __init__(self, read: Callable[[], WriterStatus]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return status_metrics(self._read())


def readiness(status: WriterStatus) -> str | None:
    """``None`` if the service streams and writes, else why not, in words.

    Ready means: the service is running (not starting, recovering its
    journal, degraded or stopping), it has WebSocket connections, and every
    one of them is connected.
    """
    if status.state is WriterState.DEGRADED:
        return status.degraded_reason or "the store refuses writes"
    if status.state is not WriterState.RUNNING:
        return f"the service is {status.state.value}"
    sockets = [e for e in status.endpoints if e.kind == "websocket"]
    if not sockets:
        return "no WebSocket connection yet"
    down = [e for e in sockets if not e.reached]
    if down:
        more = f" (and {len(down) - 1} more)" if len(down) > 1 else ""
        return f"{down[0].summary()}{more}"
    return None


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics %s: " + format, self.address_string(), *args)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` of one service, on a thread (see the module docstring).

    Parameters
    ----------
    host, port : str, int
        Where to listen (``port=0``: a free port; see :attr:`port`).
    read_status : callable
        Returns a fresh status, safe to call from any thread.
    alive : callable
        ``alive()`` is True while the service loop runs and answers.
    token : str, optional
        The bearer token every request must carry (``None``: none asked).
    """

    def __init__(self, host: str, port: int, *, read_status: Callable[[], WriterStatus],
                 alive: Callable[[], bool], token: str | None = None) -> None:
        self.host = host
        self._port = port
        self._read = read_status
        self._alive = alive
        self._token = token
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(read_status))
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one picked, after :meth:`start` with port 0)."""
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Listen and serve on a daemon thread; ``ValueError`` if the port cannot be bound."""
        server_class = _ThreadingServer6 if ":" in self.host else _ThreadingServer
        try:
            self._server = make_server(self.host, self._port, self._app, server_class=server_class,
                                       handler_class=_Quiet)
        except OSError as exc:
            raise ValueError(f"cannot serve metrics on {self.host}:{self._port}: {exc.strerror or exc}; "
                             f"choose another --metrics-port") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="quantify-metrics", daemon=True)
        self._thread.start()
        logger.info("metrics on %s/metrics (health %s/healthz, %s/readyz)", self.url, self.url, self.url)

    def stop(self) -> None:
        """Stop serving and close the socket (blocks until the serving thread ends)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None

    def _authorized(self, environ: dict[str, Any]) -> bool:
        if self._token is None:
            return True
        given = environ.get("HTTP_AUTHORIZATION", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self._authorized(environ):
            return _json(start_response, 401, {"error": "a bearer token is required"},
                         [("WWW-Authenticate", "Bearer")])
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            alive = self._alive()
            return _json(start_response, 200 if alive else 503,
                         {"alive": alive} if alive else {"alive": False, "reason": "the service loop does not run"})
        if path == "/readyz":
            reason = readiness(self._read())
            return _json(start_response, 200 if reason is None else 503,
                         {"ready": True} if reason is None else {"ready": False, "reason": reason})
        return _json(start_response, 404, {"error": f"no such path {path!r}; try /metrics, /healthz, /readyz"})


_REASONS = {200: "200 OK", 401: "401 Unauthorized", 404: "404 Not Found", 503: "503 Service Unavailable"}


def _json(start_response: Callable[..., Any], status: int, body: dict[str, Any],
          headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(_REASONS[status], [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                      *(headers or [])])
    return [data]
