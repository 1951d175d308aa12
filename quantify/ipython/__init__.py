"""The IPython extension: ``%load_ext quantify`` and the ``%quantify`` magic.

Loading starts the kernel's ingestion service in a daemon thread with its own
event loop (symbols and store from ``QUANTIFY_*``, read here, at the entry
point) and prints one line saying what it did; if another process already
writes the store, the kernel attaches as a reader. Unloading, or the kernel
shutting down, stops the stream within 2 s with every received trade stored,
and stops every live widget's timer. Background work never prints: it logs,
and widgets show it.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from quantify.config import IngestConfig, ingest_config_from_env
from quantify.ipython.magics import QuantifyMagics, complete_quantify
from quantify.ipython.session import KernelSession

__all__ = ["KernelSession", "current_session", "load_ipython_extension", "unload_ipython_extension"]

logger = logging.getLogger(__name__)

#: The session of this kernel (None until the extension is loaded).
_SESSION: KernelSession | None = None


def current_session() -> KernelSession | None:
    """This kernel's :class:`KernelSession`, if the extension is loaded."""
    return _SESSION


def load_ipython_extension(ipython: Any, config: IngestConfig | None = None) -> None:
    """Register ``%quantify`` and start streaming (``%load_ext quantify``)."""
    global _SESSION
    if _SESSION is not None:
        print(f"quantify: already loaded ({_SESSION.mode}); see %quantify status")
        return
    session = KernelSession(config or ingest_config_from_env())
    ipython.register_magics(QuantifyMagics(ipython, session))
    ipython.set_hook("complete_command", lambda _self, event: complete_quantify(
        session, event.symbol, event.line), str_key="%quantify")
    _SESSION = session
    atexit.register(_shutdown)
    print(f"quantify: {session.start()}")


def unload_ipython_extension(ipython: Any) -> None:
    """Stop streaming and every live widget (``%unload_ext quantify``)."""
    global _SESSION
    session, _SESSION = _SESSION, None
    if session is None:
        return
    from quantify.widgets.frames import stop_all

    stop_all()
    message = session.stop()
    logger.info("quantify unloaded: %s", message)
    magics = ipython.magics_manager.registry.pop("QuantifyMagics", None)
    if magics is not None:
        ipython.magics_manager.magics["line"].pop("quantify", None)
    atexit.unregister(_shutdown)


def _shutdown() -> None:
    # Kernel shutdown: stop quietly, flushing what was received.
    session = _SESSION
    if session is not None:
        from quantify.widgets.frames import stop_all

        stop_all()
        session.stop()
