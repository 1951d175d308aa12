"""Complete, unmasked WebSocket text frames, as the replay pre-encodes them (RFC 6455 section 5.2)."""

from __future__ import annotations

__all__ = ["frame_payload", "ws_text_frame"]


def ws_text_frame(payload: bytes) -> bytes:
    """Return ``payload`` as one unmasked, final WebSocket text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of an unmasked frame built by :func:`ws_text_frame`."""
    n = frame[1]
    if n < 126:
        return frame[2:]
    if n == 126:
        return frame[4:]
    return frame[10:]
