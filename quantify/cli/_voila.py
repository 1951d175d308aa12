"""The kernel manager of ``quantify dashboard``'s Voilà server (imported by Voilà, not the CLI).

:func:`quantify.cli.dashboard.serve_dashboard` names :class:`DashboardKernelManager` in
``--VoilaConfiguration.multi_kernel_manager_class``; this module imports Jupyter server, which
the ``quantify`` command itself never needs to.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

__all__ = ["DashboardKernelManager"]


class DashboardKernelManager(AsyncMappingKernelManager):
    """Shut down a dashboard's kernel once no page has been connected to it for a while.

    Jupyter server's culler shuts down kernels that are *idle*; a dashboard's
    kernel never is, since its widgets push frames several times a second
    whether a page watches or not. This manager culls by connection instead:
    a kernel that has had no WebSocket connection at ``cull_idle_timeout``
    consecutive seconds of checks (every ``cull_interval`` seconds) while not
    starting or executing (a kernel running the notebook for a page that is
    still loading has no connection yet) is shut down, whatever its widgets send. A closed tab, a crashed browser or a lost network all
    end in a closed WebSocket, so a page's kernel is stopped at most
    ``cull_idle_timeout + cull_interval`` seconds after its page went away.
    (Voilà also asks for the shutdown from the page's ``beforeunload``, which
    frees the kernel at once when the browser gets to send it.)

    Voilà's pool of pre-heated kernels, waiting for the next visitor, is
    never culled (Voilà's manager, built on this one, skips them).

    Notes
    -----
    The timeout must exceed the time from a kernel's hand-out to its page's
    first WebSocket connection (the page's scripts loading); ``quantify
    dashboard`` uses 60 s by default.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._unwatched_since: dict[str, float] = {}

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        """Shut ``kernel_id`` down if no page has been connected to it for ``cull_idle_timeout`` s."""
        for gone in [k for k in self._unwatched_since if k not in self._kernels]:
            del self._unwatched_since[gone]
        kernel = self._kernels.get(kernel_id)
        state = getattr(kernel, "execution_state", None)
        if state == "dead":
            await self._shutdown(kernel_id)
            return
        if self._kernel_connections.get(kernel_id, 0) > 0 or state in ("starting", "busy"):
            # watched, or still starting or running the notebook for a page that waits
            self._unwatched_since.pop(kernel_id, None)
            return
        now = time.monotonic()
        since = self._unwatched_since.setdefault(kernel_id, now)
        if now - since < self.cull_idle_timeout:
            return
        del self._unwatched_since[kernel_id]
        self.log.info("Culling kernel %s: no page connected for %.0f s", kernel_id, now - since)
        await self._shutdown(kernel_id)

    async def _shutdown(self, kernel_id: str) -> None:
        # Voilà's manager built on this one overrides shutdown_kernel with a coroutine function
        result: Any = self.shutdown_kernel(kernel_id)
        if inspect.isawaitable(result):
            await result
