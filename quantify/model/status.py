"""Status records: what a writer does, and what a store holds, as typed values.

Three frozen records, each with ``summary()`` (the text ``quantify status``
prints), ``_repr_html_`` (a table for notebooks) and ``to_dict()`` /
``from_dict()``:

:class:`InstrumentStatus`
    One instrument: rows, first/last trade, last id, gaps found/filled.
:class:`WriterStatus`
    One ingestion service (the store's writer, or one worker of a sharded
    store): state, counters, its instruments, its leases, its listeners.
    The writer publishes ``to_dict()`` into the store every second.
:class:`StoreStatus`
    A store: its writer(s) and every stored instrument; what
    :func:`quantify.status` returns. ``to_dict()`` is the JSON document of
    ``quantify status --json``.

``from_dict`` is tolerant in both directions: keys it does not know are
ignored (a newer writer published them) and missing ones take their
defaults (an older writer did not publish them), so a reader never fails on
a status another version of QuantiFy wrote. Instrument keys are opaque text
(``BTCUSDT``, ``binance-usdm:BTCUSDT``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from quantify.model._status_fields import esc as _esc
from quantify.model._status_fields import html_table as _html_table
from quantify.model._status_fields import iso as _iso
from quantify.model._status_fields import opt_float as _opt_float
from quantify.model._status_fields import opt_int as _opt_int
from quantify.model._status_fields import opt_str as _opt_str
from quantify.model._status_fields import opt_time as _time
from quantify.model._status_fields import to_float as _float
from quantify.model._status_fields import to_int as _int
from quantify.model.book_status import BookStatus
from quantify.model.endpoints import EndpointState, EndpointStatus
from quantify.model.latency import LatencyHistogram
from quantify.model.perp_status import PerpStatus

__all__ = ["InstrumentStatus", "StoreStatus", "WriterState", "WriterStatus", "is_replay_url"]

#: Counters of a writer that ``quantify status`` lists (when published), in this order.
COUNTERS = (
    "frames", "trades_received", "trades_stored", "malformed_frames", "reconnects",
    "server_shutdowns", "rotations", "backfilled", "journal_recovered",
    "rest_requests", "rest_rate_limited", "rest_errors", "store_errors", "appends",
    "compactions", "store_latency_ms", "listener_errors", "alerts_rules", "alerts_fired",
    "alerts_delivered", "alerts_delivery_failed", "alerts_delivery_dropped",
    "alerts_latency_ms_max", "lease_errors",
)

#: Prefixes of listener statistics in status dicts published before ``listeners`` was nested.
_LISTENER_PREFIXES = ("alerts_", "candle_")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class WriterState(str, Enum):
    """Lifecycle of the ingestion service."""

    STARTING = "starting"
    RECOVERING = "recovering"
    RUNNING = "running"
    DEGRADED = "degraded"  # the store refuses writes; trades wait in memory and the journal
    STOPPING = "stopping"
    STOPPED = "stopped"


def is_replay_url(ws_url: str | None) -> bool:
    """True if ``ws_url`` points at a loopback server (the replay server), not Binance."""
    if not ws_url:
        return False
    return (urlsplit(ws_url).hostname or "") in _LOOPBACK


# -- tolerant conversions ------------------------------------------------------


def _state(value: Any) -> WriterState:
    try:
        return WriterState(value)
    except ValueError:
        return WriterState.STOPPED  # a state this version does not know: not one it can trust as running



# -- records ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentStatus:
    """One instrument: what the store holds of it and what its writer counted.

    Attributes
    ----------
    instrument : str
        The instrument key (``BTCUSDT``, ``binance-usdm:BTCUSDT``), opaque text.
    rows : int
        Rows stored (in a writer's own report: what it found stored when it
        resumed the instrument plus what it stored since).
    rows_this_run : int
        Rows the writer stored since it started.
    first_time, last_time : pandas.Timestamp or None
        First and last stored trade time (UTC).
    first_id, last_id : int or None
        First and last stored trade id.
    gaps_found, gaps_filled, gaps_open, gaps_unfilled : int
        Id gaps the writer saw, filled over REST, still pending, given up on.
    trades_lost, duplicates_dropped, pending : int
        Trades in unfilled gaps; duplicates dropped by id; trades waiting to be stored.
    trades_received : int
        Trades of the instrument the writer received from the stream this run
        (backfilled and journaled ones are not counted).
    owner, lease_alive, lease_age_s, lease_expires_in_s
        Sharded stores: the worker owning the instrument and the age of its lease.
    perp_rows : dict of str to int
        A perpetual's stored rows per kind that has any (``mark``, ``funding``,
        ``open_interest``, ``liquidations``); empty for a spot instrument.
    """

    instrument: str
    rows: int = 0
    rows_this_run: int = 0
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    first_id: int | None = None
    last_id: int | None = None
    gaps_found: int = 0
    gaps_filled: int = 0
    gaps_open: int = 0
    gaps_unfilled: int = 0
    trades_lost: int = 0
    duplicates_dropped: int = 0
    pending: int = 0
    trades_received: int = 0
    owner: str | None = None
    lease_alive: bool = False
    lease_age_s: float | None = None
    lease_expires_in_s: float | None = None
    perp_rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The form a writer publishes per instrument (``status["symbols"][key]``)."""
        last_ms = None if self.last_time is None else int(self.last_time.value // 1_000_000)
        first_ms = None if self.first_time is None else int(self.first_time.value // 1_000_000)
        return {
            "rows": self.rows, "first_id": self.first_id, "first_time_ms": first_ms,
            "rows_this_run": self.rows_this_run, "last_id": self.last_id, "last_time_ms": last_ms,
            "gaps_found": self.gaps_found, "gaps_filled": self.gaps_filled, "gaps_open": self.gaps_open,
            "gaps_unfilled": self.gaps_unfilled, "trades_lost": self.trades_lost,
            "duplicates_dropped": self.duplicates_dropped, "pending": self.pending,
            "trades_received": self.trades_received,
        }

    def to_row(self, *, sharded: bool = False) -> dict[str, Any]:
        """One line of ``quantify status --json``'s ``symbols`` list."""
        row: dict[str, Any] = {
            "symbol": self.instrument, "rows": self.rows,
            "first_time": _iso(self.first_time), "last_time": _iso(self.last_time),
            "first_id": self.first_id, "last_id": self.last_id,
            "gaps_found": self.gaps_found, "gaps_filled": self.gaps_filled,
            "gaps_unfilled": self.gaps_unfilled, "duplicates_dropped": self.duplicates_dropped,
        }
        if sharded:
            row.update(owner=self.owner, lease_alive=self.lease_alive, lease_age_s=self.lease_age_s,
                       lease_expires_in_s=self.lease_expires_in_s)
        if self.perp_rows:
            row["perp_rows"] = dict(self.perp_rows)
        return row

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], instrument: str | None = None) -> InstrumentStatus:
        """Read either form (:meth:`to_dict` or :meth:`to_row`); unknown keys are ignored."""
        key = instrument if instrument is not None else str(data.get("symbol", data.get("instrument", "")))
        last = _time(data["last_time_ms"], unit="ms") if data.get("last_time_ms") is not None \
            else _time(data.get("last_time"))
        first = _time(data["first_time_ms"], unit="ms") if data.get("first_time_ms") is not None \
            else _time(data.get("first_time"))
        return cls(
            instrument=key, rows=_int(data.get("rows")), rows_this_run=_int(data.get("rows_this_run")),
            first_time=first, last_time=last,
            first_id=_opt_int(data.get("first_id")), last_id=_opt_int(data.get("last_id")),
            gaps_found=_int(data.get("gaps_found")), gaps_filled=_int(data.get("gaps_filled")),
            gaps_open=_int(data.get("gaps_open")), gaps_unfilled=_int(data.get("gaps_unfilled")),
            trades_lost=_int(data.get("trades_lost")), duplicates_dropped=_int(data.get("duplicates_dropped")),
            pending=_int(data.get("pending")), trades_received=_int(data.get("trades_received")),
            owner=_opt_str(data.get("owner")),
            lease_alive=bool(data.get("lease_alive", False)), lease_age_s=_opt_float(data.get("lease_age_s")),
            lease_expires_in_s=_opt_float(data.get("lease_expires_in_s")),
            perp_rows={str(k): _int(v) for k, v in (data["perp_rows"] if isinstance(data.get("perp_rows"), Mapping)
                                                     else {}).items()},
        )

    def summary(self) -> str:
        """One line: rows, last trade, last id, gaps."""
        return (f"{self.instrument}: {self.rows:,} rows, last trade {self.last_time}, last id {self.last_id}, "
                f"gaps {self.gaps_found} found, {self.gaps_filled} filled, {self.gaps_open} open")

    def _repr_html_(self) -> str:
        row = self.to_row(sharded=self.owner is not None)
        return _html_table(list(row), [list(row.values())])


