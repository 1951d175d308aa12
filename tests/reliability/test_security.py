"""Security: loopback by default, stripped dashboards, confined exports, bounded frames, no secrets.

Each test checks one promise of the README's security notes:

- servers bind 127.0.0.1 unless told otherwise, and say so when told;
- Voilà serves the dashboards with sources stripped and without tracebacks,
  and no dashboard or widget code evaluates input or reaches a shell;
  its CSV export is a ``data:`` link built in memory, not a file on the server;
- an export confined to a directory (``--dir``) cannot leave it;
- the REST client never follows a redirect (off the configured host or not);
- a WebSocket frame above the configured size closes that connection
  (counted, reconnected), it never reaches the parser or crashes the service;
  the replay server likewise refuses oversized client messages;
- credentials (in an ``s3://`` URI or the AWS environment) appear in no log,
  status output or error message.
"""

from __future__ import annotations

import ast
import asyncio
import http.server
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import ipywidgets as W
import pytest
from reliability_helpers import S3_ACCESS, S3_SECRET
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

import quantify
from quantify.cli import build_parser, main
from quantify.cli._access import access_from_args
from quantify.cli.dashboard import serve_dashboard
from quantify.config import IngestConfig
from quantify.exceptions import InvalidStoreURI, RestError, StoreError, UnsafePath
from quantify.ingest.service import IngestService
from quantify.replay.server import ReplayConfig, ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.store import open_store, parse_store_uri
from quantify.store.export import confined_path, export
from quantify.venues.binance.recordings import read_trades, sample_files
from quantify.venues.binance.rest import BinanceRest, RestConfig
from quantify.widgets.dashboards import DownloadButton, market_overview, pairs_monitor

PACKAGE = Path(quantify.__file__).parent
DASHBOARDS = PACKAGE.parent / "dashboards"


@pytest.fixture(scope="module")
def tape() -> Tape:
    return Tape(sample_files())


@pytest.fixture(scope="module")
def btc_store() -> object:
    """A store holding the sample's BTCUSDT trades of 2024-08-08."""
    store = open_store("mem://security")
    store.append_ticks(read_trades(sample_files()[0]))
    return store


# -- servers bind loopback ----------------------------------------------------------------


@pytest.mark.parametrize("host, warned", [
    ("0.0.0.0", True), ("", True), ("127.0.0.1", False), ("127.0.0.2", False), ("localhost", False),
])
def test_replay_binds_loopback_by_default_and_warns_otherwise(
    host: str, warned: bool, tape: Tape, caplog: pytest.LogCaptureFixture,
) -> None:
    assert ReplayConfig().host == "127.0.0.1"
    server = ReplayServer(ReplayConfig(host=host, speed=0), tape=tape)
    with caplog.at_level(logging.WARNING, logger="quantify.replay.server"), ReplayThread(server=server).start():
        pass
    warnings = [r.getMessage() for r in caplog.records if "non-loopback host" in r.getMessage()]
    assert bool(warnings) == warned, warnings


def test_cli_servers_bind_loopback_unless_told() -> None:
    """``replay``, ``dashboard`` and ``demo`` default to 127.0.0.1; another host is behind a token."""
    parser = build_parser()
    for command in ("replay", "dashboard", "demo"):
        assert parser.parse_args([command]).host == "127.0.0.1", command
    for command in ("dashboard", "demo"):
        assert access_from_args(parser.parse_args([command])).token is None
        shared = access_from_args(parser.parse_args([command, "--host", "0.0.0.0"]))
        assert shared.host == "0.0.0.0" and shared.token and len(shared.token) >= 16


def test_replay_cli_warns_on_a_non_loopback_host() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantify", "replay", "--host", "0.0.0.0", "--port", "0", "--speed", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = proc.stdout.readline()  # type: ignore[union-attr]
        assert banner.startswith("replay: ws ws://0.0.0.0:"), banner
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "WARNING quantify.replay.server: replay server listening on non-loopback host 0.0.0.0" in err


# -- dashboards ------------------------------------------------------------------------------


