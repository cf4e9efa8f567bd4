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
# Set (to anything): boto3 and aioboto3 keep botocore's default checksums even where the server mishandles them.
DEFAULT_CHECKSUMS = "BENCH_BOTOCORE_DEFAULT_CHECKSUMS"


@dataclass(frozen=True)
class Server:
    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ca_bundle: str | None = None  # the certificate to trust, for a server with a self-signed one
    pid: int | None = None  # the server's process, when it runs in one of ours

    def cpu_seconds(self) -> float | None:
        """The CPU time (user + system) the server's process has used so far; None when unknown."""
        if self.pid is None:
            return None
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def client_kwargs(self) -> dict[str, Any]:
        """What boto3's and aioboto3's ``client("s3", ...)`` need to reach this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "verify": self.ca_bundle,
        }

    def botocore_config(self, **options: Any) -> Any:
        """botocore's ``Config`` for boto3 and aioboto3 on this server, path-style, with ``options``.

        Over HTTPS botocore sends upload bodies in the aws-chunked encoding with a trailing CRC32, which
        s3rver 3.7.1 does not decode: it stores the framing as object bytes (32 MiB become 33,554,896).
        On such a server botocore is told to add checksums only where an operation requires one: it then
        sends plain bodies and signs them with SHA-256 instead, as it does over HTTP.
        """
        from botocore.config import Config

        if self.ca_bundle is not None and self.name.startswith("s3rver") and not os.environ.get(DEFAULT_CHECKSUMS):
            options.setdefault("request_checksum_calculation", "when_required")
        return Config(s3={"addressing_style": "path"}, **options)

    def environ(self) -> dict[str, str]:
        """Environment variables a client process needs: the CA bundle, which aiostorage's botocore reads."""
        return {"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {}

    def obstore_options(self) -> dict[str, Any]:
        """obstore's ``client_options`` for this server: plain HTTP allowed, or the CA to check TLS against."""
        if self.ca_bundle is None:
            return {"allow_http": True}
        with open(self.ca_bundle) as file:
            return {"root_certificate": file.read()}

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


def _wait_until_answering(url: str, timeout: float = 30.0, *, ca_bundle: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
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


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(directory: str) -> tuple[str, str, str]:
    """A certificate authority of its own and a server certificate for 127.0.0.1 it signed: (key, cert, CA).

    A self-signed certificate that is its own CA (``CA:TRUE``) is refused as a server's certificate by
    rustls (obstore): a separate CA is what lets every client check the server's certificate.
    """
    ca_key, ca_cert = f"{directory}/ca-key.pem", f"{directory}/ca.pem"
    key, request, cert = f"{directory}/key.pem", f"{directory}/request.pem", f"{directory}/cert.pem"
    extensions = f"{directory}/server.ext"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        ca_key,
        "-out",
        ca_cert,
        "-subj",
        "/CN=aiostorage benchmark CA",
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1")
    with open(extensions, "w") as file:
        file.write(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
        )
    _openssl(
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        cert,
        "-extfile",
        extensions,
    )
    return key, cert, ca_cert


@contextmanager
def s3rver_server(*, tls: bool = False) -> Iterator[Server]:
    """s3rver (npm) in a child process with its own temporary storage folder.

    With ``tls``, it serves HTTPS with a certificate signed by a CA made for the run (``openssl``),
    given as the server's ``ca_bundle``: every client checks the certificate against it.
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
            key, cert, ca_bundle = make_certificates(directory)
            tls_args = ["--key", key, "--cert", cert]
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
        ) as process:
            _wait_until_answering(f"{scheme}://127.0.0.1:{port}/", ca_bundle=ca_bundle)
            name = "s3rver-tls" if tls else "s3rver"
            yield Server(name, f"{scheme}://127.0.0.1:{port}", "S3RVER", "S3RVER", ca_bundle=ca_bundle, pid=process.pid)


@contextmanager
def moto_process_server() -> Iterator[Server]:
    """moto's server in a child process, so the client's CPU time can be measured on its own."""
    port = free_port()
    # werkzeug logs every request on stderr: silenced with the rest.
    with child_process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]) as process:
        _wait_until_answering(f"http://127.0.0.1:{port}/")
        yield Server("moto", f"http://127.0.0.1:{port}", "testing", "testing", pid=process.pid)
