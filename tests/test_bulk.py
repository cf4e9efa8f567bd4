from __future__ import annotations

import asyncio
import base64
import io
import os
from pathlib import Path
from typing import Any

import pytest

from aiostorage import (
    AsyncS3Store,
    BulkProgress,
    IntegrityError,
    InvalidArgument,
    ObjectNotFound,
    StoreSettings,
)
from aiostorage._transport import DIRECT_MAX
from tests.conftest import RequestCounter, WireCounter

MiB = 1024 * 1024


def _write_files(folder: Path, count: int) -> dict[str, bytes]:
    contents = {f"sub{i % 7}/file-{i:03d}.bin": os.urandom(100 + i) for i in range(count)}
    for relative, data in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


async def test_upload_many_and_download_many_round_trip(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    contents = _write_files(tmp_path / "src", 300)
    events: list[BulkProgress] = []
    uploaded = await store.upload_many(
        [(tmp_path / "src" / relative, f"bulk/{relative}") for relative in contents], progress=events.append
    )
    assert uploaded.ok and len(uploaded.items) == 300
    assert events[-1].objects_done == 300 and events[-1].bytes_done == events[-1].bytes_total
    assert [e.bytes_done for e in events] == sorted(e.bytes_done for e in events)
    sample = "sub3/file-010.bin"
    assert s3.get_object(Bucket=store.bucket, Key=f"bulk/{sample}")["Body"].read() == contents[sample]

    downloaded = await store.download_many(
        [(f"bulk/{relative}", tmp_path / "dst" / relative) for relative in contents], fsync=False
    )
    assert downloaded.ok and len(downloaded.succeeded) == 300
    for relative, data in contents.items():
        assert (tmp_path / "dst" / relative).read_bytes() == data


async def test_listed_small_objects_download_in_one_get_each(
    bucket: str, wire: tuple[WireCounter, StoreSettings], tmp_path: Path
) -> None:
    """A listing's size says the object fits one part: asked for whole, its checksum comes with it (no HEAD).

    Every GET is a direct one (botocore never sees it): whole up to DIRECT_MAX, streamed above.
    """
    counter, settings = wire
    bodies = {f"listed/{n}.bin": os.urandom(1000 + n) for n in range(5)}
    bodies["listed/empty.bin"] = b""
    bodies["listed/larger.bin"] = os.urandom(DIRECT_MAX + 10)
    async with AsyncS3Store(bucket, settings=settings) as store:
        await asyncio.gather(*(store.put_bytes(key, data) for key, data in bodies.items()))
        infos = [info async for info in store.list("listed/")]
        botocore = RequestCounter(store.client)
        counter.sent.clear()
        result = await store.download_many([(info, tmp_path / info.key) for info in infos], fsync=False)
        assert result.ok and len(result.succeeded) == len(bodies)
        assert sorted(sent.split()[0] for sent in counter.sent) == ["GET"] * len(bodies)
        assert botocore.sent == []
        for key, data in bodies.items():
            assert (tmp_path / key).read_bytes() == data

        # The streamed whole GET: its checksum is the one compared; a wrong one fails the item, leaves no file.
        counter.replaced_answer_headers["x-amz-checksum-crc32"] = base64.b64encode(b"\0\0\0\0").decode()
        larger = next(info for info in infos if info.key == "listed/larger.bin")
        failed = await store.download_many([(larger, tmp_path / "again.bin")], fsync=False)
    assert isinstance(failed.items[0].error, IntegrityError)
    assert not (tmp_path / "again.bin").exists()


async def test_one_failure_does_not_stop_the_others(store: AsyncS3Store, tmp_path: Path) -> None:
    contents = _write_files(tmp_path, 20)
    pairs = [(tmp_path / relative, f"k/{relative}") for relative in contents]
    (tmp_path / "sub0/file-007.bin").unlink()  # removed before its turn
    result = await store.upload_many(pairs)
    assert len(result.failed) == 1
    failed = result.failed[0]
    assert failed.source.endswith("file-007.bin") and isinstance(failed.error, OSError)
    assert len(result.succeeded) == 19
    assert await store.exists("k/sub1/file-008.bin")
    missing = await store.download_many(
        [("k/absent", tmp_path / "out/absent"), ("k/sub1/file-008.bin", tmp_path / "out/ok")]
    )
    assert [item.ok for item in missing.items] == [False, True]
    assert not (tmp_path / "out/absent").exists()


async def test_fail_fast_stops_the_batch(store: AsyncS3Store, tmp_path: Path) -> None:
    (tmp_path / "ok.bin").write_bytes(b"ok")
    pairs = [(tmp_path / "missing.bin", "a"), (tmp_path / "ok.bin", "b"), (tmp_path / "ok.bin", "c")]
    result = await store.upload_many(pairs, concurrency=1, fail_fast=True)
    assert not result.items[0].ok
    assert [item.ok for item in result.items[1:]] == [False, False]
    assert "not attempted" in str(result.items[2].error)
    assert not await store.exists("c")


async def test_objects_and_parts_share_one_budget(
    bucket: str, wire: tuple[WireCounter, StoreSettings], tmp_path: Path
) -> None:
    """Counted on the wire: the small files go out as direct PUTs, which botocore's hooks never see."""
    counter, settings = wire
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(16 * MiB))
    smalls = _write_files(tmp_path / "small", 40)
    pairs: list[tuple[Any, str]] = [(big, "big.bin")]
    pairs += [(tmp_path / "small" / relative, relative) for relative in smalls]
    async with AsyncS3Store(bucket, settings=settings, concurrency=16, part_size=5 * MiB) as store:
        result = await store.upload_many(pairs, concurrency=3)
        assert result.ok
        assert counter.max_in_flight == 3
        assert sum("partNumber=" in sent for sent in counter.sent) == 4
        assert sum(sent.startswith("PUT") and "?" not in sent for sent in counter.sent) == 40
        assert await store.get_bytes("big.bin") == big.read_bytes()


