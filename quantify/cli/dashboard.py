"""``quantify dashboard``: serve the Voilà dashboards, on 127.0.0.1 unless shared by link.

The Voilà server runs in its own session (process group) and is stopped with
everything it started: :func:`stop_dashboard` asks it to shut its kernels down
(SIGTERM), waits, then kills what is left, the server and each kernel (the
kernels run in sessions of their own). ``quantify dashboard`` does so on
Ctrl-C and on SIGTERM.

A page's kernel is stopped when its page goes away: at once when the browser
sends the page's ``beforeunload`` shutdown request, else (a crashed browser, a
lost network, a page killed without unloading) within ``cull_seconds`` plus a
quarter of it after the page's WebSocket closed
(:class:`~quantify.cli._voila.DashboardKernelManager`). Voilà keeps one more
kernel pre-heated for the next visitor.

Voilà logs errors only (``-v`` shows its warnings, ``-vv`` its info); kernels
talk to it over IPC sockets, not TCP ports on loopback; pages load nothing
from anywhere but the server (the ``quantify`` template, :mod:`quantify.cli._voila`).

Shared by link (``--host``, :mod:`quantify.cli._access`): on any address but
loopback every request needs the token of the printed link, optionally over
HTTPS; the server is :mod:`quantify.cli._voila_server` (Voilà, read-only, gated).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

from quantify.cli._access import Access, access_from_args, add_access_arguments
from quantify.cli._common import add_store_argument, store_from_args
from quantify.cli._processes import free_port, stop_process_tree
from quantify.store import open_store

__all__ = ["DASHBOARDS", "DEFAULT_CULL_SECONDS", "dashboards_dir", "serve_dashboard", "stop_dashboard"]

#: Dashboard names (notebooks ``dashboards/<name>.ipynb``).
DASHBOARDS = ("pairs_monitor", "market_overview", "alerts", "microstructure", "perpetuals")
THEMES = ("dark", "light")
#: Seconds without a connected page after which a dashboard's kernel is shut down.
DEFAULT_CULL_SECONDS = 60
#: Jupyter data directory holding ``voila/templates/quantify`` (Voilà's lab template, offline),
#: and in ``config/voila.json`` Voilà's tornado settings: no XSRF check (the page's
#: ``beforeunload`` shutdown request is a beacon without Voilà's XSRF token, since the page never
#: sets its cookie, so Voilà would refuse it; the server listens on loopback without a token,
#: or elsewhere behind a token whose cookie is SameSite=Strict, so another site's page cannot
#: send it; its kernels take no code from the page, and a shutdown needs the kernel's random id), and a
#: WebSocket ping timeout no longer than the ping interval (Tornado warns otherwise).
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
#: The page template, and the kernel manager that frees a closed page's kernel.
TEMPLATE = "quantify"
#: The server: Voilà, read-only, behind the link's token when shared (run with ``python -m``).
SERVER = "quantify.cli._voila_server"
KERNEL_MANAGER = "quantify.cli._voila.DashboardKernelManager"
#: Voilà's log level by ``-v`` count: errors only, then warnings, then info.
_VOILA_LOG_LEVELS = ("ERROR", "WARN", "INFO")


def dashboards_dir() -> Path:
    """The ``dashboards/`` folder of the QuantiFy checkout."""
    return Path(__file__).resolve().parents[2] / "dashboards"


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Voilà exited with code {proc.returncode} before serving")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"Voilà did not listen on {host}:{port} within {timeout:.0f} s")


def stop_dashboard(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a Voilà server of :func:`serve_dashboard` and every process it started.

    Voilà and its kernels (which run in sessions of their own) get SIGTERM at
    once, Voilà ``timeout`` seconds to clean up, then whatever still runs
    SIGKILL (:func:`~quantify.cli._processes.stop_process_tree`). Idempotent.
    """
    stop_process_tree(proc, timeout, children_at_once=True)


