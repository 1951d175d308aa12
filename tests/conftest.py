"""Shared fixtures: the bundled sample, recorded fixtures, fresh stores."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from arcticdb.config import set_config_int

from quantify.config import WS_CLIENTS
from quantify.replay.server import ReplayConfig, ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.venues.binance.recordings import read_frames, sample_files

# ArcticDB's first symbol listing of a new library compacts the symbol list under a
# storage lock: it writes the lock, waits StorageLock.WaitMs (1 s) for a rival
# writer's lock to show, then checks it still holds it. Every test store is new,
# so that wait was paid once per library per test (about 5 s for a widget reading
# every library). On local storage a rival's write shows within microseconds. The
# environment variable reaches every subprocess (notebook kernels, CLI runs);
# set_config_int this process, whose ArcticDB read its environment on import.
# S3 tests keep the default (tests/reliability/conftest.py).
STORAGE_LOCK_WAIT = "ARCTICDB_StorageLock_WaitMs_int"
os.environ.setdefault(STORAGE_LOCK_WAIT, "20")
set_config_int("StorageLock.WaitMs", int(os.environ[STORAGE_LOCK_WAIT]))

DATA = Path(__file__).parent / "data"
_counter = itertools.count()


@pytest.fixture
def data_dir() -> Path:
    """Recorded Binance fixtures shipped with the tests (see tests/data/README.md)."""
    return DATA


@pytest.fixture(params=WS_CLIENTS)
def ws_client(request: pytest.FixtureRequest) -> str:
    """Each WebSocket client of the receiver in turn (``IngestConfig.ws_client``): fault and protocol tests
    take it, so that both receive paths reconnect, rotate and refuse alike."""
    return str(request.param)


@pytest.fixture
def lmdb_uri(tmp_path: Path) -> str:
    """URI of a fresh LMDB store in a temporary directory."""
    return f"lmdb://{tmp_path / f'store{next(_counter)}'}"


# -- the bundled sample, synthetic recordings, replay servers ------------------------

@pytest.fixture(scope="session")
def sample_tape() -> Tape:
    """The bundled sample, loaded once (servers of the default config share it)."""
    return Tape(sample_files())


@pytest.fixture(scope="session")
def sample_events() -> dict[str, list[dict[str, Any]]]:
    """The recorded ``trade`` events of the sample, per symbol, in id order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sample_files():
        for _, frame in read_frames(path):
            data = orjson.loads(frame)["data"]
            out.setdefault(data["s"], []).append(data)
    return {s: sorted(v, key=lambda e: e["t"]) for s, v in out.items()}


def write_recording(
    path: Path, trades: list[tuple[int, int, str, str, bool]], symbol: str = "BTCUSDT"
) -> Path:
    """Write ``(id, time ms, price, qty, buyer is maker)`` trades as a recorded file."""
    lines = []
    for tid, t, p, q, m in trades:
        data = {"e": "trade", "E": t + 1, "s": symbol, "t": tid, "p": p, "q": q, "T": t,
                "m": m, "M": True}
        frame = {"stream": f"{symbol.lower()}@trade", "data": data}
        lines.append(f"{(t + 5) * 1_000_000} {orjson.dumps(frame).decode()}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def make_recording(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_recording(trades, symbol=..., name=...)`` -> path."""

    def make(trades: list[tuple[int, int, str, str, bool]], symbol: str = "BTCUSDT",
             name: str = "synthetic.trades") -> Path:
        return write_recording(tmp_path / name, trades, symbol)

    return make


@pytest.fixture
def spaced_recording(make_recording: Callable[..., Path]) -> Path:
    """Ten BTCUSDT trades 1 s apart, ids 100..109, starting 2024-08-09 00:00:00 UTC."""
    t0 = 1_723_161_600_000
    trades = [(100 + i, t0 + 1000 * i, f"{60000 + i}.00000000", "0.10000000", i % 2 == 0)
              for i in range(10)]
    return make_recording(trades)


@pytest.fixture
def replay(sample_tape: Tape) -> Iterator[Callable[..., ReplayThread]]:
    """Factory: ``replay(**config)`` starts a :class:`ReplayThread`, stopped at teardown."""
    started: list[ReplayThread] = []

    def start(**kwargs: Any) -> ReplayThread:
        config = ReplayConfig(**kwargs)
        tape = sample_tape if "files" not in kwargs and not kwargs.get("synthetic_universe") else None
        thread = ReplayThread(server=ReplayServer(config, tape=tape)).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()