async def test_bulk_sends_nothing_for_bad_keys(store: AsyncS3Store, tmp_path: Path) -> None:
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument):
        await store.upload_many([(b"x", "ok"), (b"y", "")])
    with pytest.raises(InvalidArgument):
        await store.download_many([("", tmp_path / "x")])
    assert counter.sent == []
    assert not await store.exists("ok")  # nor a direct PUT, which botocore's hooks do not see


async def test_sync_up_then_down_transfers_only_changes(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "src"
    contents = _write_files(source, 12)
    first = await store.sync(source, "backup", direction="up")
    assert first.ok and len(first.items) == 12 and first.skipped == []
    assert (
        s3.get_object(Bucket=store.bucket, Key="backup/sub2/file-002.bin")["Body"].read()
        == contents["sub2/file-002.bin"]
    )

    (source / "sub2/file-002.bin").write_bytes(b"changed, and another size")
    (source / "new.txt").write_bytes(b"new")
    second = await store.sync(source, "backup/", direction="up")
    assert sorted(item.destination for item in second.items) == [
        f"s3://{store.bucket}/backup/new.txt",
        f"s3://{store.bucket}/backup/sub2/file-002.bin",
    ]
    assert len(second.skipped) == 12 - 1

    mirror = tmp_path / "mirror"
    down = await store.sync(mirror, "backup", direction="down")
    assert down.ok and len(down.items) == 13
    assert (mirror / "sub2/file-002.bin").read_bytes() == b"changed, and another size"
    again = await store.sync(mirror, "backup", direction="down")
    assert again.items == [] and len(again.skipped) == 13


async def test_sync_delete_both_ways(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "src"
    _write_files(source, 3)
    await store.sync(source, "d", direction="up")
    s3.put_object(Bucket=store.bucket, Key="d/only-remote.txt", Body=b"x")
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "only-local.txt").write_bytes(b"y")

    up = await store.sync(source, "d", direction="up", delete=True)
    assert up.deleted == [f"s3://{store.bucket}/d/only-remote.txt"]
    assert not await store.exists("d/only-remote.txt")

    down = await store.sync(tmp_path / "mirror", "d", direction="down", delete=True)
    assert down.deleted == [str(tmp_path / "mirror" / "only-local.txt")]
    assert sorted(p.name for p in (tmp_path / "mirror").rglob("*") if p.is_file()) == [
        "file-000.bin",
        "file-001.bin",
        "file-002.bin",
    ]


async def test_sync_down_never_writes_outside_the_folder(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=store.bucket, Key="p/../escape.txt", Body=b"evil")
    s3.put_object(Bucket=store.bucket, Key="p/fine.txt", Body=b"ok")
    result = await store.sync(tmp_path / "inside", "p", direction="down")
    assert [item.destination for item in result.succeeded] == [str(tmp_path / "inside" / "fine.txt")]
    assert [item.source for item in result.failed] == [f"s3://{store.bucket}/p/../escape.txt"]
    assert not (tmp_path / "escape.txt").exists()


async def test_sync_rejects_bad_direction_before_any_request(store: AsyncS3Store, tmp_path: Path) -> None:
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument, match="direction"):
        await store.sync(tmp_path, "p", direction="sideways")
    assert counter.sent == []


