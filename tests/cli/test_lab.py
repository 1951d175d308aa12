"""``quantify lab``: its arguments, the quantify kernelspec, the printed URL, and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from quantify.cli import build_parser
from quantify.cli._stream import DEMO_SYMBOLS
from quantify.cli.lab import (
    DEFAULT_CULL_MINUTES,
    DISABLED_PLUGINS,
    KERNEL_DISPLAY_NAME,
    KERNEL_NAME,
    _ipc_fits,
    _kernel_env,
    _lab_config_dir,
    _pick_port,
    install_kernelspec,
    lab_command,
    notebooks_dir,
)

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=(\S+)")


def test_arguments_and_their_defaults():
    args = build_parser().parse_args(["lab"])
    assert (args.port, args.token, args.notebook_dir, args.replay, args.store) == (None, None, None, False, None)
    assert args.cull_idle == DEFAULT_CULL_MINUTES and not args.no_browser
    args = build_parser().parse_args(["lab", "--port", "0", "--token", "t0k", "--notebook-dir", "/tmp",
                                      "--replay", "--store", "mem://", "--speed", "10", "--cull-idle", "5",
                                      "--no-browser"])
    assert (args.port, args.token, str(args.notebook_dir), args.store) == (0, "t0k", "/tmp", "mem://")
    assert args.replay and args.no_browser and args.speed == 10 and args.cull_idle == 5


def test_help_says_what_replay_does(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lab", "--help"])
    out = capsys.readouterr().out
    assert "--replay" in out and "%load_ext quantify" in out and "127.0.0.1" in out


def test_command_is_loopback_token_quantify_kernel_culling_and_offline(tmp_path):
    cmd = lab_command(tmp_path, 8123, "s3cret", cull_minutes=2, runtime_dir="/tmp/rt")
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    for opt in ("--ServerApp.ip=127.0.0.1", "--ServerApp.port=8123", "--ServerApp.port_retries=0",
                "--IdentityProvider.token=s3cret", f"--ServerApp.root_dir={tmp_path}",
                f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
                "--MappingKernelManager.cull_idle_timeout=120", "--MappingKernelManager.cull_connected=False",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly", "--no-browser", "--KernelManager.transport=ipc"):
        assert opt in cmd, opt
    assert not any("cull" in opt for opt in lab_command(tmp_path, 8123, "t", cull_minutes=0))
    with pytest.raises(ValueError, match="-1"):
        lab_command(tmp_path, 8123, "t", cull_minutes=-1)


def test_ipc_only_where_the_socket_paths_fit():
    assert _ipc_fits("/tmp/rt")
    assert not _ipc_fits("/tmp/" + "x" * 80)
    assert "--KernelManager.transport=ipc" not in lab_command(Path("/tmp"), 1, "t", runtime_dir="/" + "x" * 80)


def test_busy_port_is_refused_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ValueError, match=str(busy)):
            _pick_port(busy)
    assert _pick_port(0) > 0 and _pick_port(None) > 0


def test_rooted_at_the_checkouts_notebooks():
    assert notebooks_dir() == ROOT / "notebooks"


def test_kernels_get_the_store_and_the_replay_and_import_this_checkout():
    env = _kernel_env({"PYTHONPATH": "/elsewhere", "HOME": "/home/x"}, "lmdb:///tmp/s",
                      ("ws://127.0.0.1:1", "http://127.0.0.1:1"))
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"] and env["HOME"] == "/home/x"
    assert (env["QUANTIFY_STORE"], env["QUANTIFY_WS_URL"], env["QUANTIFY_REST_URL"]) == (
        "lmdb:///tmp/s", "ws://127.0.0.1:1", "http://127.0.0.1:1")
    assert env["QUANTIFY_SYMBOLS"].split(",") == list(DEMO_SYMBOLS)
    plain = _kernel_env({}, None, None)
    assert not any(key.startswith("QUANTIFY_") for key in plain)


def test_page_config_turns_the_news_plugin_off(tmp_path):
    folder = _lab_config_dir(tmp_path)
    page = json.loads((folder / "labconfig" / "page_config.json").read_text())
    assert page == {"disabledExtensions": dict.fromkeys(DISABLED_PLUGINS, True)}
    assert _lab_config_dir(tmp_path) == folder


def test_kernelspec_installs_into_a_prefix_idempotently(tmp_path):
    folder = install_kernelspec(tmp_path)
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and "ipykernel_launcher" in spec["argv"]
    assert spec["display_name"] == KERNEL_DISPLAY_NAME
    before = (folder / "kernel.json").stat().st_mtime_ns
    assert install_kernelspec(tmp_path) == folder
    assert (folder / "kernel.json").stat().st_mtime_ns == before
    found = KernelSpecManager(kernel_dirs=[str(folder.parent)], ensure_native_kernel=False)
    assert found.get_kernel_spec(KERNEL_NAME).display_name == KERNEL_DISPLAY_NAME


def test_bad_notebook_dir_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "quantify", "lab", "--no-browser", "--notebook-dir",
                           str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "nowhere" in done.stderr and "Traceback" not in done.stderr


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except (OSError, ValueError):
                    continue
                out[int(entry.name)] = (ppid, cmd)
        return out
    return {p.pid: (p.info["ppid"], " ".join(p.info["cmdline"] or ()))
            for p in psutil.process_iter(["ppid", "cmdline"])}


def _descendants(pid: int) -> set[int]:
    procs = _processes()
    out, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _) in procs.items():
            if ppid == parent and child not in out:
                out.add(child)
                todo.append(child)
    return out


def lab_env(tmp: Path) -> dict[str, str]:
    """This checkout first on the path; Jupyter's config, runtime, settings and workspaces in ``tmp``."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "rt"),
                JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "ws"))


