"""A dashboard's processes end with it: a closed page frees its kernel, SIGTERM stops everything.

Every process of a dashboard (Voilà and each kernel) carries the store URI of
its run in ``QUANTIFY_STORE``; the tests find them by that, in ``/proc``,
independently of how the server tracks them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.browser.printed import read_printed_url

#: Seconds without a page after which the test server culls a kernel (users: 60).
CULL_SECONDS = 6
#: Bound on a closed page's kernel: the cull timeout and interval, Voilà's shutdown, a loaded machine.
FREED_WITHIN = 60.0
LOOPBACK = re.compile(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob|about):")


def processes_with_env(name: str, value: str) -> dict[int, str]:
    """pid -> command line of the running processes whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            if needle not in env:
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, not yet reaped
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def kernels(store_uri: str) -> set[int]:
    return {p for p, cmd in processes_with_env("QUANTIFY_STORE", store_uri).items()
            if "ipykernel" in cmd}


def freed(store_uri: str, before: set[int]) -> bool:
    """No kernel of ``before`` runs, and at most one other (the next visitor's, pre-heated)."""
    now = kernels(store_uri)
    return not (now & before) and len(now) <= 1


def wait_for(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = predicate()
    return value


def _start(args: list[str], log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "quantify", *args], stdout=subprocess.PIPE,
                                stderr=err, text=True, start_new_session=True)


def _read_url(proc: subprocess.Popen[str], marker: str) -> str:
    return read_printed_url(proc, marker, r"http://127\.0\.0\.1:\d+/\S*")


def _kill_all(proc: subprocess.Popen[str], store_uri: str) -> None:
    """Whatever a failed test left: the command's group and every process of its store."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in processes_with_env("QUANTIFY_STORE", store_uri):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _sigterm_leaves_nothing(proc: subprocess.Popen[str], url: str, store_uri: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as page:  # a page view: a kernel runs it
        assert page.status == 200 and b"widget-view+json" in page.read()  # rendered by a kernel
    assert wait_for(lambda: kernels(store_uri), 30), "no kernel started"
    assert wait_for(lambda: len(processes_with_env("QUANTIFY_STORE", store_uri)) >= 2, 30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    left = processes_with_env("QUANTIFY_STORE", store_uri)
    assert not left, f"left running after SIGTERM: {left}"


def test_closed_pages_free_their_kernels_and_sigterm_stops_everything(browser, store_uri, tmp_path):
    proc = _start(["dashboard", "pairs_monitor", "--no-browser", "--store", store_uri,
                   "--cull-seconds", str(CULL_SECONDS)], tmp_path / "stderr")
    outside: list[str] = []
    try:
        url = _read_url(proc, "quantify dashboard:")
        # Voilà keeps one kernel pre-heated for the next visitor; each page takes it over.
        assert wait_for(lambda: len(kernels(store_uri)) == 1, 60), kernels(store_uri)
        # 1, 2: closed as a browser closes a tab (beforeunload); 3: the browser goes away
        # without unloading, after staying open longer than the cull timeout
        for visit, unload in enumerate((True, True, False), 1):
            before = kernels(store_uri)
            ctx = browser.new_context()
            page = ctx.new_page()
            page.on("request", lambda r: outside.append(r.url) if not LOOPBACK.match(r.url) else None)
            page.goto(url, timeout=60_000)
            page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
            if not unload:  # a watched kernel is never culled, however long
                page.wait_for_timeout((CULL_SECONDS + 2 * CULL_SECONDS / 4 + 2) * 1000)
                assert before <= kernels(store_uri), "the open page's kernel was culled"
                assert page.locator(".bqplot svg path.line").count() >= 1
            assert len(kernels(store_uri)) <= 2, f"visit {visit}: the page's and one pre-heated"
            page.close(run_before_unload=unload)
            ctx.close()
            # the page's kernel (one of those before the visit) is gone; at most the
            # pre-heated one started for the next visitor is left
            left = wait_for(functools.partial(freed, store_uri, before), FREED_WITHIN)
            assert left, f"visit {visit}: kernels left {kernels(store_uri)} (before: {before})"
        assert outside == [], f"the page reached outside 127.0.0.1: {outside}"
        # one more page view, then what a supervisor sends
        _sigterm_leaves_nothing(proc, url, store_uri)
    finally:
        _kill_all(proc, store_uri)
    # four page views and a stop, and nothing to read: Voilà logs errors only, kernels use IPC
    log = (tmp_path / "stderr").read_text()
    assert not re.search(r"Traceback|WARNING|not trusted|without encryption", log), log


def test_sigterm_stops_the_demo_and_its_kernels(tmp_path):
    store_uri = f"lmdb://{tmp_path / 'demo'}"
    proc = _start(["demo", "--no-browser", "--store", store_uri], tmp_path / "stderr")
    try:
        url = _read_url(proc, "dashboard ")
        _sigterm_leaves_nothing(proc, url, store_uri)
    finally:
        _kill_all(proc, store_uri)
    assert "Traceback" not in (tmp_path / "stderr").read_text()
