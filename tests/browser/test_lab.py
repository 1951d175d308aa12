"""``quantify lab --replay`` in Debian's Chromium: a notebook run through JupyterLab's UI.

The notebook (written by the test, so nbval does not collect it) does what a
researcher does first: ``%load_ext quantify`` (attaching as a reader to the
store the replay streams into), the store's status, a live pair monitor.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)")
NOTEBOOK = "first_look.ipynb"
CELLS = [
    ("markdown", "# A first look\nThe replay of `quantify lab --replay`, read from this kernel."),
    ("code", "%load_ext quantify"),
    ("code", "import time\n\nimport quantify as qf\n\nstore = qf.open_store()\n"
             "deadline = time.monotonic() + 120\n"
             "while not {'BTCUSDT', 'ETHUSDT'} <= set(store.symbols()) and time.monotonic() < deadline:\n"
             "    time.sleep(0.5)\n"
             "qf.status(store)"),
    ("code", "from quantify.widgets import PairMonitor\n\n"
             "PairMonitor('BTCUSDT', 'ETHUSDT', timeframe='1s', window=30)"),
]


def _write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "quantify", "display_name": "QuantiFy (Python 3)", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[str, Path]]:
    """``quantify lab --replay`` on a free port with a generated token; yields (URL, notebook folder)."""
    tmp = Path(tempfile.mkdtemp(prefix="qflab"))  # short: the kernels' IPC sockets live under it
    folder = tmp / "notebooks"
    folder.mkdir()
    _write_notebook(folder / NOTEBOOK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "rt"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "ws"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantify", "lab", "--no-browser", "--port", "0", "--replay",
         "--store", f"lmdb://{tmp / 'store'}", "--notebook-dir", str(folder)],
        env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        if (m := URL.search(line)) is not None:
            url = m.group(0)
            break
    try:
        assert url is not None, f"quantify lab printed no URL (exit code {proc.poll()})"
        yield url, folder
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def _code_prompts(page) -> list[str]:
    return page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())")


def test_run_all_cells_in_jupyterlab(lab, page):
    url, _ = lab
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")) else None)
    page.goto(url.replace("/lab?", f"/lab/tree/{NOTEBOOK}?"), timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # The notebook names the quantify kernel: it starts without a dialog.
    page.wait_for_function("() => document.querySelector('.jp-Toolbar-kernelName')?.textContent.trim()"
                           " === 'QuantiFy (Python 3)'", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    deadline = time.monotonic() + 240
    prompts = _code_prompts(page)
    while not (prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)):
        assert time.monotonic() < deadline, f"cells did not finish: {prompts}"
        page.wait_for_timeout(500)
        prompts = _code_prompts(page)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    # Widgets rendered: the ipywidgets container and a bqplot figure with a drawn line.
    page.wait_for_selector(".jp-OutputArea-output .jupyter-widgets", timeout=60_000)
    page.wait_for_selector(".jp-OutputArea-output .bqplot svg path.line", state="attached", timeout=60_000)
    text = page.inner_text(".jp-Notebook")
    assert "attached as reader" in text, text[:2000]
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.all_inner_texts()
    assert "Traceback" not in text and "Error displaying widget" not in text, text[text.find("Traceback") - 500:]
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    page.locator(".jp-OutputArea-output .bqplot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # a frame or two of the live chart, for the screenshot
