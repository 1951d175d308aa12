"""Helpers of the ingestion tests: waiting for a condition, the ids a store holds."""

from __future__ import annotations

import time
from collections.abc import Callable

from quantify.exceptions import StoreNotFoundError
from quantify.store import Store, open_store


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def reader(uri: str) -> Store | None:
    """The store at ``uri`` opened to read, or ``None`` while its writer (another process) has not made it."""
    try:
        return open_store(uri)
    except StoreNotFoundError:
        return None


def last_trades(uri: str) -> dict:
    """``Store.last_trades`` of the store at ``uri`` ({} while there is no store yet)."""
    store = reader(uri)
    return {} if store is None else store.last_trades()


def stored_ids(uri: str, key: str) -> list[int]:
    """Trade ids of instrument ``key`` in the store at ``uri`` ([] if it has none)."""
    store = reader(uri)
    if store is None or key not in store.symbols():
        return []
    return store.ticks(key)["trade_id"].tolist()
