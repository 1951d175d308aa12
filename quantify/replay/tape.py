"""The replay tape: recorded trades laid out for serving, as data, no I/O.

A :class:`Tape` holds the ``@trade`` events of one or more recordings, per
symbol and on one merged timeline ordered by trade time ``T``. Each event is
kept with its original decimal strings (``p``, ``q``) and every other field it
carried (``M`` for spot, ``X`` for USD-M), and is pre-encoded once per lap and
format as a complete, unmasked WebSocket text frame, shared by all clients.

Positions on the timeline are absolute slot numbers ``lap * n + j``; with
looping, lap ``k`` repeats lap 0 with trade ids (and aggregate ids) shifted by
``k`` times the recording's id span (aggregate count) and times shifted by
``k * lap_ms``, where ``lap_ms`` is the recording's duration plus one second,
so ids and times keep increasing forever. Its prices are scaled, per symbol,
so that each lap carries on from the previous lap's last price with the
recorded returns (:mod:`quantify.replay.laps`): a looping replay has no price
jump at lap boundaries.

Markets: each file is Binance spot or USD-M futures. Spot and USD-M
``BTCUSDT`` are different instruments with separate id sequences, so the
tape keys its symbols by the instrument's textual form
(:class:`~quantify.model.instrument.Instrument`): ``BTCUSDT`` for spot,
``binance-usdm:BTCUSDT`` for USD-M. A file's market is read from its content
where that is unambiguous (USD-M trade events carry ``X``, spot ones ``M``;
USD-M depth events carry ``pu``; only USD-M has ``markPriceUpdate``), else from its name (``usdm`` or
``futures`` in it means USD-M), else it is spot; ``Tape(..., usdm_files=...)``
forces USD-M.

Order books: the depth diffs, book tickers and depth snapshots of the same
files are kept per instrument in :attr:`Tape.books`
(:class:`~quantify.replay.book_tape.BookTape`), anchored on this timeline
(a file may hold book events only; the tape needs trades somewhere, as they
set the clock). ``lap_ms`` then spans the book events too.

Perpetuals: recorded (else synthetic) marks and synthetic liquidations, anchored like the books,
are in :attr:`Tape.marks` and :meth:`Tape.liquidations` (:mod:`quantify.replay.perp_tape`).

Aggregate trades are computed from the trades as Binance does: consecutive
trades of a symbol with the same trade time, price and maker side, and
contiguous ids, form one aggregate ``a`` covering trades ``f..l``. USD-M trades
whose ``X`` is not ``MARKET`` (insurance fund, ADL) belong to no aggregate and
no kline, as on Binance.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from quantify.exceptions import FeedError
from quantify.model.instrument import Instrument
from quantify.replay._decimals import decimals, format_units, to_units
from quantify.replay._frame_templates import FrameTemplates
from quantify.replay.book_tape import BookTape, BookTapeBuilder
from quantify.replay.laps import LapPrices
from quantify.replay.perp_tape import PerpTape, PerpTapeBuilder, all_marks_tape, liquidation_tapes
from quantify.venues.binance.recordings import read_frames

__all__ = ["SPOT", "USDM", "SymbolTape", "Tape", "detect_market"]

logger = logging.getLogger(__name__)

#: Laps of encoded frames kept in memory (a slow client may lag one lap behind).
_FRAME_CACHE_LAPS = 3

#: Venue names of the two markets served (as in :mod:`quantify.model.instrument`).
SPOT = "binance"
USDM = "binance-usdm"
#: File-name parts that mark a USD-M recording when the content does not tell.
_USDM_NAME_HINTS = ("usdm", "futures")


def detect_market(path: str | os.PathLike[str], hints: Iterable[str] = ()) -> str:
    """The venue (:data:`SPOT` or :data:`USDM`) of a recording.

    ``hints`` are the venues its content pointed to (see :meth:`Tape._hint`);
    if they agree they decide, otherwise the file name does (``usdm`` or
    ``futures`` in it means USD-M), otherwise it is spot.
    """
    seen = set(hints)
    name = Path(path).name.lower()
    by_name = USDM if any(h in name for h in _USDM_NAME_HINTS) else None
    if len(seen) == 1:
        venue = seen.pop()
        if by_name is not None and by_name != venue:
            logger.warning("%s: the name says USD-M but the content is spot; serving it as spot",
                           path)
        return venue
    if seen:
        logger.warning("%s: content looks both spot and USD-M; deciding by the file name", path)
    return by_name or SPOT


def _load(text: str) -> dict[str, Any] | None:
    """The JSON object of one recorded line, or None."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return msg if type(msg) is dict else None


