"""nbval runs each notebook's kernel in this folder: make sure it imports this checkout's quantify.

(The editable install currently resolves ``quantify`` as a namespace package
from directories other than the checkout's root.)
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
