"""Streaming uploads against the moto server, with boto3 as the oracle."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiostorage import (
    AsyncS3Store,
    InvalidArgument,
    StorageError,
    StoreSettings,
    TransferError,
    TransferProgress,
)
from tests.conftest import RequestCounter, inject_error, wait_for

MiB = 1024 * 1024
PART = 5 * MiB
ROOT = Path(__file__).resolve().parent.parent


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating bytes (a repeating pattern would hide misplaced parts)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += bytes(b ^ (counter & 0xFF) for b in block[:256]) + block[256:]
        counter += 1
    return bytes(out[:size])


@pytest.fixture
def small_settings(settings: StoreSettings) -> StoreSettings:
    """The smallest parts and threshold S3 allows, so multipart paths need only ~11 MiB."""
    return settings.model_copy(update={"multipart_threshold": PART, "part_size": PART})


@pytest.fixture
async def small_store(bucket: str, small_settings: StoreSettings) -> AsyncIterator[AsyncS3Store]:
    async with AsyncS3Store(bucket, settings=small_settings, concurrency=4) as opened:
        yield opened


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` in chunks cycling through ``sizes``."""
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        yield data[position : position + size]
        position += size
        index += 1


async def achunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    for chunk in chunked(data, sizes):
        yield chunk


