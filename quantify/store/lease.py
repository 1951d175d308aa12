"""Exactly one writer per store.

ArcticDB has no transactions: two writers on one symbol is last-writer-wins.
QuantiFy therefore lets one process write to a store at a time:

- LMDB stores: an OS file lock (``filelock``) on ``<store>/writer.lock``. The
  OS releases it when the process dies, even by ``kill -9``, so a crashed
  writer never blocks its successor. Who holds it is written beside it in
  ``writer.json`` so the refusal can name the running writer.
- ``mem://`` stores: a per-process registry.
- S3 stores: no whole-store lock; each worker owns symbols through expiring,
  renewed per-symbol leases in the store (:mod:`quantify.store.shard`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock

from quantify.exceptions import WriterLocked

__all__ = ["WriterInfo", "WriterLock", "masked_command"]

_MEM_WRITERS: set[str] = set()


@dataclass(frozen=True)
class WriterInfo:
    """Who writes to a store."""

    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    started: float = field(default_factory=time.time)
    command: str = field(default_factory=lambda: masked_command())

    def describe(self) -> str:
        """One line naming the writer, for error messages and ``status``."""
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on {self.host} ({self.command!r}), writing since {started}"


class WriterLock:
    """Hold the writer lock of a store; raise :class:`WriterLocked` if taken.

    Use as a context manager or call :meth:`acquire`/:meth:`release`.
    """

    def __init__(self, uri: str, path: Path | None) -> None:
        self.uri = uri
        self.path = path
        self.info = WriterInfo()
        self._lock: filelock.BaseFileLock | None = None

    def acquire(self) -> WriterLock:
        if self.path is None:
            if self.uri in _MEM_WRITERS:
                raise WriterLocked(f"store {self.uri} already has a writer in this process")
            _MEM_WRITERS.add(self.uri)
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path / "writer.lock", is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = read_writer_info(self.path)
            who = holder.describe() if holder else "another process"
            raise WriterLocked(
                f"store {self.uri} already has a writer: {who}. Stop it first, or open the "
                "store read-only (qf.open_store) to read what it writes."
            ) from None
        self._lock = lock
        (self.path / "writer.json").write_text(json.dumps(asdict(self.info)))
        return self

    def release(self) -> None:
        if self.path is None:
            _MEM_WRITERS.discard(self.uri)
            return
        if self._lock is not None:
            try:
                (self.path / "writer.json").unlink(missing_ok=True)
            finally:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def masked_command(argv: list[str] | None = None) -> str:
    """The first words of the command line, with store credentials masked."""
    words = (sys.argv if argv is None else argv)[:3]
    return " ".join(w.split("?", 1)[0] + "?…" if ("secret=" in w or "access=" in w) else w for w in words)


def read_writer_info(path: Path) -> WriterInfo | None:
    """Return who holds the writer lock of the LMDB store at ``path``, if anyone."""
    try:
        data = json.loads((path / "writer.json").read_text())
        return WriterInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def writer_alive(path: Path) -> bool:
    """True if the writer named in ``writer.json`` of the LMDB store at ``path`` still runs.

    Reads only: probing the lock itself could make a writer that starts at
    that moment fail. A writer on another host is taken as alive while its
    ``writer.json`` exists (the file is removed on a clean stop).
    """
    info = read_writer_info(path)
    if info is None:
        return False
    if info.host != socket.gethostname():
        return True
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
