"""``quantify demo`` (the README's first command) streams the bundled spot and USD-M recordings."""

from __future__ import annotations

import subprocess
import sys

import quantify as qf


def test_demo_streams_spot_and_usdm_into_one_store(tmp_path):
    uri = f"lmdb://{tmp_path / 'demo'}"
    done = subprocess.run(
        [sys.executable, "-m", "quantify", "demo", "--no-dashboard", "--no-browser", "--speed", "0",
         "--duration", "12", "--store", uri],
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
