"""What only a server as strict as S3 shows: presigned URLs are checked, copies and ranged reads are pinned by
preconditions the server enforces (412), and a body corrupted on the way is refused by its checksum.

moto lets most of these requests through (it checks no presigned signature, expiry or POST policy, ignores
``x-amz-copy-source-if-match`` and verifies no body checksum): those tests are marked ``strict_only`` and run
against LocalStack only (``make test-localstack``). moto honours If-Match on ranged GETs: the read tests run on both.
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import ClientSession, web
from pydantic import SecretStr

from aiostorage import (
    AsyncS3Store,
    IntegrityError,
    ObjectChanged,
    StoreSettings,
    TransferProgress,
)
from tests.conftest import ODD_KEYS, WireCounter, serving, wait_for

UNSIGNED = pytest.mark.strict_only(reason="moto checks no presigned URL's signature or expiry")
NO_POLICY = pytest.mark.strict_only(reason="moto does not enforce a presigned POST's policy")
UNPINNED = pytest.mark.strict_only(reason="moto ignores x-amz-copy-source-if-match")
UNCHECKED = pytest.mark.strict_only(reason="moto verifies no checksum of a request's body: it stores damaged bytes")

MiB = 1024 * 1024
PART = 5 * MiB
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


def payload(size: int, seed: int) -> bytes:
    block = bytes((seed + i) % 251 for i in range(64 * 1024))
    return (block * (size // len(block) + 1))[:size]


def fetch(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """``(status, error code or "", message or "", body)`` of one plain HTTP request: what a browser would get."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, "", "", answer.read()
    except urllib.error.HTTPError as error:
        body = error.read()
        code, message = _CODE.search(body), _MESSAGE.search(body)
        return error.code, code[1].decode() if code else "", message[1].decode() if message else "", body


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert set(changes) <= set(query), (changes, query)
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def exists(s3: Any, bucket: str, key: str) -> bool:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return any(obj["Key"] == key for obj in listed)


# Presigned URLs


@UNSIGNED
async def test_a_presigned_get_works_as_signed_only(store: AsyncS3Store, settings: StoreSettings) -> None:
    await store.put_bytes("shared.txt", b"for the link holder")
    await store.put_bytes("private.txt", b"not for the link holder")
    url = await store.presign_get("shared.txt", expires_in=600)
    assert await asyncio.to_thread(fetch, url) == (200, "", "", b"for the link holder")

    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    tampered = {
        "signature": with_query(url, **{"X-Amz-Signature": flipped}),
        "another key": url.replace("/shared.txt?", "/private.txt?"),
        "a longer life": with_query(url, **{"X-Amz-Expires": "604800"}),
    }
    for what, bad_url in tampered.items():
        status, code, _, body = await asyncio.to_thread(fetch, bad_url)
        assert (status, code) == (403, "SignatureDoesNotMatch"), what
        assert b"not for the link holder" not in body

    wrong_secret = settings.model_copy(update={"aws_secret_access_key": SecretStr("not-the-secret")})
    async with AsyncS3Store(store.bucket, settings=wrong_secret) as forged:
        forged_url = await forged.presign_get("private.txt")
    assert (await asyncio.to_thread(fetch, forged_url))[:2] == (403, "SignatureDoesNotMatch")


@UNSIGNED
async def test_a_presigned_get_expires(store: AsyncS3Store) -> None:
    await store.put_bytes("brief.txt", b"soon gone")
    # X-Amz-Date counts whole seconds: a 2 s life leaves at least 1 s for the first request.
    url = await store.presign_get("brief.txt", expires_in=2)
    assert (await asyncio.to_thread(fetch, url))[:2] == (200, "")

    def refused() -> Any:
        answer = fetch(url)
        return answer if answer[0] != 200 else None

    status, code, message, _ = await asyncio.to_thread(wait_for, refused, timeout=15, interval=0.25)
    assert (status, code) == (403, "AccessDenied")
    assert "expired" in message.lower()


