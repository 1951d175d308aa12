"""``deploy/quantify-ingest.service``: a valid unit, and what it relies on: SIGTERM flushes, within its stop timeout.

The unit runs ``quantify ingest`` with the store and symbols from its
EnvironmentFile and stops it with SIGTERM, waiting ``TimeoutStopSec`` before
SIGKILL. The second test does what systemd does, on the replay: the
environment of ``deploy/ingest.env.example`` (the store from
``QUANTIFY_STORE``), trades held in memory between appends (a batch size
never reached, an append every few seconds), then SIGTERM.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import stored_ids, wait_for

from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store.status import writer_status

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "quantify-ingest.service"
ENV_EXAMPLE = DEPLOY / "ingest.env.example"
#: Where the unit expects the ``quantify`` command (a checkout in /opt/quantify).
INSTALLED = "/opt/quantify/.venv/bin/quantify"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
#: Seconds between two appends of the writer under test (``--flush-interval``).
FLUSH_SECONDS = 5


def _service() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(UNIT)
    return unit["Service"]


def _env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an EnvironmentFile (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_the_unit_says_how_the_service_runs_and_stops() -> None:
    service = _service()
    assert service["ExecStart"].split()[:2] == [INSTALLED, "ingest"]
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["User"] == "quantify" and service["EnvironmentFile"] == "/etc/quantify/ingest.env"
    assert "2" in service["RestartPreventExitStatus"].split()  # a refusal is not retried
    assert set(_env_file(ENV_EXAMPLE)) >= {"QUANTIFY_STORE", "QUANTIFY_SYMBOLS"}


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at this environment's quantify
    here = Path(sys.executable).parent / "quantify"
    assert here.is_file(), here
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(here)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if UNIT.name in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def test_sigterm_stores_every_received_trade_within_the_stop_timeout(lmdb_uri: str, tmp_path: Path) -> None:
    stop_timeout = float(_service()["TimeoutStopSec"])
    log = tmp_path / "ingest.log"
    with ReplayThread(ReplayConfig(speed=20.0, loop=True)) as replay:
        env = dict(os.environ, **_env_file(ENV_EXAMPLE))
        env.update(QUANTIFY_STORE=lmdb_uri, QUANTIFY_SYMBOLS=",".join(SYMBOLS),
                   QUANTIFY_WS_URL=replay.ws_url, QUANTIFY_REST_URL=replay.rest_url)
        # an append (and a published status) every FLUSH_SECONDS only: the trades received
        # since the last one are in memory when SIGTERM comes, and the stop must store them
        proc = subprocess.Popen([sys.executable, "-m", "quantify", "ingest", "--batch-size", "100000000",
                                 "--flush-interval", str(FLUSH_SECONDS)],
                                env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        try:
            def received() -> int:
                status = writer_status(lmdb_uri) if Path(lmdb_uri.removeprefix("lmdb://")).exists() else None
                return 0 if status is None else status.trades_received

            assert wait_for(lambda: received() >= 500, 120), log.read_text()[-3000:]
            stored_before = sum(len(stored_ids(lmdb_uri, s)) for s in SYMBOLS)
            proc.send_signal(signal.SIGTERM)  # a fraction of a second after an append
            started = time.monotonic()
            out, _ = proc.communicate(timeout=stop_timeout)  # what systemd waits before SIGKILL
            stopped_in = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    final = writer_status(lmdb_uri)
    assert final is not None and final.trades_received >= 500
    assert final.trades_stored == final.trades_received, (final.trades_stored, final.trades_received)
    ids = {s: stored_ids(lmdb_uri, s) for s in SYMBOLS}
    assert sum(len(v) for v in ids.values()) == final.trades_stored
    assert final.trades_stored > stored_before, "the stop appended nothing: no trade was held"
    for symbol, got in ids.items():  # one unbroken run of trade ids each
        assert got == list(range(got[0], got[0] + len(got))), symbol
    assert f"stopped; {final.trades_stored} trades stored" in out, out
    print(f"SIGTERM to exit: {stopped_in:.2f} s (TimeoutStopSec={stop_timeout:.0f}); "
          f"{final.trades_stored - stored_before} of {final.trades_stored} trades appended at the stop")
