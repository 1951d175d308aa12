"""The ingestion service of a kernel: the one named registry the extension keeps.

A kernel either *writes* its store (it runs :class:`IngestService` in a
daemon thread with its own event loop) or *reads* it, when another process
already holds the store's writer lock.
"""

from __future__ import annotations

import logging
from typing import Any

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.model.status import WriterStatus
from quantify.store import open_store
from quantify.store.status import writer_status
from quantify.widgets.source import attach_service, detach_service

__all__ = ["KernelSession"]

logger = logging.getLogger(__name__)

#: Seconds a stop may take (trades received are flushed within it).
STOP_TIMEOUT = 2.0


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

    @property
    def store_uri(self) -> str:
        return str(open_store(self.config.store, create=True).uri)

    def start(self) -> str:
        """Start streaming (or attach as reader); return one line saying which."""
        if self.service is not None:
            return f"already streaming {', '.join(self.config.symbols)} into {self.service.store.uri}"
        service = IngestService(self.config,
                                listeners=standard_listeners(open_store(self.config.store, create=True), self.config))
        try:
            service.start_in_thread()
        except WriterLocked as exc:
            self.mode = "reader"
            self.writer_elsewhere = str(exc)
            logger.info("attached as reader: %s", exc)
            return f"{service.store.uri} already has a writer; attached as reader ({_who(exc)})"
        self.service = service
        self.mode = "writer"
        attach_service(service)
        return (f"streaming {', '.join(self.config.symbols)} ({self.config.stream}) "
                f"into {service.store.uri}")

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
            logger.warning("ingestion did not stop within %.1f s", timeout)
            return f"stopping (still flushing after {timeout:.0f} s); {stored:,} trades stored"
        return f"stopped; {stored:,} trades stored into {service.store.uri} this run"

    def reconfigure(self, **changes: Any) -> str:
        """Apply ``changes`` to the config, restarting the stream if it ran."""
        running = self.service is not None
        if running:
            self.stop()
        self.config = self.config.with_(**changes)
        return self.start() if running or self.mode == "reader" else "configured; %quantify start to stream"

    def status(self) -> WriterStatus | None:
        """The service's status when writing, else the writer's published one (``None`` if none)."""
        if self.service is not None:
            return self.service.status()
        return writer_status(self.config.store)


def _who(exc: WriterLocked) -> str:
    text = str(exc)
    if "writer:" in text:
        return "writer: " + text.split("writer:", 1)[1].split(". ", 1)[0].strip()
    return text
