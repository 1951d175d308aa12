"""Rule validation: bad rules are rejected with messages that say what to fix."""

from __future__ import annotations

import math

import pytest

from quantify import alerts as qa


def test_constructors_fill_defaults_and_normalise() -> None:
    rule = qa.price_above("btcusdt", 62000, severity="HIGH", cooldown="15m")
    assert rule.symbols == ("BTCUSDT",)
    assert rule.params == {"level": 62000.0, "margin": 0.0}
    assert rule.severity == "high" and rule.cooldown == 900.0
    z = qa.zscore("BTCUSDT", "ETHUSDT", 2.5, window="120", timeframe="1m")
    assert z.params["window"] == 120 and z.symbol == "BTCUSDT/ETHUSDT" and z.threshold == 2.5
    assert qa.make_rule("zscore", "BTCUSDT/ETHUSDT", level=2).symbols == ("BTCUSDT", "ETHUSDT")


def test_record_round_trip() -> None:
    rule = qa.vol_breakout("ETHUSDT", 2.5, timeframe="5m", short=6, long=60, name="eth vol")
    assert qa.Rule.from_record(rule.to_record()) == rule


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: qa.zscore("BTCUSDT", "ETHUSDT", 2.5, window="12O"),
         "window must be a positive integer number of bars, got '12O'"),
        (lambda: qa.zscore("BTCUSDT", "ETHUSDT", 2.5, window=0),
         "window must be a positive integer number of bars, got 0"),
        (lambda: qa.zscore("BTCUSDT", "ETHUSDT", 2.5, window=50_000), "larger than the history kept"),
        (lambda: qa.pct_move("BTCUSDT", 1.0, "2d"), "window '2d' is larger than the history kept"),
        (lambda: qa.price_above("BTCUSDT", math.nan), "level must be a finite number, got nan"),
        (lambda: qa.price_above("BTCUSDT", math.inf), "level must be a finite number, got inf"),
        (lambda: qa.price_above("BTCUSDT", 1.0, cooldown=-5), "cooldown must not be negative, got -5"),
        (lambda: qa.price_above("BTCUSDT", 1.0, cooldown="soon"), "cooldown must be seconds or a duration"),
        (lambda: qa.price_above("BTCUSDT", 1.0, severity="urgent"),
         "severity must be one of critical, high, medium, low, got 'urgent'"),
        (lambda: qa.price_above("BTC-USDT", 1.0), "symbols: 'BTC-USDT' is not a Binance symbol"),
        (lambda: qa.make_rule("zscore", "BTCUSDT", level=2), "symbols: a zscore rule watches two different"),
        (lambda: qa.make_rule("price-over", "BTCUSDT", level=2), "kind must be one of price-above"),
        (lambda: qa.make_rule("price-above", "BTCUSDT"), "level: a price-above rule needs level"),
        (lambda: qa.make_rule("price-above", "BTCUSDT", level=1, window=3), "window: not a parameter"),
        (lambda: qa.zscore("BTCUSDT", "ETHUSDT", 2.5, timeframe="1M"), "timeframe: unknown timeframe '1M'"),
        (lambda: qa.zscore("BTCUSDT", "ETHUSDT", 2.5, op="over"), "op must be one of above, below, abs-above"),
        (lambda: qa.vol_breakout("BTCUSDT", 2, short=20, long=10), "long must be more bars than short"),
        (lambda: qa.price_above("BTCUSDT", 1, message="{price}"), "unknown field {price}"),
        (lambda: qa.stale("BTCUSDT", 0), "seconds must be a positive duration"),
    ],
)
def test_bad_rules_say_what_to_fix(build, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)


def test_unknown_symbol_checked_against_the_store(store, sample) -> None:
    store.append_ticks({"BTCUSDT": sample["BTCUSDT"].iloc[:10]})
    book = qa.AlertBook(store)
    with pytest.raises(ValueError, match=r"symbols: unknown symbol 'BTCUSDX' .*symbols: BTCUSDT\); check the spelling"):
        book.add(qa.price_above("BTCUSDX", 1.0))
    assert book.list() == []
    assert book.add(qa.price_above("BTCUSDX", 1.0), check_symbols=False)
