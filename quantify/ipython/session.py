"""The ingestion service of a kernel: the one named registry the extension keeps.

A kernel either *writes* its store (it runs :class:`IngestService` in a
daemon thread with its own event loop) or *reads* it, when another process
already holds the store's writer lock. A kernel never reads as a client of
its own writer: while a service it started still runs (a stop that has not
finished yet), or while the store's lock names this process, it refuses to
start another and says so.

Starting waits up to :data:`SETTLE_TIMEOUT` seconds for the first
connection attempts, so that an unreachable exchange is named on load, in
one warning line; ``%quantify status`` keeps showing each endpoint's state.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.ingest.endpoints import hint_for
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.ingest.symbols import check_symbols
from quantify.model.status import WriterStatus
from quantify.store import Store, open_store, parse_store_uri
from quantify.store.lease import read_writer_info
from quantify.store.status import writer_status
from quantify.widgets.source import attach_service, detach_service

__all__ = ["KernelSession"]

logger = logging.getLogger(__name__)

#: Seconds a stop may take (trades received are flushed within it).
STOP_TIMEOUT = 2.0
#: Seconds a start waits for the first connection attempts to succeed or fail.
SETTLE_TIMEOUT = 5.0


class KernelSession:
    """Start, stop and reconfigure the kernel's ingestion; report what it does.

    ``mode`` is ``"writer"`` (this kernel streams into the store),
    ``"reader"`` (another process writes it) or ``"stopped"``.
    """

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.service: IngestService | None = None
        self.mode = "stopped"
        self.writer_elsewhere = ""
        #: A service of this kernel asked to stop that had not finished within the stop timeout.
        self._stopping: IngestService | None = None

    @property
    def store_uri(self) -> str:
        """The store's URI as shown (credentials masked); naming it opens nothing."""
        return str(parse_store_uri(self.config.store, default=os.environ.get("QUANTIFY_STORE") or None))

    def start(self) -> str:
        """Start streaming (or attach as reader); return one line saying which."""
        if self.service is not None:
            return f"already streaming {', '.join(self.config.symbols)} into {self.service.store.uri}"
        previous = self._stopping
        if previous is not None:
            previous.join(STOP_TIMEOUT)
            if previous.is_alive():
                return (f"the previous stream of this kernel is still stopping (flushing into "
                        f"{previous.store.uri}); try `%quantify start` again in a few seconds")
            self._stopping = None
        service = IngestService(self.config,
                                listeners=standard_listeners(open_store(self.config.store, create=True), self.config))
        try:
            service.start_in_thread()
        except WriterLocked as exc:
            if _locked_by_this_process(service.store):
                self.mode = "stopped"
                return (f"{service.store.uri}: this kernel's own earlier writer still holds the store's "
                        f"lock; not attaching to it as a reader. Try `%quantify start` again shortly")
            self.mode = "reader"
            self.writer_elsewhere = str(exc)
            logger.info("attached as reader: %s", exc)
            return f"{service.store.uri} already has a writer; attached as reader ({_who(exc)})"
        self.service = service
        self.mode = "writer"
        attach_service(service)
        line = f"streaming {', '.join(self.config.symbols)} ({self.config.stream}) into {service.store.uri}"
        problem = _first_problem(service)
        return line if problem is None else f"{line}\nquantify: warning: {problem}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> str:
        """Stop streaming, flushing every trade received; return one line."""
        service, self.service = self.service, None
        was = self.mode
        self.mode = "stopped"
        if service is None:
            return "not streaming" if was != "reader" else "detached (reader)"
        detach_service(service)
        service.join(timeout)
        stored = service.stats.stored
        if service.is_alive():
            self._stopping = service  # a new start waits for it: never a reader of our own writer
            logger.warning("ingestion did not stop within %.1f s", timeout)
            return f"stopping (still flushing after {timeout:.0f} s); {stored:,} trades stored"
        return f"stopped; {stored:,} trades stored into {service.store.uri} this run"

    def check_symbols(self, symbols: Sequence[str]) -> None:
        """Refuse (``ValueError``) symbols their venue does not list; warn and go on if it cannot be asked."""
        check_symbols(self.config.with_(symbols=tuple(symbols)), timeout=SETTLE_TIMEOUT)

    def reconfigure(self, **changes: Any) -> str:
        """Apply ``changes`` to the config, restarting the stream if it ran.

        New ``symbols`` are checked against their venue's list first: an
        unknown one is refused before anything stops.
        """
        if "symbols" in changes:
            new = [s for s in changes["symbols"] if s not in self.config.symbols]
            if new:
                self.check_symbols(new)
        running = self.service is not None
        if running:
            self.stop()
        self.config = self.config.with_(**changes)
        return self.start() if running or self.mode == "reader" else "configured; %quantify start to stream"

    def status(self) -> WriterStatus | None:
        """The service's status when writing, else the writer's published one (``None`` if none)."""
        if self.service is not None:
            return self.service.snapshot()
        return writer_status(self.config.store)


def _locked_by_this_process(store: Store) -> bool:
    """True if the store's writer lock is held by this process (``mem://``: always, the lock is per process)."""
    path = store.uri.path
    if path is None:
        return store.uri.scheme == "mem"
    holder = read_writer_info(path)
    return holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname()


def _first_problem(service: IngestService) -> str | None:
    """Wait up to :data:`SETTLE_TIMEOUT` s for the first attempts; the first unreachable endpoint, in words."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    board = service.endpoints
    while not board.settled() and time.monotonic() < deadline and service.is_alive():
        time.sleep(0.05)
    down = board.unreachable()
    if not down:
        return None
    e = down[0]
    more = f" (and {len(down) - 1} more)" if len(down) > 1 else ""
    return (f"cannot reach {e.venue} {e.kind} {e.url}: {e.error}{more}; retrying in the background "
            f"(%quantify status shows it); {hint_for(e.url)}")


def _who(exc: WriterLocked) -> str:
    text = str(exc)
    if "writer:" in text:
        return "writer: " + text.split("writer:", 1)[1].split(". ", 1)[0].strip()
    return text
