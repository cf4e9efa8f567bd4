from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from aiostorage import (
    AccessDenied,
    AsyncS3Store,
    BucketNotFound,
    ConfigError,
    InvalidArgument,
    ObjectChanged,
    ObjectNotFound,
    StorageError,
    StoreSettings,
    TransferError,
)
from aiostorage._validate import guess_content_type
from tests.conftest import ODD_KEYS, RequestCounter, WireCounter, inject_error

MiB = 1024 * 1024


async def test_use_outside_async_with_raises(settings: StoreSettings, bucket: str) -> None:
    store = AsyncS3Store(bucket, settings=settings)
    with pytest.raises(StorageError, match="not open"):
        await store.get_bytes("k")
    async with store:
        await store.put_bytes("k", b"v")
    with pytest.raises(StorageError, match="not open"):
        await store.head("k")


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_put_get_round_trip_odd_keys(store: AsyncS3Store, s3: Any, key: str) -> None:
    data = f"payload for {key}".encode()
    result = await store.put_bytes(key, data)
    assert (result.key, result.size, result.bucket) == (key, len(data), store.bucket)
    assert result.etag and '"' not in result.etag
    assert s3.get_object(Bucket=store.bucket, Key=key)["Body"].read() == data
    assert await store.get_bytes(key) == data
    assert await store.exists(key)


async def test_metadata_and_content_type(store: AsyncS3Store, s3: Any) -> None:
    await store.put_bytes("uploads/a.mp4", b"x" * 10, metadata={"owner": "ana"})
    info = await store.head("uploads/a.mp4")
    assert info.content_type == "video/mp4"
    assert info.metadata == {"owner": "ana"}
    assert info.size == 10 and info.last_modified is not None
    assert info.etag == s3.head_object(Bucket=store.bucket, Key="uploads/a.mp4")["ETag"].strip('"')
    await store.put_bytes("noext", b"y", content_type="application/x-custom")
    assert s3.head_object(Bucket=store.bucket, Key="noext")["ContentType"] == "application/x-custom"
    await store.put_bytes("unknown.zzz-ext", b"z")
    assert (await store.head("unknown.zzz-ext")).content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a/b.tar.gz", "application/x-tar"),
        ("v1.2/readme", "application/octet-stream"),  # a dot in a folder is no extension
        ("photos/IMG.JPG", "image/jpeg"),
        ("data:text/plain,hi", "application/octet-stream"),  # a key, not a data: URL
        (".bashrc", "application/octet-stream"),
    ],
)
def test_content_type_follows_the_name_s_suffixes(key: str, expected: str) -> None:
    assert guess_content_type(key) == expected


async def test_put_reports_crc32_checksum(store: AsyncS3Store) -> None:
    result = await store.put_bytes("c.bin", b"checksummed")
    assert result.checksum is not None and result.checksum.startswith("CRC32:")


async def test_get_byte_range(store: AsyncS3Store) -> None:
    await store.put_bytes("r.bin", bytes(range(256)))
    assert await store.get_bytes("r.bin", byte_range=(10, 19)) == bytes(range(10, 20))
    assert await store.get_bytes("r.bin", byte_range=(255, 255)) == b"\xff"


