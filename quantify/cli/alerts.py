"""``quantify alerts``: list, add and remove alert rules; show fired alerts."""

from __future__ import annotations

import argparse
from typing import Any

from quantify.cli._common import add_store_argument, add_time_argument, store_from_args

EPILOG = """\
examples:
  quantify alerts add --kind price-above --symbol BTCUSDT --level 62000 --severity high --cooldown 15m
  quantify alerts add --kind zscore --symbol BTCUSDT/ETHUSDT --level 2.5 --op abs-above \\
                      --timeframe 1m --window 120 --cooldown 15m --severity high
  quantify alerts add --kind pct-move --symbol ETHUSDT --pct 2 --window 5m --direction down
  quantify alerts add --kind stale --symbol BTCUSDT --seconds 30 --severity critical
  quantify alerts add --kind funding-above --symbol binance-usdm:BTCUSDT --level 1 --unit bps --cooldown 8h
  quantify alerts add --kind basis-z --symbol binance-usdm:BTCUSDT/BTCUSDT --level 3 --timeframe 1m --window 60
  quantify alerts add --kind liquidation-burst --symbol binance-usdm:BTCUSDT --count 5 --window 1m
  quantify alerts add --kind drawdown --symbol BTCUSDT/ETHUSDT --level 2 --timeframe 1m --window 120
  quantify alerts list
  quantify alerts history --severity high --start -1d
  quantify alerts remove 3f9c2a1b7e

Kinds: price-above, price-below, price-crosses (--level, --margin); pct-move (--pct,
--window DURATION, --direction up|down|abs); zscore (--level, --op above|below|abs-above,
--timeframe, --window BARS, --hedge ols|kalman); vol-breakout (--k, --timeframe, --short,
--long); corr-breakdown (--level, --timeframe, --window BARS); stale (--seconds); gap.
Order books: spread-above (--bps, --margin); imbalance-beyond (--level in (-1, 1),
--op above|below|abs-above, --margin); book-stale (--seconds out of sync).
Perpetuals: funding-above, funding-below (--level as a rate, 0.0001 = 0.01 %, or with
--unit bps in basis points; judged at every mark update); basis-z (PERP/SPOT: z-score of
the basis in bps of the bar closes, --level, --op, --timeframe, --window BARS);
liquidation-burst (--count N or --notional X within --window DURATION).
Regimes: regime-change (the filtered most-likely state of a Gaussian HMM fitted at each
closed bar changes: --timeframe, --states 2-6, --window BARS of realised vol, --lookback
BARS per fit, --seed, --prob least probability of the new state).
Risk: drawdown (SYM: long the instrument, or Y/X: the pairs strategy; --level in % of the
peak equity over --window BARS, --timeframe, --entry/--exit z bands of the pair).
Rules are evaluated by the running 'quantify ingest' writer; changes reach it within a second.
"""

