"""Store URIs: which ArcticDB backend a store lives on, validated up front.

``lmdb://PATH`` (the default: ``$QUANTIFY_STORE`` or ``~/.quantify/arctic``),
``s3://HOST:BUCKET?...`` for a shared store (ArcticDB's own S3 URI; credentials
come from the standard AWS environment or profile, never from QuantiFy), and
``mem://`` for tests. A bare path is read as ``lmdb://PATH``.

Credentials never leave this module in text: the URI shown to users, and
every error message about a URI, elide a query that names ``access`` or
``secret``; :meth:`StoreURI.redact` removes them from messages of ArcticDB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from quantify.exceptions import InvalidStoreURI

__all__ = ["DEFAULT_STORE_PATH", "StoreURI", "parse_store_uri"]

#: Where the default LMDB store lives when neither an argument nor
#: ``QUANTIFY_STORE`` names one.
DEFAULT_STORE_PATH = Path("~/.quantify/arctic")

#: LMDB reserves its address space up front; this is a ceiling, not an allocation.
DEFAULT_LMDB_MAP_SIZE = "64GB"

_SCHEMES = ("lmdb", "s3", "s3s", "mem")
#: Query parameters of ArcticDB's S3 URI that hold credentials.
_CREDENTIALS = ("access", "secret")


@dataclass(frozen=True)
class StoreURI:
    """A validated store location.

    Attributes
    ----------
    uri : str
        The canonical URI shown to users (``lmdb:///abs/path``).
    scheme : str
        ``lmdb``, ``s3``, ``s3s`` or ``mem``.
    arctic_uri : str
        The URI handed to ``arcticdb.Arctic`` (LMDB gets a map size).
    path : pathlib.Path or None
        The directory of an LMDB store.
    """

    uri: str
    scheme: str
    arctic_uri: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.uri

    def redact(self, text: str) -> str:
        """``text`` (an ArcticDB error, say) with this URI's credentials replaced by ``…``."""
        text = text.replace(self.arctic_uri, self.uri)
        for value in _credential_values(self.arctic_uri):
            text = text.replace(value, "…")
        return text


def _credential_values(text: str) -> list[str]:
    """The values of ``access=``/``secret=`` in ``text``'s query, as written and decoded."""
    query = text.partition("?")[2]
    values = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key in _CREDENTIALS and value:
            values += [value, unquote(value)]
    values += [v for k, v in parse_qsl(query) if k in _CREDENTIALS and v]
    return sorted(set(values), key=len, reverse=True)  # longest first: none hides inside another


def _shown(text: str) -> str:
    """``text`` safe to print: a query naming credentials and user info before ``@`` elided."""
    head, sep, query = text.partition("?")
    if sep and any(f"{key}=" in query for key in _CREDENTIALS):
        query = "…"
    scheme, colon_slashes, rest = head.partition("://")
    netloc, slash, path = rest.partition("/")
    if colon_slashes and "@" in netloc:
        netloc = "…@" + netloc.rpartition("@")[2]
    return f"{scheme}{colon_slashes}{netloc}{slash}{path}{sep}{query}"


def parse_store_uri(uri: str | os.PathLike[str] | None = None, *, default: str | None = None) -> StoreURI:
    """Validate ``uri`` and return a :class:`StoreURI`.

    Parameters
    ----------
    uri : str, path or None
        ``lmdb://PATH``, ``s3://...``, ``mem://`` or a filesystem path. ``None``
        uses ``default`` (the entry point passes ``$QUANTIFY_STORE``) and then
        :data:`DEFAULT_STORE_PATH`.

    Raises
    ------
    InvalidStoreURI
        For an unknown scheme, an empty path, or an LMDB path that is a file.
    """
    if uri is None:
        uri = default or f"lmdb://{DEFAULT_STORE_PATH}"
    text = os.fspath(uri).strip()
    if not text:
        raise InvalidStoreURI("store URI is empty; use lmdb://PATH, s3://... or mem://")
    if "://" not in text:
        text = f"lmdb://{text}"
    scheme = text.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise InvalidStoreURI(
            f"unsupported store URI {_shown(text)!r}: scheme {scheme!r} is not one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    if scheme == "mem":
        return StoreURI(text, "mem", text)
    if scheme in ("s3", "s3s"):
        parts = urlsplit(text)
        if "@" in parts.netloc:
            raise InvalidStoreURI(
                f"S3 store URI {_shown(text)!r} has credentials before '@'; ArcticDB reads them "
                "from access=..&secret=.. in the query or, with aws_auth=true, from the AWS "
                "environment or profile"
            )
        if not parts.netloc or ":" not in parts.netloc:
            raise InvalidStoreURI(
                f"S3 store URI {_shown(text)!r} must look like s3://HOST:BUCKET[?port=..&...] "
                "(ArcticDB's S3 URI)"
            )
        return StoreURI(_shown(text), scheme, text)
    raw_path, _, query = text[len("lmdb://"):].partition("?")
    if not raw_path:
        raise InvalidStoreURI(f"LMDB store URI {text!r} has no path; use lmdb://PATH")
    path = Path(raw_path).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise InvalidStoreURI(f"LMDB store path {path} is a file, not a directory")
    if "map_size" not in query:
        query = "&".join(q for q in (query, f"map_size={DEFAULT_LMDB_MAP_SIZE}") if q)
    return StoreURI(f"lmdb://{path}", "lmdb", f"lmdb://{path}?{query}", path)
