"""Transfers over HTTPS, through a TLS-terminating proxy in front of moto; boto3 over plain HTTP is the oracle.

Over TLS aiostorage takes other paths than over plain HTTP: SigV4 leaves the payload of PutObject and
UploadPart unsigned (a CRC32 header covers it instead), and file ranges go out in slices read in a
worker thread instead of with ``sendfile``. The proxy also shows the requests as they went on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import SSLError

from aiostorage import AsyncS3Store, ConfigError, StoreSettings
from tests.conftest import ACCESS_KEY, ODD_KEYS, REGION, SECRET_KEY, RequestCounter, TLSEndpoint
from tests.tls_proxy import RequestHead, TLSProxy, self_signed_certificate

MiB = 1024 * 1024
PART = 5 * MiB
# Keys whose URL encoding is easy to get wrong, and that the signature covers.
TLS_KEYS = [ODD_KEYS[2], ODD_KEYS[4], ODD_KEYS[6]]


def data(size: int, seed: int) -> bytes:
    """Deterministic bytes that never repeat, so a misplaced part cannot go unnoticed."""
    return random.Random(seed).randbytes(size)


def crc32_b64(body: bytes) -> str:
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def settings_for(settings: StoreSettings, endpoint: str, **update: Any) -> StoreSettings:
    return settings.model_copy(
        update={"endpoint_url": endpoint, "multipart_threshold": PART, "part_size": PART, **update}
    )


@pytest.fixture
async def tls_store(
    bucket: str, settings: StoreSettings, tls_endpoint: TLSEndpoint, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncS3Store]:
    """A store reaching moto over HTTPS only, trusting the proxy's certificate as botocore users do."""
    monkeypatch.setenv("AWS_CA_BUNDLE", tls_endpoint.ca_bundle)
    async with AsyncS3Store(bucket, settings=settings_for(settings, tls_endpoint.url), concurrency=4) as opened:
        yield opened


@pytest.fixture(params=["https", "http"])
async def either_store(
    request: pytest.FixtureRequest,
    bucket: str,
    settings: StoreSettings,
    tls_endpoint: TLSEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AsyncS3Store]:
    """The same store over HTTPS (through the proxy) and over plain HTTP (to moto directly)."""
    if request.param == "https":
        monkeypatch.setenv("AWS_CA_BUNDLE", tls_endpoint.ca_bundle)
        endpoint = tls_endpoint.url
    else:
        endpoint = str(settings.endpoint_url)
    async with AsyncS3Store(bucket, settings=settings_for(settings, endpoint), concurrency=4) as opened:
        yield opened


def wire(tls_endpoint: TLSEndpoint, bucket: str, method: str, key: str) -> list[RequestHead]:
    """The requests the proxy relayed for ``method`` on ``key``."""
    return [
        head
        for head in tls_endpoint.proxy.heads_for(bucket)
        if head.method == method and unquote(urlsplit(head.target).path) == f"/{bucket}/{key}"
    ]


def part_number(head: RequestHead) -> int:
    return int(parse_qs(urlsplit(head.target).query)["partNumber"][0])