#: Parameter options of ``alerts add`` (all optional here; the rule checks what its kind needs).
_PARAMS = (
    ("level", "LEVEL", "price level, z-score, correlation, imbalance or funding-rate threshold"),
    ("margin", "X", "re-arm only once the value is back beyond the level by X (default 0)"),
    ("pct", "PCT", "pct-move: percentage threshold"),
    ("window", "N", "pct-move, liquidation-burst: a duration such as 5m; bar rules: number of bars"),
    ("direction", "DIR", "pct-move: up, down or abs (default abs)"),
    ("op", "OP", "zscore, imbalance-beyond: above, below or abs-above (default abs-above)"),
    ("timeframe", "TF", "bar rules: candle timeframe such as 1m (default 1m)"),
    ("hedge", "HEDGE", "zscore: ols (rolling OLS, default) or kalman"),
    ("k", "K", "vol-breakout: short-window vol must exceed K x the long-window vol"),
    ("short", "N", "vol-breakout: short window in bars (default 10)"),
    ("long", "N", "vol-breakout: long window in bars (default 120)"),
    ("seconds", "S", "stale: seconds without a trade; book-stale: seconds out of sync"),
    ("bps", "BPS", "spread-above: quoted spread threshold in basis points of the mid"),
    ("levels", "N", "imbalance-beyond: book levels per side (1: the best bid and offer)"),
    ("unit", "UNIT", "funding-above/-below: --level as a rate (default; 0.0001 = 0.01 %%) or in bps"),
    ("count", "N", "liquidation-burst: liquidations within --window"),
    ("notional", "X", "liquidation-burst: summed notional (avg price x filled qty) within --window"),
    ("states", "N", "regime-change: hidden states of the model, 2 to 6 (default 2)"),
    ("lookback", "N", "regime-change: closed bars each fit uses (default 500)"),
    ("seed", "N", "regime-change: seed of the fit (default 0)"),
    ("prob", "P", "regime-change: least filtered probability of the new state (default 0)"),
    ("entry", "Z", "drawdown of a pair: the paper strategy's entry |z| (default 2)"),
    ("exit", "Z", "drawdown of a pair: the paper strategy's exit |z| (default 0.5)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "alerts", help="list, add and remove alert rules; show fired alerts",
        description="Manage the store's alert rules and read the history of fired alerts. "
                    "Rules are evaluated once per trade by the ingestion writer.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")

    ls = sub.add_parser("list", help="show the rules")
    add_store_argument(ls)
    ls.set_defaults(func=run_list)

    add = sub.add_parser("add", help="add a rule (prints its id)", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("--kind", required=True, help="rule kind, e.g. price-above or zscore")
    add.add_argument("--symbol", required=True, metavar="SYM[/SYM]",
                     help="symbol, or Y/X for pair kinds (zscore, corr-breakdown; basis-z: PERP/SPOT)")
    add.add_argument("--severity", default="medium", help="critical, high, medium (default) or low")
    add.add_argument("--cooldown", default="0", metavar="DURATION",
                     help="quiet time after a firing: seconds or e.g. 15m (default 0)")
    add.add_argument("--message", default="", help="message template, fields {symbol} {value} "
                     "{threshold} {severity} {time} {kind} {rule_id} {name}")
    add.add_argument("--name", default="", help="a label for people")
    add.add_argument("--disabled", action="store_true", help="store the rule disabled")
    add.add_argument("--no-symbol-check", action="store_true",
                     help="allow symbols not in the store yet")
    for name, metavar, help_ in _PARAMS:
        add.add_argument(f"--{name}", metavar=metavar, help=help_)
    add_store_argument(add)
    add.set_defaults(func=run_add)

    rm = sub.add_parser("remove", help="remove a rule by id (its history stays)")
    rm.add_argument("rule_id", nargs="+", help="id(s) shown by 'quantify alerts list'")
    add_store_argument(rm)
    rm.set_defaults(func=run_remove)

    hist = sub.add_parser("history", help="show fired alerts, oldest first")
    add_time_argument(hist, "--start", help="from this trade time (ISO or relative, e.g. -1d)")
    add_time_argument(hist, "--end", help="until this trade time")
    hist.add_argument("--severity", help="only this severity")
    hist.add_argument("--rule", dest="rule_id", help="only this rule id")
    hist.add_argument("--limit", type=int, default=50, help="show the last N (default 50; 0: all)")
    add_store_argument(hist)
    hist.set_defaults(func=run_history)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _book(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The store's alert book; only ``alerts add`` creates a missing store."""
    from quantify.alerts import AlertBook
    from quantify.store import open_store

    return AlertBook(open_store(store_from_args(args), create=create))


def _number(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--{name} must be a number, got {text!r}") from None


def run_add(args: argparse.Namespace) -> int:
    from quantify.alerts import make_rule

    params: dict[str, Any] = {}
    for name, _, _ in _PARAMS:
        value = getattr(args, name)
        if value is None:
            continue
        numeric = name in ("level", "margin", "pct", "k", "bps", "notional", "entry", "exit")
        params[name] = _number(name, value) if numeric else value
    rule = make_rule(args.kind, args.symbol, severity=args.severity, cooldown=args.cooldown,
                     message=args.message, name=args.name, enabled=not args.disabled, **params)
    rule_id = _book(args, create=True).add(rule, check_symbols=not args.no_symbol_check)
    print(rule_id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    rules = _book(args).list()
    if not rules:
        print("(no alert rules)")
        return 0
    print(f"{'id':<12} {'kind':<16} {'symbol':<17} {'severity':<9} {'cooldown':>9} {'on':<3} params")
    for r in rules:
        params = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items())
        print(f"{r.id:<12} {r.kind:<16} {r.symbol:<17} {r.severity:<9} {r.cooldown:>8g}s "
              f"{'yes' if r.enabled else 'no':<3} {params}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    book = _book(args)
    for rule_id in args.rule_id:
        try:
            book.remove(rule_id)
        except KeyError:
            raise ValueError(f"no alert rule with id {rule_id!r}; 'quantify alerts list' shows the ids") from None
        print(f"removed {rule_id}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    from quantify.model.times import parse_time

    # read the times first: a mistyped one is an error even while nothing has fired
    start, end = parse_time(args.start), parse_time(args.end)
    frame = _book(args).history(start, end, severity=args.severity, rule_id=args.rule_id)
    if args.limit and args.limit > 0:
        frame = frame.tail(args.limit)
    if frame.empty:
        print("(no alerts fired)")
        return 0
    for row in frame.itertuples():
        ack = " (ack)" if row.acknowledged else ""
        print(f"{row.alert_id:>6} {row.fired_at.isoformat():<32} {row.severity:<8} {row.rule_id:<11} "
              f"{row.message}{ack}")
    return 0
