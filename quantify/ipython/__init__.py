"""The IPython extension: ``%load_ext quantify`` and the ``%quantify`` magic.

Loading starts the kernel's ingestion service in a daemon thread with its own
event loop (symbols and store from ``QUANTIFY_*``, read here, at the entry
point) and prints one line saying what it did; if another process already
writes the store, the kernel attaches as a reader. If the exchange cannot be
reached, a second line says so within a few seconds (host, error, what to
do) and ``%quantify status`` shows each endpoint's state while the stream
retries; a symbol the exchange does not list is refused, naming the closest
listed ones. Unloading, or the kernel
shutting down, stops the stream within 2 s with every received trade stored,
and stops every live widget's timer. Background work never prints: it logs,
and widgets show it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from quantify.config import IngestConfig, ingest_config_from_env
from quantify.exceptions import QuantifyError
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
    _register_shutdown()
    try:
        message = session.start()
    except (QuantifyError, ValueError) as exc:  # an unknown symbol, a bad store: said, not raised
        message = f"not streaming: {exc} (fix it, then %quantify start)"
    print(f"quantify: {message}")


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


_SHUTDOWN_REGISTERED = False


def _register_shutdown() -> None:
    """Stop the session when the kernel's interpreter exits, once per process.

    The hook must run before ``concurrent.futures`` refuses new work, which
    it does from its own "threading atexit" hook, called before ``atexit``
    handlers: from an ``atexit`` handler the writer thread could no longer
    take the final flush, and a kernel shutdown left trades unflushed and
    the store's status at "running". So the hook goes where
    ``concurrent.futures`` puts its own (``threading._register_atexit``,
    CPython's; called in reverse order of registration, so ours, registered
    after it, runs first), with ``atexit`` as the fallback.
    """
    global _SHUTDOWN_REGISTERED
    if _SHUTDOWN_REGISTERED:
        return
    # concurrent.futures.thread registers its hook when first imported (it
    # is imported lazily): import it now, so that ours comes later and runs first.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_shutdown)
    else:
        atexit.register(_shutdown)
    _SHUTDOWN_REGISTERED = True


def _shutdown() -> None:
    # Kernel shutdown: stop quietly, flushing what was received.
    session = _SESSION
    if session is not None:
        from quantify.widgets.frames import stop_all

        stop_all()
        session.stop()