def no_uploads_left(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


async def test_multipart_upload_of_a_path_over_https(
    tls_store: AsyncS3Store, tls_endpoint: TLSEndpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    body = data(2 * PART + 3 * MiB + 7, seed=1)
    source = tmp_path / "big.bin"
    source.write_bytes(body)

    result = await tls_store.upload(source, "big/file.bin")

    assert result.parts == 3
    assert result.size == len(body)
    assert s3.get_object(Bucket=bucket, Key="big/file.bin")["Body"].read() == body
    assert no_uploads_left(s3, bucket)
    # Every part went through the proxy, over TLS, unsigned and covered by its CRC32.
    parts = sorted(wire(tls_endpoint, bucket, "PUT", "big/file.bin"), key=part_number)
    assert [part_number(head) for head in parts] == [1, 2, 3]
    for number, head in enumerate(parts):
        expected = body[number * PART : (number + 1) * PART]
        assert head.headers["content-length"] == str(len(expected))
        assert head.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert head.headers["x-amz-checksum-crc32"] == crc32_b64(expected)


@pytest.mark.parametrize("key", TLS_KEYS)
async def test_single_put_of_a_path_over_https(
    tls_store: AsyncS3Store, tls_endpoint: TLSEndpoint, s3: Any, bucket: str, tmp_path: Path, key: str
) -> None:
    body = data(2 * MiB + 5, seed=2)
    source = tmp_path / "small.bin"
    source.write_bytes(body)

    result = await tls_store.upload(source, key)

    assert result.parts == 1
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    [head] = wire(tls_endpoint, bucket, "PUT", key)
    assert "partNumber" not in head.target
    assert head.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert head.headers["x-amz-checksum-crc32"] == crc32_b64(body)


@pytest.mark.parametrize("key", TLS_KEYS)
async def test_put_bytes_of_a_small_body_over_https(
    tls_store: AsyncS3Store, tls_endpoint: TLSEndpoint, s3: Any, bucket: str, key: str
) -> None:
    body = data(100 * 1024 + 3, seed=3)

    result = await tls_store.put_bytes(key, body, metadata={"origin": "tls"})

    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == body
    assert stored["Metadata"] == {"origin": "tls"}
    assert result.size == len(body)
    # The direct path signs with botocore's signer but outside its pipeline: over TLS too, it signs the payload.
    [head] = wire(tls_endpoint, bucket, "PUT", key)
    assert head.headers["user-agent"].startswith("aiostorage/direct")
    assert head.headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert head.headers["x-amz-checksum-crc32"] == crc32_b64(body)


async def test_download_many_of_small_listed_objects_over_https(
    tls_store: AsyncS3Store, tls_endpoint: TLSEndpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The direct GET goes through the same TLS pool: one GET an object, the checksum asked for."""
    bodies = {f"small/{n}.bin": data(50_000 + n, seed=n) for n in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32")
    infos = [info async for info in tls_store.list("small/")]
    result = await tls_store.download_many([(info, tmp_path / info.key) for info in infos], fsync=False)
    assert result.ok
    for key, body in bodies.items():
        assert (tmp_path / key).read_bytes() == body
        [head] = wire(tls_endpoint, bucket, "GET", key)
        assert head.headers["user-agent"].startswith("aiostorage/direct")
        assert head.headers["x-amz-checksum-mode"] == "ENABLED" and "range" not in head.headers


class PayloadHeaders:
    """The payload hash and checksum headers of every PutObject and UploadPart botocore sends."""

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[str, int, str, str | None]] = []
        client.meta.events.register("before-send.s3.PutObject", self._before_send)
        client.meta.events.register("before-send.s3.UploadPart", self._before_send)

    def _before_send(self, request: Any, event_name: str, **_: Any) -> None:
        def header(name: str) -> str | None:
            value = request.headers.get(name)
            return value.decode() if isinstance(value, bytes) else value

        numbers = parse_qs(urlsplit(request.url).query).get("partNumber", ["1"])
        sha256 = header("x-amz-content-sha256")
        assert sha256 is not None
        self.seen.append((event_name.rsplit(".", 1)[1], int(numbers[0]), sha256, header("x-amz-checksum-crc32")))


async def test_payload_is_signed_over_http_only(
    either_store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path
) -> None:
    store = either_store
    scheme = urlsplit(str(store.client.meta.endpoint_url)).scheme
    headers = PayloadHeaders(store.client)
    multipart = data(PART + MiB, seed=4)
    single = data(MiB + 1, seed=5)
    source = tmp_path / "multipart.bin"
    source.write_bytes(multipart)

    await store.upload(source, "multipart.bin")
    await store.upload(single, "single.bin")

    assert s3.get_object(Bucket=bucket, Key="multipart.bin")["Body"].read() == multipart
    assert s3.get_object(Bucket=bucket, Key="single.bin")["Body"].read() == single
    expected_bodies = {
        ("UploadPart", 1): multipart[:PART],
        ("UploadPart", 2): multipart[PART:],
        ("PutObject", 1): single,
    }
    assert sorted((operation, number) for operation, number, _, _ in headers.seen) == sorted(expected_bodies)
    for operation, number, sha256, crc32 in headers.seen:
        body = expected_bodies[operation, number]
        assert crc32 == crc32_b64(body)
        if scheme == "https":
            assert sha256 == "UNSIGNED-PAYLOAD"
        else:
            assert scheme == "http"
            assert sha256 == hashlib.sha256(body).hexdigest()


async def test_download_and_stream_of_a_multipart_object_over_https(
    tls_store: AsyncS3Store, tls_endpoint: TLSEndpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    body = data(2 * PART + MiB + 11, seed=6)
    s3.put_object(Bucket=bucket, Key="get/me.bin", Body=body)

    result = await tls_store.download("get/me.bin", tmp_path / "out.bin")
    async with tls_store.stream("get/me.bin") as chunks:
        streamed = b"".join([bytes(chunk) async for chunk in chunks])

    assert result.size == len(body)
    assert (tmp_path / "out.bin").read_bytes() == body
    assert streamed == body
    # Both read the object in ranged GETs over TLS: at least three ranges each.
    ranged = [head for head in wire(tls_endpoint, bucket, "GET", "get/me.bin") if "range" in head.headers]
    assert len(ranged) >= 6


async def test_many_concurrent_connections_over_https(
    bucket: str, settings: StoreSettings, tls_endpoint: TLSEndpoint, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", tls_endpoint.ca_bundle)
    bodies = {f"many/{index:02d}": data(4096 + index, seed=100 + index) for index in range(32)}
    async with AsyncS3Store(bucket, settings=settings_for(settings, tls_endpoint.url), concurrency=16) as store:
        async with anyio.create_task_group() as group:
            for key, body in bodies.items():
                group.start_soon(store.put_bytes, key, body)
        got: dict[str, bytes] = {}

        async def fetch(key: str) -> None:
            got[key] = await store.get_bytes(key)

        async with anyio.create_task_group() as group:
            for key in bodies:
                group.start_soon(fetch, key)

    assert got == bodies
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="many/")
    assert {item["Key"] for item in listed["Contents"]} == set(bodies)


def causes(exc: BaseException) -> Iterator[BaseException]:
    while exc.__cause__ is not None:
        exc = exc.__cause__
        yield exc


async def test_an_untrusted_certificate_is_refused(
    bucket: str, settings: StoreSettings, tls_endpoint: TLSEndpoint, s3: Any
) -> None:
    # No AWS_CA_BUNDLE: botocore's default bundle does not know the proxy's self-signed certificate.
    # A setup mistake, not a transient failure: ConfigError at the first attempt, though 5 are allowed.
    untrusted = settings_for(settings, tls_endpoint.url, max_attempts=5)
    async with AsyncS3Store(bucket, settings=untrusted) as store:
        counter = RequestCounter(store.client)
        with pytest.raises(ConfigError, match=r"CERTIFICATE_VERIFY_FAILED.*AWS_CA_BUNDLE") as direct:
            await store.put_bytes("refused", b"secret")
        with pytest.raises(ConfigError, match="CERTIFICATE_VERIFY_FAILED") as head:
            await store.head("refused")
        assert len(counter.sent) == 1  # the HEAD was tried once

    for raised in (direct.value, head.value):
        # botocore's SSLError for the HEAD; aiohttp's certificate error (an ssl one) for the direct PUT.
        assert any(isinstance(cause, SSLError | ssl.SSLCertVerificationError) for cause in causes(raised))
    assert tls_endpoint.proxy.heads_for(bucket) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


async def test_a_certificate_for_another_host_is_refused(
    bucket: str, settings: StoreSettings, endpoint_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trusted, but issued for another address: boto3 refuses it, and so must we (aiohttp checks no names).
    cert, key = self_signed_certificate(tmp_path, ip="192.0.2.1")
    proxy = TLSProxy(endpoint_url, cert, key)
    proxy.start()
    try:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
        async with AsyncS3Store(bucket, settings=settings_for(settings, proxy.url, max_attempts=1)) as store:
            with pytest.raises(ConfigError, match="IP address mismatch"):
                await store.put_bytes("refused", b"secret")
            with pytest.raises(ConfigError, match="IP address mismatch"):
                await store.head("refused")
    finally:
        proxy.stop()
    assert proxy.heads == []


async def test_a_rewritten_ca_bundle_is_read_again(
    bucket: str, settings: StoreSettings, tls_endpoint: TLSEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TLS contexts are shared between stores, keyed on the certificate files: a bundle rewritten in
    # place (a rotated CA) must be read again by the next store, not served from the first one's context.
    other, _ = self_signed_certificate(tmp_path, ip="127.0.0.1")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other.read_bytes())
    trusted = await anyio.Path(tls_endpoint.ca_bundle).read_bytes()
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    endpoint = settings_for(settings, tls_endpoint.url, max_attempts=1)
    async with AsyncS3Store(bucket, settings=endpoint) as store:
        with pytest.raises(ConfigError, match="CERTIFICATE_VERIFY_FAILED"):
            await store.put_bytes("rotated", b"first")
    bundle.write_bytes(trusted)
    async with AsyncS3Store(bucket, settings=endpoint) as store:
        await store.put_bytes("rotated", b"second")  # the direct path's pool
        assert (await store.head("rotated")).size == len(b"second")  # aiohttp's connector


def test_the_proxy_relays_a_whole_answer_then_the_close(tls_endpoint: TLSEndpoint, s3: Any, bucket: str) -> None:
    # Connection: close makes moto close after answering: the proxy must deliver every byte, then close TLS.
    body = data(3 * MiB + 1, seed=7)
    s3.put_object(Bucket=bucket, Key="raw", Body=body)
    presigner = boto3.client(
        "s3",
        endpoint_url=tls_endpoint.url,
        region_name=REGION,
        # The suite's credentials: a strict server checks a presigned URL's signature.
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = urlsplit(presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "raw"}))
    context = ssl.create_default_context(cafile=tls_endpoint.ca_bundle)
    address = urlsplit(tls_endpoint.url)
    assert address.hostname is not None and address.port is not None
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=address.hostname) as tls,
    ):
        tls.sendall(
            f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = bytearray()
        while chunk := tls.recv(1 << 20):
            answer += chunk
    head, _, received = bytes(answer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert received == body
