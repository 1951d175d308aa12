"""A dashboard shared by link: on another address than 127.0.0.1 only the link's token opens it.

127.0.0.2 stands for another interface of the machine (the server treats every
host but 127.0.0.1, localhost and ::1 so). Each test runs ``quantify
dashboard --host 127.0.0.2`` as a user would, checks what a request without
the token, with a wrong one and with the link gets, over HTTP and WebSocket,
opens the link in Chromium, and reads the server's log afterwards.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.client
import ipaddress
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.printed import read_printed_url
from tests.browser.test_dashboard_kernels import CULL_SECONDS, FREED_WITHIN, _kill_all, freed, kernels, wait_for

HOST = "127.0.0.2"
#: What a page may load: the dashboard's own server on 127.0.0.2, inline data.
SAME_SERVER = re.compile(r"^(https?|wss?)://127\.0\.0\.2[:/]|^(data|blob|about):")
WRONG = "not-the-token-of-this-dashboard"
#: A line of the dashboard notebook's code, which the page must not show (sources stripped).
SOURCE = b"from quantify.widgets.dashboards import pairs_monitor"


def _start(args: list[str], log: Path, env: dict[str, str] | None = None,
           verbose: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "quantify", *verbose, "dashboard", "pairs_monitor", "--no-browser",
                                 "--host", HOST, "--cull-seconds", str(CULL_SECONDS), *args],
                                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                                env=env)


def _read_link(proc: subprocess.Popen[str]) -> str:
    return read_printed_url(proc, "quantify dashboard:", r"https?://127\.0\.0\.2:\d+/\?token=\S+")


def _get(url: str, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None):
    """``(status, body)`` of a GET (an error status is an answer too)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _websocket_status(link: str, context: ssl.SSLContext | None, query: str = "") -> int:
    """The status of a WebSocket upgrade to a kernel's channels (403 before any kernel is looked up)."""
    port = int(re.search(r":(\d+)/", link).group(1))
    conn = (http.client.HTTPSConnection(HOST, port, timeout=30, context=context) if context
            else http.client.HTTPConnection(HOST, port, timeout=30))
    try:
        conn.request("GET", f"/api/kernels/00000000-0000-0000-0000-000000000000/channels{query}", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        return conn.getresponse().status
    finally:
        conn.close()


def _refuses(link: str, context: ssl.SSLContext | None = None) -> None:
    """No token, a wrong one, a wrong Authorization header: 403 with nothing of the notebook."""
    token = link.split("?token=")[1]
    base = link.split("?")[0]
    for url, headers in ((base, {}), (f"{base}?token={WRONG}", {}),
                         (base, {"Authorization": f"token {WRONG}"})):
        status, body = _get(url, context, headers)
        assert status == 403, (url, status)
        assert b"widget-view+json" not in body and b"pairs" not in body.lower() and token.encode() not in body
    assert _websocket_status(link, context) == 403
    assert _websocket_status(link, context, f"?token={WRONG}") == 403
    # the token in a header opens it too (for scripts)
    status, body = _get(base, context, {"Authorization": f"token {token}"})
    assert status == 200 and b"widget-view+json" in body
    assert SOURCE not in body and token.encode() not in body  # read-only: no code, and no token echoed


def _opens_and_frees(browser, link: str, store: str, **context_args) -> None:
    """The link renders the live widgets, loading only from the server; closing the page frees its kernel."""
    outside: list[str] = []
    assert wait_for(lambda: len(kernels(store)) >= 1, 60), "no pre-heated kernel"
    before = kernels(store)
    ctx = browser.new_context(**context_args)
    page = ctx.new_page()
    page.on("request", lambda r: outside.append(r.url) if not SAME_SERVER.match(r.url) else None)
    page.goto(link, timeout=60_000)
    page.wait_for_selector(".bqplot svg path.line", state="attached", timeout=60_000)
    # the status bar refreshes on its own timer: its first read may precede the writer's first status
    page.wait_for_function("document.body.innerText.includes('REPLAY — recorded Binance trades, 2024-08-08')",
                           timeout=30_000)
    # the widgets stay live over the page's WebSocket, which the cookie let through
    points = page.eval_on_selector_all(".qf-points", "els => els.map(e => +e.dataset.points)")
    assert points and max(points) >= 1
    cookie = next(c for c in ctx.cookies() if c["name"] == "quantify_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] not in link
    page.close(run_before_unload=True)
    ctx.close()
    assert wait_for(functools.partial(freed, store, before), FREED_WITHIN), kernels(store)
    assert outside == [], f"the page reached beyond its server: {outside}"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def _check_log(log: Path, *secrets: str) -> None:
    text = log.read_text()
    assert re.search(r"403 GET / \(127\.0\.0\.\d\): no token", text), text
    assert re.search(r"403 GET / \(127\.0\.0\.\d\): wrong token", text), text
    assert re.search(r"403 GET /api/kernels/\S+/channels \(", text), text
    for secret in secrets:
        assert secret not in text, "the log holds a token"
    assert "Traceback" not in text, text


def test_a_shared_dashboard_opens_only_from_its_link(browser, store_uri, tmp_path):
    log = tmp_path / "stderr"
    proc = _start(["--store", store_uri], log, verbose=("-vv",))  # Voilà's info log: no token either
    try:
        link = _read_link(proc)
        assert link.startswith(f"http://{HOST}:")
        token = link.split("?token=")[1]
        assert len(token) >= 40  # generated with secrets
        _refuses(link)
        _opens_and_frees(browser, link, store_uri)
        _stop(proc)
    finally:
        _kill_all(proc, store_uri)
    _check_log(log, token, WRONG)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.2 signed by its own key, valid for a day: (certfile, keyfile)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_a_shared_dashboard_over_https_with_the_token_of_the_environment(browser, store_uri, tmp_path):
    certfile, keyfile = _self_signed(tmp_path)
    token = "a-token-the-desk-chose-0123456789"
    log = tmp_path / "stderr"
    proc = _start(["--store", store_uri, "--certfile", str(certfile), "--keyfile", str(keyfile)], log,
                  env=dict(os.environ, QUANTIFY_DASHBOARD_TOKEN=token))
    try:
        link = _read_link(proc)
        assert link == f"https://{HOST}:{link.split(':')[2].split('/')[0]}/?token={token}"
        trusted = ssl.create_default_context(cafile=str(certfile))
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(link, timeout=30)  # HTTPS indeed: an unknown certificate is refused
        try:  # plain HTTP on the HTTPS port gets nothing of the dashboard
            plain, _ = _get(link.replace("https://", "http://"))
        except OSError:  # the TLS server drops the connection
            plain = None
        assert plain != 200
        _refuses(link, trusted)
        _opens_and_frees(browser, link, store_uri, ignore_https_errors=True)
        # the kernels never see the token: it left the server's environment before any started
        for pid in kernels(store_uri):
            assert f"QUANTIFY_DASHBOARD_TOKEN={token}".encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        _stop(proc)
    finally:
        _kill_all(proc, store_uri)
    _check_log(log, token, WRONG)
