"""Fixtures for alert tests: the bundled recording, cut into writer-like batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from quantify.alerts import AlertEngine
from quantify.store import open_store
from quantify.venues.binance.recordings import read_trades, sample_files

_counter = itertools.count()


@pytest.fixture(scope="session")
def sample() -> dict[str, pd.DataFrame]:
    """BTCUSDT and ETHUSDT spot trades of the bundled sample (2024-08-08 23:54 .. 00:05 UTC)."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in sample_files():
        for sym, frame in read_trades(path).items():
            parts.setdefault(sym, []).append(frame)
    return {sym: pd.concat(fs).sort_values("trade_id", kind="stable") for sym, fs in parts.items()}


def batches(sample: dict[str, pd.DataFrame], seconds: float = 2.0) -> list[dict[str, pd.DataFrame]]:
    """The recording as the writer would append it: every symbol's trades per ``seconds`` of trade time."""
    start = min(f.index[0] for f in sample.values()).floor("s")
    end = max(f.index[-1] for f in sample.values())
    out = []
    t = start
    step = pd.Timedelta(seconds=seconds)
    while t <= end:
        chunk = {s: f[(f.index >= t) & (f.index < t + step)] for s, f in sample.items()}
        chunk = {s: f for s, f in chunk.items() if len(f)}
        if chunk:
            out.append(chunk)
        t += step
    return out


def feed(store, engine: AlertEngine | None, chunks) -> None:
    """Append each batch to the store, then hand it to the engine (the writer's order)."""
    for chunk in chunks:
        store.append_ticks(chunk)
        if engine is not None:
            engine(chunk)


@pytest.fixture
def store(tmp_path: Path):
    """A fresh in-memory store (the crash test also runs on LMDB)."""
    return open_store(f"mem://alerts-{tmp_path.name}-{next(_counter)}")


@pytest.fixture
def make_engine() -> Iterator:
    engines: list[AlertEngine] = []

    def make(store, **kwargs) -> AlertEngine:
        kwargs.setdefault("log_alerts", False)
        kwargs.setdefault("poll_interval", 0.0)
        engine = AlertEngine(store, **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispatcher.close(1.0)
