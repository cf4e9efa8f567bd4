"""Presigned multipart uploads (the server half of a browser upload), with parts PUT by a plain HTTP client."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from aiostorage import (
    AsyncS3Store,
    BucketNotFound,
    InvalidArgument,
    MultipartUploadInfo,
    PresignedMultipartUpload,
    StoreSettings,
    UploadedPart,
    WriteOptions,
)
from aiostorage.transfer import browser_upload
from tests.conftest import unique_name, wait_for

MiB = 1024 * 1024


def put(url: str, data: bytes) -> tuple[int, str]:
    """PUT ``data`` as a browser's fetch does: no credentials, only the presigned URL; (status, ETag)."""
    # urllib's default type for a body is a form, which servers may try to parse; a browser sends a Blob.
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["ETag"].strip('"')
    except urllib.error.HTTPError as error:
        return error.code, ""


def send_parts(upload: PresignedMultipartUpload, data: bytes, numbers: list[int] | None = None) -> dict[int, str]:
    """PUT the given parts (all by default) of ``data``; their ETags by part number."""
    etags = {}
    for part in upload.parts:
        if numbers is not None and part.part_number not in numbers:
            continue
        start = (part.part_number - 1) * upload.part_size
        status, etag = put(part.url, data[start : start + part.size])
        assert status == 200
        etags[part.part_number] = etag
    return etags


async def open_uploads(store: AsyncS3Store, prefix: str = "") -> list[MultipartUploadInfo]:
    return [info async for info in store.list_multipart_uploads(prefix)]


async def test_parts_put_over_plain_http_then_completed_with_their_etags(store: AsyncS3Store, s3: Any) -> None:
    data = os.urandom(2 * 5 * MiB + 1234)
    upload = await store.presign_multipart_upload(
        "uploads/clip.mp4", len(data), part_size=5 * MiB, metadata={"owner": "u1"}
    )
    assert (upload.key, upload.size, upload.part_size) == ("uploads/clip.mp4", len(data), 5 * MiB)
    assert [(p.part_number, p.size) for p in upload.parts] == [(1, 5 * MiB), (2, 5 * MiB), (3, 1234)]
    assert all("X-Amz-Signature=" in part.url for part in upload.parts)
    etags = send_parts(upload, data)

    result = await store.complete_multipart_upload(upload.key, upload.upload_id, list(etags.items()), size=len(data))

    assert (result.size, result.parts) == (len(data), 3)
    stored = s3.get_object(Bucket=store.bucket, Key=upload.key)
    assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(data).digest()
    # Fixed when the upload was created: the parts carried no headers.
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"] == {"owner": "u1"}
    assert result.etag == stored["ETag"].strip('"')
    assert await open_uploads(store) == []


async def test_write_options_are_fixed_at_creation(store: AsyncS3Store, s3: Any) -> None:
    data = os.urandom(1000)
    options = WriteOptions(
        cache_control="max-age=60", storage_class="STANDARD_IA", tags={"team": "video"}, sse="AES256"
    )
    upload = await store.presign_multipart_upload("uploads/o.mp4", len(data), options=options)
    send_parts(upload, data)
    await store.complete_multipart_upload(upload.key, upload.upload_id)

    head = s3.head_object(Bucket=store.bucket, Key=upload.key)
    assert (head["CacheControl"], head["StorageClass"], head["ServerSideEncryption"]) == (
        "max-age=60",
        "STANDARD_IA",
        "AES256",
    )
    assert s3.get_object_tagging(Bucket=store.bucket, Key=upload.key)["TagSet"] == [{"Key": "team", "Value": "video"}]


async def test_a_checksum_algorithm_is_refused_since_browsers_send_none(settings: StoreSettings) -> None:
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(InvalidArgument, match="without checksums"):
            await store.presign_multipart_upload("k", MiB, options=WriteOptions(checksum_algorithm="SHA256"))
        with pytest.raises(InvalidArgument, match="options must be a WriteOptions"):
            await store.presign_multipart_upload("k", MiB, options={"sse": "AES256"})  # type: ignore[arg-type]


