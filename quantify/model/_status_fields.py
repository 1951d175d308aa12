"""Tolerant readers of status fields, shared by the status records.

A status is read back from a document another version of QuantiFy may have
written: a value of the wrong type, missing or not finite reads as the
field's default (0, or ``None`` for optional fields), never as an error.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

__all__ = ["esc", "html_table", "iso", "opt_float", "opt_int", "opt_str", "opt_time", "to_float", "to_int"]


def to_int(value: Any, default: int = 0) -> int:
    """``int(value)``, or ``default`` when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def opt_int(value: Any) -> int | None:
    """``None`` for ``None``, else :func:`to_int`."""
    return None if value is None else to_int(value, 0)


def to_float(value: Any, default: float = 0.0) -> float:
    """A finite float, or ``default`` when the value is not one."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def opt_float(value: Any) -> float | None:
    """A finite float, or ``None`` when the value is missing or not one."""
    out = to_float(value, math.nan)
    return None if math.isnan(out) else out


def opt_str(value: Any) -> str | None:
    """``None`` for ``None``, else ``str(value)``."""
    return None if value is None else str(value)


def opt_time(value: Any, *, unit: str | None = None) -> pd.Timestamp | None:
    """A UTC timestamp from ms since the epoch (``unit="ms"``), an ISO string or a Timestamp; else ``None``."""
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value, unit=unit) if unit else pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso(ts: pd.Timestamp | None) -> str | None:
    """ISO 8601 text of a timestamp, ``None`` for ``None``."""
    return None if ts is None else ts.isoformat()


def esc(value: object) -> str:
    """HTML-escaped text of a value."""
    return html.escape(str(value))


def html_table(header: list[str], rows: list[list[Any]], caption: str = "") -> str:
    """A ``qf-status`` HTML table (``caption`` is HTML, the cells are escaped)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc('' if v is None else v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f'<table class="qf-status">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
