"""A lap of pre-encoded trade frames from per-event templates: how a looping replay stays cheap.

Each recorded event is encoded once as a ``bytes`` template with ``%d`` in
place of the integers a lap shifts (trade ids, times, aggregate ids) and
``%s`` in place of its price (scaled per lap, see
:mod:`quantify.replay.laps`). Rendering lap ``k`` is then, per event, one
``template % args`` and a WebSocket header; the shifted integers of a whole
lap are one numpy addition per field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from quantify.replay._wsframes import ws_text_frames
from quantify.replay.laps import LapPrices

__all__ = ["FrameTemplates"]

#: Fields shifted from lap to lap, by what: trade ids, times, aggregate ids; the price is scaled.
_ID_KEYS = ("t", "f", "l")
_TIME_KEYS = ("E", "T")
_AGG_KEYS = ("a",)
_PRICE_KEY = "p"
_SENTINEL = {k: 8_765_432_100_000_000_000 + i for i, k in enumerate(_ID_KEYS + _TIME_KEYS + _AGG_KEYS)}
_PRICE_SENTINEL = "8765432199999999999.5"


def _template(event: dict[str, Any]) -> tuple[bytes, tuple[str, ...]]:
    """``event`` encoded with ``%d`` in place of its shiftable integers and ``%s`` in
    place of its price string, and their keys in order."""
    marked = dict(event)
    order = []
    for key, value in event.items():
        if key in _SENTINEL and type(value) is int:
            marked[key] = _SENTINEL[key]
            order.append(key)
        elif key == _PRICE_KEY:
            marked[key] = _PRICE_SENTINEL
            order.append(key)
    text = orjson.dumps(marked).replace(b"%", b"%%")
    for key in order:
        sentinel = _PRICE_SENTINEL if key == _PRICE_KEY else str(_SENTINEL[key])
        text = text.replace(sentinel.encode(), b"%s" if key == _PRICE_KEY else b"%d", 1)
    return text, tuple(order)


class _Group:
    """The events of one template shape (the same shifted keys in the same order)."""

    def __init__(self, order: tuple[str, ...], members: list[int], events: list[dict[str, Any]],
                 templates: list[bytes], slots: list[int], id_spans: list[int], agg_spans: list[int],
                 prices: list[tuple[LapPrices, int]]) -> None:
        self.order = order
        self.slots = [slots[i] for i in members]
        self.templates = [templates[i] for i in members]
        self.columns = [np.array([events[i][key] for i in members], dtype=np.int64) if key != _PRICE_KEY
                        else None for key in order]
        self.id_spans = np.array([id_spans[i] for i in members], dtype=np.int64)
        self.agg_spans = np.array([agg_spans[i] for i in members], dtype=np.int64)
        # the price of each member: its row in its symbol's lap prices
        self.price_rows = [(id(prices[i][0]), prices[i][1]) for i in members]

    def args(self, lap: int, lap_ms: int, texts: dict[int, list[bytes]]) -> list[list[Any]]:
        """Each shifted key's values in ``lap``, in template order."""
        shifted: list[list[Any]] = []
        for key, column in zip(self.order, self.columns, strict=True):
            if column is None:
                shifted.append([texts[k][r] for k, r in self.price_rows])
            elif key in _TIME_KEYS:
                shifted.append((column + lap * lap_ms).tolist())
            elif key in _ID_KEYS:
                shifted.append((column + lap * self.id_spans).tolist())
            else:
                shifted.append((column + lap * self.agg_spans).tolist())
        return shifted


class FrameTemplates:
    """Per-event ``%``-templates of one kind and format, rendered per lap.

    Parameters
    ----------
    n : int
        Slots of a lap (the rendered list's length; slots without an event stay None).
    slots : list of int
        The slot of each event.
    events : list of dict
        The lap-0 events (Binance's JSON payloads).
    prefixes : list of bytes
        Each event's combined-stream prefix (``{"stream":...,"data":``), or ``b""``.
    id_spans, agg_spans : list of int
        How far each event's trade ids and aggregate ids move per lap.
    prices : list of (LapPrices, int)
        Each event's symbol prices and its row there.
    """

    def __init__(
        self, n: int, slots: list[int], events: list[dict[str, Any]], prefixes: list[bytes],
        id_spans: list[int], agg_spans: list[int], prices: list[tuple[LapPrices, int]],
    ) -> None:
        self.n = n
        by_order: dict[tuple[str, ...], list[int]] = {}
        templates: list[bytes] = []
        for i, event in enumerate(events):
            text, order = _template(event)
            templates.append(prefixes[i] + text + (b"}" if prefixes[i] else b""))
            by_order.setdefault(order, []).append(i)
        self.groups = [_Group(order, members, events, templates, slots, id_spans, agg_spans, prices)
                       for order, members in by_order.items()]
        self.lap_prices = {id(lp): lp for lp, _ in prices}

    def render(self, lap: int, lap_ms: int) -> list[bytes | None]:
        """The frames of ``lap``, indexed by slot (None where no event of this kind is)."""
        out: list[bytes | None] = [None] * self.n
        texts = {k: lp.encoded(lap) for k, lp in self.lap_prices.items()}
        for group in self.groups:
            shifted = group.args(lap, lap_ms, texts)
            payloads = ([t % args for t, args in zip(group.templates, zip(*shifted))] if shifted
                        else group.templates)
            for j, frame in zip(group.slots, ws_text_frames(payloads)):
                out[j] = frame
        return out
