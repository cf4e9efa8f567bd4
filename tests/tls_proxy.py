"""A TLS-terminating proxy on loopback: HTTPS in front of the plain-HTTP moto server.

The proxy runs an asyncio loop in a thread of its own (asyncio's TLS transports handle the handshake,
renegotiation-free TLS 1.3 records and close_notify, which raw sockets pumped by threads would not do
safely: one ``SSLSocket`` must not be read and written from two threads at once). It also keeps the
head (request line and headers) of every request it relays, which is the only place the bytes a
client really sends over TLS can be seen in plain text.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["RequestHead", "TLSProxy", "self_signed_certificate", "tls_proxy"]

_READ = 256 * 1024
# Long enough for a slow CI machine, short enough that a stuck teardown shows up as a failure.
_STOP_TIMEOUT = 10.0


def self_signed_certificate(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate (and its key) for ``ip``, signed by its own key: it is its own CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiostorage test proxy")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "proxy-cert.pem"
    key_path = directory / "proxy-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass(frozen=True)
class RequestHead:
    """One relayed request's method, target and headers (names lower-case)."""

    method: str
    target: str
    headers: dict[str, str]


class _HeadParser:
    """Splits one connection's client-to-server bytes into requests, keeping their heads.

    Bodies are skipped by their Content-Length; a chunked body ends the parsing of that connection
    (aiohttp sends our bodies with a length, so nothing here uses chunked uploads).
    """

    def __init__(self, heads: list[RequestHead]) -> None:
        self._heads = heads
        self._buffer = bytearray()
        self._skip = 0
        self._lost = False

    def feed(self, data: bytes) -> None:
        if self._lost:
            return
        if self._skip:
            taken = min(self._skip, len(data))
            self._skip -= taken
            data = data[taken:]
        self._buffer += data
        while not self._skip and (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            del self._buffer[: end + 4]
            try:
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])
                }
                body = int(headers.get("content-length", "0"))
            except ValueError:
                self._lost = True  # not HTTP/1.1 as this parser knows it: relay without looking
                return
            self._heads.append(RequestHead(method, target, headers))
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self._lost = True
                return
            taken = min(body, len(self._buffer))
            del self._buffer[:taken]
            self._skip = body - taken


class TLSProxy:
    """Accepts TLS on 127.0.0.1 and relays each connection to ``upstream`` over plain TCP."""

    def __init__(self, upstream: str, cert: Path, key: Path) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self._upstream = (parts.hostname, parts.port)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self.heads: list[RequestHead] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(_STOP_TIMEOUT) or self._failure is not None:
            raise RuntimeError("the TLS proxy did not start") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError("the TLS proxy thread did not stop")
        if self._failure is not None:
            raise RuntimeError("the TLS proxy failed") from self._failure

    def heads_for(self, bucket: str) -> list[RequestHead]:
        """The heads of the requests sent to ``bucket`` (path-style), in the order they arrived."""
        return [head for head in list(self.heads) if head.target.split("?")[0].startswith(f"/{bucket}/")]

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        relays: set[asyncio.Task[None]] = set()

        async def accept(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
            # A task of our own: asyncio (3.11) logs an error for a cancelled connection callback.
            relay = asyncio.create_task(self._relay(client_reader, client_writer))
            relays.add(relay)
            relay.add_done_callback(relays.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=self._context)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            for task in list(relays):
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            parser = _HeadParser(self.heads)
            await asyncio.gather(
                _pump(client_reader, upstream_writer, parser.feed), _pump(upstream_reader, client_writer, None)
            )
        except OSError:
            pass  # the upstream refused: the client sees its connection closed
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
                    with suppress(OSError, asyncio.CancelledError):
                        await asyncio.wait_for(writer.wait_closed(), _STOP_TIMEOUT)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, observe: Callable[[bytes], None] | None
) -> None:
    """Copy ``reader`` to ``writer`` until EOF, then pass the half-close on (a full close over TLS)."""
    try:
        while data := await reader.read(_READ):
            if observe is not None:
                observe(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            # A TLS stream has no half-close: close_notify ends it both ways.
            writer.close()
    except OSError:
        # A reset on either side ends the relay: closing this writer ends the other direction's read.
        writer.close()


@contextmanager
def tls_proxy(upstream: str, directory: Path) -> Iterator[tuple[TLSProxy, Path]]:
    """A started proxy in front of ``upstream`` and the path of its certificate (its own CA bundle)."""
    cert, key = self_signed_certificate(directory)
    proxy = TLSProxy(upstream, cert, key)
    proxy.start()
    try:
        yield proxy, cert
    finally:
        proxy.stop()
