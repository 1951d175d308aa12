"""Exceptions raised by QuantiFy.

Every error QuantiFy raises on purpose derives from :class:`QuantifyError`;
bad arguments to public functions raise the built-in ``ValueError`` or
``TypeError`` with the bad value in the message.

::

    QuantifyError
    ├── FeedError               a Binance frame or file could not be understood
    │   └── RestError           a REST call failed (carries status and Binance's code)
    ├── StoreError              the ArcticDB store could not be opened or read
    │   ├── InvalidStoreURI     the store URI is malformed or unsupported
    │   ├── StoreNotFoundError  no store at the URI, and the caller only reads
    │   ├── UnknownSymbol       the symbol is not in the store
    │   └── WriterLocked        another process already writes to the store
    ├── InvalidTime             a time argument could not be parsed
    └── UnsafePath              a path would leave the directory it must stay in
"""

from __future__ import annotations

__all__ = [
    "FeedError",
    "InvalidStoreURI",
    "InvalidTime",
    "QuantifyError",
    "RestError",
    "StoreError",
    "StoreNotFoundError",
    "UnknownSymbol",
    "UnsafePath",
    "WriterLocked",
]


class QuantifyError(Exception):
    """Root of every error QuantiFy raises on purpose."""


class FeedError(QuantifyError):
    """A Binance frame, response or recorded file could not be understood."""


class RestError(FeedError):
    """A REST request failed.

    Attributes
    ----------
    status : int
        HTTP status code (0 when no response arrived).
    code : int or None
        Binance's error code from the body (``{"code": -1121, "msg": ...}``).
    retry_after : float or None
        Seconds to wait before the next request, from ``Retry-After``.
    """

    def __init__(
        self, message: str, *, status: int = 0, code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class StoreError(QuantifyError):
    """The store could not be opened, read or written."""


class InvalidStoreURI(StoreError, ValueError):
    """A store URI is malformed or names an unsupported backend."""


class StoreNotFoundError(StoreError):
    """No store exists at the URI, and the caller opened it to read (``create=False``).

    Writers (``quantify ingest``, ``load``, ``backfill``, ``alerts add``, the
    IPython extension's writer) open with ``create=True``; a reader never
    creates a store at a mistyped path.
    """


class UnknownSymbol(StoreError, KeyError):
    """The symbol has no data in the store."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class WriterLocked(StoreError):
    """Another process already writes to this store."""


class InvalidTime(QuantifyError, ValueError):
    """A time argument is neither a datetime, an ISO string nor a relative string."""


class UnsafePath(QuantifyError, ValueError):
    """A path resolves outside the directory it was confined to (``..``, absolute, a symlink)."""
