"""download() and stream() against moto's server, with boto3 as the oracle."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from aiostorage import (
    AsyncS3Store,
    DownloadResult,
    IntegrityError,
    InvalidArgument,
    ObjectChanged,
    ObjectNotFound,
    StorageError,
    StoreSettings,
    TransferProgress,
)
from aiostorage.transfer.download import TEMP_SUFFIX, _TempFile, _Writer
from tests.conftest import RequestCounter, WireCounter

MiB = 1024 * 1024
PART = 5 * MiB


def payload(size: int, seed: int = 0) -> bytes:
    """Distinct, non-repeating-per-part bytes, cheap to make."""
    block = os.urandom(64 * 1024) if seed == 0 else bytes((seed + i) % 251 for i in range(64 * 1024))
    return (block * (size // len(block) + 1))[:size]


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith(TEMP_SUFFIX)]


def get_ranges(counter: WireCounter) -> list[str]:
    """The Range header of every GET that reached the wire, in order ("" for a whole one)."""
    return [byte_range for sent, byte_range in zip(counter.sent, counter.ranges, strict=True) if sent.startswith("GET")]


# Downloads


@pytest.mark.parametrize("size", [0, 1, PART, 4 * PART + 12_345])
async def test_download_is_byte_exact(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path, size: int) -> None:
    data = payload(size)
    put = s3.put_object(Bucket=bucket, Key="obj.bin", Body=data)
    dest = tmp_path / "new" / "nested" / "obj.bin"
    events: list[TransferProgress] = []

    result = await store.download("obj.bin", dest, part_size=PART, concurrency=3, progress=events.append)

    assert dest.read_bytes() == data
    assert result == DownloadResult(
        bucket=bucket, key="obj.bin", path=dest, etag=put["ETag"].strip('"'), size=size, version_id=None
    )
    assert leftovers(tmp_path) == []
    assert [event.transferred for event in events] == sorted(event.transferred for event in events)
    assert (events[-1].transferred if events else 0) == size
    assert all(event.total == size for event in events)


async def test_small_object_is_one_get_and_large_is_ranged(
    wire: tuple[WireCounter, StoreSettings], s3: Any, bucket: str, tmp_path: Path
) -> None:
    counter, settings = wire
    s3.put_object(Bucket=bucket, Key="small", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="large", Body=payload(2 * PART + 1))
    async with AsyncS3Store(bucket, settings=settings) as store:
        counter.reset()
        await store.download("small", tmp_path / "small", part_size=PART)
        assert get_ranges(counter) == [f"bytes=0-{PART - 1}"]

        counter.reset()
        botocore = RequestCounter(store.client)
        await store.download("large", tmp_path / "large", part_size=PART, concurrency=1)
        # The ranges go on the direct path; botocore asks only for the checksum.
        assert [sent.split()[0] for sent in botocore.sent] == ["HEAD"]
        expected = [f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}", f"bytes={2 * PART}-{2 * PART}"]
        assert get_ranges(counter) == expected


async def test_versioned_download_pins_the_version(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="v", Body=b"old" * 10)
    s3.put_object(Bucket=bucket, Key="v", Body=b"new")

    result = await store.download("v", tmp_path / "v", version_id=old["VersionId"])

    assert (tmp_path / "v").read_bytes() == b"old" * 10
    assert result.version_id == old["VersionId"]


async def test_checksum_is_verified(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path) -> None:
    data = payload(2 * PART + 7)
    s3.put_object(Bucket=bucket, Key="sum", Body=data, ChecksumAlgorithm="SHA256")
    dest = tmp_path / "sum"
    dest.write_bytes(b"previous")
    counter = RequestCounter(store.client)

    await store.download("sum", dest, part_size=PART)
    assert dest.read_bytes() == data
    assert any(sent.startswith("HEAD") for sent in counter.sent)  # the checksum of a ranged object

    def corrupt(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumSHA256"] = base64.b64encode(b"\0" * 32).decode()

    store.client.meta.events.register("after-call.s3.HeadObject", corrupt)
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match="SHA256"):
        await store.download("sum", dest, part_size=PART)
    assert dest.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


async def test_crc32_of_a_single_part_object(
    wire: tuple[WireCounter, StoreSettings], s3: Any, bucket: str, tmp_path: Path
) -> None:
    counter, settings = wire
    data = payload(100_000)
    s3.put_object(Bucket=bucket, Key="crc", Body=data, ChecksumAlgorithm="CRC32")
    expected = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")["ChecksumCRC32"] == expected

    async with AsyncS3Store(bucket, settings=settings) as store:
        counter.reset()
        await store.download("crc", tmp_path / "crc")
        assert (tmp_path / "crc").read_bytes() == data
        assert len(counter.sent) == 1  # the one GET covered the whole object and carried its checksum

        counter.replaced_answer_headers["x-amz-checksum-crc32"] = base64.b64encode(b"\0\0\0\0").decode()
        with pytest.raises(IntegrityError, match="CRC32"):
            await store.download("crc", tmp_path / "crc2")
    assert not (tmp_path / "crc2").exists()


async def test_composite_checksum_of_a_multipart_upload_is_not_compared(
    store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = payload(2 * PART + 3)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    parts = []
    for number, start in enumerate(range(0, len(data), PART), start=1):
        part = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[start : start + PART],
            ChecksumAlgorithm="CRC32",
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})

    result = await store.download("mp", tmp_path / "mp", part_size=PART)

    assert (tmp_path / "mp").read_bytes() == data
    assert result.etag.endswith("-3")


async def test_missing_key(store: AsyncS3Store, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await store.download("missing", tmp_path / "sub" / "missing")
    assert not (tmp_path / "sub").exists()

    existing = tmp_path / "existing"
    existing.write_bytes(b"keep me")
    with pytest.raises(ObjectNotFound):
        await store.download("missing", existing)
    assert existing.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []


async def test_local_file_errors_are_storage_errors(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError) as caught:
        await store.download("k", tmp_path / "file" / "below")
    assert isinstance(caught.value.__cause__, OSError)
    assert (tmp_path / "file").read_bytes() == b""


async def test_local_file_errors_are_storage_errors_for_listed_small_objects(
    store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # A listed object of a few bytes is fetched whole and written in one go: the same error, nothing left.
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    (tmp_path / "file").write_bytes(b"")
    [info] = [info async for info in store.list()]
    result = await store.download_many([(info, tmp_path / "file" / "below")])
    [item] = result.items
    assert isinstance(item.error, StorageError) and isinstance(item.error.__cause__, OSError)
    assert (tmp_path / "file").read_bytes() == b""
    assert leftovers(tmp_path) == []


async def test_a_name_that_nearly_fills_the_limit_downloads(
    store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    name = "n" * 250
    result = await store.download("k", tmp_path / name)
    assert (tmp_path / name).read_bytes() == b"data" and result.size == 4
    assert leftovers(tmp_path) == []


async def test_bad_arguments_fail_before_any_request(store: AsyncS3Store, tmp_path: Path) -> None:
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument):
        await store.download("", tmp_path / "x")
    with pytest.raises(InvalidArgument):
        await store.download("k", tmp_path / "x", part_size=1024)
    with pytest.raises(InvalidArgument):
        await store.download("k", tmp_path / "x", concurrency=0)
    with pytest.raises(InvalidArgument):
        store.stream("k", byte_range=(5, 1))
    assert counter.sent == []


async def test_object_replaced_mid_download(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="moving", Body=payload(3 * PART))
    dest = tmp_path / "moving"
    dest.write_bytes(b"before")

    replaced: list[int] = []

    def replace_once(event: TransferProgress) -> None:
        if not replaced:
            replaced.append(event.transferred)
            s3.put_object(Bucket=bucket, Key="moving", Body=payload(3 * PART, seed=7))

    with pytest.raises(ObjectChanged) as caught:
        await store.download("moving", dest, part_size=PART, concurrency=1, progress=replace_once)
    assert caught.value.code == "PreconditionFailed"  # moto honours If-Match on ranged GETs
    assert dest.read_bytes() == b"before"
    assert leftovers(tmp_path) == []


async def test_etag_check_catches_servers_that_ignore_if_match(
    wire: tuple[WireCounter, StoreSettings], s3: Any, bucket: str, tmp_path: Path
) -> None:
    counter, settings = wire
    s3.put_object(Bucket=bucket, Key="moving", Body=payload(2 * PART))
    counter.dropped_headers.add("if-match")  # a server that ignores If-Match
    replaced: list[bool] = []

    def replace_once(event: TransferProgress) -> None:
        if not replaced:
            replaced.append(True)
            s3.put_object(Bucket=bucket, Key="moving", Body=payload(2 * PART, seed=3))

    async with AsyncS3Store(bucket, settings=settings) as store:
        with pytest.raises(ObjectChanged, match="changed during the read"):
            await store.download("moving", tmp_path / "moving", part_size=PART, concurrency=1, progress=replace_once)
    assert not (tmp_path / "moving").exists()
    assert leftovers(tmp_path) == []


async def test_cancelled_download_leaves_nothing(store: AsyncS3Store, s3: Any, bucket: str, tmp_path: Path) -> None:
    data = payload(3 * PART)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    dest = tmp_path / "big"
    dest.write_bytes(b"before")

    with anyio.CancelScope() as scope:

        def cancel(event: TransferProgress) -> None:
            scope.cancel()

        await store.download("big", dest, part_size=PART, concurrency=2, progress=cancel)
    assert scope.cancelled_caught
    assert dest.read_bytes() == b"before"
    assert leftovers(tmp_path) == []
    assert (await store.download("big", dest)).size == len(data)  # the store still works


# A TCP proxy on loopback that cuts one response short.


class CuttingProxy:
    """Forwards to the server; the first connection to carry more than ``cut_after`` bytes back is cut."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        # The Range header of every request forwarded, in order.
        self.ranges: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, may_cut: bool) -> None:
        forwarded = 0
        try:
            while data := source.recv(256 * 1024):
                if not may_cut:
                    self.ranges += [found.decode() for found in re.findall(rb"(?im)^range: *([^\r\n]*)", data)]
                if may_cut and forwarded + len(data) > self.cut_after:
                    with self._lock:
                        cut = self.cuts == 0
                        self.cuts += cut
                    if cut:
                        target.sendall(data[: self.cut_after - forwarded])
                        break
                target.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@pytest.fixture