class AsyncFile:
    """A minimal async file whose reads come back short, as sockets and pipes do."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    async def read(self, n: int) -> bytes:
        await anyio.lowlevel.checkpoint()
        return self._stream.read(max(1, n // 3))


class Unseekable(io.RawIOBase):
    """A sync binary stream of unknown length (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(min(len(buffer), 3 * MiB + 1))
        buffer[: len(chunk)] = chunk
        return len(chunk)


SOURCES = {
    "bytes": lambda data, path: data,
    "bytearray": lambda data, path: bytearray(data),
    "memoryview": lambda data, path: memoryview(data),
    "path": lambda data, path: path,
    "str-path": lambda data, path: str(path),
    "sync-file": lambda data, path: io.BytesIO(data),
    "unseekable-file": lambda data, path: Unseekable(data),
    "async-file": lambda data, path: AsyncFile(data),
    "iterable-awkward": lambda data, path: chunked(data, [1, 7 * MiB + 3, 4093, 1]),
    "iterable-mutable": lambda data, path: (bytearray(chunk) for chunk in chunked(data, [65536])),
    "async-iterable-awkward": lambda data, path: achunked(data, [7 * MiB + 3, 1, 100_003]),
}


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("size", [1000, 2 * PART + 12345], ids=["single", "multipart"])
async def test_every_source_kind_round_trips(
    small_store: AsyncS3Store, s3: Any, tmp_path: Path, kind: str, size: int, strict: bool
) -> None:
    data = payload(size, seed=size)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    result = await small_store.upload(SOURCES[kind](data, path), f"k/{kind}.bin")
    stored = s3.get_object(Bucket=small_store.bucket, Key=f"k/{kind}.bin")
    assert stored["Body"].read() == data
    assert (result.size, result.key, result.bucket) == (size, f"k/{kind}.bin", small_store.bucket)
    assert result.etag == stored["ETag"].strip('"')
    expected_parts = 1 if size <= PART else 3
    assert result.parts == expected_parts
    assert (result.etag.endswith(f"-{expected_parts}")) == (expected_parts > 1)
    # S3 reports the checksum on completion; moto only on a HEAD, where it proves the parts carried one. The
    # strict server reports it as S3 does, a multipart upload's the composite one ("<crc>-<parts>").
    assert result.checksum is None or result.checksum.startswith("CRC32:")
    head = s3.head_object(Bucket=small_store.bucket, Key=f"k/{kind}.bin", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32")
    if expected_parts == 1 or strict:
        assert result.checksum == f"CRC32:{head['ChecksumCRC32']}", head.get("ChecksumType")


async def test_tiny_chunks_and_exact_threshold(small_store: AsyncS3Store, s3: Any) -> None:
    data = payload(PART, seed=1)
    counter = RequestCounter(small_store.client)
    # Exactly the threshold, from an iterator of unknown length: still one PUT.
    result = await small_store.upload(chunked(data, [1000]), "exact.bin")
    assert result.parts == 1 and len(counter.sent) == 1
    one_more = await small_store.upload(achunked(data + b"!", [PART]), "one-more.bin")
    assert one_more.parts == 2
    assert s3.get_object(Bucket=small_store.bucket, Key="one-more.bin")["Body"].read() == data + b"!"
    assert s3.get_object(Bucket=small_store.bucket, Key="exact.bin")["Body"].read() == data


async def test_empty_sources(small_store: AsyncS3Store, s3: Any) -> None:
    for index, source in enumerate([b"", iter([]), achunked(b"", [1]), io.BytesIO()]):
        result = await small_store.upload(source, f"empty-{index}")
        assert result.size == 0 and result.parts == 1
        assert s3.head_object(Bucket=small_store.bucket, Key=f"empty-{index}")["ContentLength"] == 0


async def test_content_type_and_metadata_on_multipart(small_store: AsyncS3Store, s3: Any) -> None:
    data = payload(PART + 1)
    await small_store.upload(data, "videos/clip.mp4", metadata={"owner": "ana"})
    head = s3.head_object(Bucket=small_store.bucket, Key="videos/clip.mp4")
    assert head["ContentType"] == "video/mp4" and head["Metadata"] == {"owner": "ana"}
    await small_store.upload(achunked(data, [MiB]), "raw", content_type="application/x-raw")
    assert s3.head_object(Bucket=small_store.bucket, Key="raw")["ContentType"] == "application/x-raw"


async def test_parts_carry_their_crc32_and_signed_sha256(small_store: AsyncS3Store) -> None:
    """Hashes computed off the loop are the real ones: CRC32 header and SigV4 payload hash per part."""
    data = payload(2 * PART + 7)
    seen: set[tuple[str, str]] = set()

    def capture(request: Any, **_: Any) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        seen.add(tuple(str(headers[name], "ascii") for name in ("x-amz-checksum-crc32", "x-amz-content-sha256")))

    signers: list[str] = []
    small_store.client.meta.events.register("before-send.s3.UploadPart", capture)
    small_store.client.meta.events.register(
        "before-sign.s3.UploadPart", lambda signature_version, **_: signers.append(signature_version)
    )
    await small_store.upload(data, "hashed.bin")
    # The signer that takes the digest computed off the loop, rather than botocore's hashing one.
    assert signers == ["aiostorage-s3v4"] * 3
    parts = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    assert seen == {
        (base64.b64encode(zlib.crc32(part).to_bytes(4, "big")).decode(), hashlib.sha256(part).hexdigest())
        for part in parts
    }


async def test_progress_is_monotonic_and_exact_across_retries(small_store: AsyncS3Store) -> None:
    data = payload(2 * PART + 99)
    calls = inject_error(small_store.client, "UploadPart", "SlowDown", 503, times=2)
    events: list[TransferProgress] = []
    await small_store.upload(achunked(data, [MiB]), "progress.bin", progress=events.append)
    assert len(calls) == 3 + 2  # three parts, two of the attempts failed and were retried
    transferred = [event.transferred for event in events]
    assert transferred == sorted(transferred) and transferred[-1] == len(data)
    assert all(event.total is None or event.transferred <= event.total for event in events)
    assert events[-1].total == len(data) and events[-1].key == "progress.bin"

    known: list[TransferProgress] = []
    await small_store.upload(data, "known.bin", progress=known.append)
    assert [event.total for event in known] == [len(data)] * len(known)
    assert [event.transferred for event in known][-1] == len(data)


async def test_cancel_after_first_part_leaves_nothing(small_store: AsyncS3Store, s3: Any) -> None:
    bucket = small_store.bucket
    seen_open: list[int] = []

    async def stalls() -> AsyncIterator[bytes]:
        yield payload(PART)
        yield payload(PART, seed=2)
        await anyio.sleep_forever()
        yield b""

    with anyio.CancelScope() as scope:

        def on_progress(event: TransferProgress) -> None:
            # Both parts may be acknowledged before the cancellation lands: the first report is the one.
            if not seen_open:
                seen_open.append(len(open_uploads(s3, bucket)))
            scope.cancel()

        await small_store.upload(stalls(), "cancelled.bin", progress=on_progress)
    assert scope.cancelled_caught
    assert seen_open == [1]
    wait_for(lambda: not open_uploads(s3, bucket))
    assert not object_exists(s3, bucket, "cancelled.bin")


async def test_source_error_mid_stream_aborts_and_reraises(small_store: AsyncS3Store, s3: Any) -> None:
    counter = RequestCounter(small_store.client)

    def failing() -> Iterator[bytes]:
        yield payload(2 * PART + 1)
        raise ValueError("source broke")

    with pytest.raises(ValueError, match="source broke"):
        await small_store.upload(failing(), "broken.bin")
    assert any("uploads" in sent for sent in counter.sent)  # a multipart upload had been created
    wait_for(lambda: not open_uploads(s3, small_store.bucket))
    assert not object_exists(s3, small_store.bucket, "broken.bin")


async def test_part_failing_for_good_aborts_with_transfer_error(
    bucket: str, small_settings: StoreSettings, s3: Any
) -> None:
    settings = small_settings.model_copy(update={"max_attempts": 2})
    async with AsyncS3Store(bucket, settings=settings) as store:
        calls = inject_error(store.client, "UploadPart", "InternalError", 500, times=1000)
        with pytest.raises(TransferError) as caught:
            await store.upload(payload(2 * PART), "failing.bin")
    assert caught.value.__cause__ is not None and caught.value.key == "failing.bin"
    assert len(calls) >= 2
    wait_for(lambda: not open_uploads(s3, bucket))
    assert not object_exists(s3, bucket, "failing.bin")


async def test_file_shrinking_mid_upload_fails_and_aborts(small_store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "shrinks.bin"
    path.write_bytes(payload(2 * PART + 1))

    def truncate(event: TransferProgress) -> None:
        with path.open("r+b") as file:
            file.truncate(PART + 10)

    with pytest.raises(StorageError, match="shrank"):
        await small_store.upload(path, "shrinks.bin", concurrency=1, progress=truncate)
    wait_for(lambda: not open_uploads(s3, small_store.bucket))
    assert not object_exists(s3, small_store.bucket, "shrinks.bin")


async def test_bad_arguments_send_nothing(small_store: AsyncS3Store, tmp_path: Path) -> None:
    counter = RequestCounter(small_store.client)
    huge = tmp_path / "sparse.bin"
    with huge.open("wb") as file:
        file.truncate(10_001 * PART)  # sparse: nothing is written or read
    with pytest.raises(InvalidArgument, match="10000 parts"):
        await small_store.upload(huge, "huge.bin", part_size=PART)
    with pytest.raises(InvalidArgument, match="part_size"):
        await small_store.upload(b"x", "k", part_size=MiB)
    with pytest.raises(InvalidArgument, match="empty"):
        await small_store.upload(b"x", "")
    with pytest.raises(TypeError, match="source must be"):
        await small_store.upload(12345, "k")  # type: ignore[arg-type]
    assert counter.sent == []


MEMORY_CHILD = """
import asyncio, json, sys
from aiostorage import AsyncS3Store, StoreSettings

MiB = 1024 * 1024
chunk = bytes(range(256)) * 4096  # 1 MiB

def status(field):
    # /proc rather than getrusage: ru_maxrss survives exec, so a child would inherit the peak of the
    # (moto-hosting) parent; VmHWM belongs to this process image only.
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass  # then the peak so far counts as growth, which only makes the check stricter

def source():
    for _ in range(256):
        yield chunk

async def main():
    settings = StoreSettings(endpoint_url=sys.argv[1], region="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    async with AsyncS3Store(sys.argv[2], settings=settings) as store:
        await store.put_bytes("warm-up", b"x")
        reset_peak()
        before = status("VmRSS")
        result = await store.upload(source(), "big.bin", part_size=8 * MiB, concurrency=4)
        after = status("VmHWM")
    print(json.dumps({"growth": after - before, "size": result.size, "parts": result.parts}))

asyncio.run(main())
"""


def test_streaming_256_mib_stays_within_memory_bound(endpoint_url: str, bucket: str, s3: Any) -> None:
    child = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, endpoint_url, bucket],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    s3.delete_object(Bucket=bucket, Key="big.bin")  # moto keeps objects in memory
    assert report["size"] == 256 * MiB and report["parts"] == 32
    assert report["growth"] < (4 + 1) * 8 * MiB + 48 * MiB, report


async def test_completion_whose_answer_was_lost_is_recognised(small_store: AsyncS3Store, s3: Any, strict: bool) -> None:
    """The first CompleteMultipartUpload succeeds on the server but its answer turns into a 500; the retry
    is answered NoSuchUpload, as S3 does once an upload is completed (moto completes it again instead,
    so the hook gives that answer; the strict server gives it itself). The object these parts made is
    recognised as ours."""
    lost: list[int] = []
    answers = [(500, b"<Error><Code>InternalError</Code><Message>lost</Message></Error>")]
    if not strict:
        answers.append((404, b"<Error><Code>NoSuchUpload</Code><Message>already completed</Message></Error>"))
    sent: list[int] = []  # the server's own statuses

    def lose_first_answer(response_dict: dict[str, Any], **_: Any) -> None:
        sent.append(response_dict["status_code"])
        if len(lost) < len(answers):
            response_dict["status_code"], response_dict["body"] = answers[len(lost)]
            lost.append(1)

    small_store.client.meta.events.register("before-parse.s3.CompleteMultipartUpload", lose_first_answer)
    data = os.urandom(2 * PART + 12345)
    result = await small_store.upload(data, "lost-answer.bin")
    assert len(lost) == len(answers)
    if strict:
        assert sent == [200, 404]  # the retry was refused NoSuchUpload by the server itself
    assert result.parts == 3 and result.etag.endswith("-3") and result.size == len(data)
    assert s3.get_object(Bucket=small_store.bucket, Key="lost-answer.bin")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=small_store.bucket).get("Uploads", []) == []
