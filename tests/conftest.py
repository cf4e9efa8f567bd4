"""Fixtures: a real moto server on loopback, fresh buckets, stores, and boto3 as the independent oracle."""

from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, NamedTuple

import boto3
import pytest
from aiohttp import ClientSession, web
from moto.server import ThreadedMotoServer
from yarl import URL

from aiostorage import AsyncS3Store, StoreSettings
from tests.tls_proxy import TLSProxy, tls_proxy

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


@pytest.fixture(scope="session")
def endpoint_url() -> Iterator[str]:
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
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def s3(endpoint_url: str) -> Any:
    """boto3's client: the oracle tests check our results against."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def sqs(endpoint_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


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
    """A relay counting the requests that reach the wire, lean ones included.

    botocore's event hooks (``RequestCounter``) never see the lean requests, which bypass its pipeline.
    With an ``upstream``, it is a reverse proxy in front of it; without, a forward proxy, relaying each
    request to the absolute URL it names.
    """

    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream
        self.sent: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._session: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.sent.append(f"{request.method} {request.raw_path}")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.read()
            headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP}
            if self._session is None:
                self._session = ClientSession(auto_decompress=False)
            url = URL(self.upstream + request.raw_path, encoded=True)
            async with self._session.request(request.method, url, headers=headers, data=body) as answer:
                content = await answer.read()
                kept = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_BY_HOP}
                return web.Response(status=answer.status, headers=kept, body=content)
        finally:
            self.in_flight -= 1

    def reset(self) -> None:
        """Forget what was counted so far (a test's setup requests)."""
        self.sent.clear()
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
