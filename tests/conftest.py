"""Fixtures: a real moto server on loopback, fresh buckets, stores, and boto3 as the independent oracle.

With ``TEST_S3_ENDPOINT_URL`` set (``make test-localstack`` sets it), the suite runs against that server instead
of starting moto: LocalStack, whose S3 and SQS check presigned signatures, copy and read preconditions and
checksums as AWS does. Tests that need moto itself are marked ``moto_only`` and skipped there; tests of what
only a strict server shows are marked ``strict_only`` and skipped on moto.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, ClassVar, NamedTuple

import boto3
import pytest
from aiohttp import ClientSession, web
from botocore.config import Config
from moto.server import ThreadedMotoServer
from yarl import URL

from aiostorage import AsyncS3Store, StoreSettings
from tests.tls_proxy import TLSProxy, tls_proxy

# Read before the cleanup below: the one variable that points the suite at another server (loopback only).
EXTERNAL_ENDPOINT = os.environ.get("TEST_S3_ENDPOINT_URL", "").rstrip("/")
if EXTERNAL_ENDPOINT and URL(EXTERNAL_ENDPOINT).host not in ("127.0.0.1", "localhost", "::1"):
    raise RuntimeError(f"TEST_S3_ENDPOINT_URL must be a loopback address, not {EXTERNAL_ENDPOINT}")
# LocalStack checks presigned URLs with the secret "test"; moto checks nothing.
ACCESS_KEY, SECRET_KEY = ("test", "test") if EXTERNAL_ENDPOINT else ("testing", "testing")
STRICT = bool(EXTERNAL_ENDPOINT)

# Tests never read a developer's AWS setup, and never reach AWS.
for _name in list(os.environ):
    if _name.startswith(("AWS_", "AIOSTORAGE_")):
        del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
# The credential chain would otherwise ask the instance metadata service, off this machine.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

REGION = "us-east-1"
# Keys that need care on the wire: spaces, unicode, +, %, =, &, XML specials, control characters.
ODD_KEYS = [
    "plain.txt",
    "with space/and more spaces.bin",
    "unicodé/日本語/ключ.txt",
    "plus+sign+key",
    "percent%20literal%2F",
    "equals=sign&amp=1",
    "ampersand&<angle>\"quote'",
    "tab\tand\x01control",
    "trailing/",
    "double//slash",
    "emoji/🙂.png",
    "deep/a/b/c/d/e/f.json",
]
_names = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "moto_only(reason): needs moto itself; skipped against TEST_S3_ENDPOINT_URL")
    config.addinivalue_line("markers", "strict_only(reason): needs a server as strict as S3; skipped on moto")


def _reason(item: pytest.Item, name: str) -> str:
    marker = item.get_closest_marker(name)
    assert marker is not None
    return str(marker.kwargs.get("reason") or (marker.args[0] if marker.args else name))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if STRICT and item.get_closest_marker("moto_only"):
            item.add_marker(pytest.mark.skip(reason="moto only: " + _reason(item, "moto_only")))
        if not STRICT and item.get_closest_marker("strict_only"):
            item.add_marker(pytest.mark.skip(reason="strict server only: " + _reason(item, "strict_only")))


@pytest.fixture(scope="session")
def strict() -> bool:
    """True against the strict server (LocalStack): S3's real answers are asserted where moto is lenient."""
    return STRICT


@pytest.fixture(scope="session")
def endpoint_url() -> Iterator[str]:
    if EXTERNAL_ENDPOINT:
        yield EXTERNAL_ENDPOINT
        return
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(endpoint_url: str) -> StoreSettings:
    return StoreSettings(
        endpoint_url=endpoint_url,
        region=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def s3(endpoint_url: str) -> Any:
    """boto3's client: the oracle tests check our results against."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def sqs(endpoint_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def seed(s3: Any, bucket: str, objects: Iterable[tuple[str, bytes]]) -> None:
    """Put many objects fast: through moto's backend in this process on moto (~30 s for 3,000 PutObjects through
    its server), through concurrent PutObjects elsewhere. For tests whose subject is what they read back."""
    if not STRICT:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, body in objects:
            backend.put_object(bucket, key, body)
        return
    client = boto3.client(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(max_pool_connections=16),
    )
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), objects))


def unique_name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bucket(s3: Any) -> str:
    name = unique_name("test")
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def store(bucket: str, settings: StoreSettings) -> AsyncIterator[AsyncS3Store]:
    async with AsyncS3Store(bucket, settings=settings) as opened:
        yield opened


class RequestCounter:
    """Counts requests a client really sends, through botocore's event hooks (no patching)."""

    def __init__(self, client: Any) -> None:
        self.sent: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        client.meta.events.register("before-send.s3", self._before_send)
        client.meta.events.register("after-call.s3", self._after_call)
        client.meta.events.register("after-call-error.s3", self._after_call)

    def _before_send(self, request: Any, **_: Any) -> None:
        self.sent.append(f"{request.method} {request.url}")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _after_call(self, **_: Any) -> None:
        self.in_flight -= 1


