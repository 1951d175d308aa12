"""The Voilà server of ``quantify dashboard``: read-only, and behind the token of its link when shared.

:func:`quantify.cli.dashboard.serve_dashboard` runs ``python -m
quantify.cli._voila_server`` with Voilà's own options; :class:`QuantifyVoila`
is Voilà with three changes:

- sources stripped and tracebacks hidden, whatever the configuration says;
- with a token in ``$QUANTIFY_DASHBOARD_TOKEN`` (which the server removes from
  its environment, so that kernels never see it), every HTTP and WebSocket
  request must present it (:class:`TokenGate`), else it gets 403 and a line
  in the access log that names the path, the client and the reason, never a
  token;
- with ``--QuantifyVoila.certfile`` (and ``keyfile``), HTTPS.

Like :mod:`quantify.cli._voila`, this module imports Voilà and Tornado, which
the ``quantify`` command itself never does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import ssl
import sys
import tempfile
from typing import Any
from urllib.parse import parse_qsl, urlencode

import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, parse_qs_bytes
from tornado.log import access_log
from traitlets import Unicode
from voila.app import Voila

from quantify.cli._access import TOKEN_ENV

__all__ = ["COOKIE", "GatedApplication", "QuantifyVoila", "TokenGate", "main"]

#: The cookie that lets a page's own requests (XHR, WebSocket, beacons) through after its link.
COOKIE = "quantify_dashboard"
#: Refused requests, one line each (always shown, whatever Voilà's log level).
ACCESS_LOG = logging.getLogger("quantify.dashboard.access")
_QUERY = "token"
_AUTH_SCHEMES = ("token", "bearer")


def _strip_token(request: HTTPServerRequest) -> None:
    """Remove ``token`` from the request's query, so no handler, log or kernel sees it."""
    if _QUERY not in request.query_arguments:
        return
    request.query = urlencode([(k, v) for k, v in parse_qsl(request.query, keep_blank_values=True)
                               if k != _QUERY])
    request.uri = request.path + (f"?{request.query}" if request.query else "")
    request.query_arguments = parse_qs_bytes(request.query, keep_blank_values=True)
    request.arguments = {k: list(v) for k, v in request.query_arguments.items()}


class TokenGate:
    """Admit the requests that present ``token``: in the query, the Authorization header or the cookie.

    A request is admitted if ``?token=``, ``Authorization: token …`` (or
    ``Bearer …``) or the :data:`COOKIE` cookie matches (compared in constant
    time). An admitted response that did not come with the cookie sets it:
    ``HttpOnly`` (page scripts cannot read it), ``SameSite=Strict`` (another
    site's page cannot make the browser send it, which is why Voilà's XSRF
    check may stay off) and ``Secure`` over HTTPS. The cookie holds an HMAC
    of the token, not the token.

    Parameters
    ----------
    token : str
        The token of the dashboard's link.
    secure : bool
        Whether the server speaks HTTPS (the cookie is then ``Secure``).
    """

    def __init__(self, token: str, *, secure: bool) -> None:
        if not token:
            raise ValueError("the token must not be empty")
        self._token = token.encode()
        self._cookie = hmac.new(self._token, b"quantify dashboard cookie", hashlib.sha256).hexdigest()
        self.set_cookie = (f"{COOKIE}={self._cookie}; Path=/; HttpOnly; SameSite=Strict"
                           + ("; Secure" if secure else ""))

    def has_cookie(self, request: HTTPServerRequest) -> bool:
        """Whether ``request`` carries the gate's cookie."""
        morsel = request.cookies.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._cookie.encode())

    def refusal(self, request: HTTPServerRequest) -> str | None:
        """``None`` if ``request`` may pass, else why not (``"no token"`` or ``"wrong token"``)."""
        presented = [v for v in request.query_arguments.get(_QUERY, [])]
        scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() in _AUTH_SCHEMES and credential.strip():
            presented.append(credential.strip().encode())
        if any(hmac.compare_digest(p, self._token) for p in presented) or self.has_cookie(request):
            return None
        return "wrong token" if presented or COOKIE in request.cookies else "no token"

    def transform(self) -> type[tornado.web.OutputTransform]:
        """A Tornado output transform that sets the cookie on admitted responses that lack it."""
        gate = self

        class SetCookie(tornado.web.OutputTransform):
            def __init__(self, request: HTTPServerRequest) -> None:
                super().__init__(request)
                self._needed = not gate.has_cookie(request)

            def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                                      finishing: bool) -> tuple[int, HTTPHeaders, bytes]:
                if self._needed and status_code < 400:
                    headers.add("Set-Cookie", gate.set_cookie)
                return status_code, headers, chunk

        return SetCookie


