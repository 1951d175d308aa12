"""USD-M perpetual events laid out for serving: mark prices and liquidations, recorded or synthetic.

A :class:`PerpTape` holds one USD-M instrument's events of one kind and
serves them the way a :class:`~quantify.replay.book_tape.BookTape` serves
book events: each lap is a :class:`~quantify.replay.book_tape.LapEvents`,
anchored on the trades' timeline (an event is sent just before the first
trade recorded after it), and a connection reads it through a
:class:`~quantify.replay.book_streams.BookStream`. Two kinds:

Mark prices (``<sym>@markPrice@1s`` and ``<sym>@markPrice``, every 3 s)
    *Recorded*, when a recording holds the instrument's ``markPriceUpdate``
    events: lap 0 serves them byte for byte (``p``, ``i``, ``P``, ``r`` the
    recorded strings, ``E`` and ``T`` the recorded times). The 3-second stream
    carries the recorded events whose ``E`` falls in a second divisible by 3.
    *Synthetic* otherwise (Binance's wire format has no room for a label: the
    replay's ``stats``, start-up line and ``--help`` say which are): one event
    per second, ``E`` on the second, with

    - ``p`` (mark) the last recorded trade price of the perpetual at ``E``;
    - ``i`` (index) the last spot trade price of the same symbol at ``E``
      where the tape holds the spot symbol, else the mark;
    - ``P`` (estimated settle price) the index;
    - ``r`` Binance's funding formula on these: the premium ``(p - i) / i``
      averaged over the seconds since the last settlement, ``r = avg +
      clamp(0.0001 - avg, -0.0005, 0.0005)`` (interest 0.01 % per 8 h), then
      capped at +-0.75 %;
    - ``T`` the next settlement, 00:00, 08:00 or 16:00 UTC.

    Prices print with 8 decimals, as Binance's do.

Liquidations (``<sym>@forceOrder``), always synthetic (recordings have none)
    From the large trades: a ``MARKET`` trade whose quantity is at or above
    the 99th percentile of the instrument's quantities is a candidate; per
    second of trade time the largest candidate (the first on a tie) is kept
    with probability 1/2, drawn from a generator seeded with the replay's
    ``seed`` and the instrument, so a seed gives the same liquidations every
    time. The event is ``forceOrder`` with ``o.S`` the taker's side (a
    liquidated long sells), ``o.ap`` the trade price, ``o.p`` 1 % worse
    (the order's limit), ``q``, ``l``, ``z`` the trade quantity, ``X``
    ``FILLED``, ``T`` the trade time and ``E`` up to 99 ms later. At most
    one per second per symbol, as Binance pushes them.

Laps: lap ``k`` shifts ``E`` and trade times by ``k * lap_ms`` like the
trades, scales recorded mark prices by the perpetual's lap price factor
(:mod:`quantify.replay.laps`) with the recorded decimals, moves ``T`` to the
settlement that follows the shifted ``E`` as the recorded ``T`` followed the
recorded ``E``, and recomputes synthetic events from the lap's trade prices.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from quantify.replay._decimals import format_units
from quantify.replay.book_tape import LapEvents, _data_part, _exact

if TYPE_CHECKING:  # the tape builds these; importing it here would be a cycle
    from quantify.replay.tape import SymbolTape

__all__ = [
    "FORCE",
    "FUNDING_INTERVAL_MS",
    "MARK",
    "MARK_3S",
    "MARK_ARR",
    "MARK_ARR_3S",
    "PerpTape",
    "PerpTapeBuilder",
    "all_marks_tape",
    "funding_rate",
    "liquidation_tapes",
    "next_funding_time",
]

#: Stream roles of perpetual events (beside a book tape's depth, ticker and derived roles).
MARK, MARK_3S, FORCE = 3, 4, 5
#: Roles of ``!markPrice@arr@1s`` and ``!markPrice@arr`` (every symbol's marks, one array a second).
MARK_ARR, MARK_ARR_3S = 6, 7
#: Binance's settlement interval on most perpetuals: 00:00, 08:00 and 16:00 UTC.
FUNDING_INTERVAL_MS = 8 * 3_600_000
#: Binance's funding formula: interest rate per interval, premium clamp, and the rate cap used here.
INTEREST_RATE = 0.0001
PREMIUM_CLAMP = 0.0005
RATE_CAP = 0.0075
#: Quantity quantile above which a trade may become a synthetic liquidation.
LIQUIDATION_QUANTILE = 0.99
#: Distance of a synthetic liquidation's limit price from its fill price.
LIQUIDATION_DISCOUNT = 0.01
_CACHED_LAPS = 2
_SECOND = 1000


def next_funding_time(ms: int) -> int:
    """The first settlement time (00, 08, 16 UTC) after ``ms``."""
    return (ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def funding_rate(avg_premium: float) -> float:
    """Binance's funding rate from the interval's average premium index (see the module docstring)."""
    rate = avg_premium + min(max(INTEREST_RATE - avg_premium, -PREMIUM_CLAMP), PREMIUM_CLAMP)
    return min(max(rate, -RATE_CAP), RATE_CAP)


def _pad8(text: str) -> str:
    """A decimal string with at least 8 decimals (Binance prints marks with 8)."""
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(8, '0')}"


def _scaled(text: str, factor: float) -> str:
    """``text * factor`` with ``text``'s decimals."""
    places = len(text.partition(".")[2])
    return f"{float(text) * factor:.{places}f}"


