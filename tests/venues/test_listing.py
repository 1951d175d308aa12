"""Requested symbols against what a venue lists: refusals name the closest listed symbols."""

from __future__ import annotations

import pytest

from quantify.model.instrument import Instrument
from quantify.venues.listing import check_listed, closest_listed

LISTED = {"BTCUSDT", "BTCUSDC", "ETHUSDT", "BNBUSDT", "SOLUSDT", "BTCFDUSD"}


def test_listed_symbols_pass() -> None:
    check_listed([Instrument.parse("BTCUSDT"), Instrument.parse("ETHUSDT")], LISTED)


def test_an_unknown_symbol_is_refused_naming_the_closest_listed() -> None:
    with pytest.raises(ValueError, match=r"binance does not list the symbol BTCUSDX \(closest listed: BTCUSDT, BTCUSDC"):
        check_listed([Instrument.parse("BTCUSDT"), Instrument.parse("BTCUSDX")], LISTED)


def test_every_unknown_symbol_is_named_in_its_own_spelling() -> None:
    with pytest.raises(ValueError) as err:
        check_listed([Instrument.parse("binance-usdm:ETHUSDX"), Instrument.parse("binance-usdm:QQQQQQ")],
                     {"BTCUSDT", "ETHUSDT"})
    text = str(err.value)
    assert text.startswith("binance-usdm does not list the symbols ")
    assert "binance-usdm:ETHUSDX (closest listed: binance-usdm:ETHUSDT)" in text
    assert "binance-usdm:QQQQQQ (nothing close is listed)" in text


def test_closest_listed_prefers_spelling_then_the_same_base() -> None:
    assert closest_listed("ETHUSTD", LISTED)[0] == "ETHUSDT"
    assert closest_listed("btcusdx", LISTED)[:2] == ["BTCUSDT", "BTCUSDC"]
    assert closest_listed("SOLXXXXXX", LISTED) == ["SOLUSDT"]
    assert closest_listed("ZZZ", set()) == []