def serve_dashboard(
    name: str | None = "pairs_monitor",
    store_uri: str | None = None,
    port: int = 0,
    open_browser: bool = False,
    *,
    theme: str = "dark",
    log: int | None = subprocess.DEVNULL,
    timeout: float = 30.0,
    cull_seconds: int = DEFAULT_CULL_SECONDS,
    verbosity: int = 0,
    access: Access | None = None,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start Voilà serving dashboard ``name`` (or all, if None); return ``(url, process)``.

    The dashboard reads ``store_uri`` (passed in ``QUANTIFY_STORE``; nothing
    from the user reaches a shell or a path). Voilà listens on 127.0.0.1, or
    where ``access`` says, behind its token and over HTTPS if it has a
    certificate (the url is then the link to send, token included), with
    sources stripped and tracebacks hidden, in its own process group. A page's kernel is shut down
    when the page unloads, or at most ``cull_seconds + ceil(cull_seconds / 4)``
    seconds after its last connection closed. ``log`` is where Voilà's and its
    kernels' output goes (``None``: this process's); ``verbosity`` 0 logs
    errors only, 1 warnings, 2 info. Stop it with :func:`stop_dashboard`.

    Raises
    ------
    ValueError
        If ``name`` or ``theme`` is not known, or ``cull_seconds`` is below 1.
    """
    if name is not None and name not in DASHBOARDS:
        raise ValueError(f"unknown dashboard {name!r}; choose one of {', '.join(DASHBOARDS)}")
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
    if isinstance(cull_seconds, bool) or not isinstance(cull_seconds, int) or cull_seconds < 1:
        raise ValueError(f"cull_seconds must be an integer >= 1, got {cull_seconds!r}")
    folder = dashboards_dir()
    target = folder / f"{name}.ipynb" if name else folder
    if not target.exists():
        raise FileNotFoundError(f"{target} not found (run from a QuantiFy checkout)")
    access = access or Access()
    port = port or free_port(access.probe_host)
    env = dict(access.server_environment(os.environ), QUANTIFY_THEME=theme)
    for var, path in (("JUPYTER_PATH", JUPYTER_DATA), ("JUPYTER_CONFIG_PATH", JUPYTER_DATA / "config")):
        env[var] = os.pathsep.join(p for p in (str(path), env.get(var)) if p)
    if store_uri:
        env["QUANTIFY_STORE"] = store_uri
    level = _VOILA_LOG_LEVELS[min(max(verbosity, 0), len(_VOILA_LOG_LEVELS) - 1)]
    cmd = [
        sys.executable, "-m", SERVER, str(target), "--no-browser", f"--port={port}",
        f"--Voila.ip={access.host}", "--strip_sources=True", f"--theme={theme}",
        f"--template={TEMPLATE}", f"--Voila.log_level={level}",
        "--VoilaConfiguration.show_tracebacks=False", "--preheat_kernel=True", "--pool_size=1",
        # kernels over IPC sockets: no TCP port, no "TCP without encryption" warning per kernel
        "--KernelManager.transport=ipc",
        # a page's kernel stops when the page goes away (see DashboardKernelManager)
        f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER}",
        f"--DashboardKernelManager.cull_idle_timeout={cull_seconds}",
        f"--DashboardKernelManager.cull_interval={math.ceil(cull_seconds / 4)}",
    ]
    if access.certfile:
        cmd.append(f"--QuantifyVoila.certfile={access.certfile}")
    if access.keyfile:
        cmd.append(f"--QuantifyVoila.keyfile={access.keyfile}")
    proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_for_port(access.probe_host, port, proc, timeout)
    except BaseException:
        stop_dashboard(proc)
        raise
    url = access.link(port, "" if name else "voila/tree")
    if open_browser:
        webbrowser.open(url)
    return url, proc


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="serve the live dashboards with Voilà",
        description="Serve a dashboard (pairs_monitor, market_overview, alerts, microstructure, "
                    "perpetuals) or all of them with Voilà on 127.0.0.1 (or --host, behind the token of "
                    "the printed link), reading the store another process writes "
                    "(quantify ingest or quantify demo). A closed page's kernel is shut down (at "
                    "once when the browser says so, else within --cull-seconds and a quarter). "
                    "Ctrl-C or SIGTERM stops the server and every kernel. Voilà logs errors "
                    "only; -v shows its warnings.",
    )
    p.add_argument("name", nargs="?", choices=DASHBOARDS, default=None,
                   help="dashboard to serve (default: a list of all)")
    add_store_argument(p)
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    add_access_arguments(p)
    p.add_argument("--theme", choices=THEMES, default="dark", help="colour theme (default: dark)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--cull-seconds", type=int, default=DEFAULT_CULL_SECONDS, metavar="SECONDS",
                   help="shut a page's kernel down after this many seconds without its page "
                        f"(default: {DEFAULT_CULL_SECONDS})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    open_store(store_from_args(args))  # a missing store is an error here, never created by a reader
    if args.cull_seconds < 1:
        print(f"quantify dashboard: --cull-seconds must be >= 1, got {args.cull_seconds}",
              file=sys.stderr)
        return 2
    try:
        access = access_from_args(args)
    except ValueError as exc:
        print(f"quantify dashboard: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    proc = None
    try:
        url, proc = serve_dashboard(args.name, store_from_args(args), args.port, not args.no_browser,
                                    theme=args.theme, log=None, cull_seconds=args.cull_seconds,
                                    verbosity=getattr(args, "verbose", 0), access=access)
        print(f"quantify dashboard: {url}  (Ctrl-C stops)", flush=True)
        while proc.poll() is None and not stopping.wait(0.5):
            pass
        return 0 if stopping.is_set() else (proc.returncode or 0)
    except KeyboardInterrupt:
        return 0
    finally:
        if proc is not None:
            stop_dashboard(proc)
        signal.signal(signal.SIGTERM, previous)
