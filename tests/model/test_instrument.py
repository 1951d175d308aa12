"""The instrument model: one textual form, plain symbols mean Binance spot."""

from __future__ import annotations

import pytest

from quantify.model import Instrument, Market, parse_instruments


@pytest.mark.parametrize(("text", "venue", "market", "symbol", "canonical"), [
    ("BTCUSDT", "binance", Market.SPOT, "BTCUSDT", "BTCUSDT"),
    ("btcusdt", "binance", Market.SPOT, "BTCUSDT", "BTCUSDT"),
    ("binance:BTCUSDT", "binance", Market.SPOT, "BTCUSDT", "BTCUSDT"),
    ("Binance-USDM:btcusdt", "binance-usdm", Market.PERPETUAL, "BTCUSDT", "binance-usdm:BTCUSDT"),
    ("binance-usdm:BTCUSDT_250328", "binance-usdm", Market.DELIVERY, "BTCUSDT_250328",
     "binance-usdm:BTCUSDT_250328"),
    ("okx:BTC-USDT", "okx", Market.SPOT, "BTC-USDT", "okx:BTC-USDT"),
    ("okx:uni-usd-swap", "okx", Market.PERPETUAL, "UNI-USD-SWAP", "okx:UNI-USD-SWAP"),
    ("okx:BTC-USD-220527", "okx", Market.DELIVERY, "BTC-USD-220527", "okx:BTC-USD-220527"),
])
def test_parse_and_text_round_trip(text, venue, market, symbol, canonical):
    inst = Instrument.parse(text)
    assert (inst.venue, inst.market, inst.symbol) == (venue, market, symbol)
    assert str(inst) == inst.key == canonical
    assert Instrument.parse(str(inst)) == inst
    assert Instrument.parse(inst) is inst


def test_spot_and_perpetual_of_one_symbol_are_distinct():
    spot, perp = Instrument.parse("BTCUSDT"), Instrument.parse("binance-usdm:BTCUSDT")
    assert spot != perp and len({spot, perp}) == 2
    assert not spot.is_derivative and perp.is_derivative
    assert sorted([perp, spot]) == [spot, perp]


@pytest.mark.parametrize(("text", "message"), [
    ("", "names no symbol"),
    ("kraken:XBTUSD", "unknown venue 'kraken'"),
    ("BTC-USDT", "is not a Binance symbol"),
    ("binance:BTCUSDT_250328", "is not a Binance symbol"),
    ("okx:BTCUSDT", "is not a OKX symbol"),
    ("BTC USDT", "is not a Binance symbol"),
])
def test_bad_text_is_refused_with_the_text_named(text, message):
    with pytest.raises(ValueError, match=message):
        Instrument.parse(text)


def test_constructor_checks_the_market():
    with pytest.raises(ValueError, match="perpetual market, not spot"):
        Instrument("binance-usdm", Market.SPOT, "BTCUSDT")
    with pytest.raises(TypeError):
        Instrument.parse(42)  # type: ignore[arg-type]


def test_parse_instruments_keeps_order_and_drops_repeats():
    got = parse_instruments(" btcusdt, binance-usdm:BTCUSDT ,BTCUSDT,,okx:BTC-USDT")
    assert [str(i) for i in got] == ["BTCUSDT", "binance-usdm:BTCUSDT", "okx:BTC-USDT"]
    with pytest.raises(ValueError, match="no instruments"):
        parse_instruments(" , ")
