"""Helpers of the reliability tests: a local S3 server (moto), waiting.

The S3 server is moto's (``pip install "moto[server]"``), started once per
session on 127.0.0.1 as a subprocess; each test gets its own bucket. Tests
that need it are skipped when moto is not installed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: Credentials of the local S3 server; moto accepts any.
S3_ACCESS = "quantify-test-access"
S3_SECRET = "quantify-test-secret-do-not-log"



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class MotoServer:
    """``moto_server`` on 127.0.0.1:port, as a subprocess that can be stopped and restarted.

    moto keeps buckets in memory: a restart loses them unless the state is
    saved first (:meth:`stop` with ``keep=True`` pauses the process instead,
    which is how the tests make the store unreachable without losing it).
    """

    def __init__(self, log: Path) -> None:
        exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        self.exe = exe
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not start: {self.log.read_text()[-2000:]}")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): requests hang and time out, data is kept."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def create_bucket(self, name: str) -> None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ACCESS,
                          aws_secret_access_key=S3_SECRET, region_name="us-east-1")
        s3.create_bucket(Bucket=name)

    def uri(self, bucket: str) -> str:
        return f"s3://127.0.0.1:{bucket}?port={self.port}&access={S3_ACCESS}&secret={S3_SECRET}"




PROXY = r"""
import socket, sys, threading
listen, target = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen)); srv.listen(128)
def pipe(a, b):
    try:
        while (data := a.recv(65536)):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.close()
            except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
"""


class TcpProxy:
    """A TCP forwarder subprocess on 127.0.0.1: kill it and the endpoint refuses connections.

    Stands between a store client and its S3 server so that the store can
    go away (connections reset and refused) and come back (restart on the
    same port) while the server keeps its data.
    """

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PROXY, str(self.port), str(self.target)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("proxy did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