#: One served event: (role, lap-local time for anchoring, payload).
Event = tuple[int, int, bytes]


class PerpTape:
    """One USD-M instrument's events of one kind (see the module docstring).

    Parameters
    ----------
    symbol, key : str
        The exchange symbol (``BTCUSDT``) and instrument key (``binance-usdm:BTCUSDT``).
    streams : mapping of int to str
        Stream name of each role carried.
    synthetic : bool
        Whether the events are made up by the replay (not recorded).
    slot_time : sequence of int
        The tape's trade times of lap 0, the anchors.
    render : callable
        ``render(lap, lap_ms)``: the lap's events in serving order.
    """

    def __init__(self, symbol: str, key: str, streams: Mapping[int, str], synthetic: bool,
                 slot_time: Sequence[int], render: Callable[[int, int], list[Event]]) -> None:
        self.symbol = symbol
        self.key = key
        #: Position among the server's event tapes (books first); set by the tape.
        self.index = -1
        self.streams = dict(streams)
        self.synthetic = synthetic
        self._slot_time = slot_time
        self._render = render
        self._lap_ms = 0
        self._laps: OrderedDict[int, LapEvents] = OrderedDict()
        self._wrappers = {r: f'{{"stream":"{s}","data":'.encode() for r, s in self.streams.items()}

    @property
    def kind(self) -> str:
        """``"markPrice"`` or ``"forceOrder"``."""
        return "forceOrder" if FORCE in self.streams else "markPrice"

    def stream_role(self, name: str) -> int | None:
        """The role of stream ``name`` on this tape, or None."""
        for role, stream in self.streams.items():
            if stream == name:
                return role
        return None

    def set_lap_ms(self, lap_ms: int) -> None:
        """The time shift from one lap to the next (the tape's)."""
        self._lap_ms = lap_ms
        self._laps.clear()

    def times(self) -> list[int]:
        """Lap-0 event times (for the tape's lap length)."""
        return [t for _, t, _ in self._render(0, 0)]

    def lap(self, lap: int) -> LapEvents:
        """The events of ``lap``, anchored on the trades (cached: lap 0 and the latest two)."""
        cached = self._laps.get(lap)
        if cached is not None:
            self._laps.move_to_end(lap)
            return cached
        events = self._render(lap, self._lap_ms)
        dt = lap * self._lap_ms
        roles = [r for r, _, _ in events]
        out = LapEvents(roles, [bisect_right(self._slot_time, t - dt) for _, t, _ in events],
                        [p for _, _, p in events], [-1] * len(events))
        out.index(len(self._slot_time))
        self._laps[lap] = out
        while len(self._laps) > _CACHED_LAPS + 1:
            oldest = next(k for k in self._laps if k != 0)
            del self._laps[oldest]
        return out

    def frames(self, lap: int, combined: bool) -> list[bytes]:
        """Complete WebSocket frames of the events of ``lap``, raw or combined."""
        return self.lap(lap).frames(combined, self._wrappers)

    def payloads(self, lap: int, role: int) -> list[dict[str, Any]]:
        """The decoded events of ``role`` in ``lap`` (for REST answers and tests)."""
        events = self.lap(lap)
        return [orjson.loads(p) for r, p in zip(events.roles, events.payloads) if r == role]


# ---- mark prices ------------------------------------------------------------------