async def test_missing_object_and_bucket(store: AsyncS3Store, settings: StoreSettings) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        await store.get_bytes("nope")
    assert caught.value.key == "nope" and caught.value.bucket == store.bucket
    assert caught.value.__cause__ is not None
    with pytest.raises(ObjectNotFound):
        await store.head("nope")
    assert not await store.exists("nope")
    async with AsyncS3Store("no-such-bucket-here", settings=settings) as missing:
        with pytest.raises(BucketNotFound):
            await missing.get_bytes("k")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.get_bytes(""), "empty"),
        (lambda s: s.put_bytes("k" * 1025, b""), "1024"),
        (lambda s: s.put_bytes("é" * 513, b""), "1024"),
        (lambda s: s.put_bytes("k", b"", metadata={"a": "b\r\nX-Evil: 1"}), "line break"),
        (lambda s: s.upload(b"x", "k", content_type="text/plain\n"), "line break"),
        (lambda s: s.put_bytes("k", b"", metadata={"a": 1}), "str to str"),
        (lambda s: s.get_bytes("k", byte_range=(-1, 3)), "byte_range"),
        (lambda s: s.get_bytes("k", byte_range=(5, 2)), "byte_range"),
        (lambda s: s.head(""), "empty"),
        (lambda s: s.delete_many(["ok", ""]), "empty"),
        (lambda s: s.copy("a", "b", part_size=1024), "part_size"),
        (lambda s: s.presign_get("k", expires_in=0), "expires_in"),
        (lambda s: s.presign_get("k", expires_in=8 * 24 * 3600), "7 days"),
    ],
)
async def test_invalid_arguments_send_nothing(
    bucket: str, wire: tuple[WireCounter, StoreSettings], call: Any, message: str
) -> None:
    counter, settings = wire  # counted on the wire: direct PUTs bypass botocore's hooks
    async with AsyncS3Store(bucket, settings=settings) as store:
        with pytest.raises(InvalidArgument, match=message) as caught:
            await call(store)
    assert isinstance(caught.value, ValueError)
    assert counter.sent == []


async def test_delete_and_delete_missing(store: AsyncS3Store) -> None:
    await store.put_bytes("gone", b"1")
    await store.delete("gone")
    assert not await store.exists("gone")
    await store.delete("gone")  # deleting a missing key is not an error


async def test_delete_many_in_parallel_batches(bucket: str, settings: StoreSettings, s3: Any) -> None:
    keys = [f"many/{i:05d}" for i in range(2500)]
    async with AsyncS3Store(bucket, settings=settings, concurrency=32) as store:
        # Every batch holds real objects; S3 reports the missing keys in between as deleted too.
        await asyncio.gather(*(store.put_bytes(key, b"") for key in keys[::8]))
        counter = RequestCounter(store.client)
        result = await store.delete_many([*keys, keys[0]])
    assert sorted(result.deleted) == keys
    assert result.errors == []
    assert len(counter.sent) == 3
    assert counter.max_in_flight == 3
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


async def test_delete_many_empty_sends_nothing(store: AsyncS3Store) -> None:
    counter = RequestCounter(store.client)
    result = await store.delete_many([])
    assert (result.deleted, result.errors, counter.sent) == ([], [], [])


async def test_copy_single_keeps_or_replaces_metadata(store: AsyncS3Store, s3: Any) -> None:
    await store.put_bytes("src.mp4", b"video", metadata={"a": "1"})
    kept = await store.copy("src.mp4", "dst/kept.mp4")
    assert kept.size == 5 and kept.parts == 1
    head = s3.head_object(Bucket=store.bucket, Key="dst/kept.mp4")
    assert head["Metadata"] == {"a": "1"} and head["ContentType"] == "video/mp4"
    await store.copy("src.mp4", "dst/replaced.mp4", metadata={"b": "2"})
    head = s3.head_object(Bucket=store.bucket, Key="dst/replaced.mp4")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "video/mp4"


async def test_copy_across_buckets(store: AsyncS3Store, s3: Any) -> None:
    s3.create_bucket(Bucket=f"{store.bucket}-src")
    s3.put_object(Bucket=f"{store.bucket}-src", Key="k", Body=b"other bucket")
    await store.copy("k", "copied", src_bucket=f"{store.bucket}-src")
    assert await store.get_bytes("copied") == b"other bucket"


