"""backtest_pairs(allow=...): entries only in allowed regimes, and no look-ahead through the regimes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from quantify.analytics.backtest import backtest_pairs
from quantify.analytics.regimes import fit_regimes


def _pair(seed: int, n: int = 400) -> tuple[pd.Series, pd.Series]:
    """A cointegrated pair whose common factor alternates calm and wild blocks of 50 bars."""
    rng = np.random.default_rng(seed)
    sd = np.where((np.arange(n) // 50) % 2 == 1, 0.006, 0.001)
    x = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sd)))
    u = np.zeros(n)
    for t in range(1, n):
        u[t] = 0.8 * u[t - 1] + rng.normal(0.0, 0.3)
    idx = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.Series(1.5 * x + 10.0 + u, idx, name="y"), pd.Series(x, idx, name="x")


def test_allow_everywhere_is_the_plain_backtest() -> None:
    y, x = _pair(1)
    a = backtest_pairs(y, x, window=30)
    b = backtest_pairs(y, x, window=30, allow=pd.Series(True, index=y.index))
    assert a.n_trades > 3
    assert_allclose(a.equity, b.equity, rtol=0, atol=0)


def test_entries_only_where_allowed_exits_always() -> None:
    y, x = _pair(2)
    plain = backtest_pairs(y, x, window=30, entry=1.5, exit=0.3)
    allow = pd.Series((np.arange(len(y)) // 50) % 2 == 0, index=y.index)
    gated = backtest_pairs(y, x, window=30, entry=1.5, exit=0.3, allow=allow)
    assert 0 < gated.n_trades < plain.n_trades
    assert allow[gated.trades["entry_time"]].all()
    sig = gated.positions["signal"].to_numpy()
    opened = (sig != 0) & (sig != np.concatenate([[0.0], sig[:-1]]))
    assert allow.to_numpy()[opened].all()
    # a position opened in an allowed block may close in a blocked one
    closes = gated.trades["exit_time"].dropna()
    assert len(closes) == gated.n_trades or gated.trades["exit_time"].isna().sum() == 1
    # arrays are accepted as well as aligned Series
    same = backtest_pairs(y, x, window=30, entry=1.5, exit=0.3, allow=allow.to_numpy())
    assert_allclose(same.equity, gated.equity, rtol=0, atol=0)


def test_nothing_allowed_says_so() -> None:
    y, x = _pair(3)
    res = backtest_pairs(y, x, window=30, allow=np.zeros(len(y), dtype=bool))
    assert res.n_trades == 0 and "allow=" in res.note and "0 of" in res.note


def test_allow_respects_warmup() -> None:
    y, x = _pair(4)
    allow = pd.Series(np.arange(len(y)) >= 200, index=y.index)
    res = backtest_pairs(y, x, window=30, warmup=100, allow=allow)
    assert len(res.equity) == len(y) - 100
    assert (res.trades["entry_time"] >= y.index[200]).all()


@pytest.mark.parametrize(("allow", "match"), [
    (np.ones(10, dtype=bool), "differ in length"),
    (pd.Series(True, index=pd.date_range("2030-01-01", periods=400, freq="5min", tz="UTC")), "different indexes"),
    (np.where(np.arange(400) < 5, np.nan, 1.0), "NaN"),
])
def test_bad_allow(allow: object, match: str) -> None:
    y, x = _pair(5)
    with pytest.raises(ValueError, match=match):
        backtest_pairs(y, x, window=30, allow=allow)  # type: ignore[arg-type]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(160, 380))
def test_regime_conditioned_backtest_has_no_look_ahead(seed: int, cut: int) -> None:
    """Changing every price after bar ``cut`` (both legs, hence the regime model's input and its
    later refits) leaves the regimes, positions and equity up to ``cut`` unchanged."""
    y, x = _pair(seed % 1000)
    rng = np.random.default_rng(seed)
    k = len(y) - cut - 1
    y2, x2 = y.copy(), x.copy()
    shock = np.exp(np.cumsum(rng.normal(0.0, 0.02, k)))
    x2.iloc[cut + 1 :] *= shock
    y2.iloc[cut + 1 :] = rng.uniform(0.5, 2.0) * y2.iloc[cut + 1 :] + rng.normal(0.0, 3.0, k)

    def run(yy: pd.Series, xx: pd.Series) -> tuple[pd.Series, object]:
        reg = fit_regimes(xx, 2, window=10, train=120, refit_every=60, seed=1)
        return reg.regime, backtest_pairs(yy, xx, window=20, entry=1.0, exit=0.2, allow=reg.allow(0))

    ra, a = run(y, x)
    rb, b = run(y2, x2)
    pd.testing.assert_series_equal(ra.iloc[: cut + 1], rb.iloc[: cut + 1])
    assert_allclose(a.positions.iloc[: cut + 1], b.positions.iloc[: cut + 1])  # type: ignore[attr-defined]
    assert_allclose(a.equity.iloc[: cut + 1], b.equity.iloc[: cut + 1])  # type: ignore[attr-defined]