def cutting_proxy(endpoint_url: str) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(int(endpoint_url.rsplit(":", 1)[1]), cut_after=2 * MiB + 1000)
    yield proxy
    proxy.close()


async def test_cut_response_resumes_where_it_stopped(
    cutting_proxy: CuttingProxy, settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = payload(3 * PART + 99)
    s3.put_object(Bucket=bucket, Key="cut", Body=data)
    proxied = settings.model_copy(update={"endpoint_url": f"http://127.0.0.1:{cutting_proxy.port}"})
    events: list[int] = []

    async with AsyncS3Store(bucket, settings=proxied) as store:
        result = await store.download(
            "cut", tmp_path / "cut", part_size=PART, concurrency=1, progress=lambda e: events.append(e.transferred)
        )

    assert cutting_proxy.cuts == 1
    assert (tmp_path / "cut").read_bytes() == data
    assert result.size == len(data)
    # The retry asked only for what was missing of the first part, after the bytes already written.
    ranges = cutting_proxy.ranges
    assert len(ranges) == 5
    resumed_from = int(ranges[1].removeprefix("bytes=").split("-")[0])
    assert 0 < resumed_from < PART
    assert ranges[1].endswith(f"-{PART - 1}")
    assert events == sorted(events)
    assert events[-1] == len(data)


# Streams


async def test_stream_yields_exact_bytes(store: AsyncS3Store, s3: Any, bucket: str) -> None:
    data = payload(23 * MiB)
    s3.put_object(Bucket=bucket, Key="s", Body=data)

    async with store.stream("s", part_size=PART, concurrency=3) as chunks:
        assert b"".join([chunk async for chunk in chunks]) == data

    plain = b"".join([chunk async for chunk in store.stream("s", part_size=PART, concurrency=2)])
    assert plain == data


@pytest.mark.parametrize("byte_range", [(0, 0), (10, PART + 10), (PART - 1, 2 * PART), (3 * PART, 5 * PART)], ids=str)
async def test_stream_byte_range(store: AsyncS3Store, s3: Any, bucket: str, byte_range: tuple[int, int]) -> None:
    data = payload(3 * PART + 5)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    first, last = byte_range

    async with store.stream("r", byte_range=byte_range, part_size=PART, concurrency=2) as chunks:
        got = b"".join([chunk async for chunk in chunks])

    assert got == data[first : last + 1]


async def test_stream_empty_and_missing(store: AsyncS3Store, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert [chunk async for chunk in store.stream("empty")] == []
    with pytest.raises(ObjectNotFound):
        async with store.stream("missing") as chunks:
            async for _ in chunks:
                pass
    with pytest.raises(ObjectNotFound):
        async for _ in store.stream("missing"):
            pass


async def test_stream_object_replaced(store: AsyncS3Store, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="m", Body=payload(3 * PART))
    received = 0
    stream = store.stream("m", part_size=PART, concurrency=1)
    with pytest.raises(ObjectChanged):
        async for chunk in stream:
            if received == 0:
                s3.put_object(Bucket=bucket, Key="m", Body=b"replaced")
            received += len(chunk)
    assert received == PART
    assert [chunk async for chunk in stream] == []  # a failed stream stays finished


def our_tasks() -> int:
    return len(asyncio.all_tasks())


async def test_stream_break_and_cancel_leave_nothing_running(store: AsyncS3Store, s3: Any, bucket: str) -> None:
    data = payload(4 * PART)
    s3.put_object(Bucket=bucket, Key="b", Body=data)
    before = our_tasks()

    async with store.stream("b", part_size=PART, concurrency=3) as chunks:
        async for _ in chunks:
            assert our_tasks() > before  # ranges are being read ahead
            break
    assert our_tasks() == before

    with anyio.CancelScope() as scope:
        async with store.stream("b", part_size=PART, concurrency=3) as chunks:
            async for _ in chunks:
                scope.cancel()
                await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert our_tasks() == before

    async for _ in store.stream("b", part_size=PART, concurrency=2):
        break
    assert our_tasks() == before
    assert await store.get_bytes("b", byte_range=(0, 9)) == data[:10]


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set size from /proc")
def test_memory_is_bounded(endpoint_url: str, s3: Any, bucket: str, tmp_path: Path) -> None:
    size = 48 * MiB
    s3.put_object(Bucket=bucket, Key="mem", Body=payload(size))
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from aiostorage import AsyncS3Store, StoreSettings

        PAGE = os.sysconf("SC_PAGE_SIZE")

        def rss():
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * PAGE

        async def main():
            settings = StoreSettings(endpoint_url={endpoint_url!r}, aws_access_key_id="testing",
                                     aws_secret_access_key="testing")
            async with AsyncS3Store({bucket!r}, settings=settings) as store:
                await store.get_bytes("mem", byte_range=(0, 0))
                base = rss()
                total, stream_peak = 0, 0
                async with store.stream("mem", part_size={PART}, concurrency=2) as chunks:
                    async for chunk in chunks:
                        total += len(chunk)
                        stream_peak = max(stream_peak, rss() - base)
                assert total == {size}, total
                download_peak = [0]

                def sample(event):
                    download_peak[0] = max(download_peak[0], rss() - base)

                result = await store.download(
                    "mem", {str(tmp_path / "mem")!r}, part_size={PART}, concurrency=4, progress=sample
                )
                assert result.size == {size}
                print(stream_peak, download_peak[0])

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    stream_peak, download_peak = map(int, done.stdout.split())
    # Two 5 MiB ranges in flight or buffered, one being consumed, and change; never the 48 MiB object.
    assert stream_peak < 24 * MiB, stream_peak
    # Four parts in flight, each holding at most about one write's worth of chunks, plus the allocator's
    # slack on a loaded machine; never a large share of the 48 MiB object.
    assert download_peak < 20 * MiB, download_peak


async def test_stream_fails_after_a_cancelled_read_instead_of_skipping_bytes(store: AsyncS3Store, s3: Any) -> None:
    s3.put_object(Bucket=store.bucket, Key="cut.bin", Body=os.urandom(12 * MiB))
    stream = store.stream("cut.bin", part_size=5 * MiB, concurrency=2)
    with anyio.move_on_after(0.001) as scope:
        await stream.__anext__()
    if not scope.cancelled_caught:
        pytest.skip("the first read finished within 1 ms; nothing was cancelled")
    with pytest.raises(StorageError, match="cancelled"):
        async for _ in stream:
            pass
    assert await store.get_bytes("cut.bin", byte_range=(0, 0))


async def test_writer_wakes_every_range_waiting_for_room(tmp_path: Path) -> None:
    """Several ranges waiting at once for the writer's queue to drain are all woken; nothing is lost."""
    dest = tmp_path / "out.bin"
    temp = _TempFile(dest)
    # A limit below one batch: every put after the first waits for the thread.
    writer = _Writer(temp, limit=1)
    batches, producers, size = 20, 4, 4096

    async def produce(index: int) -> None:
        for n in range(batches):
            offset = (index * batches + n) * size
            await writer.put(offset, [bytes([index]) * size])

    with anyio.fail_after(30):
        async with anyio.create_task_group() as outer:
            outer.start_soon(lambda: anyio.to_thread.run_sync(writer.run))
            try:
                async with anyio.create_task_group() as group:
                    for index in range(producers):
                        group.start_soon(produce, index)
            finally:
                writer.close(abort=False)
    assert writer.written == writer.queued == producers * batches * size
    assert temp.fd is not None
    os.close(temp.fd)
    data = temp.path.read_bytes()
    assert data == b"".join(bytes([i]) * (batches * size) for i in range(producers))
