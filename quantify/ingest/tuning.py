"""Interpreter settings of a streaming run, applied and restored: the collector and the GIL.

Two context managers the service enters around streaming:

- :func:`gil_switch_interval` sets ``sys.setswitchinterval`` (how often the
  GIL is offered to another thread; ``IngestConfig.switch_interval``) and
  restores the previous value unless someone changed it meanwhile;
- :func:`tuned_gc` freezes the objects alive at start (imports, config) out
  of the collector and raises the youngest generation's threshold to
  :data:`GC_YOUNG_THRESHOLD` (``IngestConfig.tune_gc``), then unfreezes and
  restores the thresholds.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GC_YOUNG_THRESHOLD", "gil_switch_interval", "tuned_gc"]

#: Allocations between collections of the youngest generation while streaming
#: (CPython's default is 700); see ``IngestConfig.tune_gc``.
GC_YOUNG_THRESHOLD = 100_000


@contextmanager
def gil_switch_interval(seconds: float | None) -> Iterator[None]:
    """Set the GIL switch interval to ``seconds`` for the block (``None``: leave it)."""
    if seconds is None:
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        if sys.getswitchinterval() == seconds:
            sys.setswitchinterval(previous)


@contextmanager
def tuned_gc(enabled: bool) -> Iterator[None]:
    """Freeze the heap and collect the youngest generation less often, for the block."""
    if not enabled:
        yield
        return
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
