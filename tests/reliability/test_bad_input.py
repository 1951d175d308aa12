"""Every command, given bad symbols, timeframes, dates, store URIs or files:
one clear error line on stderr, exit code 2, never a traceback.

Invocations run through ``quantify.cli.main`` in this process (what
``python -m quantify`` calls), which catches exactly what a subprocess
would show as a traceback; one subprocess run checks that path end to end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quantify.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    garbage = root / "garbage.trades.gz"
    garbage.write_bytes(b"\x1f\x8bnot really gzip")
    text = root / "notes.txt"
    text.write_text("hello\n")
    store = root / "store"
    from quantify.venues.binance.recordings import sample_files

    main(["load", "--store", f"lmdb://{store}", "--no-progress", str(sample_files()[0])])
    return {"store": f"lmdb://{store}", "garbage": str(garbage), "text": str(text), "dir": str(root)}


CASES = {
    "status: unknown scheme": ["status", "--store", "ftp://host/x"],
    "status: malformed s3": ["status", "--store", "s3://nobucket"],
    "status: store path is a file": ["status", "--store", "{text}"],
    "ingest: bad symbol": ["ingest", "--store", "{store}", "--symbols", "BTC-USDT", "--duration", "1"],
    "ingest: no symbol": ["ingest", "--store", "{store}", "--symbols", ",", "--duration", "1"],
    "ingest: bad stream": ["ingest", "--store", "{store}", "--stream", "bookTicker"],
    "ingest: negative duration": ["ingest", "--store", "{store}", "--duration", "-5"],
    "ingest: bad ws url": ["ingest", "--store", "{store}", "--ws-url", "http://x", "--duration", "1"],
    "ingest: zero lease ttl": ["ingest", "--store", "{store}", "--lease-ttl", "0", "--duration", "1"],
    "ingest: duration not a number": ["ingest", "--duration", "soon"],
    "export: bad timeframe": ["export", "BTCUSDT", "--store", "{store}", "--kind", "ohlcv", "--timeframe", "7x",
                              "-o", "{dir}/o.csv"],
    "export: unknown symbol": ["export", "NOPEUSDT", "--store", "{store}", "-o", "{dir}/o.csv"],
    "export: bad symbol": ["export", "BTC/USDT", "--store", "{store}", "-o", "{dir}/o.csv"],
    "export: bad date": ["export", "BTCUSDT", "--store", "{store}", "--start", "the day after", "-o", "{dir}/o.csv"],
    "export: end before start": ["export", "BTCUSDT", "--store", "{store}", "--start", "2024-08-09",
                                 "--end", "2024-08-08", "-o", "{dir}/o.csv"],
    "export: bad store": ["export", "BTCUSDT", "--store", "ftp://x", "-o", "{dir}/o.csv"],
    "load: missing file": ["load", "--store", "{store}", "--no-progress", "{dir}/missing.gz"],
    "load: garbage file": ["load", "--store", "{store}", "--no-progress", "{garbage}"],
    "load: text file": ["load", "--store", "{store}", "--no-progress", "{text}"],
    "replay: missing file": ["replay", "{dir}/missing.gz"],
    "replay: negative speed": ["replay", "--speed", "-1"],
    "replay: bad port": ["replay", "--port", "70000"],
    "backfill: bad date": ["backfill", "BTCUSDT", "--store", "{store}", "--start", "nope", "--end", "now"],
    "backfill: bad symbol": ["backfill", "BTC USDT", "--store", "{store}", "--start", "-1h", "--end", "now"],
    "alerts: unknown rule id": ["alerts", "remove", "--store", "{store}", "does-not-exist"],
    "unknown command": ["frobnicate"],
}




@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_one_line_exit_2(name: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**env) for a in CASES[name]]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, f"{argv}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err + out
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, f"{argv}: expected one error line, got:\n{err}"


def test_python_m_quantify_reports_one_line(env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "quantify", "export", "NOPEUSDT", "--store", env["store"],
                           "-o", str(Path(env["dir"]) / "o.csv")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "NOPEUSDT" in proc.stderr
