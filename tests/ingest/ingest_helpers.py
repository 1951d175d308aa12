"""Helpers of the ingestion tests: waiting for a condition, the ids a store holds."""

from __future__ import annotations

import time
from collections.abc import Callable

from quantify.store import open_store


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def stored_ids(uri: str, key: str) -> list[int]:
    """Trade ids of instrument ``key`` in the store at ``uri`` ([] if it has none)."""
    store = open_store(uri)
    if key not in store.symbols():
        return []
    return store.ticks(key)["trade_id"].tolist()
