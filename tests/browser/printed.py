"""Reading what a ``quantify`` command prints: the URL on its line."""

from __future__ import annotations

import re
import subprocess
import time


def read_printed_url(proc: subprocess.Popen[str], marker: str, pattern: str, timeout: float = 120.0) -> str:
    """The first match of ``pattern`` on the first line of ``proc``'s output containing ``marker``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            found = re.search(pattern, line)
            assert found, line
            return found.group(0)
    raise AssertionError(f"no {marker!r} line; output: {''.join(seen)}")