def _in_3s(ms: int) -> bool:
    return (ms // _SECOND) % 3 == 0


def _mark_roles(e_ms: int) -> tuple[int, ...]:
    return (MARK, MARK_3S) if _in_3s(e_ms) else (MARK,)


def _recorded_marks(events: list[tuple[int, bytes, dict[str, Any]]],
                    factor: Callable[[int], float]) -> Callable[[int, int], list[Event]]:
    def render(lap: int, lap_ms: int) -> list[Event]:
        dt = lap * lap_ms
        out: list[Event] = []
        f = factor(lap) if lap else 1.0
        for e_ms, payload, data in events:
            if lap:
                d = dict(data)
                d["E"] = e_ms + dt
                for key in ("p", "i", "P"):
                    if type(d.get(key)) is str and d[key]:
                        d[key] = _scaled(d[key], f)
                if type(d.get("T")) is int:
                    d["T"] += next_funding_time(e_ms + dt) - next_funding_time(e_ms)
                payload = _exact(orjson.dumps(d))
            for role in _mark_roles(e_ms):
                out.append((role, e_ms + dt, payload))
        return out
    return render


def _synthetic_marks(perp: SymbolTape, spot: SymbolTape | None) -> Callable[[int, int], list[Event]]:
    start = (perp.times[0] // _SECOND + 1) * _SECOND
    seconds = list(range(start, perp.times[-1] + 1, _SECOND))
    rows = [bisect_right(perp.times, t) - 1 for t in seconds]
    spot_rows = [bisect_right(spot.times, t) - 1 for t in seconds] if spot is not None else [-1] * len(seconds)

    def render(lap: int, lap_ms: int) -> list[Event]:
        dt = lap * lap_ms
        texts = perp.lap_prices.texts(lap)
        spot_texts = spot.lap_prices.texts(lap) if spot is not None else texts
        out: list[Event] = []
        window, total, count = -1, 0.0, 0
        for e0, r, rs in zip(seconds, rows, spot_rows):
            e_ms = e0 + dt
            mark = texts[r]
            index = spot_texts[rs] if rs >= 0 else mark
            if e_ms // FUNDING_INTERVAL_MS != window:  # a settlement: the average starts again
                window, total, count = e_ms // FUNDING_INTERVAL_MS, 0.0, 0
            m, i = float(mark), float(index)
            total += (m - i) / i
            count += 1
            index8 = _pad8(index)
            event = {"e": "markPriceUpdate", "E": e_ms, "s": perp.symbol, "p": _pad8(mark), "P": index8,
                     "i": index8, "r": f"{funding_rate(total / count):.8f}", "T": next_funding_time(e_ms)}
            payload = _exact(orjson.dumps(event))
            for role in _mark_roles(e_ms):
                out.append((role, e_ms, payload))
        return out
    return render


def _mark_streams(symbol: str) -> dict[int, str]:
    low = symbol.lower()
    return {MARK: f"{low}@markPrice@1s", MARK_3S: f"{low}@markPrice"}


class PerpTapeBuilder:
    """Collects the recorded ``markPriceUpdate`` lines of recordings, then builds the mark tapes."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], dict[int, tuple[int, bytes, dict[str, Any]]]] = {}
        self._pending: dict[str, dict[int, tuple[int, bytes, dict[str, Any]]]] = {}

    def take(self, text: str, msg: dict[str, Any]) -> bool:
        """Keep one recorded line if it is a mark-price event; return whether it was."""
        data = msg.get("data", msg) if "stream" in msg else msg
        if type(data) is not dict or data.get("e") != "markPriceUpdate":
            return False
        symbol, e_ms = data.get("s"), data.get("E")
        if type(symbol) is not str or type(e_ms) is not int:
            return False
        payload = _data_part(text, data) if type(msg.get("stream")) is str else text.encode()
        self._pending.setdefault(symbol, {})[e_ms] = (e_ms, payload, data)  # a duplicate E: the last wins
        return True

    def end_file(self, venue: str) -> None:
        """The file just read is of ``venue``."""
        for symbol, events in self._pending.items():
            self._events.setdefault((venue, symbol), {}).update(events)
        self._pending = {}

    def build(self, symbols: Mapping[str, SymbolTape], slot_time: Sequence[int], usdm: str) -> dict[str, PerpTape]:
        """One mark tape per USD-M instrument: recorded where recorded, else synthetic from its trades."""
        out: dict[str, PerpTape] = {}
        for (venue, symbol), by_time in sorted(self._events.items()):
            if venue != usdm:
                continue
            key = f"{venue}:{symbol}"
            sym = symbols.get(key)
            factor = sym.lap_prices.factor if sym is not None else (lambda lap: 1.0)
            events = [by_time[t] for t in sorted(by_time)]
            out[key] = PerpTape(symbol, key, _mark_streams(symbol), False, slot_time,
                                _recorded_marks(events, factor))
        for key, sym in symbols.items():
            if sym.venue != usdm or key in out:
                continue
            spot_sym = symbols.get(sym.symbol)  # the spot instrument's key is its bare symbol
            out[key] = PerpTape(sym.symbol, key, _mark_streams(sym.symbol), True, slot_time,
                                _synthetic_marks(sym, spot_sym))
        return dict(sorted(out.items()))


def all_marks_tape(marks: Mapping[str, PerpTape], slot_time: Sequence[int], usdm: str) -> PerpTape | None:
    """``!markPrice@arr@1s`` and ``!markPrice@arr``: every instrument's mark events of one second in one
    array, sent with the second's last one (None without marks). Its events are the instruments'
    own (recorded or synthetic as they are: :meth:`PerpTape.synthetic` labels those)."""
    tapes = list(marks.values())
    if not tapes:
        return None

    def render(lap: int, lap_ms: int) -> list[Event]:
        by_second: dict[int, list[tuple[int, bytes]]] = {}
        for tape in tapes:
            for role, t, payload in tape._render(lap, lap_ms):
                if role == MARK:
                    by_second.setdefault(t // _SECOND, []).append((t, payload))
        out: list[Event] = []
        for second in sorted(by_second):
            group = by_second[second]
            payload = b"[" + b",".join(p for _, p in group) + b"]"
            t = max(t for t, _ in group)
            out.append((MARK_ARR, t, payload))
            if second % 3 == 0:
                out.append((MARK_ARR_3S, t, payload))
        out.sort(key=lambda e: e[1])
        return out

    return PerpTape("!markPrice", f"{usdm}:!markPrice", {MARK_ARR: "!markPrice@arr@1s", MARK_ARR_3S: "!markPrice@arr"},
                    False, slot_time, render)


# ---- liquidations -----------------------------------------------------------------

def _liquidation_rows(sym: SymbolTape, seed: int) -> list[tuple[int, int]]:
    """(local trade index, delay ms) of the trades that become liquidations (module docstring)."""
    qty = np.asarray(sym.qty_units, dtype=np.float64)
    market = np.asarray(sym.market, dtype=bool)
    if not market.any():
        return []
    threshold = float(np.quantile(qty[market], LIQUIDATION_QUANTILE))
    best: dict[int, int] = {}
    for r in np.flatnonzero(market & (qty >= threshold)).tolist():
        second = sym.times[r] // _SECOND
        if second not in best or sym.qty_units[r] > sym.qty_units[best[second]]:
            best[second] = r
    rng = random.Random(f"{seed}:{sym.key}")
    out = []
    for second in sorted(best):
        keep, delay = rng.random() < 0.5, rng.randrange(100)
        if keep:
            out.append((best[second], delay))
    return out


def _liquidations(sym: SymbolTape, seed: int) -> Callable[[int, int], list[Event]]:
    rows = _liquidation_rows(sym, seed)
    tick, scale = sym.lap_prices.tick, sym.price_scale

    def render(lap: int, lap_ms: int) -> list[Event]:
        dt = lap * lap_ms
        units = sym.lap_prices.units(lap)
        texts = sym.lap_prices.texts(lap)
        out: list[Event] = []
        for r, delay in rows:
            sell = sym.makers[r]  # the buyer was the maker: the taker, the liquidated long, sold
            limit = float(units[r]) * (1 - LIQUIDATION_DISCOUNT if sell else 1 + LIQUIDATION_DISCOUNT)
            limit_units = max(int(limit // tick) * tick if sell else -int(-limit // tick) * tick, tick)
            t_ms = sym.times[r] + dt
            q = sym.qtys[r]
            event = {"e": "forceOrder", "E": t_ms + delay, "o": {
                "s": sym.symbol, "S": "SELL" if sell else "BUY", "o": "LIMIT", "f": "IOC", "q": q,
                "p": format_units(limit_units, scale, scale), "ap": texts[r], "X": "FILLED", "l": q, "z": q,
                "T": t_ms}}
            out.append((FORCE, t_ms + delay, _exact(orjson.dumps(event))))
        return out
    return render


def liquidation_tapes(symbols: Mapping[str, SymbolTape], slot_time: Sequence[int], usdm: str,
                      seed: int) -> dict[str, PerpTape]:
    """One synthetic ``forceOrder`` tape per USD-M instrument with trades, drawn with ``seed``."""
    return {key: PerpTape(sym.symbol, key, {FORCE: f"{sym.symbol.lower()}@forceOrder"}, True, slot_time,
                          _liquidations(sym, seed))
            for key, sym in sorted(symbols.items()) if sym.venue == usdm}
