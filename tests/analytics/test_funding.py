"""Funding carry and the funding z-score: by hand, and on the real XRPUSDT settlements of 2021."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.analytics import FundingCarryResult, funding_carry, funding_zscore, zscore

TIMES = pd.DatetimeIndex(["2024-01-01 00:00:00.005", "2024-01-01 08:00:00.010", "2024-01-01 16:00:00.003"],
                         tz="UTC")


def _funding(rates: list[float], marks: list[float] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"funding_rate": rates, "mark_price": np.nan if marks is None else marks}, index=TIMES)


def test_funding_carry_by_hand() -> None:
    f = _funding([1e-4, -2e-4, 3e-4], [100.0, 110.0, 90.0])
    long = funding_carry(f, position=2.0)
    # a long pays positive funding: -q * r * mark
    np.testing.assert_allclose(long.payments, [-2 * 1e-4 * 100, 2 * 2e-4 * 110, -2 * 3e-4 * 90], rtol=1e-12)
    np.testing.assert_allclose(long.cumulative, np.cumsum(long.payments), rtol=1e-12)
    assert long.total == pytest.approx(-0.02 + 0.044 - 0.054, rel=1e-12)
    assert long.mean_rate == pytest.approx(2e-4 / 3, rel=1e-12)
    assert long.settlements_per_year == 1095.0  # 8 hours, the ms after the hour rounded away
    assert long.annualised_rate == pytest.approx(2e-4 / 3 * 1095, rel=1e-12)
    assert long.annualised_carry == -long.annualised_rate
    short = funding_carry(f, position=-1.0, notional=1_000.0)
    np.testing.assert_allclose(short.payments, [0.1, -0.2, 0.3], rtol=1e-12)
    assert short.annualised_carry == pytest.approx(long.annualised_rate, rel=1e-12)
    assert isinstance(long, FundingCarryResult)
    assert "annualised_rate" in long.summary() and "<table" in long._repr_html_()


def test_funding_carry_prices_from_marks_and_refuses_without() -> None:
    f = _funding([1e-4, 1e-4, 1e-4])
    marks = pd.Series([100.0, 200.0, 300.0], pd.DatetimeIndex(["2024-01-01", "2024-01-01 08:00",
                                                                "2024-01-01 16:00:00.004"], tz="UTC"))
    r = funding_carry(f, marks=marks)
    # the latest mark at or before each settlement: the third mark comes 1 ms too late
    np.testing.assert_array_equal(r.prices, [100.0, 200.0, 200.0])
    with pytest.raises(ValueError, match="3 settlement\\(s\\) have no mark price"):
        funding_carry(f)
    with pytest.raises(ValueError, match="funding_interval"):
        funding_carry(f.iloc[:1], notional=1.0)
    assert funding_carry(f.iloc[:1], notional=1.0, funding_interval="4h").settlements_per_year == 2190.0
    with pytest.raises(ValueError, match="increase strictly"):
        funding_carry(f.iloc[::-1], notional=1.0)


def test_funding_carry_on_the_real_xrpusdt_history() -> None:
    history = qf.datasets.funding_2021()
    f = history.funding
    r = funding_carry(f, position=-1_000.0)  # short 1,000 XRP through 91 settlements
    expected = sum(1_000.0 * rate * mark for rate, mark in zip(f["funding_rate"], f["mark_price"]))
    assert r.total == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert r.n_settlements == 91 and r.settlements_per_year == 1095.0
    assert r.total > 0  # funding was mostly positive: shorts were paid
    # the same marks, read from the 8-hour mark candles instead of the frame's own column
    same = funding_carry(f.assign(mark_price=np.nan), position=-1_000.0, marks=history.marks["open"])
    np.testing.assert_array_equal(same.payments, r.payments)


def test_funding_zscore_is_the_zscore_of_the_rates() -> None:
    f = qf.datasets.funding_2021().funding
    z = funding_zscore(f, 21)
    assert z.name == "funding_zscore"
    np.testing.assert_array_equal(z.to_numpy(), zscore(f["funding_rate"], 21).to_numpy())
    np.testing.assert_array_equal(funding_zscore(f["funding_rate"], 21).to_numpy(), z.to_numpy())
    ref = (f["funding_rate"] - f["funding_rate"].rolling(21).mean()) / f["funding_rate"].rolling(21).std()
    ok = ref.notna() & np.isfinite(ref) & z.notna()
    np.testing.assert_allclose(z[ok], ref[ok], rtol=1e-9, atol=1e-9)
