"""Who may open a dashboard: the flags of ``quantify dashboard`` and ``demo``, and the gate of the server.

The browser test (tests/browser/test_dashboard_access.py) runs the whole
server; here the pieces are checked one by one, without a server.
"""

from __future__ import annotations

import logging
from unittest import mock

import pytest
import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from quantify.cli import build_parser
from quantify.cli._access import MIN_TOKEN_LENGTH, TOKEN_ENV, Access, access_from_args
from quantify.cli._voila_server import COOKIE, ForbiddenHandler, TokenGate, _strip_token, log_request

TOKEN = "a-token-of-twenty-four-c"


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("command", ["dashboard", "demo"])
def test_loopback_needs_no_token_unless_given_one(parser, command) -> None:
    args = parser.parse_args([command])
    assert access_from_args(args, {TOKEN_ENV: TOKEN}) == Access()  # the variable alone gates nothing
    args = parser.parse_args([command, "--token", TOKEN])
    assert access_from_args(args, {}) == Access(token=TOKEN)


@pytest.mark.parametrize("host", ["127.0.0.2", "0.0.0.0", "10.1.2.3", "desk-server"])
def test_any_other_host_gets_a_token(parser, host) -> None:
    generated = access_from_args(parser.parse_args(["dashboard", "--host", host]), {})
    assert generated.host == host and generated.token and len(generated.token) >= 40
    assert generated.token != access_from_args(parser.parse_args(["dashboard", "--host", host]), {}).token
    assert access_from_args(parser.parse_args(["demo", "--host", host]), {TOKEN_ENV: TOKEN}).token == TOKEN
    given = parser.parse_args(["dashboard", "--host", host, "--token", TOKEN + "x"])
    assert access_from_args(given, {TOKEN_ENV: TOKEN}).token == TOKEN + "x"  # the flag wins


def test_bad_choices_are_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        Access(host="10.1.2.3")
    with pytest.raises(ValueError, match=f"at least {MIN_TOKEN_LENGTH} characters, got 5"):
        Access(host="10.1.2.3", token="short")
    with pytest.raises(ValueError, match="--keyfile needs --certfile"):
        Access(keyfile=str(tmp_path))
    with pytest.raises(ValueError, match="TLS file not found: '/nowhere/cert.pem'"):
        Access(certfile="/nowhere/cert.pem")


def test_the_link(tmp_path, monkeypatch) -> None:
    assert Access().link(8866) == "http://127.0.0.1:8866/"
    assert Access(host="10.1.2.3", token=TOKEN).link(8866, "voila/tree") == f"http://10.1.2.3:8866/voila/tree?token={TOKEN}"
    cert = tmp_path / "cert.pem"
    cert.write_text("PEM")
    assert Access(host="::1", token="t/o+k=e n&" * 2, certfile=str(cert)).link(443) == (
        "https://[::1]:443/?token=t%2Fo%2Bk%3De%20n%26t%2Fo%2Bk%3De%20n%26")
    monkeypatch.setattr("socket.getfqdn", lambda: "desk.example")
    everywhere = Access(host="0.0.0.0", token=TOKEN)
    assert everywhere.link(1) == f"http://desk.example:1/?token={TOKEN}" and everywhere.probe_host == "127.0.0.1"


def test_the_token_reaches_the_server_only_when_it_needs_one() -> None:
    inherited = {TOKEN_ENV: "left-over-from-the-shell", "PATH": "/bin"}
    assert Access().server_environment(inherited) == {"PATH": "/bin"}
    assert Access(token=TOKEN).server_environment(inherited) == {"PATH": "/bin", TOKEN_ENV: TOKEN}


def _request(uri: str = "/", **headers: str) -> HTTPServerRequest:
    return HTTPServerRequest(start_line=RequestStartLine("GET", uri, "HTTP/1.1"),
                             headers=HTTPHeaders({"Host": "127.0.0.2:8866", **headers}),
                             connection=mock.Mock())


def test_the_gate_admits_the_token_in_the_query_a_header_or_its_cookie() -> None:
    gate = TokenGate(TOKEN, secure=False)
    assert gate.refusal(_request(f"/?token={TOKEN}")) is None
    assert gate.refusal(_request("/", Authorization=f"token {TOKEN}")) is None
    assert gate.refusal(_request("/", Authorization=f"Bearer {TOKEN}")) is None
    cookie = gate.set_cookie.split(";")[0]
    assert TOKEN not in cookie and gate.refusal(_request("/api/kernels", Cookie=cookie)) is None
    assert gate.refusal(_request("/")) == "no token"
    assert gate.refusal(_request("/?token=")) == "wrong token"
    assert gate.refusal(_request(f"/?token={TOKEN}x")) == "wrong token"
    assert gate.refusal(_request("/", Authorization=f"Basic {TOKEN}")) == "no token"
    assert gate.refusal(_request("/", Cookie=f"{COOKIE}=forged")) == "wrong token"
    assert "HttpOnly" in gate.set_cookie and "SameSite=Strict" in gate.set_cookie
    assert "Secure" not in gate.set_cookie and "Secure" in TokenGate(TOKEN, secure=True).set_cookie
    with pytest.raises(ValueError):
        TokenGate("", secure=False)


def test_the_cookie_is_set_on_admitted_responses_without_it() -> None:
    gate = TokenGate(TOKEN, secure=True)
    transform = gate.transform()
    headers = HTTPHeaders()
    transform(_request(f"/?token={TOKEN}")).transform_first_chunk(200, headers, b"", True)
    assert headers.get_list("Set-Cookie") == [gate.set_cookie]
    for status, request in ((200, _request("/", Cookie=gate.set_cookie.split(";")[0])), (403, _request("/"))):
        headers = HTTPHeaders()
        transform(request).transform_first_chunk(status, headers, b"", True)
        assert headers.get_list("Set-Cookie") == []


def test_the_token_leaves_the_request_and_the_log(caplog) -> None:
    request = _request(f"/voila/render/x.ipynb?a=1&token={TOKEN}&b=2")
    _strip_token(request)
    assert (request.uri, request.query) == ("/voila/render/x.ipynb?a=1&b=2", "a=1&b=2")
    assert request.query_arguments == request.arguments == {"a": [b"1"], "b": [b"2"]}
    app = tornado.web.Application()
    refused = _request(f"/api/kernels/k/channels?token={TOKEN}x")
    _strip_token(refused)  # as the gate does with every request, admitted or not
    forbidden = ForbiddenHandler(app, refused, refusal="wrong token")
    forbidden.set_status(403)
    missing = tornado.web.RequestHandler(app, request)
    missing.set_status(404)
    # straight onto tornado's access logger: a Jupyter server earlier in this process may have
    # stopped it propagating to the root logger caplog listens on
    tornado_access = logging.getLogger("tornado.access")
    tornado_access.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="tornado.access"):
            log_request(forbidden)
            log_request(missing)
    finally:
        tornado_access.removeHandler(caplog.handler)
    assert "403 GET /api/kernels/k/channels (" in caplog.text and "wrong token" in caplog.text
    assert "404 GET /voila/render/x.ipynb?a=1&b=2" in caplog.text
    assert TOKEN not in caplog.text
