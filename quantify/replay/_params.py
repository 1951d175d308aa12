"""Query parameters of the replay's REST endpoints, validated the way Binance's spot API does.

Each check raises :class:`BadRequest` with Binance's error code and message
(``-1100`` illegal characters, ``-1101`` duplicate, ``-1102`` missing,
``-1104`` unread parameters, ``-1130`` bad ``limit``); the API turns it into
an HTTP 400 body.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "BadRequest", "check_known", "parse_limit", "parse_long",
           "parse_query", "symbol_name"]

#: ``limit`` of an endpoint that sets none: (default, maximum).
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_LONG = re.compile(r"[0-9]{1,20}")
_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")


class BadRequest(Exception):
    """A request Binance answers with HTTP 400: its error ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def parse_query(query: str) -> dict[str, str]:
    """The query string's parameters (-1101 if one is sent twice)."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            raise BadRequest(-1101, "Duplicate values for a parameter detected.")
        params[key] = value
    return params


def check_known(params: dict[str, str], known: tuple[str, ...]) -> None:
    """-1104 if ``params`` holds a parameter not in ``known``."""
    extra = [k for k in params if k not in known]
    if extra:
        read = len(params) - len(extra)
        raise BadRequest(
            -1104, f"Not all sent parameters were read; read '{read}' parameter(s) "
            f"but was sent '{len(params)}'.",
        )


def parse_long(params: dict[str, str], name: str) -> int | None:
    """Parameter ``name`` as a non-negative 64-bit integer, None if not sent."""
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        raise BadRequest(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    if not _LONG.fullmatch(value) or int(value) > 2**63 - 1:
        raise BadRequest(
            -1100, f"Illegal characters found in parameter '{name}'; "
            "legal range is '^[0-9]{1,20}$'.",
        )
    return int(value)


def parse_limit(params: dict[str, str], default: int, maximum: int) -> int:
    """``limit``: ``default`` if not sent, clamped to ``maximum``, -1130 below 1."""
    limit = parse_long(params, "limit")
    if limit is None:
        return default
    if limit < 1:
        raise BadRequest(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, maximum)


def symbol_name(params: dict[str, str]) -> str:
    """The ``symbol`` parameter, checked for presence and legal characters (not for existence)."""
    name = params.get("symbol")
    if not name:
        raise BadRequest(
            -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
        )
    if not _SYMBOL.fullmatch(name):
        raise BadRequest(
            -1100, "Illegal characters found in parameter 'symbol'; "
            "legal range is '^[A-Z0-9-_.]{1,20}$'.",
        )
    return name
