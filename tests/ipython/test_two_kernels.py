"""Two real Jupyter kernels load the extension on one store: exactly one writes.

Each kernel is a separate process started by jupyter_client, configured the
way a user's kernel is (``QUANTIFY_*`` environment variables), and both run
``%load_ext quantify`` at the same moment against the replay server.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from jupyter_client.manager import start_new_kernel

from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store

BTC = ("BTCUSDT", 3735683259, 3735703162)
ETH = ("ETHUSDT", 1520538925, 1520553439)
MODE = "__import__('quantify.ipython').ipython.current_session().mode"
STORED = "__import__('quantify.ipython').ipython.current_session().service.stats.stored"


def _reply(kc, msg_id: str, timeout: float = 60.0) -> dict:
    while True:
        msg = kc.get_shell_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]


def _expr(kc, expr: str) -> str:
    content = _reply(kc, kc.execute("", user_expressions={"v": expr}))
    value = content["user_expressions"]["v"]
    assert value["status"] == "ok", value
    return value["data"]["text/plain"].strip("'")


@pytest.mark.timeout(180)
def test_two_kernels_one_writer_and_every_trade_once(tmp_path: Path) -> None:
    uri = f"lmdb://{tmp_path}/store"
    with ReplayThread(ReplayConfig(speed=60)) as replay:
        env = {**os.environ, "QUANTIFY_STORE": uri, "QUANTIFY_WS_URL": replay.ws_url,
               "QUANTIFY_REST_URL": replay.rest_url, "QUANTIFY_SYMBOLS": "BTCUSDT,ETHUSDT"}
        kernels = [start_new_kernel(kernel_name="python3", env=env, startup_timeout=90) for _ in range(2)]
        try:
            # Both load at the same moment: the writer lock decides, not the order.
            ids = [kc.execute("%load_ext quantify") for _, kc in kernels]
            for (_, kc), msg_id in zip(kernels, ids):
                assert _reply(kc, msg_id)["status"] == "ok"
            modes = [_expr(kc, MODE) for _, kc in kernels]
            assert sorted(modes) == ["reader", "writer"], modes
            (writer_km, writer_kc), (_, reader_kc) = kernels if modes[0] == "writer" else kernels[::-1]
            # the whole recording reaches the writer (speed 60: about 10 s)
            t0 = time.monotonic()
            while int(_expr(writer_kc, STORED)) < 19_904 + 14_515 and time.monotonic() - t0 < 120:
                time.sleep(0.5)
            assert _expr(reader_kc, MODE) == "reader"
            writer_kc.stop_channels()
            t0 = time.monotonic()
            writer_km.shutdown_kernel(now=False)  # the kernel's own shutdown flushes and releases
            shutdown_s = time.monotonic() - t0
            assert not writer_km.is_alive()
        finally:
            for km, kc in kernels:
                kc.stop_channels()
                if km.is_alive():
                    km.shutdown_kernel(now=True)
    store = open_store(uri)
    status = store.read_status()
    assert status is not None and status["state"] == "stopped", status
    for sym, first, last in (BTC, ETH):
        ids = store.ticks(sym)["trade_id"].to_numpy()
        assert len(ids) == last - first + 1, (sym, len(ids))
        assert ids[0] == first and ids[-1] == last and (np.diff(ids) == 1).all()
    # the status "stopped" was published by the writer kernel's own shutdown
    print(f"two kernels: modes {modes}; writer kernel shut down in {shutdown_s:.1f} s; "
          f"{19_904 + 14_515:,} trades stored once each")