def test_no_eval_exec_or_shell_in_what_dashboards_run() -> None:
    """The widget and dashboard code has no dynamic evaluation and starts no process."""
    forbidden_calls = {"eval", "exec", "compile", "__import__", "system", "popen", "Popen", "run",
                       "check_output", "call"}
    sources = {p: p.read_text() for p in (PACKAGE / "widgets").glob("*.py")}
    for nb in DASHBOARDS.glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        sources[nb] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for path, text in sources.items():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                owner = getattr(fn.value, "id", "") if isinstance(fn, ast.Attribute) else ""
                if name in forbidden_calls and owner in ("", "os", "subprocess", "builtins"):
                    pytest.fail(f"{path.name}:{node.lineno} calls {owner + '.' if owner else ''}{name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("subprocess", "pickle", "shelve") for m in mods), \
                    f"{path.name}:{node.lineno} imports {mods}"
    # The export button offers the candles as a data: link; nothing is written on the server.
    assert "data:text/csv;base64," in sources[PACKAGE / "widgets" / "dashboards.py"]
    assert "open(" not in sources[PACKAGE / "widgets" / "dashboards.py"]


def test_voila_serves_loopback_with_sources_stripped(tmp_path: Path) -> None:
    url, proc = serve_dashboard("pairs_monitor", f"lmdb://{tmp_path}/store", timeout=60)
    try:
        assert url.startswith("http://127.0.0.1:")
        html = httpx.get(url, timeout=60).text
        assert "QUANTIFY_STORE" not in html and "from quantify" not in html, "notebook source in the page"
        assert "Traceback" not in html
        args = " ".join(proc.args)  # type: ignore[arg-type]
        assert "--Voila.ip=127.0.0.1" in args and "--strip_sources=True" in args
        assert "show_tracebacks=False" in args
    finally:
        proc.terminate()
        proc.wait(30)


def _widgets(widget: W.Widget) -> Iterator[W.Widget]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widgets(child)


def test_market_and_pairs_dashboards_take_no_typed_input(btc_store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Their only inputs are choices (dropdowns, buttons); the download writes no file."""
    typed = (W.Text, W.Textarea, W.Password, W.FileUpload, W.Combobox)
    for build in (market_overview, pairs_monitor):
        page = build(btc_store, theme="light")
        try:
            found = [type(w).__name__ for w in _widgets(page) if isinstance(w, typed)]
            assert found == [], f"{build.__name__} has typed inputs: {found}"
        finally:
            for child in page.children:
                if callable(getattr(child, "stop", None)):
                    child.stop()
    chart = type("Chart", (), {"symbols": ["BTCUSDT", "../../etc/passwd"], "timeframe": "1m"})()
    monkeypatch.chdir(tmp_path)
    button = DownloadButton(btc_store, chart)
    button.prepare()
    assert list(tmp_path.iterdir()) == []
    assert 'download="BTCUSDT_1m.csv" href="data:text/csv;base64,' in button.link.value
    assert "qf-error" in button.link.value  # the bad symbol is refused by the store, shown


# -- exports stay in their directory ----------------------------------------------------------


@pytest.mark.parametrize("name", ["../out.csv", "sub/../../out.csv", "/tmp/out.csv", "..", ".", ""])
def test_confined_path_refuses_leaving_the_directory(tmp_path: Path, name: str) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    with pytest.raises(UnsafePath, match="outside"):
        confined_path(name, root)


def test_confined_path_allows_what_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    (root / "sub").mkdir(parents=True)
    assert confined_path("a.csv", root) == root / "a.csv"
    assert confined_path("sub/../sub/b.csv", root) == root / "sub" / "b.csv"
    assert confined_path(root / "sub" / "c.csv", root) == root / "sub" / "c.csv"
    (root / "out").symlink_to(tmp_path, target_is_directory=True)  # a folder leading out
    with pytest.raises(UnsafePath):
        confined_path("out/d.csv", root)


def test_export_confined_to_a_directory(btc_store, tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    with pytest.raises(UnsafePath):
        export(btc_store, "BTCUSDT", "../escaped.csv", directory=root)
    with pytest.raises(UnsafePath):
        btc_store.export("BTCUSDT", tmp_path / "escaped.csv", directory=root)
    assert not (tmp_path / "escaped.csv").exists()
    assert btc_store.export("BTCUSDT", "btc.csv", directory=root, end="2024-08-08 23:55") > 0
    assert (root / "btc.csv").read_text().startswith("time,price,qty,trade_id")
    # a symlink inside pointing out is replaced (overwrite), never written through
    outside = tmp_path / "outside.csv"
    outside.write_text("keep me")
    (root / "link.csv").symlink_to(outside)
    export(btc_store, "BTCUSDT", "link.csv", directory=root, overwrite=True, end="2024-08-08 23:55")
    assert outside.read_text() == "keep me" and not (root / "link.csv").is_symlink()


def test_export_cli_dir_refuses_escapes_with_exit_2(btc_store, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    base = ["export", "BTCUSDT", "--store", "mem://security", "--end", "2024-08-08 23:55", "--dir", str(root)]
    for name in ("../escaped.csv", str(tmp_path / "escaped.csv")):
        assert main([*base, "-o", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("quantify export: error: ") and "is outside" in err and "Traceback" not in err
    assert not (tmp_path / "escaped.csv").exists()
    assert main([*base, "-o", "btc.csv"]) == 0
    assert (root / "btc.csv").exists() and f"written to {root / 'btc.csv'}" in capsys.readouterr().err


# -- the REST client stays on its host --------------------------------------------------------


def test_rest_client_never_follows_a_redirect() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "api.binance.com":
            return httpx.Response(302, headers={"location": "http://attacker.example/api/v3/time"})
        return httpx.Response(200, json={"serverTime": 1})

    async def main() -> None:
        async with BinanceRest(RestConfig(base_url="https://api.binance.com"),
                               transport=httpx.MockTransport(handler)) as rest:
            with pytest.raises(RestError, match="refusing to follow a redirect to 'http://attacker.example"):
                await rest.get("/api/v3/time")

    asyncio.run(main())
    assert seen == ["https://api.binance.com/api/v3/time"]  # the other host was never asked


class _Server(http.server.ThreadingHTTPServer):
    """A loopback HTTP server answering every GET with ``answer(path)``; records the paths asked."""

    def __init__(self, answer: Callable[[str], tuple[int, dict[str, str], bytes]]) -> None:
        self.asked: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.append(self.path)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_rest_client_refuses_a_redirect_to_another_host_on_loopback(status: int) -> None:
    other = _Server(lambda path: (200, {"Content-Type": "application/json"}, b'{"serverTime": 1}'))
    # "localhost" is another host name than the configured 127.0.0.1
    elsewhere = other.url.replace("127.0.0.1", "localhost") + "/api/v3/time"
    redirecting = _Server(lambda path: (status, {"Location": elsewhere}, b""))
    try:
        async def main() -> None:
            async with BinanceRest(RestConfig(base_url=redirecting.url, max_retries=0)) as rest:
                with pytest.raises(RestError, match=f"refusing to follow a redirect to {elsewhere!r}") as info:
                    await rest.get("/api/v3/time")
                assert info.value.status == status

        asyncio.run(main())
    finally:
        for server in (redirecting, other):
            server.shutdown()
            server.server_close()
    assert redirecting.asked == ["/api/v3/time"]
    assert other.asked == []  # the other host was never asked


# -- WebSocket frames have a maximum size -----------------------------------------------------


def test_replay_server_refuses_an_oversized_client_message(tape: Tape) -> None:
    """A client message above 64 KiB closes that connection (1009); the server serves on."""
    # Real time: a client that reads one trade must not have megabytes queued before the close frame.
    with ReplayThread(server=ReplayServer(ReplayConfig(speed=1), tape=tape)).start() as replay:
        with connect(f"{replay.ws_url}/ws", max_size=None) as ws:
            ws.send("x" * (1 << 17))
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        with connect(f"{replay.ws_url}/ws/btcusdt@trade") as ws:
            assert json.loads(ws.recv(timeout=10))["e"] == "trade"
        assert httpx.get(f"{replay.rest_url}/api/v3/ping", timeout=10).status_code == 200


def test_oversized_websocket_frame_closes_the_connection_not_the_service(tmp_path: Path) -> None:
    # Replayed trade frames are ~170 bytes: with a 100-byte limit every frame is too big.
    with ReplayThread(ReplayConfig(speed=0, loop=True)) as replay:
        service = IngestService(IngestConfig(
            store=f"lmdb://{tmp_path}/store", ws_url=replay.ws_url, rest_url=replay.rest_url,
            max_frame_bytes=100, backoff_initial=0.1, backoff_min=0.1, backoff_max=0.2, alerts=False))
        service.start_in_thread()
        try:
            deadline = time.monotonic() + 30
            while service.stats.reconnects < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            status = service.status().to_dict()
        finally:
            service.join(30)
    assert status["state"] == "running" and status["reconnects"] >= 3
    assert status["trades_received"] == 0  # nothing above the limit reached the parser
    assert re.match(r"^\d+$", str(status["frames"])) and status["frames"] == 0
    assert status["malformed_by_reason"]["oversized"] >= 3  # counted where malformed frames are


# -- no secret in logs, status or errors --------------------------------------------------------


@pytest.mark.parametrize("uri", [
    f"s4://127.0.0.1:bucket?access={S3_ACCESS}&secret={S3_SECRET}",  # a typo in the scheme
    f"s3://bucket-only?access={S3_ACCESS}&secret={S3_SECRET}",  # no host
    f"s3://{S3_ACCESS}:{S3_SECRET}@127.0.0.1:bucket?port=9000",  # credentials as user info
])
def test_a_bad_store_uri_error_shows_no_credentials(uri: str) -> None:
    with pytest.raises(InvalidStoreURI) as info:
        parse_store_uri(uri)
    assert S3_SECRET not in str(info.value) and S3_ACCESS not in str(info.value), info.value


def test_store_errors_from_arcticdb_show_no_credentials() -> None:
    uri = f"s3://127.0.0.1:bucket?port=9000&access={S3_ACCESS}&secret={S3_SECRET}&bogus=1"
    with pytest.raises(StoreError, match="Invalid query parameter") as info:
        open_store(uri)
    assert S3_SECRET not in str(info.value) and S3_ACCESS not in str(info.value), info.value
    parsed = parse_store_uri(uri)
    leaked = f"S3Error for {parsed.arctic_uri}: key {S3_ACCESS}, secret {S3_SECRET.upper()}/{S3_SECRET}"
    assert parsed.redact(leaked) == f"S3Error for {parsed.uri}: key …, secret {S3_SECRET.upper()}/…"


def test_no_credentials_in_logs_status_or_errors(moto_server, s3_uri: str) -> None:
    """Credentials from the AWS environment (``aws_auth=true``) or the URI, at DEBUG logging."""
    bucket = s3_uri.split(":", 2)[2].split("?", 1)[0]
    env_uri = f"s3://127.0.0.1:{bucket}?port={moto_server.port}&aws_auth=true"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=S3_ACCESS, AWS_SECRET_ACCESS_KEY=S3_SECRET,
               AWS_DEFAULT_REGION="us-east-1")
    missing = s3_uri.replace(bucket, bucket + "-missing")
    runs = [
        (["-vv", "load", str(sample_files()[0]), "--store", env_uri], 0),
        (["-vv", "status", "--store", env_uri], 0),
        (["status", "--json", "--store", env_uri], 0),
        (["-vv", "status", "--store", s3_uri], 0),
        (["-vv", "status", "--store", missing], 2),  # no such bucket: an error naming the store
    ]
    for args, code in runs:
        done = subprocess.run([sys.executable, "-m", "quantify", *args], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        out = done.stdout + done.stderr
        assert done.returncode == code, out[-3000:]
        assert S3_SECRET not in out and S3_ACCESS not in out, (args, out[-3000:])
        assert "BTCUSDT" in out or code == 2
    assert "quantify status: error: " in out and bucket + "-missing" in out
