"""Security: loopback by default, stripped dashboards, no redirects, bounded frames.

Each test checks one promise of the README's security notes:

- servers bind 127.0.0.1 unless told otherwise, and say so when told;
- Voilà serves the dashboards with sources stripped and without tracebacks,
  and no dashboard or widget code evaluates input or reaches a shell;
  its CSV export is a ``data:`` link built in memory, not a file on the server;
- the REST client never follows a redirect (off the configured host or not);
- a WebSocket frame above the configured size closes that connection
  (counted, reconnected), it never reaches the parser or crashes the service.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import time
from pathlib import Path

import httpx
import pytest

import quantify
from quantify.cli.dashboard import serve_dashboard
from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.feed.replay import ReplayConfig, ReplayThread
from quantify.feed.rest import BinanceRest, RestConfig
from quantify.ingest.service import IngestService

PACKAGE = Path(quantify.__file__).parent
DASHBOARDS = PACKAGE.parent / "dashboards"


def test_replay_binds_loopback_by_default_and_warns_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    assert ReplayConfig().host == "127.0.0.1"
    with caplog.at_level(logging.WARNING, logger="quantify.feed.replay"), \
            ReplayThread(ReplayConfig(host="0.0.0.0", speed=0)):
        pass
    assert any("non-loopback host 0.0.0.0" in r.getMessage() for r in caplog.records)


def test_no_eval_exec_or_shell_in_what_dashboards_run() -> None:
    """The widget and dashboard code has no dynamic evaluation and starts no process."""
    forbidden_calls = {"eval", "exec", "compile", "__import__", "system", "popen", "Popen", "run",
                       "check_output", "call"}
    sources = {p: p.read_text() for p in (PACKAGE / "widgets").glob("*.py")}
    for nb in DASHBOARDS.glob("*.ipynb"):
        import json

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
            status = service.status()
        finally:
            service.join(30)
    assert status["state"] == "running" and status["reconnects"] >= 3
    assert status["trades_received"] == 0  # nothing above the limit reached the parser
    assert re.match(r"^\d+$", str(status["frames"])) and status["frames"] == 0
