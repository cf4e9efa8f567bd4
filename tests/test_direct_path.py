"""Small PUTs take the direct path (our SigV4 signer, botocore's pool, not its pipeline); results match botocore's."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiostorage import (
    AsyncS3Store,
    BucketNotFound,
    IntegrityError,
    InvalidArgument,
    ObjectInfo,
    ObjectNotFound,
    StoreSettings,
    TransferProgress,
)
from aiostorage._transport import DIRECT_MAX
from tests.conftest import RequestCounter, WireCounter, serving, unique_name


async def test_put_bytes_takes_the_lean_path(store: AsyncS3Store, s3: Any) -> None:
    counter = RequestCounter(store.client)
    data = b"lean and signed"
    result = await store.put_bytes("dir/with space+plus/ключ.txt", data, metadata={"owner": "ana"})
    assert counter.sent == []  # no request went through botocore's pipeline
    head = s3.head_object(Bucket=store.bucket, Key="dir/with space+plus/ключ.txt", ChecksumMode="ENABLED")
    assert result.etag == head["ETag"].strip('"')
    assert head["Metadata"] == {"owner": "ana"} and head["ContentType"] == "text/plain"
    expected_crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC32"] == expected_crc
    assert result.checksum == f"CRC32:{expected_crc}"
    assert await store.get_bytes("dir/with space+plus/ключ.txt") == data


async def test_non_ascii_metadata_is_refused_as_botocore_does(store: AsyncS3Store) -> None:
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument, match="ASCII"):
        await store.put_bytes("m.bin", b"x", metadata={"name": "café"})
    assert counter.sent == []


async def test_direct_put_missing_bucket(settings: StoreSettings) -> None:
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(BucketNotFound):
            await store.put_bytes("k", b"v")


class FlakyServer:
    """A loopback S3 stand-in for PutObject whose answers the test scripts: (status, code) per request."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        self.script = script
        self.seen: list[str] = []
        self.objects: dict[str, bytes] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(request.headers.get("User-Agent", ""))
        status, code = self.script.pop(0) if self.script else (200, "")
        if status == 200 and "list-type" in request.query:
            keys = sorted(path.split("/", 2)[2] for path in self.objects)
            rows = "".join(f"<Contents><Key>{key}</Key><Size>1</Size></Contents>" for key in keys)
            page = f"<ListBucketResult><IsTruncated>false</IsTruncated>{rows}</ListBucketResult>"
            return web.Response(body=page.encode(), content_type="application/xml")
        if status == 200 and request.method == "GET":
            return web.Response(body=self.objects[request.path])  # the whole object: Range ignored
        if status == 200:
            self.objects[request.path] = body
            return web.Response(headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>scripted</Message></Error>"
        return web.Response(status=status, body=xml.encode(), content_type="application/xml")


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakyServer, StoreSettings]]:
    server = FlakyServer([])
    async with serving(server.handle) as url:
        yield server, StoreSettings(endpoint_url=url, aws_access_key_id="k", aws_secret_access_key="s", max_attempts=3)


async def test_direct_put_retries_transient_errors(flaky: tuple[FlakyServer, StoreSettings]) -> None:
    server, settings = flaky
    server.script = [(503, "SlowDown"), (500, "InternalError")]
    async with AsyncS3Store("flaky-bucket", settings=settings) as store:
        result = await store.put_bytes("k", b"third time")
    assert result.etag == hashlib.md5(b"third time").hexdigest()
    assert len(server.seen) == 3 and all("aiostorage/direct" in agent for agent in server.seen)


async def test_direct_get_retries_transient_errors(flaky: tuple[FlakyServer, StoreSettings]) -> None:
    server, settings = flaky
    async with AsyncS3Store("flaky-bucket", settings=settings) as store:
        await store.put_bytes("k", b"0123456789")
        server.script = [(503, "SlowDown"), (500, "InternalError")]
        # A server that ignores Range sends the whole object: the range is cut from it.
        assert await store.get_bytes("k", byte_range=(2, 4)) == b"234"
        assert await store.get_bytes("k") == b"0123456789"
    assert len(server.seen) == 5 and all("aiostorage/direct" in agent for agent in server.seen)


async def test_direct_put_hands_redirects_to_botocore(flaky: tuple[FlakyServer, StoreSettings]) -> None:
    server, settings = flaky
    server.script = [(400, "AuthorizationHeaderMalformed")]
    async with AsyncS3Store("flaky-bucket", settings=settings) as store:
        await store.put_bytes("a", b"1")
        await store.put_bytes("b", b"2")
    assert ["aiostorage/direct" in agent for agent in server.seen] == [True, False, False]


