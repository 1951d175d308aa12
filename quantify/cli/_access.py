"""Sharing a dashboard by link: the address it binds, the token of its link, TLS.

``quantify dashboard`` and ``quantify demo`` bind 127.0.0.1 and ask for
nothing, as a JupyterLab on loopback would if it had no token: only this
machine's users reach them. Given any other ``--host`` (an interface of
the machine, ``0.0.0.0`` for all of them; 127.0.0.2 too, which a local
container or proxy may forward to), or a ``--token``, the server admits
only requests that present the token of its link
(:mod:`quantify.cli._voila_server`). The token comes from ``--token``, else
``$QUANTIFY_DASHBOARD_TOKEN``, else :func:`secrets.token_urlsafe`; it
reaches the server in its environment, never on its command line (which
every user of the machine can read in ``ps``).

:class:`Access` holds the choice; :func:`add_access_arguments` and
:func:`access_from_args` are the flags of both commands.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DEFAULT_HOST", "LOOPBACK_HOSTS", "MIN_TOKEN_LENGTH", "TOKEN_ENV", "Access", "access_from_args",
    "add_access_arguments",
]

#: Where the dashboards listen unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
#: Hosts served without a token (unless one is given): this machine's own loopback names.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: The environment variable holding the token (read by the CLI, then passed to the server).
TOKEN_ENV = "QUANTIFY_DASHBOARD_TOKEN"
#: The shortest token accepted from the user (a generated one has 43 characters).
MIN_TOKEN_LENGTH = 16
_ALL_INTERFACES = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class Access:
    """Who may open a dashboard server: where it listens, the token its link carries, its TLS pair.

    Parameters
    ----------
    host : str
        The address to bind (default 127.0.0.1).
    token : str, optional
        The token every request must present; ``None`` serves without one
        (loopback only, see :func:`access_from_args`).
    certfile, keyfile : str, optional
        A PEM certificate (chain) and its private key: the server speaks
        HTTPS. ``keyfile`` may be left out when ``certfile`` holds the key.
    """

    host: str = DEFAULT_HOST
    token: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK_HOSTS and not self.token:
            raise ValueError(f"a dashboard on {self.host!r} (not loopback) needs a token")
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must have at least {MIN_TOKEN_LENGTH} characters, "
                             f"got {len(self.token)}")
        if self.keyfile and not self.certfile:
            raise ValueError("--keyfile needs --certfile")
        for path in (self.certfile, self.keyfile):
            if path and not Path(path).is_file():
                raise ValueError(f"TLS file not found: {path!r}")

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, else ``http``."""
        return "https" if self.certfile else "http"

    @property
    def probe_host(self) -> str:
        """The address this machine reaches the server on (loopback for all interfaces)."""
        if self.host in _ALL_INTERFACES:
            return "::1" if self.host == "::" else "127.0.0.1"
        return self.host

    def link(self, port: int, path: str = "") -> str:
        """The link to send: ``scheme://host:port/path``, with ``?token=…`` when a token is needed.

        A server on all interfaces is named by this machine's fully
        qualified name; an IPv6 address is bracketed.
        """
        host = socket.getfqdn() if self.host in _ALL_INTERFACES else self.host
        if ":" in host:
            host = f"[{host}]"
        query = f"?token={quote(self.token, safe='')}" if self.token else ""
        return f"{self.scheme}://{host}:{port}/{path.lstrip('/')}{query}"

    def server_environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` for the server process: the token in :data:`TOKEN_ENV`, or none at all."""
        env = {k: v for k, v in environ.items() if k != TOKEN_ENV}
        if self.token:
            env[TOKEN_ENV] = self.token
        return env


def add_access_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--token``, ``--certfile`` and ``--keyfile`` of a command serving dashboards."""
    parser.add_argument("--host", default=DEFAULT_HOST, metavar="ADDRESS",
                        help=f"address the dashboard listens on (default: {DEFAULT_HOST}); any other "
                             "address, 0.0.0.0 for all, is served only to requests with the token of "
                             "the printed link")
    parser.add_argument("--token", default=None,
                        help=f"the link's access token (default: ${TOKEN_ENV}, else a random one; "
                             f"at least {MIN_TOKEN_LENGTH} characters); given on 127.0.0.1 too, "
                             "it is required there as well")
    parser.add_argument("--certfile", default=None, metavar="PEM",
                        help="serve HTTPS with this certificate (chain)")
    parser.add_argument("--keyfile", default=None, metavar="PEM",
                        help="the certificate's private key (default: in --certfile)")


def access_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Access:
    """The :class:`Access` of the command line; the token of ``environ`` (default ``os.environ``).

    A token is required, and generated if none is given, for any host but
    the loopback names of :data:`LOOPBACK_HOSTS`, and whenever ``--token``
    is given.

    Raises
    ------
    ValueError
        If the token is too short, or a TLS file is missing.
    """
    environ = os.environ if environ is None else environ
    host = args.host or DEFAULT_HOST
    token = None
    if args.token or host not in LOOPBACK_HOSTS:
        token = args.token or environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    return Access(host=host, token=token, certfile=args.certfile, keyfile=args.keyfile)
