"""``qf.sweep_backtest``: every grid combination is the backtest run directly; bad grids are one clear error."""

from __future__ import annotations

import numpy as np
import pytest

import quantify as qf


@pytest.fixture(scope="module")
def prices():
    return qf.datasets.candles_2018()[["LTC", "ETH"]].ffill().dropna().iloc[:2000]


def test_each_row_is_the_backtest_of_its_combination(prices):
    grid = {"entry": np.array([1.5, 2.0]), "window": range(60, 121, 60), "exit": 0.5}
    sweep = qf.sweep_backtest(prices, "LTC", "ETH", grid, cost_bps=2.0, progress=False)
    assert list(sweep.columns[:3]) == ["entry", "window", "exit"] and len(sweep) == 4
    for row in sweep.itertuples():
        one = qf.backtest_pairs(prices.LTC, prices.ETH, entry=row.entry, window=row.window, exit=0.5, cost_bps=2.0)
        assert (row.total_return, row.sharpe, row.n_trades) == (one.total_return, one.sharpe, one.n_trades)


def test_a_refused_combination_keeps_its_reason_and_the_rest_run(prices):
    sweep = qf.sweep_backtest(prices, "LTC", "ETH", {"entry": [2.0], "exit": [0.5, 2.5]}, progress=False)
    assert sweep.n_trades.iloc[0] > 0 and sweep.note.iloc[0] == ""
    assert np.isnan(sweep.sharpe.iloc[1]) and "exit must be below entry" in sweep.note.iloc[1]


@pytest.mark.parametrize(("grid", "fixed", "message"), [
    ({}, {}, "grid must map"),
    ({"entri": [1.5]}, {}, "no keyword 'entri'"),
    ({"entry": []}, {}, "nothing to try"),
    ({"entry": [1.5]}, {"entry": 2.0}, "both swept and fixed"),
])
def test_bad_grids_are_one_clear_error(prices, grid, fixed, message):
    with pytest.raises(ValueError, match=message):
        qf.sweep_backtest(prices, "LTC", "ETH", grid, progress=False, **fixed)


def test_an_unknown_leg_names_the_columns(prices):
    with pytest.raises(ValueError, match="no column.*'XRP'"):
        qf.sweep_backtest(prices, "XRP", "ETH", {"entry": [2.0]}, progress=False)