async def test_direct_listing_retries_and_hands_redirects_to_botocore(flaky: tuple[FlakyServer, StoreSettings]) -> None:
    server, settings = flaky
    async with AsyncS3Store("flaky-bucket", settings=settings) as store:
        await store.put_bytes("a b", b"1")
        server.script = [(503, "SlowDown")]
        assert [info.key async for info in store.list()] == ["a b"]
        server.script = [(301, "PermanentRedirect")]
        assert [info.key async for info in store.list()] == ["a b"]
        assert [info.key async for info in store.list()] == ["a b"]
    assert ["aiostorage/direct" in agent for agent in server.seen] == [True, True, True, True, False, False]


async def test_listing_takes_the_lean_path(store: AsyncS3Store, s3: Any) -> None:
    keys = ["dir/with space+plus/ключ.txt", "dir/a~b*c", "top.txt"]
    await asyncio.gather(*(store.put_bytes(key, b"x") for key in keys))
    counter = RequestCounter(store.client)
    assert sorted([info.key async for info in store.list()]) == sorted(keys)
    assert [info.key async for info in store.list("dir/with space+plus/")] == [keys[0]]
    assert await store.list_prefixes("dir/") == ["dir/with space+plus/"]
    assert counter.sent == []  # no page went through botocore's pipeline


async def test_header_breaking_metadata_is_refused_before_any_request(store: AsyncS3Store, s3: Any) -> None:
    for metadata, content_type in (({"a": "x\r\nx-amz-acl: public-read"}, None), ({}, "text/plain\nX: y")):
        with pytest.raises(InvalidArgument, match="line break"):
            await store.put_bytes("injected", b"x", metadata=metadata, content_type=content_type)
    assert s3.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0