def start_lab(args: list[str], tmp: Path, timeout: float = 180) -> tuple[subprocess.Popen[str], str]:
    """Start ``quantify lab ARGS`` and return it with the URL it prints once JupyterLab serves."""
    proc = subprocess.Popen([sys.executable, "-m", "quantify", "lab", "--no-browser", *args],
                            env=lab_env(tmp), stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        if (m := URL.search(line)) is not None:
            return proc, m.group(0)
        if time.monotonic() > deadline:
            break
    proc.kill()
    pytest.fail(f"quantify lab printed no URL (exit code {proc.poll()})")


def _kernels(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/kernels?token=t0k3n", timeout=30) as r:
        return json.load(r)


def _start_kernel(base: str) -> str:
    request = urllib.request.Request(f"{base}/api/kernels?token=t0k3n", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=60) as r:
        kernel = json.load(r)
    assert kernel["name"] == KERNEL_NAME  # the default kernel
    return str(kernel["id"])


def test_url_kernel_culling_and_sigterm_leaves_no_process():
    """The printed URL serves JupyterLab with the quantify kernel; an idle kernel nobody is
    connected to is culled (--cull-idle 0.1: 6 s); SIGTERM stops JupyterLab and its kernels."""
    tmp = Path(tempfile.mkdtemp(prefix="qflab"))  # short: the kernels' IPC sockets live under it
    (tmp / "nb").mkdir()
    proc, url = start_lab(["--port", "0", "--token", "t0k3n", "--notebook-dir", str(tmp / "nb"),
                           "--cull-idle", "0.1"], tmp)
    try:
        base = url.split("/lab?")[0]
        assert url.endswith("/lab?token=t0k3n")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"{base}/api/kernelspecs?token=t0k3n", timeout=30) as r:
            specs = json.load(r)
        assert specs["default"] == KERNEL_NAME
        assert specs["kernelspecs"][KERNEL_NAME]["spec"]["display_name"] == KERNEL_DISPLAY_NAME
        with pytest.raises(urllib.error.HTTPError):  # the token is required
            urllib.request.urlopen(f"{base}/api/kernels", timeout=30)

        idle = _start_kernel(base)
        deadline = time.monotonic() + 90  # 6 s idle, checked every 6 s, on a loaded machine
        while any(k["id"] == idle for k in _kernels(base)):
            assert time.monotonic() < deadline, "the idle kernel was not culled"
            time.sleep(1)

        _start_kernel(base)
        deadline = time.monotonic() + 60
        while not any("ipykernel" in _processes().get(p, (0, ""))[1] for p in _descendants(proc.pid)):
            assert time.monotonic() < deadline, "no kernel process appeared"
            time.sleep(0.2)
        started = _descendants(proc.pid)
        assert len(started) >= 2  # JupyterLab and the kernel
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0
    deadline = time.monotonic() + 30
    while left := started & set(_processes()):
        assert time.monotonic() < deadline, f"left running after SIGTERM: {[_processes().get(p) for p in left]}"
        time.sleep(0.2)
