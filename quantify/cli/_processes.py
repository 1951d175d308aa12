"""Servers the CLI starts as child processes (Voilà, JupyterLab), and stopping them with all they started.

A server runs in its own session (process group); the kernels it starts run
in sessions of their own, so stopping the group alone would leave them as
orphans. :func:`stop_process_tree` remembers every descendant *before* the
first signal and later signals only processes that are still the same (pid
and start time: a pid reused meanwhile is left alone). Linux ``/proc``; on
other systems only the process group is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

__all__ = ["descendants", "free_port", "process_table", "stop_process_tree"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` (default 127.0.0.1) that nothing listens on now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from ``/proc`` (empty elsewhere)."""
    table: dict[int, tuple[int, str]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), fields[19].decode())
    return table


def descendants(pid: int) -> dict[int, str]:
    """The processes started by ``pid``, at any depth: pid -> start time."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    out: dict[int, str] = {}
    todo = list(children.get(pid, ()))
    while todo:
        p = todo.pop()
        if p not in out:
            out[p] = table[p][1]
            todo.extend(children.get(p, ()))
    return out


def _still_running(processes: dict[int, str]) -> dict[int, str]:
    table = process_table()
    return {p: t for p, t in processes.items() if p in table and table[p][1] == t}


def _signal(processes: dict[int, str], sig: signal.Signals) -> None:
    for pid in _still_running(processes):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_process_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0, *,
                      children_at_once: bool = False) -> None:
    """Stop ``proc`` (a session leader) and every process it started; idempotent.

    The process group gets SIGTERM and ``timeout`` seconds to shut its
    children down itself (JupyterLab and Voilà stop their kernels on
    SIGTERM), then SIGKILL. Descendants still running after that get SIGTERM,
    then SIGKILL after 3 s. ``children_at_once`` sends the descendants SIGTERM
    together with the server (a Voilà kernel keeps nothing worth a graceful
    shutdown, and one still running the notebook when the server's shutdown
    request reaches it prints a traceback).
    """
    started = descendants(proc.pid) if proc.poll() is None else {}
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        if children_at_once:
            _signal(started, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 3
        while (started := _still_running(started)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not started:
            break
        _signal(started, sig)
    proc.wait()