async def test_direct_requests_through_a_proxy_are_relayed(
    store: AsyncS3Store, s3: Any, settings: StoreSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With a proxy configured, direct PUTs and GETs go through it (on aiohttp), signed for the real origin."""
    proxy = WireCounter()  # no upstream: a forward proxy
    body = os.urandom(DIRECT_MAX - 1)  # a GET answer that arrives in many reads
    s3.put_object(Bucket=store.bucket, Key="via/listed.bin", Body=body, ChecksumAlgorithm="CRC32")
    listed = s3.head_object(Bucket=store.bucket, Key="via/listed.bin")
    info = ObjectInfo(key="via/listed.bin", size=len(body), etag=listed["ETag"].strip('"'))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        async with serving(proxy.handle) as proxy_url:
            monkeypatch.setenv("HTTP_PROXY", proxy_url)
            async with AsyncS3Store(store.bucket, settings=settings) as proxied:
                result = await proxied.put_bytes("via/proxy key.txt", b"relayed", metadata={"hop": "1"})
                fetched = await proxied.download_many([(info, tmp_path / "listed.bin")], fsync=False)
    finally:
        await proxy.aclose()
    assert proxy.sent == [
        f"PUT {settings.endpoint_url}/{store.bucket}/via/proxy%20key.txt",
        f"GET {settings.endpoint_url}/{store.bucket}/via/listed.bin",
    ]
    head = s3.head_object(Bucket=store.bucket, Key="via/proxy key.txt")
    assert result.etag == head["ETag"].strip('"') and head["Metadata"] == {"hop": "1"}
    assert fetched.ok and (tmp_path / "listed.bin").read_bytes() == body


async def test_small_uploads_of_every_source_take_the_lean_path(
    store: AsyncS3Store, s3: Any, tmp_path: Path, wire: tuple[WireCounter, StoreSettings]
) -> None:
    """A small file, stream or buffer is one direct PUT; past DIRECT_MAX, botocore sends it."""
    small = os.urandom(300 * 1024)  # above the size hashed inline: read and hashed as a file range would be
    path = tmp_path / "small.json"
    path.write_bytes(small)

    async def stream() -> AsyncIterator[bytes]:
        yield small[:1000]
        yield small[1000:]

    counter = RequestCounter(store.client)
    seen: list[TransferProgress] = []
    for source, key in ((path, "from/path.json"), (stream(), "from/stream.bin"), (small, "from/bytes.bin")):
        result = await store.upload(source, key, progress=seen.append)
        head = s3.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
        assert result.etag == head["ETag"].strip('"') and head["ContentLength"] == len(small)
        assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(small).to_bytes(4, "big")).decode()
        assert s3.get_object(Bucket=store.bucket, Key=key)["Body"].read() == small
    assert s3.head_object(Bucket=store.bucket, Key="from/path.json")["ContentType"] == "application/json"
    assert counter.sent == []  # none went through botocore's pipeline
    assert [(p.key, p.transferred, p.total) for p in seen][-1] == ("from/bytes.bin", len(small), len(small))

    wire_counter, through_wire = wire
    async with AsyncS3Store(store.bucket, settings=through_wire) as counted:
        botocore_counter = RequestCounter(counted.client)
        await counted.upload(os.urandom(DIRECT_MAX + 1), "from/larger.bin")
    assert [sent.split()[0] for sent in botocore_counter.sent] == ["PUT"]
    assert wire_counter.sent == [f"PUT /{store.bucket}/from/larger.bin"]


class ObjectServer:
    """A loopback S3 stand-in answering GetObject with one body and the CRC32 header the test chooses."""

    def __init__(self, body: bytes, crc32: str) -> None:
        self.body = body
        self.crc32 = crc32
        self.seen: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.headers.get("x-amz-checksum-mode", "")))
        headers = {"ETag": '"e1"', "x-amz-checksum-crc32": self.crc32, "x-amz-checksum-type": "FULL_OBJECT"}
        return web.Response(body=self.body, headers=headers)


@pytest.mark.parametrize("good", [True, False])
async def test_direct_get_checks_the_checksum_it_asked_for(tmp_path: Path, good: bool) -> None:
    body = b"listed and small"
    right = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    server = ObjectServer(body, right if good else base64.b64encode(b"\0\0\0\0").decode())
    async with serving(server.handle) as url:
        settings = StoreSettings(endpoint_url=url, aws_access_key_id="k", aws_secret_access_key="s")
        async with AsyncS3Store("object-bucket", settings=settings) as store:
            info = ObjectInfo(key="k.bin", size=len(body), etag="e1")
            result = await store.download_many([(info, tmp_path / "k.bin")], fsync=False)
    assert server.seen == [("GET", "ENABLED")]  # one direct GET, no HEAD
    if good:
        assert result.ok and (tmp_path / "k.bin").read_bytes() == body
    else:
        assert isinstance(result.items[0].error, IntegrityError)
        assert os.listdir(tmp_path) == []


async def test_a_stale_listing_is_handled(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    """Listed small, since grown past DIRECT_MAX (botocore takes over) or deleted (that item fails alone)."""
    for key in ("grows.bin", "goes.bin", "stays.bin"):
        await store.put_bytes(key, key.encode())
    infos = [info async for info in store.list()]
    grown = os.urandom(DIRECT_MAX + 100)
    s3.put_object(Bucket=store.bucket, Key="grows.bin", Body=grown)
    s3.delete_object(Bucket=store.bucket, Key="goes.bin")
    result = await store.download_many([(info, tmp_path / info.key) for info in infos], fsync=False)
    outcome = {Path(item.destination).name: item for item in result.items}
    assert (tmp_path / "grows.bin").read_bytes() == grown and outcome["grows.bin"].ok
    assert (tmp_path / "stays.bin").read_bytes() == b"stays.bin"
    assert isinstance(outcome["goes.bin"].error, ObjectNotFound) and not (tmp_path / "goes.bin").exists()


async def test_get_bytes_on_the_lean_path(store: AsyncS3Store, s3: Any) -> None:
    """Up to DIRECT_MAX in one direct GET; past it, the first MiB direct and the rest from botocore, pinned."""
    small, large = os.urandom(10_000), os.urandom(DIRECT_MAX + 5_000)
    s3.put_object(Bucket=store.bucket, Key="small.bin", Body=small)
    s3.put_object(Bucket=store.bucket, Key="large.bin", Body=large)
    s3.put_object(Bucket=store.bucket, Key="empty.bin", Body=b"")
    counter = RequestCounter(store.client)
    sent_headers: list[dict[str, str]] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **_: sent_headers.append(
            {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}
        ),
    )
    assert await store.get_bytes("small.bin") == small
    assert await store.get_bytes("small.bin", byte_range=(5, 9)) == small[5:10]
    assert await store.get_bytes("small.bin", byte_range=(9_990, 20_000)) == small[9_990:]
    assert await store.get_bytes("empty.bin") == b""
    assert counter.sent == []  # all direct
    assert await store.get_bytes("large.bin") == large
    [rest] = counter.sent
    assert rest.startswith("GET ") and "large.bin" in rest
    etag = s3.head_object(Bucket=store.bucket, Key="large.bin")["ETag"]
    assert sent_headers[0]["Range"] == f"bytes={DIRECT_MAX}-" and sent_headers[0]["If-Match"] == etag
    assert await store.get_bytes("large.bin", byte_range=(0, DIRECT_MAX)) == large[: DIRECT_MAX + 1]
    assert len(counter.sent) == 2  # a range over DIRECT_MAX is botocore's
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("missing.bin")
