from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aiostorage import AsyncS3Store, BulkProgress, InvalidArgument, StoreSettings
from tests.conftest import RequestCounter

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


async def test_objects_and_parts_share_one_budget(bucket: str, settings: StoreSettings, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(16 * MiB))
    smalls = _write_files(tmp_path / "small", 40)
    pairs: list[tuple[Any, str]] = [(big, "big.bin")]
    pairs += [(tmp_path / "small" / relative, relative) for relative in smalls]
    async with AsyncS3Store(bucket, settings=settings, concurrency=16, part_size=5 * MiB) as store:
        counter = RequestCounter(store.client)
        result = await store.upload_many(pairs, concurrency=3)
        assert result.ok
        assert counter.max_in_flight <= 3
        assert sum("partNumber=" in sent for sent in counter.sent) == 4
        assert await store.get_bytes("big.bin") == big.read_bytes()


async def test_bulk_sends_nothing_for_bad_keys(store: AsyncS3Store, tmp_path: Path) -> None:
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument):
        await store.upload_many([(b"x", "ok"), (b"y", "")])
    with pytest.raises(InvalidArgument):
        await store.download_many([("", tmp_path / "x")])
    assert counter.sent == []
