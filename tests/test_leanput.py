"""Small PUTs take a lean path (botocore's signer and pool, not its pipeline); results match botocore's."""

from __future__ import annotations

import base64
import zlib
from typing import Any

import pytest

from aiostorage import AsyncS3Store, BucketNotFound, InvalidArgument, StoreSettings
from tests.conftest import RequestCounter, unique_name


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


async def test_lean_put_missing_bucket(settings: StoreSettings) -> None:
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(BucketNotFound):
            await store.put_bytes("k", b"v")
