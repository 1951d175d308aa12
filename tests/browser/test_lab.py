"""``quantify lab`` in Debian's Chromium: notebooks run through JupyterLab's UI ("Run All Cells").

The default run opens a notebook the test writes (so nbval does not collect
it) under ``quantify lab --replay``: ``%load_ext quantify`` attaches as a
reader to the store the replay streams into, the store's status renders,
a live pair monitor draws. The slow run also runs the repository's
``notebooks/01_getting_started.ipynb`` (a copy) the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)")
KERNEL_DISPLAY_NAME = "QuantiFy (Python 3)"
FIRST_LOOK = "first_look.ipynb"
CELLS = [
    ("markdown", "# A first look\nThe replay of `quantify lab --replay`, read from this kernel."),
    ("code", "%load_ext quantify"),
    ("code", "import time\n\nimport quantify as qf\n\nstore = qf.open_store()\n"
             "deadline = time.monotonic() + 120\n"
             "while not {'BTCUSDT', 'ETHUSDT'} <= set(store.symbols()) and time.monotonic() < deadline:\n"
             "    time.sleep(0.5)\n"
             "qf.status(store)"),
    ("code", "from quantify.widgets import PairMonitor\n\n"
             "PairMonitor('BTCUSDT', 'ETHUSDT', timeframe='1m', window=30)"),
]
#: Where a request may go: JupyterLab itself, or nowhere (inline data).
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")


def _write_first_look(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "quantify", "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nbformat.write(nb, path)


@contextlib.contextmanager
def _serve(args: list[str], tmp: Path) -> Iterator[str]:
    """Run ``quantify lab --no-browser --port 0 ARGS``; yield its URL; stop it with Ctrl-C (SIGINT)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "rt"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "ws"))
    proc = subprocess.Popen([sys.executable, "-m", "quantify", "lab", "--no-browser", "--port", "0", *args],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        if (m := URL.search(line)) is not None:
            url = m.group(0)
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    try:
        assert url is not None, f"quantify lab printed no URL (exit code {proc.poll()})"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


@pytest.fixture(scope="module")
def replay_lab() -> Iterator[str]:
    """``quantify lab --replay --speed 10`` (generated token) on a folder holding the first-look notebook."""
    tmp = Path(tempfile.mkdtemp(prefix="qflab"))  # short: the kernels' IPC sockets live under it
    (tmp / "notebooks").mkdir()
    _write_first_look(tmp / "notebooks" / FIRST_LOOK)
    with _serve(["--replay", "--speed", "10", "--store", f"lmdb://{tmp / 'store'}", "--notebook-dir", str(tmp / "notebooks")],
                tmp) as url:
        yield url


def _code_prompts(page) -> list[str]:
    return page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())")


def _kernel_name(page) -> str:
    return page.locator(".jp-Toolbar-kernelName").first.inner_text().strip()


def _run_all_cells(page, url: str, notebook: str, timeout: float = 240) -> int:
    """Open ``notebook``, run "Run All Cells" from the Run menu, wait until every cell ran and
    the kernel is idle; return the most widget views seen in outputs meanwhile."""
    page.goto(url.replace("/lab?", f"/lab/tree/{notebook}?"), timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # The kernel the notebook names starts without a kernel dialog.
    page.wait_for_function("() => !['', 'No Kernel', 'Kernel'].includes("
                           "document.querySelector('.jp-Toolbar-kernelName')?.textContent.trim() ?? '')",
                           timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

    # Count widget views as they attach: a notebook may close its widgets in a later cell.
    page.evaluate("""() => {
        window.qfWidgetViews = 0;
        new MutationObserver(records => { for (const r of records) for (const n of r.addedNodes)
            if (n.nodeType === 1 && (n.matches('.jupyter-widgets') || n.querySelector('.jupyter-widgets')))
                window.qfWidgetViews++; }).observe(document.querySelector('.jp-Notebook'),
                                                   {childList: true, subtree: true});
    }""")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    deadline = time.monotonic() + timeout
    prompts = _code_prompts(page)
    while not (prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)):
        assert time.monotonic() < deadline, f"cells did not finish within {timeout:.0f} s: {prompts}"
        page.wait_for_timeout(500)
        prompts = _code_prompts(page)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    return int(page.evaluate("() => window.qfWidgetViews"))


def _assert_no_error_output(page) -> str:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.all_inner_texts()
    text = page.inner_text(".jp-Notebook")
    for bad in ("Traceback", "Error displaying widget"):
        assert bad not in text, text[max(0, text.find(bad) - 500):]
    return text


def test_run_all_cells_under_replay(replay_lab, page):
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(LOCAL) else outside.append(r.url))
    assert _run_all_cells(page, replay_lab, FIRST_LOOK) > 0
    assert _kernel_name(page) == KERNEL_DISPLAY_NAME
    # Widgets rendered: ipywidgets views and a bqplot figure with a drawn line.
    page.wait_for_selector(".jp-OutputArea-output .bqplot svg path.line", state="attached", timeout=60_000)
    text = _assert_no_error_output(page)
    assert "attached as reader" in text, text[:2000]
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    failed_loads = [e for e in page.errors if "net::ERR" in e or "Failed to load resource" in e]
    assert failed_loads == [], failed_loads
    # The chart grows as the replay (ten times real time) streams on.
    page.wait_for_function("() => Math.max(0, ...[...document.querySelectorAll('.qf-points')]"
                           ".map(e => +e.dataset.points)) >= 3", timeout=120_000)
    page.locator(".jp-OutputArea-output .bqplot").first.scroll_into_view_if_needed()


@pytest.fixture(scope="module")
def notebooks_lab() -> Iterator[str]:
    """``quantify lab`` on a copy of the repository's notebooks (JupyterLab autosaves what runs)."""
    tmp = Path(tempfile.mkdtemp(prefix="qflab"))
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    with _serve(["--notebook-dir", str(tmp / "notebooks")], tmp) as url:
        yield url


@pytest.mark.slow
def test_run_all_cells_of_getting_started(notebooks_lab, page):
    """Whatever the version of the notebook: every cell runs without an error, a widget renders."""
    assert _run_all_cells(page, notebooks_lab, "01_getting_started.ipynb", timeout=420) > 0
    _assert_no_error_output(page)
    assert _kernel_name(page) == KERNEL_DISPLAY_NAME  # the notebooks name the quantify kernel
