"""``quantify dashboard``: serve the Voilà dashboards on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from pathlib import Path

from quantify.cli._common import add_store_argument, store_from_args
from quantify.store import open_store

__all__ = ["DASHBOARDS", "dashboards_dir", "serve_dashboard"]

#: Dashboard names (notebooks ``dashboards/<name>.ipynb``).
DASHBOARDS = ("pairs_monitor", "market_overview", "alerts")
THEMES = ("dark", "light")


def dashboards_dir() -> Path:
    """The ``dashboards/`` folder of the QuantiFy checkout."""
    return Path(__file__).resolve().parents[2] / "dashboards"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Voilà exited with code {proc.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise TimeoutError(f"Voilà did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def serve_dashboard(
    name: str | None = "pairs_monitor",
    store_uri: str | None = None,
    port: int = 0,
    open_browser: bool = False,
    *,
    theme: str = "dark",
    log: int | None = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start Voilà serving dashboard ``name`` (or all, if None); return ``(url, process)``.

    The dashboard reads ``store_uri`` (passed in ``QUANTIFY_STORE``; nothing
    from the user reaches a shell or a path). Voilà listens on 127.0.0.1 with
    sources stripped. Stop it with ``process.terminate()``.

    Raises
    ------
    ValueError
        If ``name`` or ``theme`` is not known.
    """
    if name is not None and name not in DASHBOARDS:
        raise ValueError(f"unknown dashboard {name!r}; choose one of {', '.join(DASHBOARDS)}")
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
    folder = dashboards_dir()
    target = folder / f"{name}.ipynb" if name else folder
    if not target.exists():
        raise FileNotFoundError(f"{target} not found (run from a QuantiFy checkout)")
    port = port or _free_port()
    env = dict(os.environ, QUANTIFY_THEME=theme)
    if store_uri:
        env["QUANTIFY_STORE"] = store_uri
    cmd = [
        sys.executable, "-m", "voila", str(target), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", "--strip_sources=True", f"--theme={theme}",
        "--VoilaConfiguration.show_tracebacks=False", "--preheat_kernel=True", "--pool_size=1",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=log, stderr=log, start_new_session=True)
    _wait_for_port(port, proc, timeout)
    url = f"http://127.0.0.1:{port}/"
    if name is None:
        url += "voila/tree"
    if open_browser:
        webbrowser.open(url)
    return url, proc


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="serve the live dashboards with Voilà",
        description="Serve a dashboard (pairs_monitor, market_overview, alerts) or all of them with "
                    "Voilà on 127.0.0.1, reading the store another process writes "
                    "(quantify ingest or quantify demo). Ctrl-C stops it.",
    )
    p.add_argument("name", nargs="?", choices=DASHBOARDS, default=None,
                   help="dashboard to serve (default: a list of all)")
    add_store_argument(p)
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--theme", choices=THEMES, default="dark", help="colour theme (default: dark)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    open_store(store_from_args(args))  # a missing store is an error here, never created by a reader
    url, proc = serve_dashboard(args.name, store_from_args(args), args.port, not args.no_browser,
                                theme=args.theme, log=None)
    print(f"quantify dashboard: {url}  (Ctrl-C stops)", flush=True)
    try:
        return proc.wait() or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
