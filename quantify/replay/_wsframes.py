"""Complete, unmasked WebSocket text frames, as the replay pre-encodes them (RFC 6455 section 5.2)."""

from __future__ import annotations

import random

import orjson

__all__ = ["frame_payload", "garbled", "ws_text_frame", "ws_text_frames"]


def ws_text_frame(payload: bytes) -> bytes:
    """Return ``payload`` as one unmasked, final WebSocket text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


#: Text-frame headers by payload length, made on first use (a lap's payloads share few lengths).
_HEADERS: dict[int, bytes] = {}


def ws_text_frames(payloads: list[bytes]) -> list[bytes]:
    """:func:`ws_text_frame` of each payload (the header of each length built once)."""
    lengths = list(map(len, payloads))
    heads = _HEADERS
    for n in set(lengths).difference(heads):
        heads[n] = ws_text_frame(b" " * n)[:-n or None]
    return list(map(bytes.__add__, map(heads.__getitem__, lengths), payloads))


def frame_payload(frame: bytes) -> bytes:
    """The payload of an unmasked frame built by :func:`ws_text_frame`."""
    n = frame[1]
    if n < 126:
        return frame[2:]
    if n == 126:
        return frame[4:]
    return frame[10:]


def garbled(frame: bytes, rng: random.Random) -> bytes:
    """A broken version of ``frame`` (the ``corrupt_fraction`` fault): truncated JSON or fields of
    the wrong type; an event without a top-level ``p`` (book events, ``forceOrder``) is truncated."""
    payload = frame_payload(frame)
    how = rng.randrange(3)
    if how == 0:
        return ws_text_frame(payload[: max(1, len(payload) // 2)])
    msg = orjson.loads(payload)
    data = msg.get("data", msg) if isinstance(msg, dict) else msg
    if not isinstance(data, dict) or "p" not in data:  # an array (``!markPrice@arr``): truncate it too
        return ws_text_frame(payload[: max(1, len(payload) // 2)])
    if how == 1:
        for key in ("t", "a", "T"):
            if key in data:
                data[key] = str(data[key])
        data["p"] = float(data["p"])
    else:
        data["m"] = "maybe"
        data["q"] = None
    return ws_text_frame(orjson.dumps(msg))
