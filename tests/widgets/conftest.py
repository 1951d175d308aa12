"""A store with the bundled replay sample ingested (speed 0), shared by widget tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from quantify.store import open_store
    from quantify.venues.binance.recordings import read_trades, sample_files

    store = open_store(f"lmdb://{tmp_path_factory.mktemp('w') / 'store'}", create=True)
    for path in sample_files():
        frames = read_trades(path)
        store.append_ticks(frames)
    yield store
