"""Shared fixtures: the bundled sample, recorded fixtures, fresh stores."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
_counter = itertools.count()


@pytest.fixture
def data_dir() -> Path:
    """Recorded Binance fixtures shipped with the tests (see tests/data/README.md)."""
    return DATA


@pytest.fixture
def lmdb_uri(tmp_path: Path) -> str:
    """URI of a fresh LMDB store in a temporary directory."""
    return f"lmdb://{tmp_path / f'store{next(_counter)}'}"
