"""The ``quantify`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code. Errors a
user can fix (bad symbols, times, URIs, files) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from quantify.cli._common import bind_time_values
from quantify.exceptions import QuantifyError

__all__ = ["build_parser", "main"]

#: Subcommand modules, in the order ``quantify --help`` lists them.
COMMANDS = ("demo", "lab", "replay", "ingest", "status", "dashboard", "alerts", "load", "backfill", "export")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``quantify`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="quantify",
        description=(
            "QuantiFy: stream Binance trades into ArcticDB and research them in Jupyter. "
            "Run 'quantify demo' to see it work on bundled, recorded Binance data."
        ),
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log more (-v: INFO, -vv: DEBUG)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"quantify.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``quantify`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(bind_time_values(parser, sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (QuantifyError, ValueError) as exc:
        print(f"quantify {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `quantify status --json | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
