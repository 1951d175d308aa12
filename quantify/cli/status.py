"""``quantify status``: what is in the store and what its writer is doing."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from quantify.cli._common import add_store_argument, store_from_args

#: A writer whose last heartbeat is older than this is reported as not alive.
HEARTBEAT_STALE_SECONDS = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status", help="per-symbol rows, first/last trade, gaps, writer state",
        description="Show, per symbol, rows, first and last trade time and id, gaps found and "
                    "filled; and whether a writer is alive, its ticks/s, reconnects and errors.",
    )
    add_store_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON document (for monitoring)")
    p.set_defaults(func=run)


def _symbol_row(sym: str, d: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:
    """One symbol's line: what the store holds (``d``) and its writer's counters (``w``)."""
    return {
        "symbol": sym,
        "rows": d["rows"],
        "first_time": d["first_time"].isoformat() if d["first_time"] is not None else None,
        "last_time": d["last_time"].isoformat() if d["last_time"] is not None else None,
        "first_id": d["first_id"],
        "last_id": d["last_id"],
        "gaps_found": w.get("gaps_found", 0),
        "gaps_filled": w.get("gaps_filled", 0),
        "gaps_unfilled": w.get("gaps_unfilled", 0),
        "duplicates_dropped": w.get("duplicates_dropped", 0),
    }


def collect(uri: str | None) -> dict[str, Any]:
    """Gather the status of the store at ``uri`` as plain data."""
    from quantify.store import open_store
    from quantify.store.lease import writer_alive

    store = open_store(uri)
    if store.uri.scheme in ("s3", "s3s"):
        return _collect_shared(store)
    writer = store.read_status() or {}
    heartbeat_age = time.time() - writer["heartbeat"] if "heartbeat" in writer else None
    if store.uri.path is not None:
        alive = writer_alive(store.uri.path)
    else:
        alive = heartbeat_age is not None and heartbeat_age < HEARTBEAT_STALE_SECONDS
    per_writer = writer.get("symbols", {})
    symbols = []
    for sym in store.symbols():
        d = store.describe(sym)
        w = per_writer.get(sym, {})
        symbols.append(_symbol_row(sym, d, w))
    return {
        "store": str(store.uri),
        "writer_alive": alive,
        "writer": writer.get("writer"),
        "writer_state": writer.get("state") if alive else ("stopped" if writer else None),
        "heartbeat_age_s": None if heartbeat_age is None else round(heartbeat_age, 1),
        "ticks_per_second": writer.get("ticks_per_second", 0.0) if alive else 0.0,
        "counters": _counters(writer),
        "symbols": symbols,
    }


_COUNTERS = (
    "frames", "trades_received", "trades_stored", "malformed_frames", "reconnects",
    "server_shutdowns", "rotations", "backfilled", "journal_recovered",
    "rest_requests", "rest_rate_limited", "rest_errors", "store_errors", "appends",
    "compactions", "store_latency_ms", "listener_errors", "alerts_rules", "alerts_fired",
    "alerts_delivered", "alerts_delivery_failed", "alerts_delivery_dropped",
    "alerts_latency_ms_max", "lease_errors",
)


def _counters(writer: dict[str, Any]) -> dict[str, Any]:
    return {k: writer[k] for k in _COUNTERS if k in writer}


def _collect_shared(store: Any) -> dict[str, Any]:
    """Status of a sharded (S3) store: every worker, and each symbol's owner and lease age."""
    from quantify.store.shard import read_leases

    now = time.time()
    leases = {lease.symbol: lease for lease in read_leases(store)}
    statuses = store.worker_statuses()
    workers = []
    for owner, w in statuses.items():
        held = [s for s, lease in leases.items() if lease.owner == owner and lease.alive(now)]
        age = now - w["heartbeat"] if "heartbeat" in w else None
        alive = bool(held) or (age is not None and age < HEARTBEAT_STALE_SECONDS
                               and w.get("state") not in ("stopped",))
        if not alive and (age is None or age > 86_400):
            continue  # long-gone workers are not worth a line
        workers.append({
            "owner": owner, "alive": alive, "writer": w.get("writer"),
            "state": w.get("state") if alive else "stopped",
            "heartbeat_age_s": None if age is None else round(age, 1),
            "ticks_per_second": w.get("ticks_per_second", 0.0) if alive else 0.0,
            "owned": held, "skipped": w.get("skipped", {}),
            "counters": _counters(w),
        })
    symbols = []
    stored = set(store.symbols())
    for sym in sorted(stored | set(leases)):
        lease = leases.get(sym)
        d: dict[str, Any] = store.describe(sym) if sym in stored else {
            "rows": 0, "first_time": None, "last_time": None, "first_id": None, "last_id": None}
        w = statuses.get(lease.owner, {}).get("symbols", {}).get(sym, {}) if lease else {}
        symbols.append({
            **_symbol_row(sym, d, w),
            "owner": lease.owner if lease else None,
            "lease_alive": lease.alive(now) if lease else False,
            "lease_age_s": lease.as_dict(now)["lease_age_s"] if lease else None,
            "lease_expires_in_s": lease.as_dict(now)["expires_in_s"] if lease else None,
        })
    live = [w for w in workers if w["alive"]]
    return {
        "store": str(store.uri),
        "sharded": True,
        "writer_alive": bool(live),
        "writer": "; ".join(w["writer"] or w["owner"] for w in live) or None,
        "writer_state": ",".join(sorted({w["state"] for w in live})) or None,
        "heartbeat_age_s": min((w["heartbeat_age_s"] for w in live if w["heartbeat_age_s"] is not None),
                               default=None),
        "ticks_per_second": round(sum(w["ticks_per_second"] for w in live), 1),
        "counters": {},
        "workers": workers,
        "symbols": symbols,
    }


