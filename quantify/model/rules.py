"""Alert rules as data: what to watch, validated once, at creation.

Rules live in the model layer: the store persists them (:mod:`quantify.store.alerts`),
the alert engine evaluates them (:mod:`quantify.alerts.engine`), and the widgets edit them.

A :class:`Rule` is a frozen value: a ``kind``, the symbol(s) it watches,
kind-specific ``params``, a severity, a cooldown and a message template.
Build one with a constructor named after its kind (:func:`price_above`,
:func:`zscore`, ...) or with :func:`make_rule`; every argument is checked
there and a bad one raises ``ValueError`` naming the field and saying what
to write instead.

Kinds and what their value is
-----------------------------

====================  =============================================  ===========================================
kind                  value compared with the threshold              fires when
====================  =============================================  ===========================================
``price-above``       trade price                                    value >= level
``price-below``       trade price                                    value <= level
``price-crosses``     trade price                                    it reaches the level from the other side
``pct-move``          % change against the last price >= window ago  value >= pct (``direction``: up, down, abs)
``zscore``            z-score of the pair spread on closed bars      ``op``: above, below, abs-above
``vol-breakout``      short / long realised vol of bar log returns   value > k
``corr-breakdown``    rolling correlation of bar log returns         value < level
``stale``             seconds since the symbol's last trade          value > seconds
``gap``               trade ids missing before a trade               value > 0
``spread-above``      quoted spread of the book, bps of the mid      value > bps
``imbalance-beyond``  L1 imbalance of the book, in [-1, 1]           ``op``: above, below, abs-above
``book-stale``        seconds the book has been out of sync          value > seconds, once per episode
``funding-above``     a perpetual's funding rate (mark updates)      value >= level (``unit``: rate or bps)
``funding-below``     a perpetual's funding rate (mark updates)      value <= level (``unit``: rate or bps)
``basis-z``           z-score of the perp-spot basis (bps), bars     ``op``: above, below, abs-above
``liquidation-burst`` liquidations in the last ``window``            value >= count (or notional)
``drawdown``          % fall of a paper position from its peak       value > level (one symbol, or a pair)
``regime-change``     filtered most-likely HMM regime, closed bars   it changes (:mod:`.rules_regime`)
====================  =============================================  ===========================================

Level rules re-arm only after the value crosses back (by ``margin``), so a
value hovering at the level does not flap; see :mod:`quantify.alerts.engine`.

The book kinds read the order book the ingestion writer keeps (instruments
subscribed with depth): ``spread-above`` and ``imbalance-beyond`` are judged
at every quote (the best bid and offer after each applied depth event), with
the functions a notebook calls (:func:`quantify.analytics.quoted_spread`,
:func:`quantify.analytics.imbalance`); ``book-stale`` fires once per episode
out of sync (a gap until its resync) that lasts longer than ``seconds``.

The perpetual kinds watch a perpetual's stored marks and liquidations
(:mod:`quantify.model.perp`): ``funding-above`` and ``funding-below`` compare
the funding rate of every mark update (the rate that settles at the next
funding time) with ``level``, a fraction (``unit="rate"``: 0.0001 is 0.01 %)
or basis points (``unit="bps"``: 1 is 0.0001); ``liquidation-burst`` counts
the liquidations (or sums their notional, ``avg_price * filled_qty``) of the
``window`` ending at each one. ``basis-z`` watches a (perpetual, spot) pair on
closed bars: the basis in bps of the bar closes
(:func:`quantify.analytics.basis`, the number the
:class:`~quantify.widgets.PerpMonitor` plots), standardised over ``window``
bars by :func:`quantify.analytics.zscore` (the kernel of the pair z-score).
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from quantify.model._risk_fields import DRAWDOWN_MESSAGE, ONE_OR_TWO_SYMBOLS, check_drawdown, drawdown_params
from quantify.model._rule_fields import MAX_BARS
from quantify.model._rule_fields import bars as _bars
from quantify.model._rule_fields import book_levels as _book_levels
from quantify.model._rule_fields import choice as _choice
from quantify.model._rule_fields import count as _count
from quantify.model._rule_fields import duration as _duration
from quantify.model._rule_fields import imbalance_level as _imbalance_level
from quantify.model._rule_fields import level as _level
from quantify.model._rule_fields import nonneg as _nonneg
from quantify.model._rule_fields import positive as _positive
from quantify.model._rule_fields import positive_duration as _positive_duration
from quantify.model._rule_fields import timeframe as _timeframe
from quantify.model._rule_regime import REGIME_CHANGE_MESSAGE, REGIME_CHANGE_PARAMS
from quantify.model.instrument import Instrument, Market, instrument_key

#: The hedge estimates of a pair z-score (:func:`quantify.analytics.pair_zscore`): rolling
#: OLS over the window, or a Kalman filter's state.
HEDGES: Final = ("ols", "kalman")

__all__ = [
    "BOOK_KINDS",
    "HEDGES",
    "KINDS",
    "MAX_BARS",
    "MAX_TICK_WINDOW",
    "PERPETUAL_KINDS",
    "SEVERITIES",
    "Rule",
    "corr_breakdown",
    "gap",
    "make_rule",
    "pct_move",
    "price_above",
    "price_below",
    "price_crosses",
    "stale",
    "vol_breakout",
    "zscore",
]

#: Severities, most urgent first.
SEVERITIES: Final = ("critical", "high", "medium", "low")

#: Longest look-back of a ``pct-move`` rule (the writer keeps this much tick history).
MAX_TICK_WINDOW: Final = pd.Timedelta(hours=6)

#: Fields a message template may use.
MESSAGE_FIELDS: Final = ("rule_id", "name", "kind", "symbol", "value", "threshold", "severity", "time")

#: Longest window of a ``liquidation-burst`` rule (the writer keeps this much liquidation history).
MAX_LIQUIDATION_WINDOW: Final = pd.Timedelta(hours=6)

_REQUIRED: Final = object()


# -- kinds -------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    n_symbols: int
    params: Mapping[str, tuple[Callable[[Any], Any], Any]]
    message: str


_LEVEL_PARAMS = {"level": (_level("level"), _REQUIRED), "margin": (_nonneg("margin"), 0.0)}
_BAR_HEDGES = HEDGES

KINDS: Final[dict[str, _Kind]] = {
    "price-above": _Kind(1, _LEVEL_PARAMS, "{symbol} at {value:g}, above {threshold:g}"),
    "price-below": _Kind(1, _LEVEL_PARAMS, "{symbol} at {value:g}, below {threshold:g}"),
    "price-crosses": _Kind(1, _LEVEL_PARAMS, "{symbol} crossed {threshold:g} (at {value:g})"),
    "pct-move": _Kind(1, {
        "pct": (_positive("pct"), _REQUIRED),
        "window": (_positive_duration("window", MAX_TICK_WINDOW), _REQUIRED),
        "direction": (_choice("direction", ("up", "down", "abs")), "abs"),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} moved {value:+.3f}% (threshold {threshold:g}%)"),
    "zscore": _Kind(2, {
        "level": (_level("level"), _REQUIRED),
        "op": (_choice("op", ("above", "below", "abs-above")), "abs-above"),
        "timeframe": (_timeframe, "1m"),
        # the pair z-score needs 2 * window - 1 bars (hedge window, then z window)
        "window": (_bars("window", 3, history=2), 120),
        "hedge": (_choice("hedge", _BAR_HEDGES), "ols"),
        "delta": (_positive("delta"), None),  # None: the Kalman filter calibrates itself
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} spread z-score {value:+.2f} (threshold {threshold:g})"),
    "vol-breakout": _Kind(1, {
        "k": (_positive("k"), _REQUIRED),
        "timeframe": (_timeframe, "1m"),
        "short": (_bars("short", 2), 10),
        "long": (_bars("long", 3), 120),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} short-window volatility {value:.2f}x the baseline (threshold {threshold:g}x)"),
    "corr-breakdown": _Kind(2, {
        "level": (_level("level"), _REQUIRED),
        "timeframe": (_timeframe, "1m"),
        "window": (_bars("window", 3), 120),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} correlation {value:.3f}, below {threshold:g}"),
    "stale": _Kind(1, {
        "seconds": (_positive_duration("seconds"), _REQUIRED),
    }, "{symbol}: no trade for {value:.1f} s (limit {threshold:g} s)"),
    "gap": _Kind(1, {}, "{symbol}: {value:.0f} trade id(s) missing"),
    "spread-above": _Kind(1, {
        "bps": (_positive("bps"), _REQUIRED),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} spread {value:.3g} bps, above {threshold:g} bps"),
    "imbalance-beyond": _Kind(1, {
        "level": (_imbalance_level, _REQUIRED),
        "op": (_choice("op", ("above", "below", "abs-above")), "abs-above"),
        "levels": (_book_levels, 1),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} book imbalance {value:+.2f} (threshold {threshold:g})"),
    "book-stale": _Kind(1, {
        "seconds": (_positive_duration("seconds"), _REQUIRED),
    }, "{symbol}: book out of sync for {value:.1f} s (limit {threshold:g} s)"),
    "funding-above": _Kind(1, {
        "level": (_level("level"), _REQUIRED),
        "unit": (_choice("unit", ("rate", "bps")), "rate"),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} funding rate {value:.6g}, above {threshold:g}"),
    "funding-below": _Kind(1, {
        "level": (_level("level"), _REQUIRED),
        "unit": (_choice("unit", ("rate", "bps")), "rate"),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} funding rate {value:.6g}, below {threshold:g}"),
    "basis-z": _Kind(2, {
        "level": (_level("level"), _REQUIRED),
        "op": (_choice("op", ("above", "below", "abs-above")), "abs-above"),
        "timeframe": (_timeframe, "1m"),
        "window": (_bars("window", 3), 120),
        "margin": (_nonneg("margin"), 0.0),
    }, "{symbol} basis z-score {value:+.2f} (threshold {threshold:g})"),
    "liquidation-burst": _Kind(1, {
        "window": (_positive_duration("window", MAX_LIQUIDATION_WINDOW), _REQUIRED),
        "count": (_count("count"), None),
        "notional": (_positive("notional"), None),
    }, "{symbol}: {value:g} liquidation(s) within the window (threshold {threshold:g})"),
    "drawdown": _Kind(1, drawdown_params(_REQUIRED), DRAWDOWN_MESSAGE),  # 1 or 2 symbols: rules_risk
    "regime-change": _Kind(1, REGIME_CHANGE_PARAMS, REGIME_CHANGE_MESSAGE),  # quantify.model.rules_regime
}

#: The kinds judged on the order book (quotes and continuity), not on trades.
BOOK_KINDS: Final = ("spread-above", "imbalance-beyond", "book-stale")

#: The kinds of perpetual futures: funding (marks), liquidations, and the basis against spot (bars).
PERPETUAL_KINDS: Final = ("funding-above", "funding-below", "basis-z", "liquidation-burst")

#: Default messages of the kinds whose value's unit is a parameter (kind, unit) -> template.
_UNIT_MESSAGES: Final = {
    ("funding-above", "bps"): "{symbol} funding rate {value:.3g} bps, above {threshold:g} bps",
    ("funding-below", "bps"): "{symbol} funding rate {value:.3g} bps, below {threshold:g} bps",
    ("liquidation-burst", "notional"): "{symbol}: liquidations of {value:,.0f} notional within the window "
                                       "(threshold {threshold:,.0f})",
}


def _check_perp_symbols(kind: str, symbols: tuple[str, ...]) -> None:
    """The perpetual kinds watch a perpetual (``basis-z``: a perpetual or future, then its spot)."""
    markets = [Instrument.parse(s).market for s in symbols]
    if markets[0] == Market.SPOT:
        raise ValueError(f"symbols: a {kind} rule watches a perpetual such as binance-usdm:BTCUSDT; "
                         f"{symbols[0]} is spot")
    if kind == "basis-z" and markets[1] != Market.SPOT:
        raise ValueError(f"symbols: a basis-z rule watches PERP/SPOT, such as binance-usdm:BTCUSDT/BTCUSDT; "
                         f"{symbols[1]} is not spot")


def _check_symbols(kind: str, symbols: Any) -> tuple[str, ...]:
    if isinstance(symbols, str):
        items = [s for s in symbols.replace("/", ",").split(",")]
    else:
        try:
            items = list(symbols)
        except TypeError:
            raise ValueError(f"symbols must be a symbol or a list of symbols, got {symbols!r}") from None
    out = []
    for item in items:
        if not str(item).strip():
            continue
        try:
            sym = instrument_key(str(item))
        except ValueError as exc:
            raise ValueError(f"symbols: {exc}") from None
        out.append(sym)
    need = len(out) if kind in ONE_OR_TWO_SYMBOLS and len(out) in (1, 2) else KINDS[kind].n_symbols
    if len(out) != need or len(set(out)) != need:
        what = "one symbol, such as BTCUSDT" if need == 1 else "two different symbols, such as BTCUSDT/ETHUSDT"
        raise ValueError(f"symbols: a {kind} rule watches {what}; got {symbols!r}")
    return tuple(out)


def _check_message(template: str, kind: str) -> str:
    if not isinstance(template, str):
        raise ValueError(f"message must be a template string, got {template!r}")
    if not template.strip():
        return KINDS[kind].message
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"message template {template!r} is malformed ({exc}); "
                         "write fields as {{value}} and a literal brace as {{{{") from None
    unknown = sorted(n for n in names if n.split(".")[0].split("[")[0] not in MESSAGE_FIELDS)
    if unknown:
        raise ValueError(f"message template uses unknown field {{{unknown[0]}}}; "
                         f"use {', '.join('{' + f + '}' for f in MESSAGE_FIELDS)}")
    try:
        template.format(rule_id="r", name="n", kind=kind, symbol="S", value=1.0, threshold=1.0,
                        severity="low", time=pd.Timestamp(0, tz="UTC"))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"message template {template!r} cannot be filled: {exc}") from None
    return template


# -- the rule ----------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One alert rule (immutable; change it with :meth:`AlertBook.update`).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS` (``"price-above"``, ``"zscore"``, ...).
    symbols : str or sequence of str
        The watched symbol, or for pair kinds the pair ``(y, x)``;
        ``"BTCUSDT/ETHUSDT"`` is accepted.
    params : mapping
        Kind-specific parameters (see the constructors); defaults filled in.
    severity : str
        ``critical``, ``high``, ``medium`` or ``low``.
    cooldown : float or str
        Seconds (or ``"15m"``) of trade time after a firing during which the
        rule does not fire again.
    message : str
        Template with fields from :data:`MESSAGE_FIELDS`; empty: the kind's default.
    enabled : bool
    name : str
        Free text for people.
    id : str
        Assigned by :meth:`AlertBook.add`; empty before.
    created : pandas.Timestamp or None
        UTC creation time, set by :meth:`AlertBook.add`.
    """

    kind: str
    symbols: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "medium"
    cooldown: float = 0.0
    message: str = ""
    enabled: bool = True
    name: str = ""
    id: str = ""
    created: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        kind = str(self.kind).strip().lower().replace("_", "-")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        spec = KINDS[kind]
        given = dict(self.params or {})
        unknown = sorted(set(given) - set(spec.params))
        if unknown:
            allowed = ", ".join(spec.params) or "none"
            raise ValueError(f"{unknown[0]}: not a parameter of a {kind} rule (parameters: {allowed})")
        params: dict[str, Any] = {}
        for pname, (check, default) in spec.params.items():
            if pname in given and given[pname] is not None:
                params[pname] = check(given[pname])
            elif default is _REQUIRED:
                raise ValueError(f"{pname}: a {kind} rule needs {pname}")
            else:
                params[pname] = default
        if kind == "vol-breakout" and params["long"] <= params["short"]:
            raise ValueError(f"long must be more bars than short ({params['short']}), got {params['long']}")
        if kind == "imbalance-beyond" and params["op"] == "abs-above" and params["level"] < 0:
            raise ValueError(f"level of an abs-above imbalance rule must be >= 0 (|imbalance| is compared), "
                             f"got {params['level']!r}; use op='below' for a level under 0")
        if kind == "liquidation-burst" and (params["count"] is None) == (params["notional"] is None):
            raise ValueError("a liquidation-burst rule needs count (liquidations) or notional (their "
                             "avg_price * filled_qty summed), one of the two")
        if kind == "drawdown":
            check_drawdown(params)
        severity = str(self.severity).strip().lower()
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        created = self.created
        if created is not None:
            created = pd.Timestamp(created)
            created = created.tz_localize("UTC") if created.tz is None else created.tz_convert("UTC")
        if not isinstance(self.enabled, (bool, int)):
            raise ValueError(f"enabled must be True or False, got {self.enabled!r}")
        setattr_ = object.__setattr__
        setattr_(self, "kind", kind)
        symbols = _check_symbols(kind, self.symbols)
        if kind in PERPETUAL_KINDS:
            _check_perp_symbols(kind, symbols)
        setattr_(self, "symbols", symbols)
        setattr_(self, "params", params)
        setattr_(self, "severity", severity)
        setattr_(self, "cooldown", _duration("cooldown")(self.cooldown))
        message = self.message
        unit = str(params.get("unit", "notional" if params.get("notional") is not None else ""))
        if isinstance(message, str) and not message.strip() and (kind, unit) in _UNIT_MESSAGES:
            message = _UNIT_MESSAGES[(kind, unit)]
        setattr_(self, "message", _check_message(message, kind))
        setattr_(self, "enabled", bool(self.enabled))
        setattr_(self, "name", str(self.name or ""))
        setattr_(self, "id", str(self.id or ""))
        setattr_(self, "created", created)

    @property
    def symbol(self) -> str:
        """The watched symbol, or ``"Y/X"`` for a pair."""
        return "/".join(self.symbols)

    @property
    def threshold(self) -> float:
        """The number the value is compared with."""
        p = self.params
        if self.kind == "pct-move":
            return float(p["pct"])
        if self.kind == "vol-breakout":
            return float(p["k"])
        if self.kind in ("stale", "book-stale"):
            return float(p["seconds"])
        if self.kind == "spread-above":
            return float(p["bps"])
        if self.kind == "gap":
            return 0.0
        if self.kind == "liquidation-burst":
            return float(p["count"] if p["count"] is not None else p["notional"])
        if self.kind == "regime-change":
            return float(p["prob"])
        return float(p["level"])

    def replace(self, **changes: Any) -> Rule:
        """A copy with ``changes`` applied and validated; ``params`` entries merge."""
        if "params" in changes:
            changes["params"] = {**self.params, **dict(changes["params"] or {})}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            # Bare parameter names (level=...) are a convenience for params.
            params = dict(changes.pop("params", self.params))
            for key in unknown:
                params[key] = changes.pop(key)
            changes["params"] = params
        return dataclasses.replace(self, **changes)

    def format_message(self, *, value: float, time: pd.Timestamp) -> str:
        """Fill the message template for one firing."""
        return self.message.format(
            rule_id=self.id, name=self.name, kind=self.kind, symbol=self.symbol, value=value,
            threshold=self.threshold, severity=self.severity, time=time,
        )

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-friendly row (how the store keeps rules)."""
        return {
            "id": self.id, "kind": self.kind, "symbols": ",".join(self.symbols),
            "params": json.dumps(dict(self.params), sort_keys=True), "severity": self.severity,
            "cooldown": float(self.cooldown), "message": self.message, "enabled": self.enabled,
            "name": self.name, "created": self.created,
        }

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Rule:
        """Inverse of :meth:`to_record`."""
        created = row.get("created")
        return cls(
            kind=row["kind"], symbols=tuple(str(row["symbols"]).split(",")),
            params=json.loads(row["params"]), severity=row["severity"], cooldown=float(row["cooldown"]),
            message=row["message"], enabled=bool(row["enabled"]), name=row.get("name") or "",
            id=row["id"], created=None if created is None or pd.isna(created) else created,
        )


_COMMON = ("severity", "cooldown", "message", "enabled", "name", "id", "created")


def make_rule(kind: str, symbols: str | Iterable[str], **kwargs: Any) -> Rule:
    """Build a rule of ``kind``; keyword arguments are common fields or parameters.

    Examples
    --------
    >>> make_rule("price-above", "BTCUSDT", level=62000, severity="high", cooldown="15m").params
    {'level': 62000.0, 'margin': 0.0}
    """
    common = {k: kwargs.pop(k) for k in _COMMON if k in kwargs}
    params = dict(kwargs.pop("params", {}) or {})
    params.update(kwargs)
    # A string ("BTCUSDT/ETHUSDT") is split by the rule's own validation.
    syms: Any = symbols if isinstance(symbols, str) else tuple(symbols)
    return Rule(kind=kind, symbols=syms, params=params, **common)


def price_above(symbol: str, level: float, *, margin: float = 0.0, **common: Any) -> Rule:
    """Fire at the first trade at or above ``level``; re-arm below ``level - margin``."""
    return make_rule("price-above", symbol, level=level, margin=margin, **common)


def price_below(symbol: str, level: float, *, margin: float = 0.0, **common: Any) -> Rule:
    """Fire at the first trade at or below ``level``; re-arm above ``level + margin``."""
    return make_rule("price-below", symbol, level=level, margin=margin, **common)


def price_crosses(symbol: str, level: float, *, margin: float = 0.0, **common: Any) -> Rule:
    """Fire when a trade reaches ``level`` coming from more than ``margin`` beyond it."""
    return make_rule("price-crosses", symbol, level=level, margin=margin, **common)


def pct_move(symbol: str, pct: float, window: float | str, *, direction: str = "abs",
             margin: float = 0.0, **common: Any) -> Rule:
    """Fire when the price moved ``pct`` percent against its price ``window`` ago."""
    return make_rule("pct-move", symbol, pct=pct, window=window, direction=direction, margin=margin, **common)


def zscore(y: str, x: str, level: float, *, op: str = "abs-above", timeframe: str = "1m",
           window: int | str = 120, hedge: str = "ols", delta: float | None = None, margin: float = 0.0,
           **common: Any) -> Rule:
    """Fire when the pair z-score on closed bars passes ``level``.

    The z-score is :func:`quantify.analytics.pair_zscore` of the two legs'
    bar closes (log prices; ``hedge`` "ols": rolling OLS over ``window``
    bars, "kalman": the Kalman filter, calibrated on ``window`` bars unless
    ``delta`` is given), the number the
    :class:`~quantify.widgets.PairMonitor` shows. ``window`` is at most
    ``(MAX_BARS + 1) // 2`` bars: the first z needs ``2 * window - 1`` bars.
    """
    return make_rule("zscore", (y, x), level=level, op=op, timeframe=timeframe, window=window,
                     hedge=hedge, delta=delta, margin=margin, **common)


def vol_breakout(symbol: str, k: float, *, timeframe: str = "1m", short: int = 10, long: int = 120,
                 margin: float = 0.0, **common: Any) -> Rule:
    """Fire when realised volatility over ``short`` bars exceeds ``k`` times that over ``long`` bars."""
    return make_rule("vol-breakout", symbol, k=k, timeframe=timeframe, short=short, long=long,
                     margin=margin, **common)


def corr_breakdown(a: str, b: str, level: float, *, timeframe: str = "1m", window: int | str = 120,
                   margin: float = 0.0, **common: Any) -> Rule:
    """Fire when the rolling correlation of bar log returns falls below ``level``."""
    return make_rule("corr-breakdown", (a, b), level=level, timeframe=timeframe, window=window,
                     margin=margin, **common)


def stale(symbol: str, seconds: float | str, **common: Any) -> Rule:
    """Fire when ``symbol`` has had no trade for ``seconds`` (of trade time)."""
    return make_rule("stale", symbol, seconds=seconds, **common)


def gap(symbol: str, **common: Any) -> Rule:
    """Fire when stored trade ids of ``symbol`` jump (trades were lost)."""
    return make_rule("gap", symbol, **common)