@dataclass(frozen=True)
class WriterStatus:
    """What one ingestion service is doing, as it publishes it every second.

    The attributes are the keys of :meth:`to_dict` (``instruments`` is
    published as ``symbols``, ``listeners`` flattened into the top level as
    well). ``alive`` is not published: :func:`quantify.status` sets it from the
    writer lock, the leases or the heartbeat's age; it is ``None`` in a
    service's own report.
    """

    state: WriterState = WriterState.STOPPED
    writer: str | None = None
    pid: int | None = None
    host: str | None = None
    heartbeat: float | None = None
    started: float | None = None
    store: str = ""
    stream: str = ""
    ws_url: str = ""
    connections: int = 0
    ticks_per_second: float = 0.0
    store_latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p99": None})
    #: Every receipt-to-stored latency of the run, in buckets (published as ``store_latency_seconds``).
    store_latency_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    frames: int = 0
    trades_received: int = 0
    trades_stored: int = 0
    malformed_frames: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    server_shutdowns: int = 0
    rotations: int = 0
    journal_recovered: int = 0
    journal_errors: int = 0
    backfilled: int = 0
    rest_requests: int = 0
    rest_rate_limited: int = 0
    rest_errors: int = 0
    store_errors: int = 0
    listener_errors: int = 0
    appends: int = 0
    compactions: int = 0
    degraded_reason: str | None = None
    instruments: dict[str, InstrumentStatus] = field(default_factory=dict)
    #: Sharded stores: this worker's lease owner id (``None`` for a single writer).
    owner: str | None = None
    lease_ttl: float | None = None
    owned: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    lease_errors: int = 0
    #: Statistics of the batch listeners (``alerts_*``, ``candle_*``).
    listeners: dict[str, Any] = field(default_factory=dict)
    #: Each WebSocket connection's and REST API's state (``connecting``, ``connected``, ``unreachable``).
    endpoints: tuple[EndpointStatus, ...] = ()
    #: The order books this writer keeps, by instrument key.
    books: dict[str, BookStatus] = field(default_factory=dict)
    #: The perpetuals whose marks, liquidations, open interest and funding this writer keeps, by key.
    perps: dict[str, PerpStatus] = field(default_factory=dict)
    alive: bool | None = None

    @property
    def replay(self) -> bool:
        """True when the writer streams from the local replay server, not from Binance."""
        return is_replay_url(self.ws_url)

    @property
    def sharded(self) -> bool:
        """True for a worker of a sharded (S3) store."""
        return self.owner is not None

    @property
    def unreachable(self) -> tuple[EndpointStatus, ...]:
        """The endpoints whose last attempt failed (retries go on in the background)."""
        return tuple(e for e in self.endpoints if e.state is EndpointState.UNREACHABLE)

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since the last heartbeat at ``now`` (``None`` if never published)."""
        return None if self.heartbeat is None else now - self.heartbeat

    def to_dict(self) -> dict[str, Any]:
        """The published form (what the store holds; the keys of earlier releases kept)."""
        out: dict[str, Any] = {
            "writer": self.writer, "pid": self.pid, "host": self.host, "state": self.state.value,
            "heartbeat": self.heartbeat, "started": self.started, "store": self.store,
            "stream": self.stream, "ws_url": self.ws_url, "connections": self.connections,
            "ticks_per_second": self.ticks_per_second, "store_latency_ms": dict(self.store_latency_ms),
            "store_latency_seconds": self.store_latency_histogram.to_dict(),
        }
        for name in ("frames", "trades_received", "trades_stored", "malformed_frames"):
            out[name] = getattr(self, name)
        out["malformed_by_reason"] = dict(self.malformed_by_reason)
        for name in ("reconnects", "server_shutdowns", "rotations", "journal_recovered", "journal_errors",
                     "backfilled", "rest_requests", "rest_rate_limited", "rest_errors", "store_errors",
                     "listener_errors", "appends", "compactions", "degraded_reason"):
            out[name] = getattr(self, name)
        out["symbols"] = {key: inst.to_dict() for key, inst in self.instruments.items()}
        out["endpoints"] = [e.to_dict() for e in self.endpoints]
        if self.books:
            out["books"] = {key: b.to_dict() for key, b in self.books.items()}
        if self.perps:
            out["perps"] = {key: p.to_dict() for key, p in self.perps.items()}
        if self.owner is not None:
            out.update(owner=self.owner, lease_ttl=self.lease_ttl, owned=sorted(self.owned),
                       skipped=dict(sorted(self.skipped.items())), lease_errors=self.lease_errors)
        out.update(self.listeners)  # flat, as monitoring has read them
        out["listeners"] = dict(self.listeners)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WriterStatus:
        """Read a published status; unknown keys are ignored, missing ones defaulted."""
        d = dict(data)
        listeners = d.get("listeners")
        if not isinstance(listeners, Mapping):  # published before listeners were nested
            listeners = {k: v for k, v in d.items() if k.startswith(_LISTENER_PREFIXES)}
        symbols: Mapping[str, Any] = d["symbols"] if isinstance(d.get("symbols"), Mapping) else {}
        latency: Mapping[str, Any] = d["store_latency_ms"] if isinstance(d.get("store_latency_ms"), Mapping) \
            else {}
        ints: dict[str, Any] = {f.name: _int(d.get(f.name)) for f in dataclasses.fields(cls) if f.type == "int"}
        return cls(
            state=_state(d.get("state", WriterState.STOPPED.value)), writer=_opt_str(d.get("writer")),
            pid=_opt_int(d.get("pid")), host=_opt_str(d.get("host")),
            heartbeat=_opt_float(d.get("heartbeat")), started=_opt_float(d.get("started")),
            store=str(d.get("store") or ""), stream=str(d.get("stream") or ""), ws_url=str(d.get("ws_url") or ""),
            ticks_per_second=_float(d.get("ticks_per_second")),
            store_latency_ms={"p50": _opt_float(latency.get("p50")), "p99": _opt_float(latency.get("p99"))},
            store_latency_histogram=LatencyHistogram.from_dict(d.get("store_latency_seconds")),
            malformed_by_reason={str(k): _int(v) for k, v in (d.get("malformed_by_reason") or {}).items()},
            degraded_reason=_opt_str(d.get("degraded_reason")),
            instruments={str(k): InstrumentStatus.from_dict(v, str(k)) for k, v in symbols.items()
                         if isinstance(v, Mapping)},
            owner=_opt_str(d.get("owner")), lease_ttl=_opt_float(d.get("lease_ttl")),
            owned=tuple(str(s) for s in d.get("owned") or ()),
            skipped={str(k): str(v) for k, v in (d.get("skipped") or {}).items()},
            listeners=dict(listeners), **ints,
            endpoints=tuple(EndpointStatus.from_dict(e) for e in d.get("endpoints") or ()
                            if isinstance(e, Mapping)),
            books={str(k): BookStatus.from_dict(v, str(k)) for k, v in (d.get("books") or {}).items()
                   if isinstance(v, Mapping)},
            perps={str(k): PerpStatus.from_dict(v, str(k)) for k, v in (d.get("perps") or {}).items()
                   if isinstance(v, Mapping)},
        )

    def counters(self) -> dict[str, Any]:
        """The counters ``quantify status`` lists, as published (see :data:`COUNTERS`)."""
        published = self.to_dict()
        return {k: published[k] for k in COUNTERS if k in published}

    def summary(self) -> str:
        """One line overall, one per instrument (what ``%quantify status`` prints)."""
        lat = self.store_latency_ms.get("p50")
        lines = [
            f"{self.state.value} · {self.store} · {self.ticks_per_second:,.0f} ticks/s · "
            f"lag {'–' if lat is None else f'{lat:.0f} ms'} · {self.trades_stored:,} stored · "
            f"reconnects {self.reconnects}" + (" · REPLAY" if self.replay else "")
        ]
        if self.degraded_reason:
            lines.append(f"  degraded: {self.degraded_reason}")
        lines += [f"  {e.summary()}" for e in self.endpoints if not e.reached]
        for key, inst in self.instruments.items():
            lines.append(
                f"  {key:<10} last id {inst.last_id} · +{inst.rows_this_run:,} rows · "
                f"gaps {inst.gaps_found} found, {inst.gaps_filled} filled, {inst.gaps_open} open"
            )
        lines += [f"  {b.summary()}" for b in self.books.values()]
        lines += [f"  {p.summary()}" for p in self.perps.values()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        caption = _esc(f"writer {self.state.value} · {self.writer or self.owner or ''} · "
                       f"{self.ticks_per_second:,.0f} ticks/s · {self.trades_stored:,} stored"
                       + "".join(f" · {e.summary()}" for e in self.unreachable))
        rows = [[k, i.rows_this_run, i.last_id, _iso(i.last_time), i.gaps_found, i.gaps_filled, i.gaps_open]
                for k, i in self.instruments.items()]
        return _html_table(["instrument", "rows this run", "last id", "last trade (UTC)", "gaps", "filled",
                            "open"], rows, caption)


@dataclass(frozen=True)
class StoreStatus:
    """A store, its writer (or the workers of a sharded store) and its instruments.

    Attributes
    ----------
    store : str
        The store URI, credentials redacted.
    writers : tuple of WriterStatus
        The published status of the store's writer (zero or one), or of every
        recently seen worker of a sharded store; each with ``alive`` set.
    instruments : tuple of InstrumentStatus
        Every stored (or leased) instrument, with its writer's gap counters.
    sharded : bool
        True for a store written by leased workers (S3).
    checked : float
        When this status was gathered (seconds since the epoch).
    """

    store: str
    writers: tuple[WriterStatus, ...] = ()
    instruments: tuple[InstrumentStatus, ...] = ()
    sharded: bool = False
    checked: float = 0.0

    @property
    def writer(self) -> WriterStatus | None:
        """The single writer's status (the first live worker's on a sharded store), if any."""
        live = [w for w in self.writers if w.alive]
        candidates = live or list(self.writers)
        return candidates[0] if candidates else None

    @property
    def writer_alive(self) -> bool:
        """True if a writer (or any worker) is alive."""
        return any(w.alive for w in self.writers)

    @property
    def ticks_per_second(self) -> float:
        """Stored ticks per second of the live writer(s)."""
        return round(sum(w.ticks_per_second for w in self.writers if w.alive), 1)

    def _age(self, w: WriterStatus) -> float | None:
        age = w.heartbeat_age(self.checked)
        return None if age is None else round(age, 1)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``quantify status --json`` (keys kept from earlier releases)."""
        rows = [inst.to_row(sharded=self.sharded) for inst in self.instruments]
        if not self.sharded:
            w = self.writer
            alive = bool(w is not None and w.alive)
            out: dict[str, Any] = {
                "store": self.store, "writer_alive": alive, "writer": None if w is None else w.writer,
                "writer_state": (w.state.value if alive else "stopped") if w is not None else None,
                "heartbeat_age_s": None if w is None else self._age(w),
                "ticks_per_second": w.ticks_per_second if alive and w is not None else 0.0,
                "counters": {} if w is None else w.counters(),
            }
            if alive and w is not None and w.endpoints:  # a live writer's connections
                out["endpoints"] = [e.to_dict() for e in w.endpoints]
            if w is not None and w.perps:  # the writer's live perpetual data
                out["perps"] = {key: p.to_dict() for key, p in w.perps.items()}
            out["symbols"] = rows
            return out
        workers: list[dict[str, Any]] = [{
            "owner": w.owner, "alive": bool(w.alive), "writer": w.writer,
            "state": w.state.value if w.alive else "stopped", "heartbeat_age_s": self._age(w),
            "ticks_per_second": w.ticks_per_second if w.alive else 0.0,
            "owned": list(w.owned), "skipped": dict(w.skipped), "counters": w.counters(),
            **({"endpoints": [e.to_dict() for e in w.endpoints]} if w.alive and w.endpoints else {}),
        } for w in self.writers]
        live = [w for w in workers if w["alive"]]
        ages = [w["heartbeat_age_s"] for w in live if w["heartbeat_age_s"] is not None]
        return {
            "store": self.store, "sharded": True, "writer_alive": bool(live),
            "writer": "; ".join(w["writer"] or w["owner"] for w in live) or None,
            "writer_state": ",".join(sorted({w["state"] for w in live})) or None,
            "heartbeat_age_s": min(ages, default=None),
            "ticks_per_second": self.ticks_per_second, "counters": {}, "workers": workers, "symbols": rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreStatus:
        """Read :meth:`to_dict`'s document back (writers keep the fields it carries)."""
        checked = _float(data.get("checked"), 0.0)
        sharded = bool(data.get("sharded", False))

        def writer(d: Mapping[str, Any], alive: bool) -> WriterStatus:
            age = _opt_float(d.get("heartbeat_age_s"))
            counters: Mapping[str, Any] = d["counters"] if isinstance(d.get("counters"), Mapping) else {}
            published = {**counters, **{k: v for k, v in d.items() if k not in ("state", "alive")}}
            published["state"] = d.get("state", d.get("writer_state"))
            published["heartbeat"] = None if age is None else checked - age
            return dataclasses.replace(WriterStatus.from_dict(published), alive=alive)

        if sharded:
            writers = tuple(writer(w, bool(w.get("alive"))) for w in data.get("workers") or ())
        elif data.get("writer") is not None or data.get("writer_state") is not None:
            writers = (writer(data, bool(data.get("writer_alive"))),)
        else:
            writers = ()
        instruments = tuple(InstrumentStatus.from_dict(r) for r in data.get("symbols") or ()
                            if isinstance(r, Mapping))
        return cls(store=str(data.get("store") or ""), writers=writers, instruments=instruments,
                   sharded=sharded, checked=checked)

    def summary(self) -> str:
        """The table ``quantify status`` prints."""
        lines = [f"store   {self.store}"]
        if self.sharded:
            return self._summary_shared(lines)
        w = self.writer
        if w is not None and w.alive:
            lines.append(f"writer  alive, {w.state.value}: {w.writer}")
            lines.append(f"        {w.ticks_per_second:.0f} ticks/s, heartbeat {self._age(w)} s ago")
            if w.replay:
                lines.append("        REPLAY: recorded trades from a local replay server, not live data")
            lines += [f"link    {e.summary()}" for e in w.endpoints]
        else:
            last = w.writer if w is not None else None
            lines.append("writer  none running" + (f" (last: {last})" if last else ""))
        counters = w.counters() if w is not None else {}
        if counters:
            lines.append("        " + ", ".join(f"{k} {v}" for k, v in counters.items() if k != "store_latency_ms"))
        header = (f"{'symbol':<10} {'rows':>10} {'first trade (UTC)':<26} {'last trade (UTC)':<26} "
                  f"{'last id':>12} {'gaps':>5} {'filled':>6}")
        lines += ["", header, "-" * len(header)]
        for s in self.instruments:
            lines.append(
                f"{s.instrument:<10} {s.rows:>10} {str(_iso(s.first_time))[:26]:<26} "
                f"{str(_iso(s.last_time))[:26]:<26} {s.last_id!s:>12} {s.gaps_found:>5} {s.gaps_filled:>6}"
            )
        if not self.instruments:
            lines.append("(no symbols yet)")
        perps = [s for s in self.instruments if s.perp_rows]
        if perps:
            lines += ["", "perpetual data (rows stored)"]
            lines += [f"  {s.instrument}: " + ", ".join(f"{k} {n:,}" for k, n in s.perp_rows.items()) for s in perps]
        if w is not None and w.books:
            lines += ["", "order books (continuity this run)"]
            lines += [f"  {b.summary()}" for b in w.books.values()]
        if w is not None and w.perps:
            lines += ["", "perpetuals (live data this run)"]
            lines += [f"  {p.summary()}" for p in w.perps.values()]
        return "\n".join(lines)

    def _summary_shared(self, lines: list[str]) -> str:
        if not self.writers:
            lines.append("workers none running")
        for w in self.writers:
            state = f"alive, {w.state.value}" if w.alive else "stopped"
            tps = w.ticks_per_second if w.alive else 0.0
            lines.append(f"worker  {w.owner}: {state}, {tps:.0f} ticks/s, "
                         f"heartbeat {self._age(w)} s ago, owns {','.join(w.owned) or 'nothing'}")
            if w.alive:
                lines += [f"        {e.summary()}" for e in w.endpoints if not e.reached]
            counters = w.counters()
            if counters:
                lines.append("        " + ", ".join(f"{k} {v}" for k, v in counters.items()
                                                    if k != "store_latency_ms"))
        header = (f"{'symbol':<10} {'rows':>10} {'last trade (UTC)':<26} {'last id':>12} {'gaps':>5} "
                  f"{'owner':<28} {'lease age':>9}")
        lines += ["", header, "-" * len(header)]
        for s in self.instruments:
            owner = s.owner or "-"
            if s.owner and not s.lease_alive:
                owner += " (expired)"
            age = "-" if s.lease_age_s is None else f"{s.lease_age_s:.0f} s"
            lines.append(f"{s.instrument:<10} {s.rows:>10} {str(_iso(s.last_time))[:26]:<26} {s.last_id!s:>12} "
                         f"{s.gaps_found:>5} {owner:<28} {age:>9}")
        if not self.instruments:
            lines.append("(no symbols yet)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        d = self.to_dict()
        problems = [e.summary() for w in self.writers if w.alive for e in w.unreachable]
        caption = _esc(f"{self.store} · writer {'alive, ' + str(d['writer_state']) if d['writer_alive'] else 'none'}"
                       f" · {d['ticks_per_second']:,.0f} ticks/s" + "".join(f" · {p}" for p in problems))
        rows = [inst.to_row(sharded=self.sharded) for inst in self.instruments]
        header = list(rows[0]) if rows else ["symbol", "rows"]
        out = _html_table(header, [list(r.values()) for r in rows], caption)
        perps = [p.to_row() for p in (self.writer.perps.values() if self.writer is not None else ())]
        if perps:
            out += _html_table(list(perps[0]), [list(r.values()) for r in perps], "perpetuals (live data this run)")
        return out