def render(status: dict[str, Any]) -> str:
    """The human-readable table of :func:`collect`'s result."""
    lines = [f"store   {status['store']}"]
    if status.get("sharded"):
        return _render_shared(status, lines)
    if status["writer_alive"]:
        lines.append(f"writer  alive, {status['writer_state']}: {status['writer']}")
        lines.append(f"        {status['ticks_per_second']:.0f} ticks/s, heartbeat {status['heartbeat_age_s']} s ago")
    else:
        lines.append("writer  none running" + (f" (last: {status['writer']})" if status["writer"] else ""))
    c = status["counters"]
    if c:
        lines.append("        " + ", ".join(f"{k} {v}" for k, v in c.items() if k != "store_latency_ms"))
    header = f"{'symbol':<10} {'rows':>10} {'first trade (UTC)':<26} {'last trade (UTC)':<26} {'last id':>12} {'gaps':>5} {'filled':>6}"
    lines += ["", header, "-" * len(header)]
    for s in status["symbols"]:
        lines.append(
            f"{s['symbol']:<10} {s['rows']:>10} {str(s['first_time'])[:26]:<26} {str(s['last_time'])[:26]:<26} "
            f"{s['last_id']!s:>12} {s['gaps_found']:>5} {s['gaps_filled']:>6}"
        )
    if not status["symbols"]:
        lines.append("(no symbols yet)")
    return "\n".join(lines)


def _render_shared(status: dict[str, Any], lines: list[str]) -> str:
    if not status["workers"]:
        lines.append("workers none running")
    for w in status["workers"]:
        state = f"alive, {w['state']}" if w["alive"] else "stopped"
        lines.append(f"worker  {w['owner']}: {state}, {w['ticks_per_second']:.0f} ticks/s, "
                     f"heartbeat {w['heartbeat_age_s']} s ago, owns {','.join(w['owned']) or 'nothing'}")
        c = w["counters"]
        if c:
            lines.append("        " + ", ".join(f"{k} {v}" for k, v in c.items() if k != "store_latency_ms"))
    header = (f"{'symbol':<10} {'rows':>10} {'last trade (UTC)':<26} {'last id':>12} {'gaps':>5} "
              f"{'owner':<28} {'lease age':>9}")
    lines += ["", header, "-" * len(header)]
    for s in status["symbols"]:
        owner = s["owner"] or "-"
        if s["owner"] and not s["lease_alive"]:
            owner += " (expired)"
        age = "-" if s["lease_age_s"] is None else f"{s['lease_age_s']:.0f} s"
        lines.append(f"{s['symbol']:<10} {s['rows']:>10} {str(s['last_time'])[:26]:<26} {s['last_id']!s:>12} "
                     f"{s['gaps_found']:>5} {owner:<28} {age:>9}")
    if not status["symbols"]:
        lines.append("(no symbols yet)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    status = collect(store_from_args(args))
    print(json.dumps(status, indent=2, default=str) if args.json else render(status))
    return 0