class ForbiddenHandler(tornado.web.RequestHandler):
    """403 for a request the gate refused, with a line saying how to get in and nothing else."""

    def initialize(self, refusal: str) -> None:
        self.refusal = refusal

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: the request is refused anyway."""

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("403 Forbidden: this dashboard opens from its link, which carries its token.\n")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with refusals on :data:`ACCESS_LOG` and no token anywhere.

    The gate has removed ``token`` from every request's query before any
    handler ran; a refused request is logged with its path only.
    """
    request = handler.request
    status = handler.get_status()
    if isinstance(handler, ForbiddenHandler):
        ACCESS_LOG.warning("%d %s %s (%s): %s", status, request.method, request.path, request.remote_ip,
                           handler.refusal)
        return
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access_log.log(level, "%d %s %s (%s) %.2fms", status, request.method, request.uri, request.remote_ip,
                   1000.0 * request.request_time())


class GatedApplication(tornado.web.Application):
    """Voilà's Tornado application, every request through ``gate`` first; HTTPS with ``ssl_options``."""

    def __init__(self, settings: dict[str, Any], *, gate: TokenGate | None,
                 ssl_options: ssl.SSLContext | None) -> None:
        super().__init__(**settings)
        self.gate = gate
        self.ssl_options = ssl_options
        if gate is not None:
            self.add_transform(gate.transform())

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        if self.gate is None:
            return super().find_handler(request, **kwargs)
        refusal = self.gate.refusal(request)
        _strip_token(request)
        if refusal is not None:
            return self.get_handler_delegate(request, ForbiddenHandler, {"refusal": refusal})
        return super().find_handler(request, **kwargs)

    def listen(self, port: int, address: str | None = None, **kwargs: Any) -> Any:
        if self.ssl_options is not None:
            kwargs.setdefault("ssl_options", self.ssl_options)
        return super().listen(port, address, **kwargs)


class QuantifyVoila(Voila):  # type: ignore[misc]  # Voilà has no type hints
    """Voilà, read-only, behind :class:`TokenGate` when given a token, over HTTPS when given a certificate."""

    certfile = Unicode("", config=True, help="PEM certificate (chain): serve HTTPS")
    keyfile = Unicode("", config=True, help="PEM private key of certfile (default: in certfile)")

    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        # a shared dashboard shows no code and no traceback, whatever a config file says
        self.voila_configuration.strip_sources = True
        self.voila_configuration.show_tracebacks = False
        self._token = os.environ.pop(TOKEN_ENV, "")  # kernels started later do not inherit it

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile or None)
        return context

    def start(self) -> None:
        # Voilà's start(), building the gated application
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        settings = {**self.init_settings(), **self.tornado_settings, "log_function": log_request}
        gate = TokenGate(self._token, secure=bool(self.certfile)) if self._token else None
        self.app = GatedApplication(settings, gate=gate, ssl_options=self._ssl_context())
        self.app.add_handlers(".*$", self.init_handlers())
        self.listen()


def main(argv: list[str] | None = None) -> None:
    """Run the server: Voilà's command line (``--QuantifyVoila.certfile`` for HTTPS)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[quantify access %(asctime)s] %(message)s"))
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False
    QuantifyVoila.launch_instance(argv)


if __name__ == "__main__":
    main()
