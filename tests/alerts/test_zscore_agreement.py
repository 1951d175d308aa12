"""The dashboard's z and the alert's z are one number: PairMonitor vs AlertEngine on the recording.

A desk that sees |z| = 2.6 on the PairMonitor must get its |z| > 2.5 alert.
Both run on the bundled BTCUSDT/ETHUSDT trades: the engine batch by batch, as
the ingestion writer drives it, the monitor from the store (its compute path,
no browser). The alert must fire exactly at the bars where the monitor's z
passes the level while armed, with the monitor's z to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantify import alerts as qa
from quantify.widgets import PairMonitor
from tests.alerts.conftest import batches, feed

TF, WINDOW, LEVEL, MARGIN = "5s", 10, 1.8, 0.3


def expected_firings(z: np.ndarray, level: float, margin: float) -> list[int]:
    """The rule's trigger, bar by bar: armed, the first |z| > level fires and disarms;
    disarmed, the first |z| < level - margin re-arms; NaN does neither (no cooldown)."""
    out, armed = [], True
    for i, v in enumerate(np.abs(z)):
        if np.isnan(v):
            continue
        if armed and v > level:
            out.append(i)
            armed = False
        elif not armed and v < level - margin:
            armed = True
    return out


def closing_trade(sample: dict[str, pd.DataFrame], start: pd.Timestamp, step: pd.Timedelta) -> int | None:
    """Id of the trade at which the pair's bar ``start`` is known closed (the later leg's first
    trade at or after the bar's end), None while a leg has not traded past it."""
    firsts = []
    for sym in ("BTCUSDT", "ETHUSDT"):
        f = sample[sym]
        after = f[f.index >= start + step]
        if not len(after):
            return None
        firsts.append((after.index[0], sym == "ETHUSDT", int(after["trade_id"].iloc[0])))
    return max(firsts)[2]


@pytest.mark.parametrize("hedge", ["ols", "kalman"])
def test_alert_fires_exactly_where_the_monitor_z_crosses(store, sample, make_engine, hedge) -> None:
    book = qa.AlertBook(store)
    rid = book.add(qa.zscore("BTCUSDT", "ETHUSDT", LEVEL, timeframe=TF, window=WINDOW, hedge=hedge,
                             op="abs-above", margin=MARGIN, cooldown=0), check_symbols=False)
    feed(store, make_engine(store), batches(sample, seconds=3.0))
    hist = book.history(rule_id=rid)

    mon = PairMonitor("BTCUSDT", "ETHUSDT", TF, WINDOW, hedge=hedge, store=store, autostart=False)
    try:
        data = mon.compute()
    finally:
        mon.close()
    step = pd.Timedelta(TF)
    # only bars the engine knows closed: both legs traded past their end
    trig = [closing_trade(sample, b, step) for b in data.index]
    closed = np.array([t is not None for t in trig])
    z = data["z"].to_numpy()[closed]
    assert np.isfinite(z).sum() > 50
    want = expected_firings(z, LEVEL, MARGIN)
    assert len(want) >= 3  # the level is met several times: the comparison means something

    ids = [t for t in trig if t is not None]
    assert list(hist["trade_id"]) == [ids[i] for i in want]
    np.testing.assert_allclose(hist["value"].to_numpy(), z[want], rtol=0, atol=1e-12)


def test_zscore_window_is_bounded_by_the_bars_the_engine_keeps() -> None:
    w = (qa.MAX_BARS + 1) // 2
    assert qa.zscore("BTCUSDT", "ETHUSDT", 2.0, window=w).params["window"] == w
    with pytest.raises(ValueError, match=rf"window of {w + 1} bars needs {2 * w + 1} bars"):
        qa.zscore("BTCUSDT", "ETHUSDT", 2.0, window=w + 1)