@UNSIGNED
async def test_a_presigned_put_binds_key_and_content_type(store: AsyncS3Store, s3: Any) -> None:
    url = await store.presign_put("in/report.csv", content_type="text/csv", expires_in=600)
    status, code, _, _ = await asyncio.to_thread(
        fetch, url, method="PUT", data=b"<html>", headers={"Content-Type": "text/html"}
    )
    assert (status, code) == (403, "SignatureDoesNotMatch")
    other = url.replace("/in/report.csv?", "/in/other.csv?")
    status, code, _, _ = await asyncio.to_thread(
        fetch, other, method="PUT", data=b"a,b", headers={"Content-Type": "text/csv"}
    )
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert s3.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0

    status, _, _, _ = await asyncio.to_thread(
        fetch, url, method="PUT", data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    assert status == 200
    stored = s3.get_object(Bucket=store.bucket, Key="in/report.csv")
    assert stored["Body"].read() == b"a,b\n1,2\n" and stored["ContentType"] == "text/csv"


@UNSIGNED
async def test_presigned_urls_of_odd_keys_are_signed_as_the_server_checks(store: AsyncS3Store) -> None:
    for index, key in enumerate(ODD_KEYS):
        await store.put_bytes(key, f"odd {index}".encode())
        url = await store.presign_get(key, expires_in=600)
        assert await asyncio.to_thread(fetch, url) == (200, "", "", f"odd {index}".encode()), key


@NO_POLICY
async def test_a_presigned_post_enforces_its_size_limit(store: AsyncS3Store, s3: Any) -> None:
    post = await store.presign_post("form/photo.bin", max_size=1000)

    async def submit(data: bytes) -> tuple[int, bytes]:
        form = aiohttp.FormData()
        for name, value in post.fields.items():
            form.add_field(name, value)
        form.add_field("file", data, filename="photo.bin")
        async with ClientSession() as session, session.post(post.url, data=form) as response:
            return response.status, await response.read()

    status, body = await submit(b"x" * 1001)
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body
    assert not exists(s3, store.bucket, "form/photo.bin")
    status, _ = await submit(b"x" * 1000)
    assert status in (200, 201, 204)
    assert s3.get_object(Bucket=store.bucket, Key="form/photo.bin")["Body"].read() == b"x" * 1000


@NO_POLICY
async def test_a_presigned_post_binds_key_and_content_type(store: AsyncS3Store, s3: Any) -> None:
    post = await store.presign_post("form/pic.png", content_type="image/png")

    async def submit(**changes: str) -> tuple[int, bytes]:
        form = aiohttp.FormData()
        for name, value in {**post.fields, **changes}.items():
            form.add_field(name, value)
        form.add_field("file", b"\x89PNG", filename="pic.png")
        async with ClientSession() as session, session.post(post.url, data=form) as response:
            return response.status, await response.read()

    for changes in ({"Content-Type": "text/html"}, {"key": "form/other.png"}):
        status, body = await submit(**changes)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, (changes, body)
    assert s3.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0
    status, _ = await submit()
    assert status in (200, 201, 204)
    stored = s3.get_object(Bucket=store.bucket, Key="form/pic.png")
    assert stored["Body"].read() == b"\x89PNG" and stored["ContentType"] == "image/png"


# Copies pinned to the source's ETag (x-amz-copy-source-if-match)


@UNPINNED
async def test_copy_many_refuses_a_source_changed_since_it_was_listed(store: AsyncS3Store, s3: Any) -> None:
    for name in ("a", "b", "c"):
        await store.put_bytes(f"src/{name}.bin", f"first {name}".encode())
    listed = [info async for info in store.list("src/", ordered=True)]
    s3.put_object(Bucket=store.bucket, Key="src/b.bin", Body=b"second b")

    result = await store.copy_many([(info, "dst/" + info.key.removeprefix("src/")) for info in listed])

    assert [item.ok for item in result.items] == [True, False, True]
    error = result.items[1].error
    # The server refused the copy (412): no HEAD before it would have caught the change.
    assert isinstance(error, ObjectChanged) and error.code == "PreconditionFailed", error
    assert not exists(s3, store.bucket, "dst/b.bin")
    assert s3.get_object(Bucket=store.bucket, Key="dst/a.bin")["Body"].read() == b"first a"
    assert s3.get_object(Bucket=store.bucket, Key="dst/c.bin")["Body"].read() == b"first c"


def replace_before(store: AsyncS3Store, s3: Any, operation: str, key: str, body: bytes) -> list[str]:
    """Replace ``key`` once, just before the first ``operation`` request is sent (after the store's HEAD)."""
    done: list[str] = []

    def replace(**_: Any) -> None:
        if not done:
            done.append(s3.put_object(Bucket=store.bucket, Key=key, Body=body)["ETag"])

    store.client.meta.events.register(f"before-send.s3.{operation}", replace)
    return done


@UNPINNED
async def test_a_copy_is_pinned_to_the_source_it_inspected(store: AsyncS3Store, s3: Any) -> None:
    await store.put_bytes("moving.txt", b"version one")
    assert (await store.copy("moving.txt", "kept.txt")).size == len(b"version one")
    assert s3.get_object(Bucket=store.bucket, Key="kept.txt")["Body"].read() == b"version one"

    replaced = replace_before(store, s3, "CopyObject", "moving.txt", b"version two, longer")
    with pytest.raises(ObjectChanged) as caught:
        await store.copy("moving.txt", "moved.txt")
    assert replaced and caught.value.code == "PreconditionFailed"
    assert not exists(s3, store.bucket, "moved.txt")


@UNPINNED
async def test_a_multipart_copy_is_refused_part_by_part(store: AsyncS3Store, s3: Any) -> None:
    s3.put_object(Bucket=store.bucket, Key="big", Body=payload(6 * MiB, seed=1))
    replaced = replace_before(store, s3, "UploadPartCopy", "big", payload(6 * MiB, seed=2))
    with pytest.raises(ObjectChanged) as caught:
        await store.copy("big", "big-copy", multipart_threshold=PART, part_size=PART, concurrency=1)
    # Refused by the server on the part (412), not by the check after the parts.
    assert replaced and caught.value.code == "PreconditionFailed"
    assert caught.value.operation == "UploadPartCopy"
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert not exists(s3, store.bucket, "big-copy")


# Ranged reads pinned to the first response's ETag (If-Match)


async def test_a_download_is_refused_by_the_server_once_the_object_changed(
    bucket: str, wire: tuple[WireCounter, StoreSettings], s3: Any, tmp_path: Path
) -> None:
    counter, settings = wire
    s3.put_object(Bucket=bucket, Key="moving", Body=payload(3 * PART, seed=1))
    replaced: list[bool] = []

    def replace_once(event: TransferProgress) -> None:
        if not replaced:
            replaced.append(True)
            s3.put_object(Bucket=bucket, Key="moving", Body=payload(3 * PART, seed=2))

    dest = tmp_path / "moving"
    async with AsyncS3Store(bucket, settings=settings) as store:
        counter.reset()
        with pytest.raises(ObjectChanged) as caught:
            await store.download("moving", dest, part_size=PART, concurrency=1, progress=replace_once)
    # Refused by whichever pinned request came after the change: a later range (PreconditionFailed), or
    # the HEAD that asks for the checksum, whose bodiless 412 is named the same way.
    assert caught.value.code == "PreconditionFailed"
    assert counter.answered[0] == ("GET", 206) and counter.answered[-1][1] == 412
    assert not dest.exists()


async def test_a_stream_is_refused_by_the_server_once_the_object_changed(store: AsyncS3Store, s3: Any) -> None:
    first = payload(3 * PART, seed=1)
    s3.put_object(Bucket=store.bucket, Key="moving", Body=first)
    received = bytearray()
    with pytest.raises(ObjectChanged) as caught:
        async with store.stream("moving", part_size=PART, concurrency=1) as chunks:
            async for chunk in chunks:
                if not received:
                    s3.put_object(Bucket=store.bucket, Key="moving", Body=payload(3 * PART, seed=2))
                received += chunk
    assert caught.value.code == "PreconditionFailed"
    # Only bytes of the first version were handed out, and not all of them.
    assert PART <= len(received) < len(first) and first.startswith(received)


# Checksums: a body damaged between client and server is refused, never stored


class Corrupting(WireCounter):
    """A relay in front of the server that flips one byte in the body of the first PUT matching ``which``."""

    def __init__(self, upstream: str, which: Callable[[web.Request], bool]) -> None:
        super().__init__(upstream)
        self.which = which
        self.corrupted: list[str] = []

    def relayed_body(self, request: web.Request, body: bytes) -> bytes:
        if request.method != "PUT" or not body or self.corrupted or not self.which(request):
            return body
        self.corrupted.append(request.raw_path)
        damaged = bytearray(body)
        damaged[len(damaged) // 2] ^= 0xFF
        return bytes(damaged)


@pytest.fixture
async def corrupting(settings: StoreSettings, endpoint_url: str) -> AsyncIterator[tuple[Corrupting, StoreSettings]]:
    """Damages the single PUT, or a multipart upload's second part."""
    relay = Corrupting(
        endpoint_url, lambda request: "partNumber=2" in request.raw_path or "uploadId" not in request.raw_path
    )
    try:
        async with serving(relay.handle) as url:
            yield relay, settings.model_copy(update={"endpoint_url": url})
    finally:
        await relay.aclose()


@UNCHECKED
async def test_a_put_damaged_on_the_way_is_refused(
    bucket: str, s3: Any, corrupting: tuple[Corrupting, StoreSettings]
) -> None:
    relay, settings = corrupting
    async with AsyncS3Store(bucket, settings=settings) as store:
        with pytest.raises(IntegrityError) as caught:
            await store.put_bytes("note.txt", os.urandom(4096))
    assert relay.corrupted and caught.value.code in ("BadDigest", "XAmzContentSHA256Mismatch")
    assert not exists(s3, bucket, "note.txt")


@UNCHECKED
async def test_a_part_damaged_on_the_way_fails_the_upload_and_aborts_it(
    bucket: str, s3: Any, corrupting: tuple[Corrupting, StoreSettings]
) -> None:
    relay, settings = corrupting
    async with AsyncS3Store(bucket, settings=settings, part_size=PART) as store:
        with pytest.raises(IntegrityError) as caught:
            await store.upload(payload(2 * PART + 100, seed=3), "parts.bin", concurrency=1)
    assert relay.corrupted and "partNumber=2" in relay.corrupted[0]
    assert caught.value.code in ("BadDigest", "XAmzContentSHA256Mismatch")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not exists(s3, bucket, "parts.bin")
