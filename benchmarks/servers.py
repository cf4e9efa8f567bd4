"""Local S3 servers for benchmarks: moto's server and s3rver, both on 127.0.0.1 and a free port.

Client, server and benchmark share the machine's cores, so only ratios measured in one run mean
anything; absolute figures do not transfer to AWS.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiostorage import StoreSettings

ROOT = Path(__file__).resolve().parent.parent
S3RVER_BIN = ROOT / ".bench" / "node_modules" / ".bin" / "s3rver"


@dataclass(frozen=True)
class Server:
    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ca_bundle: str | None = None  # the certificate to trust, for a server with a self-signed one

    def client_kwargs(self) -> dict[str, Any]:
        """What boto3's and aioboto3's ``client("s3", ...)`` need to reach this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "verify": self.ca_bundle,
        }

    def store_settings(self) -> StoreSettings:
        """The same for aiostorage (imported here, so a benchmark that measures memory loads it only when used)."""
        from aiostorage import StoreSettings

        return StoreSettings(
            endpoint_url=self.endpoint_url,
            region=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_answering(url: str, timeout: float = 30.0, *, insecure: bool = False) -> None:
    deadline = time.monotonic() + timeout
    context = ssl._create_unverified_context() if insecure else None
    while True:
        try:
            urllib.request.urlopen(url, timeout=1, context=context).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.05)


@contextmanager
def child_process(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A server in a child process (output silenced unless ``popen`` says otherwise), ended on exit."""
    process = subprocess.Popen(command, **{"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen})
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def s3rver_available() -> bool:
    return S3RVER_BIN.exists() and shutil.which("node") is not None


@contextmanager
def s3rver_server(*, tls: bool = False) -> Iterator[Server]:
    """s3rver (npm) in a child process with its own temporary storage folder.

    With ``tls``, it serves HTTPS with a self-signed certificate (made with ``openssl``), given as the
    server's ``ca_bundle``.
    """
    if not s3rver_available():
        raise RuntimeError("s3rver is not installed: run `make bench` (it installs it under .bench/)")
    port = free_port()
    scheme = "https" if tls else "http"
    with tempfile.TemporaryDirectory(prefix="s3rver-") as directory:
        env = {**os.environ, "NODE_OPTIONS": "--openssl-legacy-provider"}
        tls_args: list[str] = []
        ca_bundle = None
        if tls:
            key, ca_bundle = f"{directory}/key.pem", f"{directory}/cert.pem"
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-keyout",
                    key,
                    "-out",
                    ca_bundle,
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ],
                check=True,
                capture_output=True,
            )
            tls_args = ["--key", key, "--cert", ca_bundle]
            os.makedirs(f"{directory}/data")
            directory = f"{directory}/data"
        with child_process(
            [
                str(S3RVER_BIN),
                "--address",
                "127.0.0.1",
                "--port",
                str(port),
                "--directory",
                directory,
                "--silent",
                *tls_args,
            ],
            env=env,
        ):
            _wait_until_answering(f"{scheme}://127.0.0.1:{port}/", insecure=tls)
            name = "s3rver-tls" if tls else "s3rver"
            yield Server(name, f"{scheme}://127.0.0.1:{port}", "S3RVER", "S3RVER", ca_bundle=ca_bundle)


@contextmanager
def moto_process_server() -> Iterator[Server]:
    """moto's server in a child process, so the client's CPU time can be measured on its own."""
    port = free_port()
    # werkzeug logs every request on stderr: silenced with the rest.
    with child_process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]):
        _wait_until_answering(f"http://127.0.0.1:{port}/")
        yield Server("moto", f"http://127.0.0.1:{port}", "testing", "testing")
