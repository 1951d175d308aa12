"""Frames: how live widgets update without flooding the browser.

Jupyter drops widget messages above about 1,000 per second (the iopub rate
limit) and bqplot resends whole arrays on every change, so every live widget:

- updates in *frames*, at most ``DEFAULT_FPS`` per second, from one
  :class:`FrameTimer` (a daemon thread, so heavy cells never stall it);
- sends each figure's changes inside one ``hold_sync()`` per frame;
- draws bounded series (:func:`downsample` to about ``MAX_POINTS`` points).

Running timers form a named registry (:func:`live_timers`); :func:`stop_all`
stops every one of them and runs at interpreter exit, which is how a Voilà
dashboard stops streaming when its page closes (Voilà shuts the kernel down).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_FPS", "MAX_POINTS", "FrameTimer", "downsample", "live_timers", "stop_all"]

logger = logging.getLogger(__name__)

#: Frames per second of live widgets (at most 10: see the module docstring).
DEFAULT_FPS = 8.0
MAX_FPS = 10.0
#: Points per plotted series, about the pixel width of a chart.
MAX_POINTS = 2_000

_TIMERS: weakref.WeakSet[FrameTimer] = weakref.WeakSet()


class FrameTimer:
    """Call ``callback()`` every ``1/fps`` seconds in a daemon thread until stopped.

    An exception in the callback is logged and counted in ``errors`` (never
    printed: output from a thread would land in whichever cell ran last).
    """

    def __init__(self, callback: Callable[[], None], fps: float = DEFAULT_FPS, name: str = "frame") -> None:
        if not 0 < fps <= MAX_FPS:
            raise ValueError(f"fps must be in (0, {MAX_FPS}], got {fps!r}")
        self.callback = callback
        self.interval = 1.0 / fps
        self.name = name
        self.frames = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FrameTimer:
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"quantify-{self.name}", daemon=True)
        _TIMERS.add(self)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.callback()
                self.frames += 1
            except Exception:  # a bad frame must not end the stream
                self.errors += 1
                logger.exception("%s: frame failed", self.name)
            next_at = max(next_at + self.interval, time.monotonic())
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the timer and wait (up to ``timeout`` s) for the current frame."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        _TIMERS.discard(self)


def live_timers() -> list[FrameTimer]:
    """Frame timers currently running in this process."""
    return [t for t in list(_TIMERS) if t.running]


@atexit.register
def stop_all() -> None:
    """Stop every running frame timer of this process."""
    for timer in list(_TIMERS):
        timer.stop(timeout=0.5)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most about ``max_points`` points, keeping its shape.

    Min-max decimation: the series is cut into ``max_points // 2`` buckets and
    each bucket keeps its lowest and highest point in time order, so spikes
    survive (plain striding would drop them). ``y`` may be 2-D (one row per
    line); buckets then keep each row's extremes' union of positions.
    """
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    yy = np.atleast_2d(y)
    keep = [0, n - 1]
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = yy[:, a:b]
        keep.extend((a + np.nanargmin(seg, axis=1)).tolist() if np.isfinite(seg).any() else [a])
        keep.extend((a + np.nanargmax(seg, axis=1)).tolist() if np.isfinite(seg).any() else [])
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    return x[idx], (y[..., idx] if y.ndim > 1 else y[idx])
