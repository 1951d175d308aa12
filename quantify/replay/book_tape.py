"""Recorded order-book events laid out for serving: depth diffs, book tickers, the snapshot.

A :class:`BookTape` holds one instrument's ``depthUpdate`` and ``bookTicker``
events in the order they were recorded (their receipt order), with the
recorded depth snapshot (the REST answer line of the recording, if any).
Each event is kept as its recorded bytes: lap 0 serves them byte for byte,
raw (``/ws/...``) or wrapped as recorded (``/stream?...``).

Timeline. Each event gets an exchange time for ordering: its ``E``, or for
Binance spot's ``bookTicker`` (which carries no time) its receipt time moved
onto the exchange clock by the latency of the latest depth event received
before it; times are made non-decreasing so that the recorded order stays.
The event is then anchored to the trade timeline of the
:class:`~quantify.replay.tape.Tape`: it is served just before the first trade
whose time ``T`` is later (events after the last trade close the lap). The
server's slots stay trades; book events ride between them.

USD-M ``@depth@100ms``. When a USD-M recording holds ``@depth@0ms`` events
only, the ``@depth@100ms`` stream is derived from them: the events of each
100 ms window of ``E`` are merged into one (``U`` of the first, ``u``, ``E``
and ``T`` of the last, ``pu`` of the first; each level with its last
quantity), served right after the window's last event. A client may keep a
book from either stream.

Laps (a looping replay). Lap ``k`` >= 1 serves the events recorded after the
snapshot (``u`` > its ``lastUpdateId``) with update ids shifted by ``k``
times the recording's id span and times by ``k * lap_ms``; prices follow the
lap scaling of the instrument's trades (:mod:`quantify.replay.laps`),
rounded to the book's tick. The rounding maps the recorded prices in order:
if two levels would land on the same tick, the higher one moves up by one
tick (and so on), so distinct levels stay distinct and in the same order,
and a book never crosses by rounding. Each lap starts with one *synthetic*
depth event, which the exchange never sent: it turns the previous lap's
last book into the lap's first book (the snapshot's book, scaled), every
level of the first with its quantity and every other level of the last
with quantity 0, and carries ids that continue the stream (spot: ``U`` =
the previous ``u`` + 1 and ``u`` = the next event's ``U`` - 1; USD-M: ``pu``
= the previous ``u`` and ``u`` = the next event's ``pu``). A book kept
across laps with Binance's procedure sees no gap.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from quantify.model.book import DepthDiff, DepthSnapshot, OrderBook
from quantify.replay._decimals import decimals, format_units, tick_units, to_units
from quantify.replay._wsframes import ws_text_frame
from quantify.venues.binance.parse import depth_diff_from_event, depth_snapshot_from_answer

__all__ = ["DEPTH", "DERIVED", "TICKER", "BookTape", "BookTapeBuilder", "LapEvents"]

logger = logging.getLogger(__name__)

#: Stream roles of a book tape's events: the recorded depth stream, ``bookTicker``, derived ``@depth@100ms``.
DEPTH, TICKER, DERIVED = 0, 1, 2
#: Width of a derived ``@depth@100ms`` window, in ms of ``E``.
_WINDOW_MS = 100
#: The fields of a depth event kept while building.
_DEPTH_KEYS = ("E", "T", "s", "U", "u", "pu")
#: Laps of rendered events kept per book.
_CACHED_LAPS = 2


@dataclass
class LapEvents:
    """The events of one lap of one book, in serving order.

    ``roles[i]`` is :data:`DEPTH`, :data:`TICKER` or :data:`DERIVED`;
    ``anchors[i]`` the lap-local trade slot the event is served before
    (``n``: after the lap's last trade); ``payloads[i]`` the event's JSON.
    ``first_ids[i]`` is a depth event's ``U`` (``pu`` on USD-M), else -1.
    """

    roles: list[int]
    anchors: list[int]
    payloads: list[bytes]
    first_ids: list[int]
    #: ``starts[j]``: index of the first event anchored at slot ``j`` or later (``len = n + 2``).
    starts: list[int] = field(default_factory=list)
    _frames: dict[bool, list[bytes]] = field(default_factory=dict)

    def index(self, n: int) -> None:
        starts = []
        i = 0
        anchors = self.anchors
        for j in range(n + 1):
            while i < len(anchors) and anchors[i] < j:
                i += 1
            starts.append(i)
        starts.append(len(anchors))
        self.starts = starts

    def frames(self, combined: bool, wrappers: Sequence[bytes] | Mapping[int, bytes]) -> list[bytes]:
        """Complete WebSocket frames of the events, raw or combined (``wrappers[role]``: the
        ``{"stream":...,"data":`` prefix of each role); made once, then cached."""
        frames = self._frames.get(combined)
        if frames is None:
            if combined:
                frames = [ws_text_frame(wrappers[r] + p + b"}") for r, p in zip(self.roles, self.payloads)]
            else:
                frames = [ws_text_frame(p) for p in self.payloads]
            self._frames[combined] = frames
        return frames


class BookTape:
    """One instrument's recorded book events (see the module docstring).

    Built by :class:`BookTapeBuilder`; :meth:`lap` gives the events of a lap.
    """

    def __init__(self, symbol: str, venue: str, key: str, index: int) -> None:
        self.symbol = symbol
        self.venue = venue
        self.key = key
        self.index = index
        self.usdm = False
        #: Stream names by role (``btcusdt@depth@100ms``, ``btcusdt@bookTicker``, derived or None).
        self.streams: list[str | None] = [None, f"{symbol.lower()}@bookTicker", None]
        self.snapshot: DepthSnapshot | None = None
        self.price_scale = 0
        self.qty_scale = 0
        self.tick = 1
        self.id_span = 1
        #: Lap-local times of events (ms), for ordering; parallel to lap 0's events.
        self.times: list[int] = []
        self._lap0: LapEvents | None = None
        self._laps: OrderedDict[int, LapEvents] = OrderedDict()
        self._n = 0
        self._lap_ms = 0
        self._factor: Callable[[int], float] | None = None  # lap -> price factor of the trades
        self._wrappers: list[bytes] = []
        self._books: tuple[OrderBook, OrderBook] | None = None  # (at the snapshot, at the lap's end)
        self._prices: list[int] = []  # every distinct price seen, in units, ascending
        self._first_u = 0  # U of the first recorded diff
        self._price_texts: dict[str, int] = {}  # every recorded price string -> its units

    # ---- geometry ---------------------------------------------------------------

    def stream_role(self, name: str) -> int | None:
        """The role of stream ``name`` on this book, or None."""
        for role, stream in enumerate(self.streams):
            if stream == name:
                return role
        return None

    def depth_roles(self) -> list[int]:
        return [r for r in (DEPTH, DERIVED) if self.streams[r] is not None]

    def lap(self, lap: int) -> LapEvents:
        """The events of ``lap`` (lap 0: as recorded; later laps: see the module docstring)."""
        assert self._lap0 is not None
        if lap == 0:
            return self._lap0
        cached = self._laps.get(lap)
        if cached is not None:
            self._laps.move_to_end(lap)
            return cached
        out = self._render(lap)
        self._laps[lap] = out
        while len(self._laps) > _CACHED_LAPS:
            self._laps.popitem(last=False)
        return out

    def frames(self, lap: int, combined: bool) -> list[bytes]:
        """Complete WebSocket frames of the events of ``lap``, raw or combined."""
        return self.lap(lap).frames(combined, self._wrappers)

    def set_lap_ms(self, lap_ms: int) -> None:
        """The time shift from one lap to the next (the tape's)."""
        self._lap_ms = lap_ms
        self._laps.clear()

    # ---- laps ---------------------------------------------------------------------

    def _base_books(self) -> tuple[OrderBook, OrderBook]:
        """The book at the snapshot and at the end of lap 0 (the recorded snapshot plus every diff)."""
        if self._books is None:
            assert self.snapshot is not None and self._lap0 is not None
            snap = self.snapshot
            at_snap = OrderBook.from_levels(snap.bids, snap.asks, snap.last_update_id, symbol=self.symbol)
            end = at_snap.copy()
            for role, payload in zip(self._lap0.roles, self._lap0.payloads):
                if role == DEPTH:
                    diff = parse_diff(payload)
                    if diff.last_id > end.update_id:
                        end.apply(diff)
            self._books = (at_snap, end)
        return self._books

    def _price_map(self, lap: int) -> dict[int, int]:
        """Recorded price units -> lap ``lap``'s price units, order-preserving and one-to-one."""
        f = float(self._factor(lap)) if self._factor is not None else 1.0
        tick = self.tick
        prices = np.asarray(self._prices, dtype=np.int64)
        target = np.maximum(np.floor(prices * (f / tick) + 0.5).astype(np.int64), 1)  # in ticks
        # the nearest strictly increasing sequence both ways (levels pushed up, levels pushed down), then
        # their middle: levels that would share a tick spread evenly around their scaled prices
        idx = np.arange(len(target))
        up = np.maximum.accumulate(target - idx) + idx
        down = np.minimum.accumulate((target - idx)[::-1])[::-1] + idx
        mid = (up + down) // 2
        mid = np.maximum.accumulate(np.maximum(mid, 1) - idx) + idx  # positive and strictly increasing
        return dict(zip(self._prices, (mid * tick).tolist()))

    def _render(self, lap: int) -> LapEvents:
        assert self._lap0 is not None
        if not self._prices:
            self._collect_prices()
        base = self._lap0
        # without a snapshot the book is never known: later laps carry the diffs, shifted, and no synthetic event
        s = self.snapshot.last_update_id if self.snapshot is not None else -1
        shift = lap * self.id_span
        dt = lap * self._lap_ms
        pmap = self._price_map(lap)
        prev_map = self._price_map(lap - 1) if lap > 1 else None
        ps = self.price_scale
        texts = {t: format_units(pmap[u], ps, ps) for t, u in self._price_texts.items()}
        price = texts.__getitem__

        roles: list[int] = []
        anchors: list[int] = []
        payloads: list[bytes] = []
        first_ids: list[int] = []
        last_u = self.id_span - 2 + self._first_u  # the last u of lap 0
        for role in self.depth_roles() if self.snapshot is not None else ():
            at_snap, end = self._base_books()
            nxt = self._first_after(role, s)
            if nxt is None:
                continue
            syn = self._synthetic(nxt, at_snap, end, pmap, prev_map, last_u + shift - self.id_span, shift,
                                  nxt["E"] + dt)
            roles.append(role)
            anchors.append(0)
            payloads.append(_exact(orjson.dumps(syn)))
            first_ids.append(syn.get("pu", syn["U"]))
        # one event at a time: holding a lap of decoded events would make the collector crawl
        loads, dumps = orjson.loads, orjson.dumps
        for role, anchor, payload in zip(base.roles, base.anchors, base.payloads):
            data = loads(payload)
            if data["u"] <= s:
                continue
            data["u"] += shift
            if role != TICKER:
                data["U"] += shift
                if "pu" in data:
                    data["pu"] += shift
                data["b"] = [[price(p), q] for p, q in data["b"]]
                data["a"] = [[price(p), q] for p, q in data["a"]]
                first_ids.append(data.get("pu", data["U"]))
            else:
                data["b"], data["a"] = price(data["b"]), price(data["a"])
                first_ids.append(-1)
            if "E" in data:
                data["E"] += dt
                if "T" in data:
                    data["T"] += dt
            roles.append(role)
            anchors.append(anchor)
            payloads.append(_exact(dumps(data)))
        out = LapEvents(roles, anchors, payloads, first_ids)
        out.index(self._n)
        return out

    def _first_after(self, role: int, s: int) -> dict[str, Any] | None:
        """The first lap-0 event of ``role`` with ``u`` past ``s``, decoded."""
        assert self._lap0 is not None
        for r, payload in zip(self._lap0.roles, self._lap0.payloads):
            if r == role:
                data: dict[str, Any] = orjson.loads(payload)
                if data["u"] > s:
                    return data
        return None

    def _synthetic(self, nxt: dict[str, Any], at_snap: OrderBook, end: OrderBook,
                   pmap: dict[int, int], prev_map: dict[int, int] | None, prev_u: int, shift: int,
                   time_ms: int) -> dict[str, Any]:
        """The event turning the previous lap's last book into this lap's first (module docstring)."""
        ps, qs = self.price_scale, self.qty_scale

        def units(p: float) -> int:
            return round(p * 10**ps)

        def qty(q: float) -> str:
            return format_units(round(q * 10**qs), qs, qs)

        sides: dict[str, list[list[str]]] = {}
        for is_bid, key in ((True, "b"), (False, "a")):
            target = {pmap[units(p)]: qty(q) for p, q in at_snap.side(is_bid)}
            old = [(prev_map[units(p)] if prev_map is not None else units(p)) for p, _ in end.side(is_bid)]
            rows = [[format_units(u, ps, ps), q] for u, q in target.items()]
            rows += [[format_units(u, ps, ps), format_units(0, qs, qs)] for u in old if u not in target]
            sides[key] = rows
        event: dict[str, Any] = {"e": "depthUpdate", "E": time_ms}
        if self.usdm:
            event.update({"T": time_ms, "s": self.symbol, "U": prev_u + 1, "u": nxt["pu"] + shift, "pu": prev_u})
        else:
            event.update({"s": self.symbol, "U": prev_u + 1, "u": nxt["U"] + shift - 1})
        event["b"], event["a"] = sides["b"], sides["a"]
        return event

    def _collect_prices(self) -> None:
        assert self._lap0 is not None
        ps = self.price_scale
        texts: set[str] = set()
        for payload in self._lap0.payloads:
            data = orjson.loads(payload)
            if "U" in data:
                texts.update(p for p, _ in data["b"])
                texts.update(p for p, _ in data["a"])
            else:
                texts.add(data["b"])
                texts.add(data["a"])
        self._price_texts = {t: to_units(t, ps) for t in texts}
        self.tick = tick_units(list(texts), ps) if texts else self.tick
        seen = set(self._price_texts.values())
        if self.snapshot is not None:
            seen.update(round(p * 10**ps) for p, _ in self.snapshot.bids + self.snapshot.asks)
        self._prices = sorted(seen)



def _exact(data: bytes) -> bytes:
    """``data`` in a buffer of its own size (``orjson.dumps`` answers may keep a much larger one)."""
    return memoryview(data).tobytes()


def parse_diff(payload: bytes) -> DepthDiff:
    """The :class:`~quantify.model.book.DepthDiff` of a served depth event's JSON."""
    return depth_diff_from_event(orjson.loads(payload))


def _data_part(text: str, data: dict[str, Any]) -> bytes:
    """The ``data`` member of a recorded combined-stream line, as its recorded bytes.

    Binance writes ``{"stream":"...","data":{...}}``; a line of another shape is re-encoded.
    """
    if text.startswith('{"stream":"') and text.endswith("}}"):
        i = text.find('","data":')
        if i > 0 and text.find('"data":', i + 9) < 0:
            return text[i + 9:-1].encode()
    return _exact(orjson.dumps(data))


class BookTapeBuilder:
    """Collects the book lines of recordings, then builds one :class:`BookTape` per instrument."""

    def __init__(self) -> None:
        # key -> [(recv_ns, seq, kind, text, data)], and each file's snapshot lines
        self._events: dict[tuple[str, str], list[tuple[int, int, str, bytes, Any]]] = {}
        self._snapshots: dict[tuple[str, str], dict[str, Any]] = {}
        self._file_keys: set[tuple[str, str]] = set()
        self._file_snaps: list[dict[str, Any]] = []
        self._seq = 0

    def take(self, recv_ns: int, text: str, msg: dict[str, Any]) -> bool:
        """Keep one recorded line if it is a book event; return whether it was."""
        data = msg.get("data", msg) if "stream" in msg else msg
        if type(data) is not dict:
            return False
        kind = data.get("e")
        if kind == "depthUpdate" or (kind in (None, "bookTicker") and "u" in data and "B" in data):
            symbol = data.get("s")
            if type(symbol) is not str:
                return False
            stream = msg.get("stream") if "stream" in msg else None
            is_depth = kind == "depthUpdate"
            kind = "depth" if is_depth else "ticker"
            self._seq += 1
            payload = _data_part(text, data) if type(stream) is str else text.encode()
            # depth events keep their ids, time and best levels (a sample of the decimals); tickers their time
            kept: Any = ({k: data[k] for k in _DEPTH_KEYS if k in data} | {"b": data["b"][:3], "a": data["a"][:3]}
                         if is_depth else (data["E"] if type(data.get("E")) is int else -1))
            entry = (recv_ns, self._seq, kind if type(stream) is not str else f"{kind}|{stream}", payload, kept)
            self._events.setdefault(("?", symbol), []).append(entry)
            self._file_keys.add(("?", symbol))
            return True
        if kind is None and "lastUpdateId" in data and "bids" in data:
            self._file_snaps.append(data)
            return True
        return False

    def end_file(self, path: object, venue: str) -> None:
        """The file just read (``path``) is of ``venue``: file its events under it.

        A snapshot line names no symbol: it belongs to the file's only book
        instrument (in a file of several, it is ignored, with a warning).
        """
        symbols = sorted(s for _, s in self._file_keys)
        for symbol in symbols:
            events = self._events.pop(("?", symbol))
            self._events.setdefault((venue, symbol), []).extend(events)
        if self._file_snaps:
            if len(symbols) == 1:
                self._snapshots.setdefault((venue, symbols[0]), self._file_snaps[0])
            else:
                logger.warning("%s: a depth snapshot in a file of %d book instruments is ignored",
                               path, len(symbols))
        self._file_keys = set()
        self._file_snaps = []

    def build(self, slot_time: Sequence[int], spot: str,
              factors: Mapping[str, Callable[[int], float]]) -> dict[str, BookTape]:
        """One :class:`BookTape` per instrument, anchored on the trade times ``slot_time`` of lap 0."""
        out: dict[str, BookTape] = {}
        for i, (venue, symbol) in enumerate(sorted(self._events)):
            key = symbol if venue == spot else f"{venue}:{symbol}"
            book = BookTape(symbol, venue, key, i)
            self._fill(book, self._events[venue, symbol], slot_time)
            data = self._snapshots.get((venue, symbol))
            if data is not None:
                try:
                    book.snapshot = depth_snapshot_from_answer(data, symbol, 0)
                except (KeyError, TypeError, ValueError) as exc:
                    logger.warning("%s: the recorded depth snapshot is malformed (%s)", key, exc)
            if book.snapshot is None:
                logger.warning("%s: no depth snapshot recorded: its book cannot be known (REST depth refused); "
                               "its diffs are served anyway", key)
            book._factor = factors.get(key)
            out[key] = book
        return out

    @staticmethod
    def _fill(book: BookTape, events: list[tuple[int, int, str, bytes, Any]],
              slot_time: Sequence[int]) -> None:
        events.sort(key=lambda e: (e[0], e[1]))
        roles: list[int] = []
        times: list[int] = []
        payloads: list[bytes] = []
        first_ids: list[int] = []
        depth_stream: str | None = None
        offset: int | None = None
        last_u = -1
        price_texts: list[str] = []
        qty_texts: list[str] = []
        first_u: int | None = None
        pending: list[int] = []  # tickers received before the first depth event (no clock offset yet)
        t_prev = 0
        window: list[dict[str, Any]] = []
        window_last = -1  # index of the window's last depth event
        derived: list[tuple[int, bytes, int, int]] = []  # (after event index, payload, U/pu, time)
        for recv, _, kind, payload, data in events:
            stream = kind.partition("|")[2] or None
            if kind.startswith("depth"):
                u = data["u"]
                if u <= last_u:
                    continue  # a duplicate (overlapping recordings)
                last_u = u
                if first_u is None:
                    first_u = data["U"]
                if "pu" in data:
                    book.usdm = True
                depth_stream = depth_stream or stream
                offset = data["E"] - recv // 1_000_000
                t = data["E"]
                role = DEPTH
                if len(price_texts) < 2000:
                    price_texts += [p for p, _ in data["b"][:3]] + [p for p, _ in data["a"][:3]]
                    qty_texts += [q for _, q in data["b"][:3]] + [q for _, q in data["a"][:3]]
                first_ids.append(data["pu"] if "pu" in data else data["U"])
            else:
                if data >= 0:
                    t = data
                elif offset is not None:
                    t = recv // 1_000_000 + offset
                else:
                    t = -1
                    pending.append(len(times))
                role = TICKER
                first_ids.append(-1)
            t = max(t, t_prev) if t >= 0 else t
            if t >= 0:
                t_prev = t
            roles.append(role)
            times.append(t)
            payloads.append(payload)
            if role == DEPTH and book.usdm:
                if window and window[0]["E"] // _WINDOW_MS != data["E"] // _WINDOW_MS:
                    derived.append(_merge(window, window_last))
                    window = []
                window.append(orjson.loads(payload))
                window_last = len(roles) - 1
        if window and book.usdm:
            derived.append(_merge(window, window_last))
        first_time = next((t for t in times if t >= 0), slot_time[0] if slot_time else 0)
        for i in pending:
            times[i] = first_time
        if depth_stream is None:
            depth_stream = f"{book.symbol.lower()}@depth@{'0ms' if book.usdm else '100ms'}"
        book.streams[DEPTH] = depth_stream
        if book.usdm and not depth_stream.endswith("@100ms"):
            book.streams[DERIVED] = f"{book.symbol.lower()}@depth@100ms"
            # insert each derived event right after the last event of its window
            at = {after: (payload, fid) for after, payload, fid, _ in derived}
            r2: list[int] = []
            t2: list[int] = []
            p2: list[bytes] = []
            f2: list[int] = []
            for i in range(len(roles)):
                r2.append(roles[i])
                t2.append(times[i])
                p2.append(payloads[i])
                f2.append(first_ids[i])
                if i in at:
                    r2.append(DERIVED)
                    t2.append(times[i])
                    p2.append(at[i][0])
                    f2.append(at[i][1])
            roles, times, payloads, first_ids = r2, t2, p2, f2
        anchors = [bisect_right(slot_time, t) for t in times]
        lap0 = LapEvents(roles, anchors, payloads, first_ids)
        lap0.index(len(slot_time))
        book._lap0 = lap0
        book.times = times
        book._n = len(slot_time)
        book._first_u = first_u or 0
        book.id_span = last_u - (first_u or 0) + 2
        book.price_scale = max((decimals(p) for p in price_texts), default=0)
        book.qty_scale = max((decimals(q) for q in qty_texts), default=0)
        book.tick = tick_units(price_texts, book.price_scale) if price_texts else 1
        book._wrappers = [f'{{"stream":"{s}","data":'.encode() if s else b"" for s in book.streams]


def _merge(window: list[dict[str, Any]], after: int) -> tuple[int, bytes, int, int]:
    """One ``@depth@100ms`` event from the ``@depth@0ms`` events of one window."""
    first, last = window[0], window[-1]
    sides: dict[str, dict[str, str]] = {"b": {}, "a": {}}
    for ev in window:
        for key in ("b", "a"):
            side = sides[key]
            for p, q in ev[key]:
                side[p] = q
    event: dict[str, Any] = {"e": "depthUpdate", "E": last["E"]}
    if "T" in last:
        event["T"] = last["T"]
    event.update({"s": last["s"], "U": first["U"], "u": last["u"], "pu": first.get("pu", -1),
                  "b": [[p, q] for p, q in sides["b"].items()], "a": [[p, q] for p, q in sides["a"].items()]})
    return after, _exact(orjson.dumps(event)), event["pu"], last["E"]


def served_book(book: BookTape) -> OrderBook:
    """A fresh book at the recorded snapshot (the start of the replay's own book)."""
    snap = book.snapshot
    if snap is None:
        raise ValueError(f"{book.key}: no depth snapshot recorded")
    return OrderBook.from_levels(snap.bids, snap.asks, snap.last_update_id, symbol=book.symbol)
