"""The metrics server of ``quantify ingest --metrics-port``: a view of the status, scraped over HTTP.

The end-to-end test ingests the bundled replay (BTCUSDT 19,904 trades,
ETHUSDT 14,515), with connections dropped every second so that reconnects
and gaps happen, scrapes ``/metrics`` with urllib during and after the run,
and holds the counters to the store and to ``status()``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
from ingest_helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families

from quantify.cli import main
from quantify.config import IngestConfig
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.metrics import METRICS, MetricsServer, readiness, sample_names, status_metrics
from quantify.ingest.service import IngestService
from quantify.ingest.stats import LATENCY_BUCKETS, IngestStats
from quantify.model.book_status import BookStatus
from quantify.model.endpoints import EndpointState, EndpointStatus
from quantify.model.perp_status import PerpStatus
from quantify.model.status import InstrumentStatus, WriterState, WriterStatus
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.venues.binance.recordings import book_sample_files, sample_files

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "quantify-ingest.json"
COUNTS = {"BTCUSDT": 19_904, "ETHUSDT": 14_515}
LAST_IDS = {"BTCUSDT": 3735703162, "ETHUSDT": 1520553439}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(url: str, token: str | None = None) -> tuple[int, str]:
    """Status code and body of a GET (an HTTP error's too)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(base: str) -> Samples:
    """Every sample of ``base/metrics``: (name, sorted labels) -> value, parsed by prometheus_client."""
    code, text = get(f"{base}/metrics")
    assert code == 200, text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def spot(key: str) -> dict[str, str]:
    return {"instrument": key, "venue": "binance"}


def stable(status: WriterStatus) -> dict[str, Any]:
    """The parts of a status that the end-to-end test compares with a scrape."""
    out = status.to_dict()
    for moving in ("heartbeat", "ticks_per_second", "endpoints", "listeners"):
        out.pop(moving)
    return {k: v for k, v in out.items() if not k.startswith(("alerts_", "candle_"))}


# -- end to end -------------------------------------------------------------------


def test_scraped_counters_match_the_store_during_and_after_a_replay(lmdb_uri: str) -> None:
    with ReplayThread(ReplayConfig(speed=150, drop_every=1.0, seed=3)) as replay:
        cfg = IngestConfig(store=lmdb_uri, ws_url=replay.ws_url, rest_url=replay.rest_url, metrics_port=0,
                           backoff_initial=0.2, backoff_min=0.2, backoff_max=1.0, backfill_delay=0.2)
        service = IngestService(cfg, listeners=standard_listeners(open_store(lmdb_uri, create=True), cfg))
        service.start_in_thread()
        try:
            assert service.metrics is not None
            base = service.metrics.url
            assert base.startswith("http://127.0.0.1:")
            assert get(f"{base}/healthz") == (200, '{"alive": true}')
            assert wait_for(lambda: get(f"{base}/readyz")[0] == 200, 20)

            # during the run: counters only grow, and trades are stored before the end
            assert wait_for(lambda: value(scrape(base), "quantify_ingest_trades_stored_total",
                                          **spot("BTCUSDT")) > 0, 20)
            first = scrape(base)
            second = scrape(base)
            for key, v in first.items():
                if key[0].endswith(("_total", "_count", "_bucket")):
                    assert second[key] >= v, key

            def complete() -> bool:
                stored = service.snapshot().instruments
                return all(k in stored and stored[k].last_id == LAST_IDS[k] and stored[k].pending == 0
                           for k in LAST_IDS)

            assert wait_for(complete, 30)
            # drops and tail checks go on after the last trade: a scrape between two equal statuses
            taken: list[Any] = []

            def settled() -> bool:
                before, samples, status = service.snapshot(), scrape(base), service.snapshot()
                taken[:] = [samples, status]
                return stable(before) == stable(status)

            assert wait_for(settled, 20, interval=0.05)
            after, status = taken
            ticks = {key: service.store.ticks(key) for key in COUNTS}
            assert get(f"{base}/healthz")[0] == 200 and get(f"{base}/readyz")[0] == 200
        finally:
            service.join(timeout=15)

    # after the run: the scrape agrees with the store and with the status
    for key, count in COUNTS.items():
        assert len(ticks[key]) == count and ticks[key]["trade_id"].is_unique
        labels = spot(key)
        inst = status.instruments[key]
        assert value(after, "quantify_ingest_trades_stored_total", **labels) == count == inst.rows_this_run
        assert value(after, "quantify_ingest_trades_received_total", **labels) == inst.trades_received > 0
        assert value(after, "quantify_ingest_trades_pending", **labels) == 0
        assert value(after, "quantify_ingest_gaps_found_total", **labels) == inst.gaps_found
        assert value(after, "quantify_ingest_gaps_filled_total", **labels) == inst.gaps_filled
        assert value(after, "quantify_ingest_gaps_open", **labels) == 0
        assert value(after, "quantify_ingest_duplicates_dropped_total", **labels) == inst.duplicates_dropped
        last = pd.Timestamp(value(after, "quantify_ingest_last_trade_timestamp_seconds", **labels), unit="s", tz="UTC")
        assert abs((last - ticks[key].index[-1]).total_seconds()) < 1e-3
    assert status.reconnects > 0, "the replay drops connections every second"
    for name, field in (("reconnects", "reconnects"), ("appends", "appends"), ("store_errors", "store_errors"),
                        ("journal_errors", "journal_errors"), ("trades_backfilled", "backfilled"),
                        ("rest_requests", "rest_requests"), ("frames_received", "frames")):
        assert value(after, f"quantify_ingest_{name}_total") == getattr(status, field), name
    assert value(after, "quantify_ingest_state", state="running") == 1
    assert value(after, "quantify_ingest_degraded", reason="store") == 0
    # the latency histogram: one observation per append, cumulative buckets
    hist = status.store_latency_histogram
    assert value(after, "quantify_ingest_store_latency_seconds_count") == hist.count == status.appends > 0
    assert value(after, "quantify_ingest_store_latency_seconds_bucket", le="+Inf") == hist.count
    buckets = [value(after, "quantify_ingest_store_latency_seconds_bucket", le=str(b)) for b in LATENCY_BUCKETS]
    assert buckets == sorted(buckets) and buckets == list(hist.cumulative)
    # the alert engine ran once per stored batch
    assert value(after, "quantify_alerts_evaluations_total", kind="trades") == status.listeners["alerts_batches"] > 0
    assert value(after, "quantify_alerts_fired_total") == 0
    # stopped cleanly: the port no longer answers
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/healthz", timeout=5)
    assert not any(t.name == "quantify-metrics" and t.is_alive() for t in threading.enumerate())


def test_book_metrics_follow_the_stored_quotes(lmdb_uri: str) -> None:
    files = (*[p for p in sample_files() if "btcusdt" in p.name],
             *[p for p in book_sample_files() if p.name.startswith("spot-2024-btcusdt")])
    with ReplayThread(ReplayConfig(files=files, speed=60)) as replay:
        cfg = IngestConfig(symbols=("BTCUSDT",), books="all", store=lmdb_uri, ws_url=replay.ws_url,
                           rest_url=replay.rest_url, alerts=False, metrics_port=0)
        service = IngestService(cfg)
        service.start_in_thread()
        try:
            assert service.metrics is not None
            base = service.metrics.url

            def quotes_stored() -> int:
                book = service.snapshot().books.get("BTCUSDT")
                return 0 if book is None or book.state != "live" else book.quotes_stored

            assert wait_for(lambda: quotes_stored() > 1000, 30)
            before = service.snapshot().books["BTCUSDT"]
            samples = scrape(base)
            after = service.snapshot().books["BTCUSDT"]
        finally:
            service.join(timeout=15)
        final = service.status().books["BTCUSDT"]
    labels = spot("BTCUSDT")
    # streaming goes on between the two statuses: the scrape lies between them
    for name, field in (("quotes_stored_total", "quotes_stored"), ("events_applied_total", "events"),
                        ("resyncs_total", "resyncs"), ("gaps_total", "gaps")):
        scraped = value(samples, f"quantify_ingest_book_{name}", **labels)
        assert getattr(before, field) <= scraped <= getattr(after, field), name
    assert value(samples, "quantify_ingest_book_live", **labels) == 1
    assert value(samples, "quantify_ingest_degraded", reason="book_stale") == 0
    # and what the status counts is what the store holds
    assert final.quotes_stored == len(open_store(lmdb_uri).quotes("BTCUSDT")) > 1000


# -- the view ---------------------------------------------------------------------


def full_status() -> WriterStatus:
    """A status with every part a metric reads: instruments, books, perps, leases, alerts, latency."""
    stats = IngestStats()
    for seconds in (0.0005, 0.003, 0.003, 0.2, 40.0):
        stats.observe_latency(seconds)
    return WriterStatus(
        state=WriterState.DEGRADED, started=1.7e9, connections=1, frames=10, trades_stored=7, reconnects=2,
        malformed_by_reason={"json": 1}, degraded_reason="the store refuses writes",
        store_latency_histogram=stats.latency_histogram(),
        instruments={"BTCUSDT": InstrumentStatus("BTCUSDT", rows_this_run=7, trades_received=9, gaps_found=1,
                                                 last_time=pd.Timestamp("2024-08-08", tz="UTC")),
                     "binance-usdm:BTCUSDT": InstrumentStatus("binance-usdm:BTCUSDT")},
        endpoints=(EndpointStatus("binance", "websocket", "ws://127.0.0.1:1/stream", EndpointState.UNREACHABLE),),
        books={"BTCUSDT": BookStatus("BTCUSDT", state="stale", quotes_stored=5, resyncs=1)},
        perps={"binance-usdm:BTCUSDT": PerpStatus("binance-usdm:BTCUSDT", marks_stored=3)},
        owner="w1", owned=("BTCUSDT",), skipped={"binance-usdm:BTCUSDT": "w2"}, lease_errors=1,
        listeners={"alerts_rules": 2, "alerts_batches": 4, "alerts_fired": 1},
    )


def test_every_status_part_has_its_metric_named_and_documented() -> None:
    families = status_metrics(full_status())
    assert {f.name + ("_total" if f.type == "counter" else "") for f in families} == set(METRICS)
    for f in families:
        assert f.name.startswith("quantify_")
        assert f.documentation == METRICS[f.name + ("_total" if f.type == "counter" else "")][1]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    assert samples["quantify_ingest_trades_received_total", (("instrument", "BTCUSDT"), ("venue", "binance"))] == 9
    usdm = (("instrument", "binance-usdm:BTCUSDT"), ("venue", "binance-usdm"))
    assert samples["quantify_ingest_lease_owned", usdm] == 0
    assert samples["quantify_ingest_perp_marks_stored_total", usdm] == 3
    for reason in ("store", "unreachable", "book_stale"):
        assert samples["quantify_ingest_degraded", (("reason", reason),)] == 1
    # 40 s is beyond the last bound: counted in +Inf only
    assert samples["quantify_ingest_store_latency_seconds_bucket", (("le", "0.005"),)] == 3
    assert samples["quantify_ingest_store_latency_seconds_bucket", (("le", "30.0"),)] == 4
    assert samples["quantify_ingest_store_latency_seconds_count", ()] == 5


def test_published_status_gives_the_same_metrics() -> None:
    """``to_dict``/``from_dict`` (what ``quantify status --json`` reads) keep every number a metric shows."""
    status = full_status()
    again = WriterStatus.from_dict(json.loads(json.dumps(status.to_dict(), default=str)))

    def samples(s: WriterStatus) -> dict[Any, float]:
        return {(x.name, tuple(sorted(x.labels.items()))): x.value for f in status_metrics(s) for x in f.samples}

    assert samples(again) == samples(status)


def test_readiness_says_why_not() -> None:
    up = EndpointStatus("binance", "websocket", "ws://127.0.0.1:1/stream", EndpointState.CONNECTED)
    down = EndpointStatus("binance", "websocket", "ws://127.0.0.1:2/stream", EndpointState.UNREACHABLE,
                          error="connection refused")
    assert readiness(WriterStatus(state=WriterState.STARTING)) == "the service is starting"
    assert readiness(WriterStatus(state=WriterState.RUNNING)) == "no WebSocket connection yet"
    assert "connection refused" in (readiness(WriterStatus(state=WriterState.RUNNING, endpoints=(up, down))) or "")
    assert readiness(WriterStatus(state=WriterState.DEGRADED, degraded_reason="full disk")) == "full disk"
    assert readiness(WriterStatus(state=WriterState.RUNNING, endpoints=(up,))) is None


def test_server_answers_readyz_503_with_a_reason_and_asks_for_its_token() -> None:
    server = MetricsServer("127.0.0.1", 0, read_status=lambda: WriterStatus(state=WriterState.RECOVERING),
                           alive=lambda: False, token="s3cret")
    server.start()
    try:
        base = server.url
        assert get(f"{base}/metrics")[0] == 401
        assert get(f"{base}/readyz", "wrong")[0] == 401
        assert get(f"{base}/readyz", "s3cret") == (503, '{"ready": false, "reason": "the service is recovering"}')
        assert get(f"{base}/healthz", "s3cret")[0] == 503
        assert get(f"{base}/nothing", "s3cret")[0] == 404
        code, text = get(f"{base}/metrics", "s3cret")
        assert code == 200 and 'quantify_ingest_state{state="recovering"} 1.0' in text
    finally:
        server.stop()


def test_metrics_listen_on_loopback_unless_a_token_guards_them() -> None:
    assert IngestConfig(metrics_port=9108).metrics_host == "127.0.0.1"
    with pytest.raises(ValueError, match="QUANTIFY_METRICS_TOKEN"):
        IngestConfig(metrics_port=9108, metrics_host="0.0.0.0")
    cfg = IngestConfig(metrics_port=9108, metrics_host="0.0.0.0", metrics_token="s3cret")
    assert "s3cret" not in repr(cfg)
    for bad in (-1, 70000, True):
        with pytest.raises(ValueError, match="metrics_port"):
            IngestConfig(metrics_port=bad)


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"127.0.0.1:{port}"):
            MetricsServer("127.0.0.1", port, read_status=WriterStatus, alive=lambda: True).start()


