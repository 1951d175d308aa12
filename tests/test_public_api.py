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


def test_analytics_names_are_imported_on_first_use_from_the_modules_type_checkers_see():
    """``quantify.analytics`` resolves each name lazily from ``_HOME``, the same modules as its ``TYPE_CHECKING`` imports."""
    import ast
    import inspect
    import subprocess
    import sys

    import quantify.analytics as qa

    tree = ast.parse(inspect.getsource(qa))
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {alias.asname or alias.name: node.module for node in guarded.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == qa._HOME
    assert sorted(qa.__all__) == sorted(qa._HOME)
    for name in qa.__all__:
        assert getattr(qa, name) is getattr(sys.modules[qa._HOME[name]], name)
    # the first rolling hedge ratio of a fresh interpreter loads neither statsmodels nor scipy.stats
    code = ("import sys, numpy as np, quantify as qf; y = np.cumsum(np.ones(50)) + 100; "
            "qf.rolling_hedge_ratio(y + np.sin(y), y, 10); "
            "assert not {'statsmodels', 'scipy.stats'} & set(sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
