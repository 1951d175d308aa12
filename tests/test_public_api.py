"""``import quantify as qf``: the names it shows are the public API, and each of them resolves."""

from __future__ import annotations

import quantify as qf


def test_dir_shows_only_public_names_and_each_resolves():
    names = dir(qf)
    assert {"open_store", "Store", "QuantifyError", "resample", "coint", "zscore", "alerts", "widgets"} <= set(names)
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    assert not {"Any", "annotations", "importlib"} & set(names)
    for name in names:
        assert getattr(qf, name) is not None