async def test_multipart_copy_forced_by_threshold(store: AsyncS3Store, s3: Any) -> None:
    data = bytes(range(256)) * (11 * MiB // 256) + b"tail"
    s3.put_object(Bucket=store.bucket, Key="big.bin", Body=data, Metadata={"m": "v"}, ContentType="x/y")
    counter = RequestCounter(store.client)
    result = await store.copy("big.bin", "big-copy.bin", multipart_threshold=5 * MiB, part_size=5 * MiB)
    assert result.parts == 3 and result.size == len(data)
    assert sum("partNumber=" in sent for sent in counter.sent) == 3
    copied = s3.get_object(Bucket=store.bucket, Key="big-copy.bin")
    assert copied["Body"].read() == data
    assert copied["Metadata"] == {"m": "v"} and copied["ContentType"] == "x/y"
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


async def test_copy_missing_source(store: AsyncS3Store) -> None:
    with pytest.raises(ObjectNotFound):
        await store.copy("absent", "dst")


async def test_copy_source_replaced_midway_is_object_changed(store: AsyncS3Store, s3: Any) -> None:
    s3.put_object(Bucket=store.bucket, Key="moving", Body=b"a" * (6 * MiB))
    replaced = False

    def replace_once(**_: Any) -> None:
        nonlocal replaced
        if not replaced:
            replaced = True
            s3.put_object(Bucket=store.bucket, Key="moving", Body=b"b" * (6 * MiB))

    store.client.meta.events.register("before-send.s3.UploadPartCopy", replace_once)
    with pytest.raises(ObjectChanged):
        await store.copy("moving", "moved", multipart_threshold=5 * MiB, part_size=5 * MiB, concurrency=1)
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert not await store.exists("moved")


async def test_presigned_get_and_put_with_plain_http(store: AsyncS3Store, s3: Any) -> None:
    await store.put_bytes("shared.txt", b"hello presigned")
    url = await store.presign_get("shared.txt", expires_in=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=60" in url
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
    assert body == b"hello presigned"

    put_url = await store.presign_put("up.txt", content_type="text/plain")
    request = urllib.request.Request(put_url, data=b"put via url", method="PUT", headers={"Content-Type": "text/plain"})
    status = await asyncio.to_thread(lambda: urllib.request.urlopen(request).status)
    assert status == 200
    assert s3.get_object(Bucket=store.bucket, Key="up.txt")["Body"].read() == b"put via url"


async def test_presigned_post_form_upload(store: AsyncS3Store, s3: Any) -> None:
    post = await store.presign_post("form/upload.bin", max_size=1000, content_type="application/octet-stream")
    policy = json.loads(base64.b64decode(post.fields["policy"]))
    assert ["content-length-range", 0, 1000] in policy["conditions"]
    form = aiohttp.FormData()
    for name, value in post.fields.items():
        form.add_field(name, value)
    form.add_field("file", b"form bytes", filename="upload.bin")
    async with aiohttp.ClientSession() as session, session.post(post.url, data=form) as response:
        assert response.status in (200, 201, 204)
    assert s3.get_object(Bucket=store.bucket, Key="form/upload.bin")["Body"].read() == b"form bytes"


async def test_many_concurrent_heads_share_the_pool(
    bucket: str, settings: StoreSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with AsyncS3Store(bucket, settings=settings, concurrency=8) as store:
        await store.put_bytes("h", b"1")
        counter = RequestCounter(store.client)
        infos = await asyncio.gather(*(store.head("h") for _ in range(200)))
    assert len(infos) == 200 and all(info.size == 1 for info in infos)
    assert len(counter.sent) == 200
    assert counter.max_in_flight <= 8
    assert not [r for r in caplog.records if "pool" in r.getMessage().lower()]


async def test_transient_errors_are_retried(store: AsyncS3Store) -> None:
    # HeadObject goes through botocore, whose hooks inject the errors (small GETs take the direct path,
    # retried the same way: tests/test_direct_path.py).
    await store.put_bytes("r", b"retried")
    calls = inject_error(store.client, "HeadObject", "SlowDown", 503, times=2)
    assert (await store.head("r")).size == 7
    assert len(calls) == 3


async def test_retries_give_up_with_transfer_error(bucket: str, settings: StoreSettings) -> None:
    async with AsyncS3Store(bucket, settings=settings.model_copy(update={"max_attempts": 3})) as store:
        calls = inject_error(store.client, "HeadObject", "InternalError", 500, times=10)
        with pytest.raises(TransferError) as caught:
            await store.head("k")
    assert len(calls) == 3
    assert caught.value.key == "k" and caught.value.__cause__ is not None


async def test_permanent_errors_are_not_retried(store: AsyncS3Store) -> None:
    calls = inject_error(store.client, "HeadObject", "AccessDenied", 403, times=10)
    with pytest.raises(AccessDenied):
        await store.head("k")
    assert len(calls) == 1


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers, not even ``100 Continue``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("operation", ["head", "put"])
async def test_silent_server_bounded_by_timeouts(silent_server: str, operation: str) -> None:
    settings = StoreSettings(
        endpoint_url=silent_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        connect_timeout=0.3,
        read_timeout=0.5,
        max_attempts=2,
    )
    started = time.monotonic()
    async with AsyncS3Store("b", settings=settings) as store:
        with pytest.raises(TransferError, match="2 attempts"):
            if operation == "head":
                await store.head("k")
            else:
                await store.put_bytes("k", b"x" * 2048)
    # Two attempts of (0.3 + 0.5) s, a backoff under 0.5 s, and slack for a loaded machine.
    assert time.monotonic() - started < 4.0


async def test_setup_errors_are_ours(bucket: str, endpoint_url: str) -> None:
    with pytest.raises(ConfigError, match="profile"):
        async with AsyncS3Store(bucket, settings=StoreSettings(endpoint_url=endpoint_url, profile="no-such")):
            pass
    async with AsyncS3Store(bucket, settings=StoreSettings(endpoint_url=endpoint_url)) as anonymous:
        with pytest.raises(ConfigError, match="credentials") as caught:
            await anonymous.presign_get("k")
        assert caught.value.__cause__ is not None


async def test_listing_errors_keep_their_cause(settings: StoreSettings, tmp_path: Any) -> None:
    async with AsyncS3Store("no-such-bucket-listing", settings=settings) as store:
        with pytest.raises(BucketNotFound) as caught:
            async with store.list("p/") as listing:
                async for _ in listing:
                    pass
        assert caught.value.__cause__ is not None
        with pytest.raises(BucketNotFound) as synced:
            await store.sync(tmp_path, "p", direction="down")
        assert synced.value.__cause__ is not None


async def test_get_bytes_gives_a_large_body_time_beyond_the_header_deadline() -> None:
    """A body that streams steadily for longer than connect + read timeout is not cut off."""
    size, chunk, gap = 512 * 1024, 64 * 1024, 0.15  # ~420 KiB/s for 1.2 s, against a 0.6 s attempt deadline

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nETag: "abc"\r\n'
            b"Content-Length: %d\r\n\r\n" % size
        )
        for _ in range(size // chunk):
            writer.write(b"x" * chunk)
            await writer.drain()
            await asyncio.sleep(gap)  # the server's pace, not a wait in the test
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = StoreSettings(
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        connect_timeout=0.2,
        read_timeout=0.4,
        max_attempts=1,
    )
    async with server, AsyncS3Store("media", settings=settings) as store:
        assert await store.get_bytes("big.bin") == b"x" * size


def test_a_store_reopened_under_another_event_loop_still_queues_its_calls(bucket: str, settings: StoreSettings) -> None:
    """Calls beyond ``concurrency`` wait for a slot; the store opens again under a second ``asyncio.run``."""
    store = AsyncS3Store(bucket, settings=settings, concurrency=1)

    async def session(tag: str) -> list[bytes]:
        async with store:
            await asyncio.gather(*(store.put_bytes(f"{tag}/{n}", tag.encode()) for n in range(3)))
            return await asyncio.gather(*(store.get_bytes(f"{tag}/{n}") for n in range(3)))

    assert asyncio.run(session("first")) == [b"first"] * 3
    assert asyncio.run(session("second")) == [b"second"] * 3
