"""Exact decimal strings as integer units, as the replay serves them (no floats)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["decimals", "format_positive_units", "format_units", "tick_units", "to_units"]


def decimals(text: str) -> int:
    """Number of decimals printed in the decimal string ``text``."""
    _, _, frac = text.partition(".")
    return len(frac)


def to_units(text: str, scale: int) -> int:
    """Exact integer value of the decimal string ``text`` in units of 10**-scale."""
    whole, _, frac = text.partition(".")
    if len(frac) > scale:
        raise ValueError(f"{text!r} has more than {scale} decimals")
    return int(whole + frac.ljust(scale, "0"))


def format_units(value: int, scale: int, min_decimals: int | None = None) -> str:
    """Format ``value * 10**-scale`` exactly.

    With ``min_decimals`` given, trailing zeros beyond ``min_decimals``
    decimals are dropped (Binance prints spot quote volumes with 8 decimals;
    an exact value that needs more keeps them).
    """
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(scale + 1, "0")
    whole, frac = digits[: len(digits) - scale], digits[len(digits) - scale :]
    if min_decimals is not None and len(frac) > min_decimals:
        frac = frac[:min_decimals] + frac[min_decimals:].rstrip("0")
    elif min_decimals is not None:
        frac = frac.ljust(min_decimals, "0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def format_positive_units(values: list[int], scale: int) -> list[str]:
    """:func:`format_units` of each positive ``value`` (no ``min_decimals``), one format each."""
    if not scale:
        return [str(v) for v in values]
    d = 10**scale
    return [f"{v // d}.{v % d:0{scale}d}" for v in values]


def tick_units(texts: Sequence[str], scale: int) -> int:
    """The finest increment among the decimal strings ``texts``, in units of ``10**-scale``.

    ``"61234.01000000"`` has two significant decimals: with ``scale`` 8 its
    increment is ``10**6`` units (0.01).
    """
    significant = max(len(t.partition(".")[2].rstrip("0")) for t in texts)
    return int(10 ** (scale - significant))
