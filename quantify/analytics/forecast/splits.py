"""Purged walk-forward splits: train on the past, test on the next block, with a gap between.

The rows (bars with a complete feature vector and label) are cut into
``n_folds + 1`` contiguous blocks of equal size; fold ``k`` tests on block
``k + 1`` and trains on the rows before it, less a gap of ``purge + embargo``
rows. Training never uses a row at or after its test block.
"""

from __future__ import annotations

import numpy as np

from quantify.analytics import _validate

__all__ = ["purged_splits"]


def purged_splits(
    n: int,
    *,
    n_folds: int = 5,
    horizon: int = 1,
    purge: int | None = None,
    embargo: int | None = None,
    train_size: int | None = None,
    min_train: int = 20,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Walk-forward train/test row positions with a purge and an embargo.

    Parameters
    ----------
    n : int
        Number of rows (in time order).
    n_folds : int, default 5
        Test blocks; the rows are cut into ``n_folds + 1`` blocks and the
        first one is only ever trained on.
    horizon : int, default 1
        Bars spanned by a label (the target of row ``t`` is known at
        ``t + horizon``).
    purge : int, optional
        Training rows dropped before each test block because their label
        reaches into it; at least ``horizon`` (the default).
    embargo : int, optional
        Further rows dropped between the purged training rows and the test
        block, a margin against serial dependence between the last training
        outcomes and the first test outcomes; at least ``horizon`` (the default).
    train_size : int, optional
        Train on at most this many of the latest rows before the gap (a
        rolling window); default all of them (an expanding window).
    min_train : int, default 20
        Fewest training rows a fold may have.

    Returns
    -------
    list of (ndarray, ndarray)
        Per fold, the integer positions of the training rows and of the test
        rows, both increasing; every training position is below the first
        test position minus ``purge + embargo``.

    Raises
    ------
    ValueError
        If ``purge`` or ``embargo`` is below ``horizon``, a parameter is out
        of range, or a fold would have fewer than ``min_train`` training rows
        or no test row.
    TypeError
        If a parameter is not an integer.

    Notes
    -----
    The purge is López de Prado's (*Advances in Financial Machine Learning*,
    2018, ch. 7): a training label :math:`(t, t+h]` overlapping the test
    block is information from the test period. His embargo drops training
    rows just *after* a test block; a walk-forward never trains after its
    test block, so here the embargo widens the gap *before* it instead.
    """
    n = _validate.check_int(n, "n", 2, what="an integer number of rows")
    n_folds = _validate.check_int(n_folds, "n_folds", 1, what="an integer number of folds")
    h = _validate.check_int(horizon, "horizon", 1, what="an integer number of bars")
    p = h if purge is None else _validate.check_int(purge, "purge", 0)
    e = h if embargo is None else _validate.check_int(embargo, "embargo", 0)
    for name, value in (("purge", p), ("embargo", e)):
        if value < h:
            raise ValueError(f"{name} must be at least the label horizon ({h} bars), got {value}")
    size = None if train_size is None else _validate.check_int(train_size, "train_size", 1)
    min_train = _validate.check_int(min_train, "min_train", 1)
    blocks = np.array_split(np.arange(n), n_folds + 1)
    if min(len(b) for b in blocks) == 0:
        raise ValueError(f"purged_splits: {n} rows cannot make {n_folds + 1} blocks (n_folds + 1) of one row")
    gap = p + e
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for k, test in enumerate(blocks[1:]):
        stop = int(test[0]) - gap
        start = 0 if size is None else max(0, stop - size)
        train = np.arange(start, max(stop, start))
        if len(train) < min_train:
            raise ValueError(
                f"purged_splits: fold {k} has {len(train)} training rows, fewer than min_train={min_train} "
                f"({n} rows, {n_folds} folds, a gap of purge + embargo = {gap}); use more rows or fewer folds"
            )
        out.append((train, test))
    return out
