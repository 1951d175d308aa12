"""Basis of a perpetual over spot, and the premium index of marks: hand-computed and on recorded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.analytics import BASIS_COLUMNS, basis, premium_index

IDX = pd.date_range("2024-08-08 23:55", periods=4, freq="1min", tz="UTC")


def test_basis_by_hand() -> None:
    perp = pd.Series([101.0, 99.0, 100.5, 100.0], IDX)
    spot = pd.Series([100.0, 100.0, 100.0, 100.0], IDX)
    b = basis(perp, spot)
    assert list(b.columns) == list(BASIS_COLUMNS)
    np.testing.assert_allclose(b["basis"], [1.0, -1.0, 0.5, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b["basis_bps"], [100.0, -100.0, 50.0, 0.0], rtol=1e-12)
    # 8-hour funding: 3 intervals a day, 1095 in a 365-day year
    np.testing.assert_allclose(b["basis_annualised"], [0.01 * 1095, -0.01 * 1095, 0.005 * 1095, 0.0],
                               rtol=1e-12)
    hourly = basis(perp, spot, funding_interval="1h")
    np.testing.assert_allclose(hourly["basis_annualised"], b["basis_bps"] / 1e4 * 24 * 365, rtol=1e-12)


def test_basis_inner_joins_and_drops_missing_rows() -> None:
    perp = pd.Series([101.0, np.nan, 102.0], IDX[:3])
    spot = pd.Series([100.0, 100.0, 100.0], IDX[1:])
    b = basis(perp, spot)
    assert list(b.index) == [IDX[2]]  # IDX[0] only in perp, IDX[1] NaN in perp, IDX[3] only in spot
    assert b["basis"].iloc[0] == 2.0


def test_basis_of_arrays_and_bad_input() -> None:
    b = basis(np.array([10.0, 11.0]), np.array([10.0, 10.0]))
    assert list(b["basis_bps"]) == [0.0, 1000.0]
    with pytest.raises(ValueError, match="differ in length"):
        basis(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="spot must be positive"):
        basis(pd.Series([1.0], IDX[:1]), pd.Series([0.0], IDX[:1]))
    with pytest.raises(ValueError, match="funding_interval"):
        basis(pd.Series([1.0], IDX[:1]), pd.Series([1.0], IDX[:1]), funding_interval="1M")
    with pytest.raises(ValueError, match="basis needs at least 1 aligned"):
        basis(pd.Series([1.0], IDX[:1]), pd.Series([1.0], IDX[1:2]))


def test_basis_of_recorded_btcusdt_perpetual_over_spot() -> None:
    """Same minutes of 2024-08-08, 1-second candle closes: the perpetual traded below spot."""
    ticks = qf.datasets.sample_ticks(["BTCUSDT", "binance-usdm:BTCUSDT"])
    spot = qf.resample(ticks["BTCUSDT"], "1s").close
    perp = qf.resample(ticks["binance-usdm:BTCUSDT"], "1s").close
    b = basis(perp, spot)
    assert len(b) == len(spot.index.intersection(perp.index)) > 300
    np.testing.assert_array_equal(b["basis"], perp[b.index] - spot[b.index])
    assert -6 < b["basis_bps"].median() < -1  # a few bps of discount, all through the capture
    assert (b["basis_bps"] < 0).all()


def test_premium_index_by_hand_and_on_recorded_marks() -> None:
    marks = pd.DataFrame({"mark_price": [101.0, 99.0, np.nan], "index_price": [100.0, 100.0, 100.0]},
                         index=IDX[:3])
    p = premium_index(marks)
    assert p.name == "premium_index"
    np.testing.assert_allclose(p.iloc[:2], [0.01, -0.01], rtol=1e-12)
    assert np.isnan(p.iloc[2])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['index_price'\]"):
        premium_index(marks[["mark_price"]])
    with pytest.raises(TypeError, match="marks must be a DataFrame"):
        premium_index(marks["mark_price"])