@dataclass
class SymbolTape:
    """The trades of one symbol, in id order, plus their aggregates.

    Lists are indexed by the trade's local index ``r`` in lap 0; the trade at
    absolute local index ``k`` is ``r = k % n`` of lap ``k // n``.
    """

    symbol: str
    index: int
    venue: str = SPOT
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    prices: list[str] = field(default_factory=list)
    qtys: list[str] = field(default_factory=list)
    makers: list[bool] = field(default_factory=list)
    market: list[bool] = field(default_factory=list)
    price_units: list[int] = field(default_factory=list)
    qty_units: list[int] = field(default_factory=list)
    price_scale: int = 0
    qty_scale: int = 0
    best_match: bool = True
    #: Made up (the synthetic universe, :mod:`quantify.replay.universe`), not recorded.
    synthetic: bool = False
    slots: list[int] = field(default_factory=list)
    # aggregates (lap 0): first/last local trade index, qty units, and the id of the first
    agg_first: list[int] = field(default_factory=list)
    agg_last: list[int] = field(default_factory=list)
    agg_qty_units: list[int] = field(default_factory=list)
    agg_base_id: int = 0
    #: The prices of each lap (lap 0: the recorded ones), set with the trades.
    lap_prices: LapPrices = field(init=False)

    @property
    def n(self) -> int:
        """Number of trades in one lap."""
        return len(self.ids)

    @property
    def n_aggs(self) -> int:
        """Number of aggregate trades in one lap."""
        return len(self.agg_first)

    @property
    def id_span(self) -> int:
        """Trade-id shift from one lap to the next."""
        return self.ids[-1] - self.ids[0] + 1

    @property
    def key(self) -> str:
        """The instrument's textual form: ``BTCUSDT`` (spot), ``binance-usdm:BTCUSDT``."""
        return self.symbol if self.venue == SPOT else f"{self.venue}:{self.symbol}"

    @property
    def stream_trade(self) -> str:
        return f"{self.symbol.lower()}@trade"

    @property
    def stream_agg(self) -> str:
        return f"{self.symbol.lower()}@aggTrade"

    def quote_str(self, p_units: int, q_units: int) -> str:
        """Exact ``price * qty`` as Binance prints it (at least 8 decimals)."""
        return format_units(p_units * q_units, self.price_scale + self.qty_scale, 8)

    def qty_str(self, q_units: int) -> str:
        return format_units(q_units, self.qty_scale, self.qty_scale)

    def _aggregate(self) -> None:
        first: list[int] = []
        last: list[int] = []
        qty: list[int] = []
        prev = -1
        for r in range(self.n):
            if not self.market[r]:
                prev = -1
                continue
            if (
                prev >= 0 and self.times[r] == self.times[prev]
                and self.price_units[r] == self.price_units[prev]
                and self.makers[r] == self.makers[prev] and self.ids[r] == self.ids[prev] + 1
            ):
                last[-1] = r
                qty[-1] += self.qty_units[r]
            else:
                first.append(r)
                last.append(r)
                qty.append(self.qty_units[r])
            prev = r
        self.agg_first, self.agg_last, self.agg_qty_units = first, last, qty
        # Binance's aggregate ids are unrelated to, and smaller than, trade ids;
        # any stable dense sequence will do. Half the first trade id keeps them apart.
        self.agg_base_id = max(1, self.ids[0] // 2)

    def agg_event(self, a: int, lap: int, lap_ms: int) -> dict[str, Any]:
        """The ``aggTrade`` event of lap-0 aggregate ``a``, shifted to ``lap``."""
        first, last = self.agg_first[a], self.agg_last[a]
        shift_t = lap * lap_ms
        shift_id = lap * self.id_span
        event: dict[str, Any] = {
            "e": "aggTrade",
            "E": self.events[last].get("E", self.times[last]) + shift_t,
            "s": self.symbol,
            "a": self.agg_base_id + a + lap * self.n_aggs,
            "p": self.lap_prices.texts(lap)[first],
            "q": self.qty_str(self.agg_qty_units[a]),
            "f": self.ids[first] + shift_id,
            "l": self.ids[last] + shift_id,
            "T": self.times[first] + shift_t,
            "m": self.makers[first],
        }
        if self.best_match:
            event["M"] = True
        return event


class Tape:
    """Recorded trades of several symbols on one timeline.

    Parameters
    ----------
    files : sequence of path-like
        Recordings in the ``stream`` or ``cryptofeed`` format (see
        :mod:`quantify.venues.binance.recordings`); only ``@trade`` frames are used.
        Each file's market is detected (see :func:`detect_market`).
    usdm_files : sequence of path-like
        More recordings, served as USD-M futures whatever they look like.
    frames : mapping, optional
        In-memory recordings, ``{name: [(recv_ns, line), ...]}``, read after the
        files as if they were files of that name (the synthetic universe,
        :mod:`quantify.replay.universe`); their symbols are marked
        :attr:`SymbolTape.synthetic`.

    Raises
    ------
    FeedError
        If a file cannot be read or holds no trade frame.
    """

    def __init__(
        self, files: Sequence[str | os.PathLike[str]],
        *, usdm_files: Sequence[str | os.PathLike[str]] = (),
        frames: Mapping[Path, Sequence[tuple[int, str]]] | None = None,
    ) -> None:
        memory = dict(frames or {})
        if not files and not usdm_files and not memory:
            raise ValueError("files must name at least one recording, got none")
        forced = [Path(f) for f in usdm_files]
        self.files = [Path(f) for f in files] + forced
        sources: list[tuple[Path, Iterable[tuple[int, str]]]] = [
            *((path, read_frames(path)) for path in self.files), *memory.items()]
        n_forced = len(forced)
        synthetic: set[str] = set()
        self.skipped_frames = 0
        #: The venue of each file (:data:`SPOT` or :data:`USDM`).
        self.markets: dict[Path, str] = {}
        raw: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        books = BookTapeBuilder()
        perps = PerpTapeBuilder()
        for i, (path, lines) in enumerate(sources):
            events: list[dict[str, Any]] = []
            hints: set[str] = set()
            book_lines = 0
            for recv, text in lines:
                msg = _load(text)
                event = self._trade_event(msg, text)
                hint = self._hint(text, event)
                if hint is not None:
                    hints.add(hint)
                if event is None:
                    if msg is not None and (books.take(recv, text, msg) or perps.take(text, msg)):
                        book_lines += 1
                    else:
                        self.skipped_frames += 1
                    continue
                events.append(event)
            if not events and not book_lines:
                raise FeedError(f"{path}: no @trade frames (nor depth frames) in this recording")
            in_memory = i >= len(self.files)
            forced_usdm = not in_memory and i >= len(self.files) - n_forced
            venue = USDM if forced_usdm else detect_market(path, hints)
            self.markets[path] = venue
            books.end_file(path, venue)
            perps.end_file(venue)
            for event in events:
                raw.setdefault((venue, event["s"]), {})[event["t"]] = event
                if in_memory:
                    synthetic.add(event["s"] if venue == SPOT else f"{venue}:{event['s']}")
        if not raw:
            raise FeedError(f"{', '.join(map(str, self.files))}: no @trade frames in these recordings "
                            "(the replay's clock runs on trades)")
        self.symbols: dict[str, SymbolTape] = {}
        for i, (venue, symbol) in enumerate(sorted(raw)):
            sym = self._symbol_tape(symbol, i, raw[venue, symbol], venue)
            sym.synthetic = sym.key in synthetic
            self.symbols[sym.key] = sym
        self._by_index = list(self.symbols.values())
        self._merge()
        factors = {key: sym.lap_prices.factor for key, sym in self.symbols.items()}
        #: The recorded order books, by instrument key (:mod:`quantify.replay.book_tape`).
        self.books: dict[str, BookTape] = books.build(self.slot_time, SPOT, factors)
        #: The USD-M instruments' mark prices, recorded or synthetic, by key (:mod:`quantify.replay.perp_tape`).
        self.marks: dict[str, PerpTape] = perps.build(self.symbols, self.slot_time, USDM)
        book_times = [t for b in self.books.values() for t in (b.times[0], b.times[-1]) if b.times]
        for mark in self.marks.values():
            times = mark.times() if not mark.synthetic else []  # synthetic marks lie within the trades
            book_times += [times[0], times[-1]] if times else []
        if book_times:
            self.lap_ms = max(self.last_time, *book_times) - min(self.first_time, *book_times) + 1000
        for book in self.books.values():
            book.set_lap_ms(self.lap_ms)
        #: ``!markPrice@arr@1s``: every USD-M instrument's marks, one array a second (None without marks).
        self.all_marks = all_marks_tape(self.marks, self.slot_time, USDM)
        for i, mark in enumerate([*self.marks.values(), *([self.all_marks] if self.all_marks else [])]):
            mark.index = len(self.books) + i
            mark.set_lap_ms(self.lap_ms)
        self._liquidations: dict[int, dict[str, PerpTape]] = {}
        self._frames: OrderedDict[tuple[int, str, bool], list[bytes | None]] = OrderedDict()
        self._templates: dict[tuple[str, bool], FrameTemplates] = {}

    @staticmethod
    def _trade_event(msg: dict[str, Any] | None, text: str) -> dict[str, Any] | None:
        if msg is None:
            return None
        data = msg.get("data", msg)
        if type(data) is not dict or data.get("e") != "trade":
            return None
        ok = (
            type(data.get("s")) is str and type(data.get("t")) is int
            and type(data.get("T")) is int and type(data.get("m")) is bool
            and type(data.get("p")) is str and type(data.get("q")) is str
        )
        if not ok:
            logger.warning("skipping malformed recorded trade: %.200s", text)
            return None
        try:
            Decimal(data["p"]), Decimal(data["q"])
        except InvalidOperation:
            logger.warning("skipping recorded trade with a bad decimal: %.200s", text)
            return None
        return data

    @staticmethod
    def _hint(text: str, event: dict[str, Any] | None) -> str | None:
        """The market a frame's content points to, if it tells."""
        if event is not None:
            if "X" in event:
                return USDM
            return SPOT if "M" in event else None
        # A USD-M diff-depth event carries the previous final update id ``pu``; only USD-M has mark prices.
        usdm = ('"depthUpdate"' in text and '"pu":' in text) or '"markPriceUpdate"' in text
        return USDM if usdm else None

    @staticmethod
    def _symbol_tape(
        symbol: str, index: int, by_id: dict[int, dict[str, Any]], venue: str = SPOT
    ) -> SymbolTape:
        try:
            Instrument.parse(f"{venue}:{symbol}")
        except ValueError as exc:
            raise FeedError(f"recorded trade of an unusable symbol: {exc}") from None
        tape = SymbolTape(symbol, index, venue)
        events = [by_id[t] for t in sorted(by_id)]
        tape.events = events
        tape.ids = [e["t"] for e in events]
        tape.times = [e["T"] for e in events]
        tape.prices = [e["p"] for e in events]
        tape.qtys = [e["q"] for e in events]
        tape.makers = [e["m"] for e in events]
        tape.market = [e.get("X", "MARKET") == "MARKET" for e in events]
        tape.best_match = all("M" in e for e in events)
        tape.price_scale = max(decimals(p) for p in tape.prices)
        tape.qty_scale = max(decimals(q) for q in tape.qtys)
        tape.price_units = [to_units(p, tape.price_scale) for p in tape.prices]
        tape.qty_units = [to_units(q, tape.qty_scale) for q in tape.qtys]
        tape.lap_prices = LapPrices(tape.price_units, tape.prices, tape.price_scale, tape.market)
        tape._aggregate()
        return tape

    def _merge(self) -> None:
        # heapq.merge keeps each symbol's id order even if its times dip.
        def keyed(sym: SymbolTape) -> Iterable[tuple[int, int, int]]:
            return ((t, sym.index, r) for r, t in enumerate(sym.times))

        merged = heapq.merge(*(keyed(s) for s in self._by_index), key=lambda x: (x[0], x[1]))
        self.slot_symbol: list[int] = []
        self.slot_local: list[int] = []
        self.slot_time: list[int] = []
        for t, s, r in merged:
            self._by_index[s].slots.append(len(self.slot_symbol))
            self.slot_symbol.append(s)
            self.slot_local.append(r)
            self.slot_time.append(t)
        # the aggregate completed at a slot (emitted with its last trade), or -1
        self.slot_agg: list[int] = [-1] * len(self.slot_symbol)
        for sym in self._by_index:
            for a, last in enumerate(sym.agg_last):
                self.slot_agg[sym.slots[last]] = a
        self.first_time = min(self.slot_time)
        self.last_time = max(self.slot_time)
        #: Time shift from one lap to the next: the recording's duration plus 1 s.
        self.lap_ms = self.last_time - self.first_time + 1000

    def liquidations(self, seed: int) -> dict[str, PerpTape]:
        """The synthetic ``forceOrder`` tapes of the USD-M instruments drawn with ``seed``, by key.

        Their :attr:`PerpTape.index` follows the books' and the marks'; made once per seed.
        """
        tapes = self._liquidations.get(seed)
        if tapes is None:
            tapes = liquidation_tapes(self.symbols, self.slot_time, USDM, seed)
            for i, tape in enumerate(tapes.values()):
                tape.index = len(self.books) + len(self.marks) + (self.all_marks is not None) + i
                tape.set_lap_ms(self.lap_ms)
            self._liquidations[seed] = tapes
        return tapes

    # ---- geometry -------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of slots (trades of all symbols) in one lap."""
        return len(self.slot_symbol)

    def symbol(self, name: str, venue: str = SPOT) -> SymbolTape | None:
        """The tape of exchange symbol ``name`` (``BTCUSDT``) on ``venue``, if recorded."""
        return self.symbols.get(name if venue == SPOT else f"{venue}:{name}")

    def venues(self) -> set[str]:
        """The venues recorded on this tape."""
        return {s.venue for s in self._by_index}

    def by_index(self, i: int) -> SymbolTape:
        return self._by_index[i]

    def time_of(self, pos: int) -> int:
        """Trade time of absolute slot ``pos``."""
        lap, j = divmod(pos, self.n)
        return self.slot_time[j] + lap * self.lap_ms

    def position_at(self, ms: float, loop: bool) -> int:
        """Number of slots whose trade time is ``<= ms``."""
        from bisect import bisect_right

        if ms < self.first_time:
            return 0
        lap = int((ms - self.first_time) // self.lap_ms)
        if not loop and lap > 0:
            return self.n
        return lap * self.n + bisect_right(self.slot_time, ms - lap * self.lap_ms)

    def replayed_trades(self, sym: SymbolTape, pos: int) -> int:
        """Number of ``sym``'s trades among the first ``pos`` slots."""
        from bisect import bisect_left

        lap, j = divmod(pos, self.n)
        return lap * sym.n + bisect_left(sym.slots, j)

    # ---- encoded frames -------------------------------------------------------

    def frames(self, lap: int, kind: str, combined: bool) -> list[bytes | None]:
        """Encoded WebSocket frames of one lap, indexed by slot.

        ``kind`` is ``"trade"`` (one frame per slot) or ``"aggTrade"`` (a frame
        at the slot of each aggregate's last trade, ``None`` elsewhere).
        ``combined`` wraps events as ``{"stream": ..., "data": ...}``.
        The lists of the last few laps are cached and shared by all clients.
        """
        if kind not in ("trade", "aggTrade"):
            raise ValueError(f"kind must be 'trade' or 'aggTrade', got {kind!r}")
        key = (lap, kind, combined)
        cached = self._frames.get(key)
        if cached is not None:
            self._frames.move_to_end(key)
            return cached
        tkey = (kind, combined)
        templates = self._templates.get(tkey)
        if templates is None:
            templates = self._templates[tkey] = self._make_templates(kind, combined)
        out = templates.render(lap, self.lap_ms)
        self._frames[key] = out
        while len(self._frames) > 4 * _FRAME_CACHE_LAPS:
            self._frames.popitem(last=False)
        return out

    def _make_templates(self, kind: str, combined: bool) -> FrameTemplates:
        syms = self._by_index
        events: list[dict[str, Any]] = []
        slots: list[int] = []
        rows: list[int] = []  # the local index of each event's price
        for j, s_i in enumerate(self.slot_symbol):
            sym = syms[s_i]
            if kind == "trade":
                events.append(sym.events[self.slot_local[j]])
                rows.append(self.slot_local[j])
            elif self.slot_agg[j] >= 0:
                events.append(sym.agg_event(self.slot_agg[j], 0, self.lap_ms))
                rows.append(sym.agg_first[self.slot_agg[j]])
            else:
                continue
            slots.append(j)
        prefixes = [
            f'{{"stream":"{s.stream_trade if kind == "trade" else s.stream_agg}","data":'.encode()
            if combined else b""
            for s in syms
        ]
        return FrameTemplates(
            self.n, slots, events,
            [prefixes[self.slot_symbol[j]] for j in slots],
            [syms[self.slot_symbol[j]].id_span for j in slots],
            [syms[self.slot_symbol[j]].n_aggs for j in slots],
            [(syms[self.slot_symbol[j]].lap_prices, r) for j, r in zip(slots, rows)],
        )

    def event(self, sym: SymbolTape, r: int, lap: int) -> dict[str, Any]:
        """The recorded ``trade`` event ``r`` of ``sym``, shifted to ``lap``."""
        event = sym.events[r]
        if lap == 0:
            return event
        event = dict(event)
        shift_t = lap * self.lap_ms
        event["t"] += lap * sym.id_span
        event["p"] = sym.lap_prices.texts(lap)[r]
        event["T"] += shift_t
        if type(event.get("E")) is int:
            event["E"] += shift_t
        return event
