"""``quantify status``: what is in the store and what its writer is doing.

The command renders :func:`quantify.status`'s :class:`~quantify.model.status.StoreStatus`:
``summary()`` as text, ``to_dict()`` as JSON (``--json``, for monitoring).
"""

from __future__ import annotations

import argparse
import json

from quantify.cli._common import add_store_argument, store_from_args
from quantify.store.status import status


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status", help="per-symbol rows, first/last trade, gaps, writer state",
        description="Show, per symbol, rows, first and last trade time and id, gaps found and "
                    "filled; and whether a writer is alive, its ticks/s, reconnects and errors.",
    )
    add_store_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON document (for monitoring)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = status(store_from_args(args))
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else result.summary())
    return 0
