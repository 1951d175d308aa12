"""Arguments and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import os

__all__ = ["add_store_argument", "store_from_args"]


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URI", default=None,
        help="store URI: lmdb://PATH, s3://HOST:BUCKET?..., or mem:// "
             "(default: $QUANTIFY_STORE or lmdb://~/.quantify/arctic)",
    )


def store_from_args(args: argparse.Namespace) -> str | None:
    """The store URI of the command line, else ``$QUANTIFY_STORE``, else ``None`` (default)."""
    return args.store or os.environ.get("QUANTIFY_STORE") or None
