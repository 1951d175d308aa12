"""Sans-I/O parsing of Binance USD-M perpetual data: mark price, liquidations, funding, open interest.

WebSocket events (``markPriceUpdate`` of ``<sym>@markPrice@1s``,
``forceOrder`` of ``<sym>@forceOrder``) reach these functions through
:class:`~quantify.venues.binance.parse.FrameParser`; the REST answers of
``/fapi/v1/fundingRate``, ``/fapi/v1/premiumIndex``, ``/fapi/v1/openInterest``
and ``/futures/data/openInterestHist`` through
:class:`~quantify.venues.binance.rest.BinanceRest`. Each raises ``KeyError``,
``TypeError`` or ``ValueError`` on a missing or ill-typed field; the callers
count and report those.

Binance sends prices and rates as decimal strings; they are kept as float64
(``float("0.00002760")`` is the double nearest the decimal, so a recorded
event round-trips exactly). ``markPrice`` in a ``fundingRate`` row is absent
or empty for old settlements: NaN.
"""

from __future__ import annotations

import math
from typing import Any

from quantify.model.perp import FundingSettlement, Liquidation, MarkPrice, OpenInterest
from quantify.model.trades import MAX_TIME_MS

__all__ = [
    "funding_from_rows",
    "liquidation_from_event",
    "mark_price_from_event",
    "open_interest_from_answer",
    "open_interest_hist_from_rows",
    "premium_index_from_answer",
]


def _time(value: Any, name: str) -> int:
    if type(value) is str and value.isdigit():  # openInterestHist sends its timestamps as strings
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_TIME_MS:
        raise ValueError(f"{name} must be a time in ms, got {value!r}")
    return value


def _number(value: Any, name: str, *, optional: bool = False) -> float:
    if optional and (value is None or value == ""):
        return math.nan
    if type(value) is not str:
        raise TypeError(f"{name} must be a decimal string, got {value!r}")
    x = float(value)
    if x - x:  # NaN or infinite
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x


def _symbol(value: Any) -> str:
    if type(value) is not str or not value:
        raise TypeError(f"'s' must be a symbol string, got {value!r}")
    return value


def mark_price_from_event(data: dict[str, Any], recv_ns: int = 0) -> MarkPrice:
    """A :class:`~quantify.model.perp.MarkPrice` from a decoded ``markPriceUpdate`` event."""
    if data.get("e") != "markPriceUpdate":
        raise ValueError(f"not a markPriceUpdate event: {data.get('e')!r}")
    return MarkPrice(
        _symbol(data["s"]), _time(data["E"], "E"), _number(data["p"], "p"), _number(data["i"], "i"),
        _number(data["P"], "P", optional=True), _number(data["r"], "r", optional=True), _time(data["T"], "T"),
        recv_ns,
    )


def liquidation_from_event(data: dict[str, Any], recv_ns: int = 0) -> Liquidation:
    """A :class:`~quantify.model.perp.Liquidation` from a decoded ``forceOrder`` event."""
    if data.get("e") != "forceOrder":
        raise ValueError(f"not a forceOrder event: {data.get('e')!r}")
    o = data["o"]
    if type(o) is not dict:
        raise TypeError("'o' must be an object")
    side = o["S"]
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    return Liquidation(
        _symbol(o["s"]), _time(data["E"], "E"), _time(o["T"], "T"), side, str(o.get("o", "")),
        str(o.get("f", "")), _number(o["q"], "q"), _number(o["p"], "p"), _number(o["ap"], "ap"),
        str(o.get("X", "")), _number(o["l"], "l"), _number(o["z"], "z"), recv_ns,
    )


def funding_from_rows(rows: Any, symbol: str | None = None) -> list[FundingSettlement]:
    """Settlements from a ``/fapi/v1/fundingRate`` answer (a list of rows), in the answer's order."""
    if type(rows) is not list:
        raise TypeError(f"a fundingRate answer is a list, got {type(rows).__name__}")
    out = []
    for row in rows:
        if type(row) is not dict:
            raise TypeError(f"a fundingRate row is an object, got {row!r}")
        sym = _symbol(row.get("symbol", symbol))
        out.append(FundingSettlement(sym, _time(row["fundingTime"], "fundingTime"),
                                     _number(row["fundingRate"], "fundingRate"),
                                     _number(row.get("markPrice"), "markPrice", optional=True)))
    return out


def premium_index_from_answer(data: dict[str, Any]) -> MarkPrice:
    """The current mark, index and funding of one symbol from a ``/fapi/v1/premiumIndex`` answer."""
    if type(data) is not dict:
        raise TypeError(f"a premiumIndex answer for one symbol is an object, got {type(data).__name__}")
    return MarkPrice(
        _symbol(data["symbol"]), _time(data["time"], "time"), _number(data["markPrice"], "markPrice"),
        _number(data["indexPrice"], "indexPrice"),
        _number(data.get("estimatedSettlePrice"), "estimatedSettlePrice", optional=True),
        _number(data.get("lastFundingRate"), "lastFundingRate", optional=True),
        _time(data["nextFundingTime"], "nextFundingTime"),
    )


def open_interest_from_answer(data: dict[str, Any]) -> OpenInterest:
    """Open interest now from a ``/fapi/v1/openInterest`` answer (contracts only: the value is NaN)."""
    if type(data) is not dict:
        raise TypeError(f"an openInterest answer is an object, got {type(data).__name__}")
    return OpenInterest(_symbol(data["symbol"]), _time(data["time"], "time"),
                        _number(data["openInterest"], "openInterest"))


def open_interest_hist_from_rows(rows: Any) -> list[OpenInterest]:
    """Open interest from a ``/futures/data/openInterestHist`` answer, in the answer's order."""
    if type(rows) is not list:
        raise TypeError(f"an openInterestHist answer is a list, got {type(rows).__name__}")
    out = []
    for row in rows:
        if type(row) is not dict:
            raise TypeError(f"an openInterestHist row is an object, got {row!r}")
        out.append(OpenInterest(_symbol(row["symbol"]), _time(row["timestamp"], "timestamp"),
                                _number(row["sumOpenInterest"], "sumOpenInterest"),
                                _number(row.get("sumOpenInterestValue"), "sumOpenInterestValue", optional=True)))
    return out
