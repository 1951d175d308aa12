"""What ``status`` needs of many instruments at once, in a few batched reads.

:meth:`Store.describe` reads one instrument: its ticks' head, tail and
description, and every book and perpetual library, each a separate request
(on S3 a round trip each: some 15 per instrument, several seconds for 300
instruments). :func:`describe_many` gives the part of it ``status`` shows
(rows, first/last trade time and id, perpetual rows) for many instruments
with one ``get_description_batch`` and one ``read_batch`` on the ticks, and
one listing plus one description batch per perpetual library; an instrument
whose batched read fails (a version pruned meanwhile) is read alone through
:meth:`Store.describe`, which retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from arcticdb.version_store.library import DataError, ReadRequest

from quantify.store._libraries import TICKS
from quantify.store.perp import LIBRARIES, ROW_COUNT_NAMES

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = ["describe_many", "perp_keys"]


def _ok(item: Any) -> bool:
    return not isinstance(item, DataError)


def perp_keys(store: Store) -> set[str]:
    """Instruments with any perpetual data stored (one listing per perpetual library)."""
    out: set[str] = set()
    present = set(store._arctic.list_libraries())  # a reader creates no library
    for name in LIBRARIES.values():
        if name in present:
            out.update(store.library(name).list_symbols())
    return out


def describe_many(store: Store, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Rows, first/last trade time and id, and perpetual row counts of each of ``keys``.

    Parameters
    ----------
    store : Store
    keys : sequence of str
        Instruments with ticks in the store.

    Returns
    -------
    dict
        Per key, the fields of :meth:`Store.describe` that ``status`` reads:
        ``rows``, ``first_time``, ``last_time``, ``first_id``, ``last_id`` and
        ``mark_rows``, ``funding_rows``, ``open_interest_rows``, ``liquidation_rows``.
    """
    keys = list(keys)
    if not keys:
        return {}
    ticks = store.library(TICKS)
    out: dict[str, dict[str, Any]] = {}
    retry: list[str] = []
    rows: dict[str, int] = {}
    for key, desc in zip(keys, ticks.get_description_batch(keys), strict=True):
        if _ok(desc):
            rows[key] = int(desc.row_count)
        else:
            retry.append(key)
    readable = [k for k in keys if rows.get(k)]
    requests = [ReadRequest(k, row_range=(0, 1), columns=["trade_id"]) for k in readable]
    requests += [ReadRequest(k, row_range=(rows[k] - 1, rows[k]), columns=["trade_id"]) for k in readable]
    items = ticks.read_batch(requests) if requests else []
    heads, tails = items[:len(readable)], items[len(readable):]
    for key, head, tail in zip(readable, heads, tails, strict=True):
        if not (_ok(head) and _ok(tail)) or head.data.empty or tail.data.empty:
            retry.append(key)
            continue
        out[key] = {
            "symbol": key, "rows": rows[key],
            "first_time": head.data.index[0], "last_time": tail.data.index[-1],
            "first_id": int(head.data["trade_id"].iloc[0]), "last_id": int(tail.data["trade_id"].iloc[-1]),
        }
    for key in keys:
        if key in rows and not rows[key] and key not in out:
            out[key] = {"symbol": key, "rows": 0, "first_time": None, "last_time": None,
                        "first_id": None, "last_id": None}
    perp = {key: dict.fromkeys(ROW_COUNT_NAMES.values(), 0) for key in keys}
    libraries = set(store._arctic.list_libraries())
    for kind, name in LIBRARIES.items():
        if name not in libraries:
            continue
        lib = store.library(name)
        present = sorted(set(lib.list_symbols()) & set(keys))
        for key, desc in zip(present, lib.get_description_batch(present) if present else [], strict=True):
            if _ok(desc):
                perp[key][ROW_COUNT_NAMES[kind]] = int(desc.row_count)
            elif key not in retry:
                retry.append(key)
    for key in out:
        out[key].update(perp[key])
    for key in retry:
        out[key] = store.describe(key)
    return {key: out[key] for key in keys if key in out}
