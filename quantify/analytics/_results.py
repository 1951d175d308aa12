"""Immutable result objects shared by the analytics functions.

A function that estimates or tests more than one number returns a frozen
dataclass deriving from :class:`Result`; it prints as a short table
(``summary()``) and renders as HTML in Jupyter (``_repr_html_``).
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["Result"]


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, (pd.Series, pd.DataFrame, np.ndarray)):
        return f"<{type(value).__name__} of length {len(value)}>"
    return str(value)


@dataclasses.dataclass(frozen=True, repr=False)
class Result:
    """Base of every analytics result: frozen, with ``summary()`` and HTML.

    Subclasses list the fields shown by ``summary()`` in ``_summary_fields``;
    by default every field that is not a series or an array is shown.
    """

    _title: ClassVar[str] = "Result"
    _summary_fields: ClassVar[tuple[str, ...]] = ()

    def _rows(self) -> list[tuple[str, Any]]:
        names = self._summary_fields or tuple(
            f.name
            for f in dataclasses.fields(self)
            if not isinstance(getattr(self, f.name), (pd.Series, pd.DataFrame, np.ndarray))
        )
        return [(name, getattr(self, name)) for name in names]

    def summary(self) -> str:
        """Return a plain-text table of the result's scalar fields."""
        rows = self._rows()
        width = max((len(name) for name, _ in rows), default=0)
        lines = [self._title, "-" * max(len(self._title), 20)]
        lines += [f"{name:<{width}}  {_format(value)}" for name, value in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
            f"<td style='text-align:right'>{html.escape(_format(value))}</td></tr>"
            for name, value in self._rows()
        )
        return (
            f"<table class='quantify-result'><caption style='text-align:left'>"
            f"<b>{html.escape(self._title)}</b></caption>{cells}</table>"
        )
