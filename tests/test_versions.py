"""Versions of objects (list, read, delete by id) and stores for other buckets on one client (``for_bucket``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiostorage import AsyncS3Store, ObjectNotFound, StorageError, StoreSettings
from aiostorage.transfer.versions import list_versions
from tests.conftest import WireCounter, unique_name


@pytest.fixture
def versioned(s3: Any, bucket: str) -> str:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


async def test_versions_listed_read_and_deleted_by_id(versioned: str, settings: StoreSettings, s3: Any) -> None:
    async with AsyncS3Store(versioned, settings=settings) as store:
        first = await store.put_bytes("doc.txt", b"first")
        second = await store.put_bytes("doc.txt", b"second")
        await store.put_bytes("other.txt", b"o")
        await store.delete("doc.txt")
        assert first.version_id and second.version_id and first.version_id != second.version_id

        versions = [version async for version in store.list_versions("doc")]
        assert [(v.key, v.is_delete_marker, v.is_latest) for v in versions] == [
            ("doc.txt", True, True),
            ("doc.txt", False, False),
            ("doc.txt", False, False),
        ]
        marker, newer, older = versions
        assert (marker.size, marker.etag) == (None, None)
        assert (newer.version_id, newer.size, newer.etag) == (second.version_id, 6, second.etag)
        assert (older.version_id, older.size) == (first.version_id, 5)
        # The oracle sees the same.
        oracle = s3.list_object_versions(Bucket=versioned, Prefix="doc")
        assert {v["VersionId"] for v in oracle["Versions"]} == {first.version_id, second.version_id}
        assert [m["VersionId"] for m in oracle["DeleteMarkers"]] == [marker.version_id]

        with pytest.raises(ObjectNotFound):
            await store.get_bytes("doc.txt")
        assert await store.get_bytes("doc.txt", version_id=first.version_id) == b"first"
        assert (await store.head("doc.txt", version_id=second.version_id)).size == 6

        await store.delete("doc.txt", version_id=second.version_id)
        left = [(v.version_id, v.is_delete_marker) async for v in store.list_versions("doc")]
        assert left == [(marker.version_id, True), (first.version_id, False)]
        # Removing the delete marker makes the remaining version the object again.
        await store.delete("doc.txt", version_id=marker.version_id)
        assert await store.get_bytes("doc.txt") == b"first"


async def test_list_versions_pages(versioned: str, settings: StoreSettings) -> None:
    async with AsyncS3Store(versioned, settings=settings) as store:
        for n in range(3):
            await store.put_bytes("a", str(n).encode())
        await store.put_bytes("b", b"b")
        paged = [(v.key, v.version_id) async for v in list_versions(store._ctx, "", page_size=2)]
        whole = [(v.key, v.version_id) async for v in store.list_versions()]
    assert len(whole) == 4 and paged == whole


async def test_for_bucket_shares_the_client_and_the_request_budget(
    bucket: str, s3: Any, wire: tuple[WireCounter, StoreSettings]
) -> None:
    counter, settings = wire
    other = unique_name("other")
    s3.create_bucket(Bucket=other)
    async with AsyncS3Store(bucket, settings=settings, concurrency=3) as store:
        sibling = store.for_bucket(other)
        assert sibling.bucket == other and sibling.client is store.client
        async with sibling:  # allowed, and closes nothing
            await sibling.put_bytes("warm", b"w")
        counter.reset()
        await asyncio.gather(
            *(store.put_bytes(f"k{n}", b"mine") for n in range(12)),
            *(sibling.put_bytes(f"k{n}", b"theirs") for n in range(12)),
        )
        assert len(counter.sent) == 24
        assert counter.max_in_flight <= 3  # one budget for both buckets
        assert await store.get_bytes("k0") == b"mine" and await sibling.get_bytes("k0") == b"theirs"
        assert sibling.for_bucket(bucket).client is store.client
    assert s3.get_object(Bucket=other, Key="k11")["Body"].read() == b"theirs"
    with pytest.raises(StorageError, match="closed"):
        await sibling.get_bytes("k0")
