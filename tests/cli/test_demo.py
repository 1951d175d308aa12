"""``quantify demo`` (the README's first command) streams the bundled spot and USD-M recordings."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import quantify as qf
from quantify.cli.demo import StatusLine


def test_demo_streams_spot_and_usdm_into_one_store(tmp_path):
    uri = f"lmdb://{tmp_path / 'demo'}"
    done = subprocess.run(
        [sys.executable, "-m", "quantify", "demo", "--no-dashboard", "--no-browser", "--speed", "0",
         "--duration", "20", "--store", uri],
        capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPLAY" in done.stdout and "Traceback" not in done.stderr
    store = qf.open_store(uri)
    assert store.symbols() == ["BTCUSDT", "ETHUSDT", "binance-usdm:BTCUSDT", "binance-usdm:ETHUSDT"]
    for inst in store.symbols():
        ids = store.ticks(inst)["trade_id"].to_numpy()
        assert len(ids) > 1_000 and (ids[1:] - ids[:-1] == 1).all(), inst
    status = qf.status(store)
    assert status.writer is not None and status.writer.state.value == "stopped"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_status_line_rewrites_one_line_on_a_terminal():
    out = _Stream(tty=True)
    line = StatusLine(out, clock=_Clock())
    for i in range(3):
        assert line.due()
        line.show(f"status {i}")
    line.end()
    assert out.getvalue() == "\r\x1b[Kstatus 0\r\x1b[Kstatus 1\r\x1b[Kstatus 2\n"


def test_status_line_is_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((20, 24)))
    out = _Stream(tty=True)
    StatusLine(out).show("x" * 50)
    assert out.getvalue() == "\r\x1b[K" + "x" * 18 + "…"


def test_status_line_off_a_terminal_is_a_line_every_30_seconds():
    out, clock = _Stream(tty=False), _Clock()
    line = StatusLine(out, clock=clock)
    assert StatusLine.LOG_EVERY == 30.0
    for second in range(0, 91):
        clock.t = float(second)
        if line.due():
            line.show(f"t={second}")
    line.end()
    assert out.getvalue().splitlines() == ["t=0", "t=30", "t=60", "t=90"]
    assert "\r" not in out.getvalue()
