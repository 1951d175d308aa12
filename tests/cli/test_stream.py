"""The replay stream of ``quantify demo`` and ``quantify lab --replay``: its demo store."""

from __future__ import annotations

import pytest

from quantify.cli import _stream
from quantify.exceptions import WriterLocked
from quantify.store.lease import WriterLock


def test_demo_store_is_wiped_unless_a_writer_runs(tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    monkeypatch.setattr(_stream, "DEMO_STORE", demo)
    (demo / "old").mkdir(parents=True)
    assert _stream.fresh_demo_store(None) == f"lmdb://{demo}" and not demo.exists()
    assert _stream.fresh_demo_store("mem://") == "mem://"
    with WriterLock(f"lmdb://{demo}", demo):
        (demo / "data").mkdir()
        with pytest.raises(WriterLocked, match=r"pid \d+"):
            _stream.fresh_demo_store(None)
        assert (demo / "data").exists()
