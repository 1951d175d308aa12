"""Running analytics on any executor: chunks of work, closes that workers load themselves.

:func:`run_chunks` hands chunks of a task to a :class:`concurrent.futures.Executor`
(a local process pool by default, or a Dask client's ``get_executor()``) with
a progress bar, and keeps each chunk's result once even when the executor
runs a task again after losing its worker. A :class:`ClosesSource` describes
closes (a store URI and symbols) that each worker loads and caches, so tasks
carry only their part of the work.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import pandas as pd
from tqdm.auto import tqdm

__all__ = ["ClosesSource", "check_executor", "chunked", "closes_of", "limit_blas_threads", "run_chunks"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# set_num_threads entry points of the OpenBLAS builds numpy and scipy ship
_BLAS_SETTERS = (
    "openblas_set_num_threads",
    "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_",
)


@runtime_checkable
class ClosesSource(Protocol):
    """Closes that a worker loads where it runs instead of receiving them with each task.

    ``load()`` returns one column per symbol on aligned rows; it must give the
    same frame in every process, and should cache it per process (a scan calls
    it once per task). Instances are pickled to the workers, so they hold a
    description of the data (a store URI and symbols), not the data.
    """

    def load(self) -> pd.DataFrame:
        """The closes: one column per symbol, aligned rows."""
        ...


def closes_of(closes: pd.DataFrame | ClosesSource, caller: str = "scan_pairs") -> pd.DataFrame:
    """The frame of ``closes``: itself, or what its source loads."""
    if isinstance(closes, pd.DataFrame):
        return closes
    if isinstance(closes, ClosesSource):
        frame = closes.load()
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{caller}: {type(closes).__name__}.load() must return a DataFrame, "
                            f"got {type(frame).__name__}")
        return frame
    raise TypeError(f"closes must be a DataFrame with one column per symbol or a ClosesSource, "
                    f"got {type(closes).__name__}")


def limit_blas_threads(threads: int = 1) -> int:
    """Set the thread count of every OpenBLAS loaded in this process; return how many.

    The default scan pool runs this in each worker: parallelism comes from the
    processes, and a threaded BLAS on the small (10k x 24) QR factorisations of
    the lag search mostly waits on its own threads, badly so on a busy machine
    (measured here: 0.08 ms single-threaded vs 5-25 ms threaded). Linux only
    (reads ``/proc/self/maps``); elsewhere it does nothing and returns 0.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return 0
    done = 0
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            logger.debug("cannot load %s: %s", path, exc)
            continue
        for name in _BLAS_SETTERS:
            if hasattr(lib, name):
                getattr(lib, name)(int(threads))
                done += 1
                break
    return done



def check_executor(executor: Any, chunksize: Any) -> None:
    """Refuse an executor that is not a :class:`concurrent.futures.Executor` and a bad chunk size."""
    if executor is not None and not isinstance(executor, cf.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
    if chunksize is not None and (isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"chunksize must be a positive int, got {chunksize!r}")


def chunked(items: Sequence[T], chunksize: int | None) -> list[list[T]]:
    """``items`` cut into chunks; the default size spreads them over ~4 tasks per CPU."""
    if chunksize is None:
        chunksize = max(1, math.ceil(len(items) / (4 * (os.cpu_count() or 1))))
    return [list(items[k : k + chunksize]) for k in range(0, len(items), chunksize)]


def run_chunks(
    task: Callable[[Any, list[T], Any], list[R]],
    shipped: Any,
    chunks: list[list[T]],
    opts: Any,
    *,
    executor: cf.Executor | None,
    progress: bool,
    desc: str,
    unit: str,
    inline: bool,
) -> list[R]:
    """Run ``task(shipped, chunk, opts)`` for every chunk; the results in chunk order.

    ``inline`` runs here; otherwise on ``executor``, or a process pool with
    one worker per CPU (one BLAS thread each) created and shut down here. The
    progress bar counts items. A chunk whose future completes twice (a task
    rerun after its worker died) is counted once.
    """
    done: dict[int, list[R]] = {}
    total = sum(len(chunk) for chunk in chunks)
    with tqdm(total=total, disable=not progress, desc=desc, unit=unit) as bar:
        if inline:
            for k, chunk in enumerate(chunks):
                done[k] = task(shipped, chunk, opts)
                bar.update(len(chunk))
        else:
            own = executor is None
            pool = (cf.ProcessPoolExecutor(max_workers=os.cpu_count() or 1, initializer=limit_blas_threads)
                    if executor is None else executor)
            try:
                futures = {pool.submit(task, shipped, chunk, opts): k for k, chunk in enumerate(chunks)}
                for fut in cf.as_completed(futures):
                    k = futures[fut]
                    if k not in done:
                        done[k] = fut.result()
                        bar.update(len(chunks[k]))
            finally:
                if own:
                    pool.shutdown(wait=True, cancel_futures=True)
    return [row for k in sorted(done) for row in done[k]]
