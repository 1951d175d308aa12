"""Arguments and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["add_store_argument", "add_time_argument", "bind_time_values", "store_from_args"]


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URI", default=None,
        help="store URI: lmdb://PATH, s3://HOST:BUCKET?..., or mem:// "
             "(default: $QUANTIFY_STORE or lmdb://~/.quantify/arctic)",
    )


def store_from_args(args: argparse.Namespace) -> str | None:
    """The store URI of the command line, else ``$QUANTIFY_STORE``, else ``None`` (default)."""
    return args.store or os.environ.get("QUANTIFY_STORE") or None


class _TimeOption(argparse.Action):
    """An option whose value is a time: ISO, ``now`` or relative (``-6h``), see :func:`bind_time_values`."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)


def add_time_argument(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """Add a time option (``--start``, ``--end``) whose value may be relative, as ``--start -6h``.

    ``kwargs`` go to :meth:`argparse.ArgumentParser.add_argument` (``help``,
    ``required``, ``default``); the metavar is ``T``.
    """
    kwargs.setdefault("metavar", "T")
    parser.add_argument(*flags, action=_TimeOption, **kwargs)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def bind_time_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with each time option joined to a value that starts with ``-``: ``--start=-1d``.

    argparse takes ``-1d`` after ``--start`` for an option of its own and
    stops with "expected one argument"; relative times are what users type
    (``quantify alerts history --start -1d``). A token after a time option
    is bound to it unless it names an option of the command (``--start
    --end ...`` still reports the missing value); the time parser then
    judges the value and names it if it is not a time. Negative numbers of
    other options are untouched (argparse reads them itself).
    """
    time_flags: set[str] = set()
    known: set[str] = set()
    for p in _parsers(parser):
        for action in p._actions:
            known.update(action.option_strings)
            if isinstance(action, _TimeOption):
                time_flags.update(action.option_strings)

    def is_option(token: str) -> bool:
        return token in known or (token.startswith("--") and any(k.startswith(token) for k in known))

    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            out += tokens[i:]
            break
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in time_flags and nxt is not None and nxt.startswith("-") and not is_option(nxt):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out