def test_ingest_help_shows_the_metrics_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    assert "--metrics-port N" in out and "--metrics-host HOST" in out and "/readyz" in out


# -- the Grafana dashboard ------------------------------------------------------------

TARGET = {"type": "object", "required": ["refId", "expr"],
          "properties": {"refId": {"type": "string"}, "expr": {"type": "string", "minLength": 1}}}
GRID = {"type": "object", "required": ["h", "w", "x", "y"],
        "properties": {"h": {"type": "integer", "minimum": 1}, "w": {"type": "integer", "minimum": 1, "maximum": 24},
                       "x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0}}}
#: The parts of Grafana's dashboard model (schemaVersion 39) a dashboard needs to import and draw.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["title", "panels", "schemaVersion"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos", "targets"],
            "properties": {"id": {"type": "integer"}, "title": {"type": "string", "minLength": 1},
                           "type": {"enum": ["timeseries", "stat", "gauge", "table", "state-timeline", "bargauge"]},
                           "gridPos": GRID, "targets": {"type": "array", "minItems": 1, "items": TARGET}}}},
        "templating": {"type": "object", "properties": {"list": {"type": "array", "items": {
            "type": "object", "required": ["name", "type"]}}}},
    },
}


def test_grafana_dashboard_is_valid_and_names_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    exported = sample_names()
    used = {name for expr in exprs for name in re.findall(r"\bquantify_[a-z0-9_]+", expr)}
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    assert all(re.search(r"\bquantify_", e) for e in exprs), "an expression reads no QuantiFy metric"
    # what the dashboard is for
    text = " ".join(exprs)
    for needed in ("histogram_quantile(0.99", "rate(quantify_ingest_trades_stored_total", "quantify_ingest_gaps_",
                   "quantify_ingest_reconnects_total", "quantify_ingest_degraded"):
        assert needed in text, needed
    # panels do not overlap on the 24-column grid
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, p["title"]
        cells |= area


def test_ingest_refuses_a_network_address_without_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANTIFY_METRICS_TOKEN", raising=False)
    code = main(["ingest", "--store", f"lmdb://{tmp_path}/s", "--metrics-port", "0", "--metrics-host", "0.0.0.0"])
    assert code == 2 and "QUANTIFY_METRICS_TOKEN" in capsys.readouterr().err