def inject_error(client: Any, operation: str, code: str, status: int, times: int) -> list[int]:
    """Answer ``operation`` with an error response ``times`` times, through a before-call hook.

    botocore lets a before-call handler supply the response; the request is then not sent. Returns the
    list of calls seen, so tests can count attempts.
    """
    calls: list[int] = []

    class Response:
        status_code = status
        headers: ClassVar[dict[str, str]] = {}

    def hook(**_: Any) -> Any:
        calls.append(1)
        if len(calls) > times:
            return None
        error = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return Response(), error

    service = client.meta.service_model.service_name
    client.meta.events.register(f"before-call.{service}.{operation}", hook)
    return calls


class TLSEndpoint(NamedTuple):
    url: str
    ca_bundle: str
    proxy: TLSProxy


@pytest.fixture(scope="session")
def tls_endpoint(endpoint_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSEndpoint]:
    """HTTPS in front of the moto server: a TLS-terminating proxy on loopback with a self-signed certificate.

    Clients trust it through ``AWS_CA_BUNDLE=tls_endpoint.ca_bundle``; ``tls_endpoint.proxy.heads_for(bucket)``
    shows the requests as they went over the wire.
    """
    with tls_proxy(endpoint_url, tmp_path_factory.mktemp("tls")) as (proxy, ca_bundle):
        yield TLSEndpoint(url=proxy.url, ca_bundle=str(ca_bundle), proxy=proxy)


# Hop-by-hop headers (RFC 9110 7.6.1), and the framing the relaying client sets again.
_HOP_BY_HOP = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
}


@asynccontextmanager
async def serving(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """An aiohttp server on a free loopback port answering every path with ``handler``; yields its URL."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class WireCounter:
    """A relay counting the requests that reach the wire, direct ones included.

    botocore's event hooks (``RequestCounter``) never see the direct path's requests, which bypass its pipeline.
    With an ``upstream``, it is a reverse proxy in front of it; without, a forward proxy, relaying each
    request to the absolute URL it names.
    """

    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream
        self.sent: list[str] = []
        # Each request's Range header ("" without one), in the order of ``sent``.
        self.ranges: list[str] = []
        # (request method, answer status) of each answer, in the order the answers came back.
        self.answered: list[tuple[str, int]] = []
        # Damage on the way: request headers not sent on (a server that ignores them), answer headers replaced.
        self.dropped_headers: set[str] = set()
        self.replaced_answer_headers: dict[str, str] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._session: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.sent.append(f"{request.method} {request.raw_path}")
        self.ranges.append(request.headers.get("Range", ""))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = self.relayed_body(request, await request.read())
            headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP}
            headers = self.relayed_headers(request, headers)
            if self._session is None:
                self._session = ClientSession(auto_decompress=False)
            url = URL(self.upstream + request.raw_path, encoded=True)
            async with self._session.request(request.method, url, headers=headers, data=body) as answer:
                content = await answer.read()
                self.answered.append((request.method, answer.status))
                kept = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_BY_HOP}
                return web.Response(status=answer.status, headers=self.answered_headers(request, kept), body=content)
        finally:
            self.in_flight -= 1

    def relayed_body(self, request: web.Request, body: bytes) -> bytes:
        """The body sent on for ``request``: as received here; a subclass can damage it on the way."""
        return body

    def relayed_headers(self, request: web.Request, headers: dict[str, str]) -> dict[str, str]:
        """The headers sent on for ``request``: as received here, but for ``dropped_headers``."""
        return {name: value for name, value in headers.items() if name.lower() not in self.dropped_headers}

    def answered_headers(self, request: web.Request, headers: dict[str, str]) -> dict[str, str]:
        """The headers of the answer to ``request`` given back: as the server sent them, with
        ``replaced_answer_headers`` (names in lower case) replacing those present."""
        return {name: self.replaced_answer_headers.get(name.lower(), value) for name, value in headers.items()}

    def reset(self) -> None:
        """Forget what was counted so far (a test's setup requests)."""
        self.sent.clear()
        self.ranges.clear()
        self.answered.clear()
        self.max_in_flight = self.in_flight

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@pytest.fixture
async def wire(endpoint_url: str, settings: StoreSettings) -> AsyncIterator[tuple[WireCounter, StoreSettings]]:
    """A ``WireCounter`` in front of the moto server, and settings that reach moto through it."""
    counter = WireCounter(endpoint_url)
    try:
        async with serving(counter.handle) as url:
            yield counter, settings.model_copy(update={"endpoint_url": url})
    finally:
        await counter.aclose()
