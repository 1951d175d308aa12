"""``quantify lab``: JupyterLab on the notebooks, on 127.0.0.1 with a token."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Mapping
from pathlib import Path

from ipykernel.kernelspec import install as install_ipykernel_spec
from jupyter_core.paths import jupyter_runtime_dir

from quantify.cli._common import store_from_args
from quantify.cli._processes import stop_process_tree
from quantify.cli._stream import DEMO_BOOKS, DEMO_STORE, DEMO_SYMBOLS, fresh_demo_store, start_replay_stream
from quantify.exceptions import QuantifyError

__all__ = [
    "DEFAULT_CULL_MINUTES",
    "DEFAULT_PORT",
    "KERNEL_DISPLAY_NAME",
    "KERNEL_NAME",
    "install_kernelspec",
    "lab_command",
    "lab_url",
    "notebooks_dir",
    "serve_lab",
    "stop_lab",
]

#: The kernelspec ``quantify lab`` installs and makes JupyterLab's default (the notebooks name it).
KERNEL_NAME = "quantify"
KERNEL_DISPLAY_NAME = "QuantiFy (Python 3)"
#: JupyterLab's usual port; ``quantify lab`` takes a free one when it is busy.
DEFAULT_PORT = 8888
#: A kernel idle this long with no notebook connected to it is shut down.
DEFAULT_CULL_MINUTES = 60.0
#: JupyterLab plugins turned off: the announcements plugin asks to fetch news from the internet.
DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)
#: Seconds JupyterLab gets to stop itself and its kernels before they are killed.
STOP_TIMEOUT = 10.0

EPILOG = f"""\
JupyterLab listens on 127.0.0.1 only and asks for the token of the printed
URL. Before it starts, the Jupyter kernel "{KERNEL_NAME}" ({KERNEL_DISPLAY_NAME}:
this environment's Python) is installed into this environment (sys.prefix) and
made JupyterLab's default; the notebooks use it.

With --replay, this process also runs what `quantify demo` runs: a local
replay server looping the bundled recorded Binance trades (spot and USD-M
BTCUSDT and ETHUSDT, 2024-08-08) and the ingestion service streaming them into
the store (default lmdb://{DEMO_STORE}, wiped at start). Every kernel gets
QUANTIFY_STORE (and the replay's URLs), so `%load_ext quantify` in any notebook
attaches as a reader to that store at once, offline.

Without --replay, kernels use --store (or $QUANTIFY_STORE, or the default
store) and `%load_ext quantify` streams from Binance.

A kernel with no notebook connected (its tab closed) that stays idle for
--cull-idle minutes (default {DEFAULT_CULL_MINUTES:g}) is shut down; a kernel whose live
widgets keep updating is not idle, so stop them (or the kernel) when done.

Nothing is fetched from the internet: JupyterLab's news feed, update check
and extension manager are off. Ctrl-C (or SIGTERM) stops JupyterLab, every
kernel it started and the replay.
"""


def notebooks_dir() -> Path | None:
    """The ``notebooks/`` folder of the QuantiFy checkout, or ``None`` in an installed package."""
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    return folder if folder.is_dir() else None


def install_kernelspec(prefix: str | Path | None = None) -> Path:
    """Install the ``quantify`` Jupyter kernelspec for this Python; return its folder.

    Idempotent: a spec that already names this interpreter and display name
    is left as it is.

    Parameters
    ----------
    prefix : str or Path, optional
        Install under ``PREFIX/share/jupyter/kernels/`` (default: ``sys.prefix``,
        this environment, where JupyterLab of the same environment finds it).
    """
    prefix = str(sys.prefix if prefix is None else prefix)
    folder = Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    with contextlib.suppress(OSError, ValueError):
        spec = json.loads((folder / "kernel.json").read_text(encoding="utf-8"))
        if spec.get("argv", [None])[0] == sys.executable and spec.get("display_name") == KERNEL_DISPLAY_NAME:
            return folder
    return Path(install_ipykernel_spec(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME,
                                       prefix=prefix))


def lab_url(port: int, token: str, path: str = "lab") -> str:
    """The ready-to-open URL of a JupyterLab on 127.0.0.1."""
    return f"http://127.0.0.1:{port}/{path}?token={token}"


def _ipc_fits(runtime_dir: str | Path) -> bool:
    """Whether kernels' IPC sockets fit under ``runtime_dir`` (a Unix socket path has 107 bytes at most)."""
    # jupyter_client names them RUNTIME/kernel-<uuid4>-ipc-<n> after the connection file.
    longest = Path(runtime_dir, f"kernel-{'0' * 36}-ipc-99")
    return os.name == "posix" and len(os.fsencode(longest)) <= 107


def lab_command(root: Path, port: int, token: str, *, cull_minutes: float = DEFAULT_CULL_MINUTES,
                log_level: str = "WARN", runtime_dir: str | Path | None = None) -> list[str]:
    """The JupyterLab command line: loopback, token, ``root``, the quantify kernel, no internet.

    ``cull_minutes`` > 0: a kernel idle that long with no client connected is
    shut down (checked every minute at most); 0 keeps idle kernels.
    ``runtime_dir`` is Jupyter's runtime folder (default: this process's),
    where the kernels' connection files (and IPC sockets, when their paths
    fit) go.
    """
    runtime_dir = jupyter_runtime_dir() if runtime_dir is None else runtime_dir
    if cull_minutes < 0:
        raise ValueError(f"cull_minutes must be >= 0, got {cull_minutes!r}")
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.log_level={log_level}", f"--LabApp.log_level={log_level}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
        # No request leaves the machine: no news feed, no update check, no PyPI listing.
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if _ipc_fits(runtime_dir):
        # Kernels talk to JupyterLab over Unix sockets rather than unencrypted TCP on loopback
        # (ipykernel warns about the latter on every start).
        cmd.append("--KernelManager.transport=ipc")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root; Jupyter refuses by default
        cmd.append("--ServerApp.allow_root=True")
    if cull_minutes > 0:
        seconds = max(1, round(cull_minutes * 60))
        cmd += [f"--MappingKernelManager.cull_idle_timeout={seconds}",
                f"--MappingKernelManager.cull_interval={min(60, seconds)}",
                "--MappingKernelManager.cull_connected=False", "--MappingKernelManager.cull_busy=False"]
    return cmd


def _pick_port(port: int | None) -> int:
    """``port`` if given (0: a free one); else :data:`DEFAULT_PORT` when free, else a free one."""
    for candidate in ([DEFAULT_PORT, 0] if port is None else [port]):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ValueError(f"port {port} on 127.0.0.1 is in use; pass another --port (0: a free one)")


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise QuantifyError(f"JupyterLab exited with code {proc.returncode} before serving "
                                f"(its log is above)")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise QuantifyError(f"JupyterLab did not answer {url.split('?')[0]} within {timeout:.0f} s")


def _lab_config_dir(runtime_dir: str | Path) -> Path:
    """A Jupyter config folder (for ``JUPYTER_CONFIG_PATH``) whose page config turns off :data:`DISABLED_PLUGINS`."""
    folder = Path(runtime_dir) / "quantify-lab"
    page = folder / "labconfig" / "page_config.json"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(json.dumps({"disabledExtensions": dict.fromkeys(DISABLED_PLUGINS, True)}), encoding="utf-8")
    return folder


def serve_lab(
    root: Path,
    port: int | None = None,
    token: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cull_minutes: float = DEFAULT_CULL_MINUTES,
    log_level: str = "WARN",
    timeout: float = 120.0,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start JupyterLab on 127.0.0.1 rooted at ``root``; return ``(url, process)`` once it serves.

    JupyterLab runs in its own session (process group), so a terminal's
    Ctrl-C reaches only this process; stop it with :func:`stop_lab`.

    Parameters
    ----------
    root : Path
        The folder JupyterLab shows.
    port : int, optional
        Port on 127.0.0.1 (0: a free one; default :data:`DEFAULT_PORT` if free, else a free one).
    token : str, optional
        The access token (default: a random one, from :mod:`secrets`).
    env : mapping, optional
        Environment of JupyterLab and so of its kernels (default: this process's).
    cull_minutes, log_level
        See :func:`lab_command`.
    timeout : float
        Seconds to wait for JupyterLab to answer.

    Raises
    ------
    ValueError
        If ``root`` is not a folder or ``port`` is in use.
    QuantifyError
        If JupyterLab exits or does not answer within ``timeout`` (it is stopped then).
    """
    if not Path(root).is_dir():
        raise ValueError(f"notebook folder {str(root)!r} does not exist")
    port = _pick_port(port)
    token = token or secrets.token_hex(24)
    env = dict(os.environ if env is None else env)
    runtime_dir = env.get("JUPYTER_RUNTIME_DIR") or jupyter_runtime_dir()
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (str(_lab_config_dir(runtime_dir)), env.get("JUPYTER_CONFIG_PATH")) if p)
    cmd = lab_command(Path(root).resolve(), port, token, cull_minutes=cull_minutes, log_level=log_level,
                      runtime_dir=runtime_dir)
    proc = subprocess.Popen(cmd, env=env, cwd=root, start_new_session=True)
    try:
        _wait_until_serving(lab_url(port, token, "api/status"), proc, timeout)
    except BaseException:  # an error, a timeout or Ctrl-C while starting: leave nothing running
        stop_lab(proc)
        raise
    return lab_url(port, token), proc


def stop_lab(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Stop JupyterLab and every kernel it started; kill what is left after ``timeout`` s.

    JupyterLab shuts its kernels down on SIGTERM (each one cleanly: an
    extension's writer flushes); kernels that outlive it are stopped too
    (:func:`~quantify.cli._processes.stop_process_tree`).
    """
    stop_process_tree(proc, timeout)


def _kernel_env(base: Mapping[str, str], store: str | None, urls: tuple[str, str] | None) -> dict[str, str]:
    """JupyterLab's environment: ``base``, this checkout first on the path, and the store (and replay)."""
    env = dict(base)
    if notebooks_dir() is not None:  # kernels import this checkout's quantify, as this process does
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    if store:
        env["QUANTIFY_STORE"] = store
    if urls is not None:
        env["QUANTIFY_WS_URL"], env["QUANTIFY_REST_URL"] = urls
        env["QUANTIFY_SYMBOLS"] = ",".join(DEMO_SYMBOLS)
        env["QUANTIFY_BOOKS"] = ",".join(DEMO_BOOKS)
    return env


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lab", help="JupyterLab on the notebooks, on 127.0.0.1 with a token",
        description="Start JupyterLab on 127.0.0.1 with the quantify kernel, rooted at the checkout's "
                    "notebooks/ folder (in an installed package without a checkout: the current "
                    "folder), and print the URL to open.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=None,
                   help=f"port on 127.0.0.1 (default: {DEFAULT_PORT} if free, else a free one; 0: a free one)")
    p.add_argument("--token", default=None, help="access token (default: a random one)")
    p.add_argument("--notebook-dir", metavar="DIR", type=Path, default=None,
                   help="folder to open (default: the checkout's notebooks/, else the current folder)")
    p.add_argument("--replay", action="store_true",
                   help="also replay the bundled recorded Binance trades into the store, as "
                        "`quantify demo` does, so `%%load_ext quantify` attaches to it offline")
    p.add_argument("--store", metavar="URI", default=None,
                   help=f"the kernels' store (QUANTIFY_STORE); with --replay the store it streams into "
                        f"(default there: lmdb://{DEMO_STORE}, wiped at start)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --replay: 1 real time (default), 10 ten times faster, 0 as fast as possible")
    p.add_argument("--cull-idle", metavar="MINUTES", type=float, default=DEFAULT_CULL_MINUTES,
                   help=f"shut down a kernel idle this long with no notebook connected "
                        f"(default: {DEFAULT_CULL_MINUTES:g}; 0: never)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; just print the URL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.cull_idle < 0:
        raise ValueError(f"--cull-idle must be >= 0 minutes, got {args.cull_idle!r}")
    root = args.notebook_dir or notebooks_dir() or Path.cwd()
    if not root.is_dir():
        raise ValueError(f"--notebook-dir {str(root)!r} is not a folder")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        install_kernelspec()
    except OSError as exc:
        raise QuantifyError(f"cannot install the {KERNEL_NAME!r} kernel into {sys.prefix}: {exc}; run "
                            f"QuantiFy from an environment you can write to (make lab sets up .venv)") from exc
    replay = service = None
    store = store_from_args(args)
    if args.replay:
        replay, service = start_replay_stream(fresh_demo_store(args.store), speed=args.speed)
        store = str(service.store.uri)
    lab = None
    try:
        env = _kernel_env(os.environ, store, (replay.ws_url, replay.rest_url) if replay else None)
        level = "INFO" if args.verbose else "WARN"
        url, lab = serve_lab(root, args.port, args.token, env=env, cull_minutes=args.cull_idle,
                             log_level=level)
        print(f"quantify lab: JupyterLab on {root}", flush=True)
        if service is not None:
            print(f"  replay         {', '.join(DEMO_SYMBOLS)} (recorded 2024-08-08, not live) "
                  f"streaming into {service.store.uri}", flush=True)
        print(f"  open           {url}", flush=True)
        print("  Ctrl-C stops JupyterLab, its kernels and the replay." if service
              else "  Ctrl-C stops JupyterLab and its kernels.", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        while not stop.is_set():
            if lab.poll() is not None:
                print(f"quantify lab: JupyterLab exited with code {lab.returncode}", file=sys.stderr)
                return 1
            if service is not None and not service.is_alive():
                print("quantify lab: the replay's ingestion stopped unexpectedly; see the log above",
                      file=sys.stderr)
                return 1
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if lab is not None:
            stop_lab(lab)
        if service is not None:
            service.join(timeout=10)
        if replay is not None:
            replay.stop()
    print("quantify lab: stopped", flush=True)
    return 0
