"""carry_backtest: by hand, against a slow loop on real prices and rates, and funding-only runs.

Real data: the recorded BTCUSDT spot and perpetual trades of 2024-08-08
(1-second candle closes, the same seconds) and the real XRPUSDT funding
settlements of 2021 (``qf.datasets.funding_2021()``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.analytics import CarryBacktestResult, backtest_pairs, carry_backtest

IDX = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")


def test_hand_computed_carry_trade() -> None:
    spot = pd.Series([100.0, 100.0, 102.0, 101.0, 101.0, 103.0], IDX)
    perp = pd.Series([100.0, 100.2, 102.1, 101.0, 101.1, 103.0], IDX)
    # basis bps: 0, 20, 9.80, 0, 9.90, 0 -> enter at close 1 (> 15), exit at close 3 (< 5)
    funding = pd.DataFrame({"funding_rate": [1e-4, 2e-4, 3e-4], "mark_price": [np.nan, 102.05, np.nan]},
                           index=pd.DatetimeIndex(["2024-01-01 02:30", "2024-01-01 03:00:00.005",
                                                   "2024-01-01 04:30"], tz="UTC"))
    r = carry_backtest(spot, perp, funding, entry_bps=15.0, exit_bps=5.0, fee_bps=4.0, slippage_bps=1.0,
                       notional=1_000.0, bar="1h")
    q = 1_000.0 / 100.0  # units of each leg bought at close 1
    np.testing.assert_array_equal(r.positions["signal"], [0, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(r.positions["units_spot"], [0, q, q, 0, 0, 0], rtol=0)
    np.testing.assert_allclose(r.positions["units_perp"], [0, -q, -q, 0, 0, 0], rtol=0)
    # closes at label + 1h: bar 2 holds [02:00, 03:00) -> the 02:30 settlement (at the perp's close 1,
    # 100.2, no mark); bar 3 holds [03:00, 04:00) -> the 03:00:00.005 one at its own mark 102.05;
    # the 04:30 one falls after the exit at close 3 (04:00)
    fund = [0, 0, q * 1e-4 * 100.2, q * 2e-4 * 102.05, 0, 0]
    price = [0, 0, q * 2.0 - q * 1.9, q * -1.0 + q * 1.1, 0, 0]
    fee = [0, 5e-4 * q * (100.0 + 100.2), 0, 5e-4 * q * (101.0 + 101.0), 0, 0]
    np.testing.assert_allclose(r.pnl["funding_pnl"], fund, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.pnl["price_pnl"], price, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.pnl["fees"], fee, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.pnl["commission"], np.array(fee) * 0.8, rtol=1e-12, atol=1e-15)
    assert r.n_settlements == 2 and list(r.settlements["price"]) == [100.2, 102.05]
    assert r.total_pnl == pytest.approx(sum(price) + sum(fund) - sum(fee), rel=1e-12)
    assert r.trades["settlements"].tolist() == [2] and r.trades["exit_time"].iloc[0] == IDX[3]
    assert r.trades["pnl"].iloc[0] == pytest.approx(r.total_pnl, rel=1e-12)
    assert isinstance(r, CarryBacktestResult) and "funding_pnl" in r.summary() and "<table" in r._repr_html_()


def _reference(spot: np.ndarray, perp: np.ndarray, closes: pd.DatetimeIndex, times: pd.DatetimeIndex,
               rates: np.ndarray, entry: float, exit_: float, cost: float, notional: float) -> np.ndarray:
    """The documented rules as a plain loop over bars and settlements; returns the per-bar total PnL."""
    n = len(spot)
    out = np.zeros(n)
    held, q = False, 0.0
    for t in range(n):
        if t > 0 and held:
            out[t] += q * (spot[t] - spot[t - 1]) - q * (perp[t] - perp[t - 1])
            for tau, r in zip(times, rates):
                if closes[t - 1] <= tau < closes[t]:
                    out[t] += q * r * perp[t - 1]  # a short receives positive funding
        b = 1e4 * (perp[t] - spot[t]) / spot[t]
        if not held and b > entry:
            held, q = True, notional / spot[t]
            out[t] -= cost * q * (spot[t] + perp[t])
        elif held and b < exit_:
            held = False
            out[t] -= cost * q * (spot[t] + perp[t])
            q = 0.0
    return out


@pytest.fixture(scope="module")
def recorded() -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """1-second closes of spot and perpetual BTCUSDT (same seconds) and real funding rates on them."""
    ticks = qf.datasets.sample_ticks(["BTCUSDT", "binance-usdm:BTCUSDT"])
    both = pd.concat([qf.resample(ticks["BTCUSDT"], "1s").close,
                      qf.resample(ticks["binance-usdm:BTCUSDT"], "1s").close], axis=1, keys=["spot", "perp"]).dropna()
    # the real 2021 XRPUSDT rates, one every 4 s of the 2024 window (a few ms off the second, as Binance's)
    rates = qf.datasets.funding_2021().funding["funding_rate"].to_numpy()[:80]
    times = both.index[0] + pd.Timedelta("2.003s") + pd.to_timedelta(4 * np.arange(80), unit="s")
    funding = pd.DataFrame({"funding_rate": rates, "mark_price": np.nan}, index=times)
    return both["spot"], both["perp"], funding


def test_identity_and_reference_on_recorded_btcusdt_and_real_rates(recorded) -> None:
    spot, perp, funding = recorded
    # the perpetual trades 1.6 to 5.2 bps below spot: trade the basis's swings around -3.7 bps
    r = carry_backtest(spot, perp, funding, entry_bps=-3.0, exit_bps=-4.2, fee_bps=0.2, slippage_bps=0.1,
                       notional=10_000.0)
    assert r.n_trades >= 5 and r.n_settlements > 10
    p = r.pnl
    per_bar = p["price_pnl"] + p["funding_pnl"] - p["fees"] - p["total_pnl"]
    assert np.abs(per_bar).max() <= 1e-12
    assert abs(r.total_pnl - (r.price_pnl + r.funding_pnl - r.fees)) <= 1e-12
    assert abs(r.total_pnl - (r.equity.iloc[-1] - r.capital)) <= 1e-9  # 10,000 of capital: float64 rounding
    closes = spot.index + pd.Timedelta("1s")
    ref = _reference(spot.to_numpy(), perp.to_numpy(), closes, funding.index, funding["funding_rate"].to_numpy(),
                     -3.0, -4.2, 3e-5, 10_000.0)
    np.testing.assert_allclose(p["total_pnl"], ref, rtol=0, atol=1e-10)
    # round trips add up to the run (all fees belong to a trade, every held bar to one trade)
    assert r.trades["pnl"].sum() == pytest.approx(r.total_pnl, rel=1e-12, abs=1e-12)
    assert r.settlements["payment"].sum() == pytest.approx(r.funding_pnl, rel=1e-12, abs=1e-15)


def test_funding_only_reproduces_the_settlements_it_was_open_for(recorded) -> None:
    spot, perp, funding = recorded
    # held from the first close to the end (enter at any basis, never leave) at flat prices
    flat = pd.Series(61_000.0, spot.index)
    r = carry_backtest(flat, flat, funding, entry_bps=-1.0, exit_bps=-2.0, fee_bps=0.0, notional=61_000.0)
    assert r.price_pnl == 0.0 and r.fees == 0.0
    closes = spot.index + pd.Timedelta("1s")
    held = (funding.index >= closes[0]) & (funding.index < closes[-1])
    assert r.n_settlements == int(held.sum()) > 50
    assert r.funding_pnl == pytest.approx(61_000.0 * funding["funding_rate"][held].sum(), rel=1e-12)
    # on moving prices: the total less the price PnL is the funding of the settlements held, at the perp close
    moving = carry_backtest(spot, perp, funding, entry_bps=-100.0, exit_bps=-200.0, fee_bps=0.0, notional=1.0)
    q = 1.0 / spot.iloc[0]
    k = np.searchsorted(closes.asi8, funding.index[held].asi8, side="right")
    expected = float(np.sum(q * funding["funding_rate"][held].to_numpy() * perp.to_numpy()[k - 1]))
    assert moving.total_pnl - moving.price_pnl == pytest.approx(expected, rel=1e-12)


def test_funding_signal_on_the_real_xrpusdt_history() -> None:
    history = qf.datasets.funding_2021()
    close = history.marks["close"]
    r = carry_backtest(close, close, history.funding, signal="funding", entry_bps=0.5, exit_bps=0.0,
                       fee_bps=0.0, notional=1_000.0)
    assert r.price_pnl == 0.0
    # each settlement held: q units short at the settlement's own mark
    f = history.funding
    for _, row in r.trades.iterrows():
        q = row["units"]
        start = row["entry_time"] + pd.Timedelta("8h")
        end = row["exit_time"] + pd.Timedelta("8h") if pd.notna(row["exit_time"]) else close.index[-1] + pd.Timedelta("8h")
        inside = f[(f.index >= start) & (f.index < end)]
        assert row["funding_pnl"] == pytest.approx(q * (inside["funding_rate"] * inside["mark_price"]).sum(),
                                                   rel=1e-12)
        assert row["settlements"] == len(inside)
    # the -21.9 bps settlement of 2021-12-04 08:00:00.004 is seen at the next close (16:00, the close of
    # the bar labelled 08:00), not at the 08:00 close 4 ms before it: the trade leaves there, after paying it
    assert r.signal_bps.min() == pytest.approx(1e4 * f["funding_rate"].min(), rel=1e-12)
    assert r.trades["exit_time"].iloc[0] == pd.Timestamp("2021-12-04 08:00", tz="UTC")
    worst = f["funding_rate"].idxmin()
    paid = r.settlements.set_index("time").loc[worst]
    assert paid["payment"] == pytest.approx(-r.trades["units"].iloc[0] * 0.0021934 * 0.7497, rel=1e-3)


def test_no_trade_is_a_result_with_a_note(recorded) -> None:
    spot, perp, funding = recorded
    r = carry_backtest(spot, perp, funding, entry_bps=10.0)
    assert r.n_trades == 0 and r.total_pnl == 0.0 and "never rose above 10 bps" in r.note
    assert "note" in r.summary()
    with pytest.raises(ValueError, match="exit_bps must be below entry_bps"):
        carry_backtest(spot, perp, funding, entry_bps=1.0, exit_bps=1.0)
    with pytest.raises(ValueError, match="signal must be"):
        carry_backtest(spot, perp, funding, signal="premium")  # type: ignore[arg-type]


def test_pairs_backtest_charges_funding_on_a_perpetual_leg(recorded) -> None:
    spot, perp, funding = recorded
    plain = backtest_pairs(perp, spot, window=30, hedge=1.0, cost_bps=0.5)
    funded = backtest_pairs(perp, spot, window=30, hedge=1.0, cost_bps=0.5, funding={"y": funding})
    assert plain.funding == 0.0 and funded.funding != 0.0
    p = funded.pnl
    assert np.abs(p["price_pnl"] + p["funding_pnl"] - p["fees"] - p["total_pnl"]).max() <= 1e-12
    np.testing.assert_allclose(np.diff(funded.equity.to_numpy()), p["total_pnl"].to_numpy()[1:], rtol=0, atol=1e-12)
    # by hand: each settlement is paid by the y units held over it, at the perp's previous close
    uy = funded.positions["units_y"].to_numpy()
    closes = spot.index + pd.Timedelta("1s")
    k = np.searchsorted(closes.asi8, funding.index.asi8, side="right")
    ok = (k >= 1) & (k <= len(closes) - 1)
    expected = -np.sum(uy[k[ok] - 1] * funding["funding_rate"].to_numpy()[ok] * perp.to_numpy()[k[ok] - 1])
    assert funded.funding == pytest.approx(expected, rel=1e-12)
    assert "funding" in funded.summary()
    with pytest.raises(ValueError, match="legs 'y' and/or 'x'"):
        backtest_pairs(perp, spot, window=30, hedge=1.0, funding={"perp": funding})


def test_carry_and_funding_results_plot_as_bqplot_figures() -> None:
    bq = pytest.importorskip("bqplot")
    history = qf.datasets.funding_2021()
    close = history.marks["close"]
    r = carry_backtest(close, close, history.funding, signal="funding", entry_bps=0.5, exit_bps=0.0)
    fig = r.plot()
    assert isinstance(fig, bq.Figure) and len(fig.marks) == 4  # signal, two bands, the PnL lines
    assert fig.marks[-1].labels == ["total", "price", "funding", "fees"]
    carry = qf.funding_carry(history.funding, position=-1.0)
    fig = carry.plot()
    assert isinstance(fig, bq.Figure) and fig.title == "Funding carry: short"