async def test_upload_many_shares_one_pool_of_part_buffers(bucket: str, settings: StoreSettings) -> None:
    """Parts read but not yet acknowledged stay within the concurrency, summed over every item."""
    outstanding = {"now": 0, "peak": 0}

    class CountingFile(io.BytesIO):
        def readinto(self, buffer: Any) -> int:
            read = super().readinto(buffer)
            if read:
                outstanding["now"] += 1
                outstanding["peak"] = max(outstanding["peak"], outstanding["now"])
            return read

    def acked(**_: Any) -> None:
        outstanding["now"] -= 1

    files = [CountingFile(os.urandom(15 * MiB)) for _ in range(3)]
    async with AsyncS3Store(bucket, settings=settings, part_size=5 * MiB) as store:
        store.client.meta.events.register("after-call.s3.UploadPart", acked)
        result = await store.upload_many([(file, f"f{i}") for i, file in enumerate(files)], concurrency=2)
        assert result.ok
        assert await store.get_bytes("f2") == files[2].getvalue()
    assert outstanding["now"] == 0
    assert outstanding["peak"] <= 2


async def test_copy_many_copies_as_listed_under_one_budget(store: AsyncS3Store, s3: Any) -> None:
    bodies = {f"src/{i}.bin": os.urandom(50 + i) for i in range(8)}
    await asyncio.gather(*(store.put_bytes(key, body, metadata={"n": key}) for key, body in bodies.items()))
    listed = [info async for info in store.list("src/", ordered=True)]
    events: list[BulkProgress] = []
    counter = RequestCounter(store.client)
    pins: dict[str, str] = {}

    def record_pin(request: Any, **_: Any) -> None:
        if "x-amz-copy-source-if-match" in request.headers:
            pins[request.url.rsplit("/", 1)[-1]] = request.headers["x-amz-copy-source-if-match"].decode()

    store.client.meta.events.register("before-send.s3.CopyObject", record_pin)

    pairs: list[tuple[Any, str]] = [(info, "dst/" + info.key.removeprefix("src/")) for info in listed]
    pairs += [("src/1.bin", "by-name/1.bin"), ("src/absent.bin", "dst/absent.bin")]
    result = await store.copy_many(pairs, concurrency=2, progress=events.append)

    assert [item.ok for item in result.items] == [True] * 9 + [False]
    assert isinstance(result.items[-1].error, ObjectNotFound)
    for key, body in bodies.items():
        copy = s3.get_object(Bucket=store.bucket, Key=key.replace("src/", "dst/"))
        assert copy["Body"].read() == body and copy["Metadata"] == {"n": key}
    assert s3.get_object(Bucket=store.bucket, Key="by-name/1.bin")["Body"].read() == bodies["src/1.bin"]
    # Listed sources are copied as listed: no HEAD, and each copy pinned to the listed ETag (S3 refuses
    # the copy if the source changed since; moto does not check: tests/test_strict_s3.py shows the refusal).
    assert sum(sent.startswith("HEAD") for sent in counter.sent) == 2
    assert {name: pins[name] for name in pins if name != "1.bin"} == {
        info.key.removeprefix("src/"): f'"{info.etag}"' for info in listed if info.key != "src/1.bin"
    }
    assert counter.max_in_flight == 2
    assert events[-1].objects_done == len(pairs)