async def test_completed_without_parts_uses_what_list_parts_reports(store: AsyncS3Store, s3: Any) -> None:
    data = os.urandom(5 * MiB + 10)
    upload = await store.presign_multipart_upload("uploads/b.mov", len(data), part_size=5 * MiB, content_type="x/y")
    send_parts(upload, data)

    result = await store.complete_multipart_upload(upload.key, upload.upload_id)

    assert (result.size, result.parts) == (len(data), 2)
    stored = s3.get_object(Bucket=store.bucket, Key=upload.key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "x/y"


async def test_resume_sends_only_what_list_parts_lacks(store: AsyncS3Store, s3: Any) -> None:
    data = os.urandom(3 * 5 * MiB)
    upload = await store.presign_multipart_upload("uploads/r.mkv", len(data), part_size=5 * MiB)
    sent = send_parts(upload, data, [1, 3])

    listed = await store.list_parts(upload.key, upload.upload_id)
    assert [(p.part_number, p.etag, p.size) for p in listed] == [(1, sent[1], 5 * MiB), (3, sent[3], 5 * MiB)]
    with pytest.raises(InvalidArgument, match="missing before part 3: 2"):
        await store.complete_multipart_upload(upload.key, upload.upload_id)
    # Refused before CompleteMultipartUpload: the upload is still open, and can be finished.
    assert [info.upload_id for info in await open_uploads(store, "uploads/")] == [upload.upload_id]

    missing = {p.part_number for p in upload.parts} - {p.part_number for p in listed}
    send_parts(upload, data, sorted(missing))
    result = await store.complete_multipart_upload(upload.key, upload.upload_id, size=len(data))

    assert result.parts == 3
    assert s3.get_object(Bucket=store.bucket, Key=upload.key)["Body"].read() == data


async def test_a_short_part_is_refused_before_completion(store: AsyncS3Store, s3: Any) -> None:
    upload = await store.presign_multipart_upload("uploads/s.mp4", 10 * MiB, part_size=5 * MiB)
    put(upload.parts[0].url, os.urandom(MiB))  # a client that sent too little
    put(upload.parts[1].url, os.urandom(5 * MiB))

    with pytest.raises(InvalidArgument, match=r"part 1 \(1048576 bytes\)"):
        await store.complete_multipart_upload(upload.key, upload.upload_id)

    assert [info.upload_id for info in await open_uploads(store)] == [upload.upload_id]
    assert "Contents" not in s3.list_objects_v2(Bucket=store.bucket)


async def test_given_parts_must_be_the_uploaded_ones(store: AsyncS3Store) -> None:
    data = os.urandom(5 * MiB + 1)
    upload = await store.presign_multipart_upload("uploads/g.mp4", len(data), part_size=5 * MiB)
    etags = send_parts(upload, data)

    with pytest.raises(InvalidArgument, match="not uploaded: 3"):
        await store.complete_multipart_upload(upload.key, upload.upload_id, [(1, etags[1]), (2, etags[2]), (3, "e")])
    with pytest.raises(InvalidArgument, match=r"ETag is not the uploaded part's.*: 2"):
        await store.complete_multipart_upload(upload.key, upload.upload_id, [(1, etags[1]), (2, etags[1])])
    with pytest.raises(InvalidArgument, match="missing before part 2: 1"):
        await store.complete_multipart_upload(upload.key, upload.upload_id, [(2, etags[2])])
    with pytest.raises(InvalidArgument, match=f"hold {len(data)} bytes, not the {len(data) + 1} expected"):
        await store.complete_multipart_upload(upload.key, upload.upload_id, size=len(data) + 1)
    result = await store.complete_multipart_upload(upload.key, upload.upload_id, [(2, etags[2]), (1, f'"{etags[1]}"')])
    assert result.size == len(data)


async def test_abort_leaves_no_open_upload(store: AsyncS3Store, s3: Any) -> None:
    upload = await store.presign_multipart_upload("uploads/a.mp4", 6 * MiB, part_size=5 * MiB)
    send_parts(upload, os.urandom(6 * MiB), [1])
    other = await store.presign_multipart_upload("elsewhere/a.mp4", 1)
    assert {info.key for info in await open_uploads(store)} == {"uploads/a.mp4", "elsewhere/a.mp4"}

    await store.abort_multipart_upload(upload.key, upload.upload_id)

    assert [info.key for info in await open_uploads(store, "uploads/")] == []
    assert s3.list_multipart_uploads(Bucket=store.bucket, Prefix="uploads/").get("Uploads", []) == []
    # A second Cancel (a double click, a retried request) is not an error.
    await store.abort_multipart_upload(upload.key, upload.upload_id)
    await store.abort_multipart_upload(other.key, other.upload_id)
    assert await open_uploads(store) == []


async def test_listings_follow_every_page(store: AsyncS3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_upload, "PAGE_SIZE", 2)
    upload = await store.presign_multipart_upload("uploads/p.mp4", 5 * 5 * MiB, part_size=5 * MiB)
    for part in upload.parts:
        put(part.url, b"x" * part.part_number)  # ListParts pages do not care about sizes
    others = [await store.presign_multipart_upload(f"uploads/q{i}.mp4", 1) for i in range(4)]

    parts = await store.list_parts(upload.key, upload.upload_id)
    uploads = await open_uploads(store, "uploads/")

    assert [(p.part_number, p.size) for p in parts] == [(n, n) for n in range(1, 6)]
    assert sorted(info.upload_id for info in uploads) == sorted(u.upload_id for u in [upload, *others])
    assert all(info.initiated is not None for info in uploads)


async def test_part_size_grows_so_the_size_fits_in_10000_parts(store: AsyncS3Store) -> None:
    size = 100 * 1024 * MiB  # 12,800 parts of the store's 8 MiB
    upload = await store.presign_multipart_upload("uploads/big.mkv", size)
    try:
        assert upload.part_size == 16 * MiB
        assert len(upload.parts) == 6400
        assert sum(part.size for part in upload.parts) == size
        assert [p.part_number for p in upload.parts] == list(range(1, 6401))
    finally:
        await store.abort_multipart_upload(upload.key, upload.upload_id)


@pytest.mark.parametrize(
    ("key", "size", "options", "message"),
    [
        ("", 1, {}, "key must not be empty"),
        ("k", 0, {}, "size must be an int from 1 byte"),
        ("k", True, {}, "size must be an int"),
        ("k", 5 * 1024**4 + 1, {}, "size must be an int from 1 byte to 5 TiB"),
        ("k", MiB, {"part_size": MiB}, "part_size must be between 5 MiB"),
        ("k", 10_001 * 5 * MiB, {"part_size": 5 * MiB}, "more than 10000 parts"),
        ("k", MiB, {"expires_in": 0}, "expires_in must be a positive int"),
        ("k", MiB, {"expires_in": 8 * 24 * 3600}, "at most 7 days"),
        ("k", MiB, {"metadata": {"a": "b\nc"}}, "line break"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    settings: StoreSettings, key: str, size: int, options: dict[str, Any], message: str
) -> None:
    # A request would fail with BucketNotFound: the bucket does not exist.
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(InvalidArgument, match=message):
            await store.presign_multipart_upload(key, size, **options)
        with pytest.raises(BucketNotFound):
            await store.presign_multipart_upload("k", MiB)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ("1abc", r"must be .part_number, etag. pairs"),
        ([(0, "e")], "part number must be an int from 1 to 10000"),
        ([(10_001, "e")], "from 1 to 10000"),
        ([(1, "")], "part 1: the ETag must be a non-empty str"),
        ([(1,)], "pairs, got"),
    ],
)
async def test_bad_parts_are_refused_before_any_request(settings: StoreSettings, parts: Any, message: str) -> None:
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(InvalidArgument, match=message):
            await store.complete_multipart_upload("k", "upload", parts)
        with pytest.raises(InvalidArgument, match="upload_id must be a non-empty str"):
            await store.list_parts("k", "")


def test_duplicate_part_numbers_with_two_etags_are_refused() -> None:
    uploaded = [UploadedPart(part_number=1, etag="a", size=1)]
    with pytest.raises(InvalidArgument, match="part 1 is given twice"):
        browser_upload.check_parts(uploaded, [(1, "a"), (1, "b")], size=None)
    with pytest.raises(InvalidArgument, match="no part has been uploaded"):
        browser_upload.check_parts([], None, size=None)


@pytest.mark.strict_only(reason="moto checks neither signatures nor expiry of presigned URLs")
async def test_an_expired_part_url_is_refused(store: AsyncS3Store) -> None:
    upload = await store.presign_multipart_upload("uploads/e.mp4", MiB, expires_in=1)
    signed_at = time.time()
    wait_for(lambda: time.time() > signed_at + 2, timeout=5)
    status, _ = put(upload.parts[0].url, os.urandom(MiB))
    assert status == 403
    assert await store.list_parts(upload.key, upload.upload_id) == []
    await store.abort_multipart_upload(upload.key, upload.upload_id)
