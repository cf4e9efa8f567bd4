"""Object options on every write, the settings' write defaults, head attributes, tags, presigned GET extras.

Each attribute is written by every write path (the direct small PUT, botocore's PUT, a multipart upload,
a copy, a bulk upload) and read back both by boto3 (the oracle) and by ``head``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from botocore.exceptions import ClientError

from aiostorage import (
    AccessDenied,
    AsyncS3Store,
    BucketNotFound,
    InvalidArgument,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    StoreSettings,
    WriteOptions,
)
from aiostorage._exceptions import translate
from aiostorage._settings import MiB
from aiostorage.transfer.checksum import computable_algorithms
from aiostorage.transfer.options import effective_options, tagging
from tests.conftest import STRICT, RequestCounter, WireCounter, serving, unique_name

EXPIRES = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
# A strict server checks that a KMS key exists; moto takes any key id.
ENCRYPTION: dict[str, Any] = (
    {"sse": "AES256"} if STRICT else {"sse": "aws:kms", "sse_kms_key_id": "key-1", "bucket_key_enabled": True}
)
FULL = WriteOptions(
    cache_control="max-age=60",
    content_disposition='attachment; filename="report.txt"',
    content_encoding="identity",
    content_language="fr-CA",
    expires=EXPIRES,
    storage_class="STANDARD_IA",
    tags={"team": "media", "note": "a b=c/d+e"},
    acl="public-read",
    checksum_algorithm="SHA256",
    **ENCRYPTION,
)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
# Bigger than the direct path takes (1 MiB): botocore sends it.
LARGE = 1024 * 1024 + 1


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def assert_full(s3: Any, bucket: str, key: str, info: ObjectInfo, *, bucket_key: bool = True) -> None:
    """Every attribute of ``FULL`` on the object, as boto3 reads it and as ``head`` reported it.

    ``bucket_key=False``: not the bucket-key flag (moto drops it from multipart uploads).
    """
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["CacheControl"] == "max-age=60" == info.cache_control
    assert head["ContentDisposition"] == 'attachment; filename="report.txt"' == info.content_disposition
    assert head["ContentEncoding"] == "identity" == info.content_encoding
    assert head["ContentLanguage"] == "fr-CA" == info.content_language
    assert head["Expires"] == EXPIRES == info.expires
    assert head["StorageClass"] == "STANDARD_IA" == info.storage_class
    assert head["ServerSideEncryption"] == FULL.sse == info.sse
    assert head.get("SSEKMSKeyId") == FULL.sse_kms_key_id == info.sse_kms_key_id
    if bucket_key or STRICT:
        assert head.get("BucketKeyEnabled") == FULL.bucket_key_enabled
    assert "ChecksumSHA256" in head and info.checksum == f"SHA256:{head['ChecksumSHA256']}"
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"team": "media", "note": "a b=c/d+e"}
    grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert any(grant["Grantee"].get("URI") == ALL_USERS for grant in grants)


# What the options are, before any request


def test_write_options_are_checked_and_frozen() -> None:
    for bad in (
        {"sse": "aws:kms:unknown"},
        {"acl": "everyone"},
        {"checksum_algorithm": "MD5"},
        {"cache_control": "max-age=1\r\nX-Evil: 1"},
        {"tags": {f"k{i}": "v" for i in range(11)}},
        {"tags": {"": "v"}},
        {"expires": datetime(2031, 1, 1)},  # naive: which time zone?
        {"no_such_option": 1},
    ):
        with pytest.raises(InvalidArgument):
            WriteOptions(**bad)
    with pytest.raises(ValueError):
        FULL.cache_control = "other"  # type: ignore[misc]
    assert WriteOptions().checksum_algorithm == "CRC32"


def test_settings_defaults_merge_field_by_field() -> None:
    settings = StoreSettings(bucket="b", sse="aws:kms", sse_kms_key_id="key-9", storage_class="GLACIER_IR")
    assert effective_options(None, StoreSettings(bucket="b")) is None
    merged = effective_options(None, settings)
    assert merged is not None
    assert (merged.sse, merged.sse_kms_key_id, merged.storage_class) == ("aws:kms", "key-9", "GLACIER_IR")
    merged = effective_options(WriteOptions(storage_class="STANDARD", cache_control="no-cache"), settings)
    assert merged is not None
    assert (merged.sse, merged.sse_kms_key_id, merged.storage_class) == ("aws:kms", "key-9", "STANDARD")
    assert merged.cache_control == "no-cache"
    # AES256 asked for by a call does not inherit the settings' KMS key.
    merged = effective_options(WriteOptions(sse="AES256"), settings)
    assert merged is not None and (merged.sse, merged.sse_kms_key_id) == ("AES256", None)
    with pytest.raises(InvalidArgument, match="sse_kms_key_id"):
        effective_options(WriteOptions(sse="AES256", sse_kms_key_id="k"), settings)
    assert tagging({"a b": "c&d=e"}) == "a%20b=c%26d%3De"


def test_settings_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOSTORAGE_SSE", "aws:kms")
    monkeypatch.setenv("AIOSTORAGE_SSE_KMS_KEY_ID", "alias/media")
    monkeypatch.setenv("AIOSTORAGE_STORAGE_CLASS", "STANDARD_IA")
    settings = StoreSettings(bucket="b")
    assert (settings.sse, settings.sse_kms_key_id, settings.storage_class) == ("aws:kms", "alias/media", "STANDARD_IA")


# Every attribute through every write path


async def test_put_bytes_direct_and_botocore_carry_every_option(store: AsyncS3Store, s3: Any) -> None:
    counter = RequestCounter(store.client)
    small = b"small body"
    result = await store.put_bytes("small.txt", small, options=FULL)
    assert counter.sent == []  # the direct path
    assert result.checksum == f"SHA256:{sha256_b64(small)}"
    assert_full(s3, store.bucket, "small.txt", await store.head("small.txt"))

    large = b"L" * LARGE
    counter.sent.clear()
    result = await store.put_bytes("large.txt", large, options=FULL)
    assert [sent.split()[0] for sent in counter.sent] == ["PUT"]  # botocore's path
    assert result.checksum == f"SHA256:{sha256_b64(large)}"
    assert_full(s3, store.bucket, "large.txt", await store.head("large.txt"))


@pytest.mark.moto_only(reason="FULL's KMS key is moto's")
async def test_direct_and_botocore_send_the_same_option_headers(bucket: str, endpoint_url: str) -> None:
    """The direct path serialises each option as botocore does: the headers both sent, compared on the wire."""
    seen: list[dict[str, str]] = []

    class Recorder(WireCounter):
        def relayed_body(self, request: web.Request, body: bytes) -> bytes:
            seen.append({name.lower(): value for name, value in request.headers.items()})
            return body

    recorder = Recorder(endpoint_url)
    settings = StoreSettings(
        endpoint_url=endpoint_url, region="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    try:
        async with serving(recorder.handle) as url:
            relayed = settings.model_copy(update={"endpoint_url": url})
            async with AsyncS3Store(bucket, settings=relayed) as store:
                await store.put_bytes("d.txt", b"d", options=FULL)
                await store.put_bytes("b.txt", b"b" * LARGE, options=FULL)
    finally:
        await recorder.aclose()
    direct, botocore = seen
    assert FULL.sse_kms_key_id and FULL.bucket_key_enabled  # every header below is sent
    assert "aiostorage/direct" in direct["user-agent"] and "aiostorage/direct" not in botocore["user-agent"]
    names = [
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
        "x-amz-storage-class",
        "x-amz-tagging",
        "x-amz-acl",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-bucket-key-enabled",
        "x-amz-sdk-checksum-algorithm",
    ]
    # botocore before 1.36 writes a boolean header as "True"; S3 reads either, the direct path sends "true".
    sent = {name: direct.get(name) for name in names}
    assert sent == {name: botocore.get(name, "").replace("True", "true") for name in names}
    assert all(sent.values())
    # Signed, so that no hop can change them.
    signed = direct["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert set(names) - {"x-amz-sdk-checksum-algorithm"} <= set(signed)


async def test_upload_single_put_multipart_and_upload_many_carry_every_option(
    bucket: str, settings: StoreSettings, s3: Any, tmp_path: Path
) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"from a file")
    six = settings.model_copy(update={"multipart_threshold": 5 * MiB})
    async with AsyncS3Store(bucket, settings=six, part_size=5 * MiB) as store:
        counter = RequestCounter(store.client)
        await store.upload(path, "file.txt", options=FULL)
        assert counter.sent == []  # a small file takes the direct path too
        assert_full(s3, bucket, "file.txt", await store.head("file.txt"))

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(6):
                yield b"m" * MiB

        result = await store.upload(chunks(), "multi.txt", options=FULL)
        assert result.parts == 2
        assert_full(s3, bucket, "multi.txt", await store.head("multi.txt"), bucket_key=False)

        bulk = await store.upload_many([(b"one", "many/1.txt"), (path, "many/2.txt")], options=FULL)
        assert bulk.ok
        for key in ("many/1.txt", "many/2.txt"):
            assert_full(s3, bucket, key, await store.head(key))
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_sync_up_carries_options(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = await store.sync(tmp_path, "site", options=WriteOptions(cache_control="max-age=5", tags={"s": "1"}))
    assert result.ok and len(result.items) == 1
    assert s3.head_object(Bucket=store.bucket, Key="site/a.txt")["CacheControl"] == "max-age=5"
    assert await store.get_tags("site/a.txt") == {"s": "1"}
    with pytest.raises(InvalidArgument, match="uploads"):
        await store.sync(tmp_path, "site", direction="down", options=WriteOptions(cache_control="x"))


def _put_source(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="text/csv",
        Metadata={"owner": "ana"},
        CacheControl="max-age=1",
        ContentDisposition="inline",
        ContentLanguage="de",
        Expires=EXPIRES,
        Tagging="kept=yes",
    )


@pytest.mark.parametrize("multipart", [False, True], ids=["single", "multipart"])
async def test_copy_keeps_or_replaces_attributes(store: AsyncS3Store, s3: Any, multipart: bool) -> None:
    body = b"c" * (6 * MiB if multipart else 10)
    _put_source(s3, store.bucket, "src.csv", body)
    sizes: dict[str, Any] = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}

    kept = await store.copy("src.csv", "kept.csv", **sizes)
    assert kept.parts == (2 if multipart else 1)
    info = await store.head("kept.csv")
    assert (info.content_type, info.metadata, info.cache_control) == ("text/csv", {"owner": "ana"}, "max-age=1")
    assert (info.content_disposition, info.content_language) == ("inline", "de")
    # LocalStack's CopyObject drops Expires when it copies the source's metadata (S3 and moto keep it);
    # a multipart copy sends it itself.
    assert info.expires == (None if STRICT and not multipart else EXPIRES)
    assert await store.get_tags("kept.csv") == {"kept": "yes"}

    replacing = WriteOptions(cache_control="no-store", tags={"new": "1"}, storage_class="STANDARD_IA", sse="AES256")
    await store.copy("src.csv", "replaced.csv", options=replacing, **sizes)
    head = s3.head_object(Bucket=store.bucket, Key="replaced.csv")
    assert head["CacheControl"] == "no-store"
    # The attributes not given are the source's.
    assert (head["ContentType"], head["Metadata"], head["ContentDisposition"]) == (
        "text/csv",
        {"owner": "ana"},
        "inline",
    )
    assert (head["ContentLanguage"], head["Expires"]) == ("de", EXPIRES)
    assert (head["StorageClass"], head["ServerSideEncryption"]) == ("STANDARD_IA", "AES256")
    assert await store.get_tags("replaced.csv") == {"new": "1"}
    assert s3.get_object(Bucket=store.bucket, Key="replaced.csv")["Body"].read() == body
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


async def test_copy_many_keeps_or_replaces_attributes(store: AsyncS3Store, s3: Any) -> None:
    _put_source(s3, store.bucket, "a.csv", b"a")
    listed = [info async for info in store.list("a.csv")]
    result = await store.copy_many([(listed[0], "kept/a.csv")])
    assert result.ok and s3.head_object(Bucket=store.bucket, Key="kept/a.csv")["CacheControl"] == "max-age=1"
    # Replacing a content attribute of a listed source: the others are read first and carried over.
    result = await store.copy_many([(listed[0], "new/a.csv")], options=WriteOptions(content_language="es"))
    assert result.ok
    head = s3.head_object(Bucket=store.bucket, Key="new/a.csv")
    assert (head["ContentLanguage"], head["CacheControl"], head["Metadata"]) == ("es", "max-age=1", {"owner": "ana"})


# The settings' defaults, and a bucket that demands them


@pytest.mark.moto_only(reason="a strict server checks that the KMS key exists")
async def test_settings_defaults_apply_to_every_write(bucket: str, settings: StoreSettings, s3: Any) -> None:
    kms = settings.model_copy(update={"sse": "aws:kms", "sse_kms_key_id": "key-9", "multipart_threshold": 5 * MiB})
    async with AsyncS3Store(bucket, settings=kms, part_size=5 * MiB) as store:
        await store.put_bytes("small", b"s")
        await store.put_bytes("large", b"l" * LARGE)
        await store.upload(b"m" * (6 * MiB), "multi")
        await store.copy("small", "copied")
        await store.copy("multi", "copied-multi", multipart_threshold=5 * MiB, part_size=5 * MiB)
        for key in ("small", "large", "multi", "copied", "copied-multi"):
            head = s3.head_object(Bucket=bucket, Key=key)
            assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", "key-9"), key
            assert (await store.head(key)).sse == "aws:kms"
        # A call's options override the defaults field by field.
        await store.put_bytes("aes", b"a", options=WriteOptions(sse="AES256"))
        head = s3.head_object(Bucket=bucket, Key="aes")
        assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head


class DenyUnencrypted(WireCounter):
    """A relay in front of moto refusing writes without ``x-amz-server-side-encryption: aws:kms``, as the
    bucket policy production accounts use (Deny s3:PutObject, StringNotEquals s3:x-amz-server-side-encryption
    aws:kms) does: PutObject, CopyObject and CreateMultipartUpload (parts inherit the upload's encryption).
    """

    async def handle(self, request: web.Request) -> web.Response:
        writes = request.method == "PUT" and "uploadId" not in request.query and request.path.count("/") >= 2
        creates = request.method == "POST" and "uploads" in request.query
        if (writes or creates) and request.headers.get("x-amz-server-side-encryption") != "aws:kms":
            await request.read()
            self.sent.append(f"refused {request.method} {request.raw_path}")
            xml = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            return web.Response(status=403, body=xml.encode(), content_type="application/xml")
        return await super().handle(request)


@pytest.mark.moto_only(reason="LocalStack runs here with S3 and SQS only: an aws:kms write needs its KMS service")
async def test_a_bucket_demanding_kms_refuses_plain_writes_and_takes_the_default(
    bucket: str, endpoint_url: str, settings: StoreSettings, s3: Any
) -> None:
    """moto's server does not evaluate this policy's condition (it refuses every PutObject, encrypted or not,
    once such a policy is set), so the refusal comes from a loopback relay (``DenyUnencrypted``): the direct
    path bypasses botocore's event hooks, and only a relay sees what both paths really send."""
    s3.put_object(Bucket=bucket, Key="source", Body=b"src", ServerSideEncryption="aws:kms")
    relay = DenyUnencrypted(endpoint_url)

    async def every_write(store: AsyncS3Store) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        calls = [
            lambda: store.put_bytes("small", b"s"),
            lambda: store.put_bytes("large", b"l" * LARGE),
            lambda: store.upload(b"m" * (6 * MiB), "multi"),
            lambda: store.copy("source", "copied"),
        ]
        for call in calls:
            try:
                await call()
            except AccessDenied as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        bulk = await store.upload_many([(b"x", "bulk")])
        outcomes.append(bulk.items[0].error)
        return outcomes

    try:
        async with serving(relay.handle) as url:
            base = settings.model_copy(update={"endpoint_url": url, "multipart_threshold": 5 * MiB, "max_attempts": 1})
            async with AsyncS3Store(bucket, settings=base, part_size=5 * MiB) as plain:
                refused = await every_write(plain)
            assert all(isinstance(outcome, AccessDenied) for outcome in refused), refused
            assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
            kms = base.model_copy(update={"sse": "aws:kms"})
            async with AsyncS3Store(bucket, settings=kms, part_size=5 * MiB) as encrypted:
                assert await every_write(encrypted) == [None] * 5
    finally:
        await relay.aclose()
    for key in ("small", "large", "multi", "copied", "bulk"):
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "aws:kms"


# Checksums


async def test_checksum_algorithms_on_both_paths(store: AsyncS3Store, s3: Any) -> None:
    sha1 = WriteOptions(checksum_algorithm="SHA1")
    for key, body in (("direct", b"sha1 me"), ("botocore", b"s" * LARGE)):
        result = await store.put_bytes(key, body, options=sha1)
        expected = base64.b64encode(hashlib.sha1(body).digest()).decode()
        assert result.checksum == f"SHA1:{expected}"
        assert s3.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")["ChecksumSHA1"] == expected
        assert (await store.head(key)).checksum == f"SHA1:{expected}"


async def test_crc32c_needs_the_crt_or_is_refused_before_any_request(
    bucket: str, wire: tuple[WireCounter, StoreSettings], s3: Any
) -> None:
    counter, settings = wire
    options = WriteOptions(checksum_algorithm="CRC32C")
    async with AsyncS3Store(bucket, settings=settings) as store:
        if "CRC32C" in computable_algorithms():
            result = await store.put_bytes("c", b"crc32c", options=options)
            head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
            assert result.checksum == f"CRC32C:{head['ChecksumCRC32C']}"
        else:
            with pytest.raises(InvalidArgument, match="CRC32C"):
                await store.put_bytes("c", b"crc32c", options=options)
            with pytest.raises(InvalidArgument, match="CRC32C"):
                await store.upload(b"x", "c", options=options)
            assert counter.sent == []


@pytest.mark.strict_only(reason="moto reports a multipart upload's checksum as a full-object one")
async def test_head_reports_the_composite_checksum_of_a_multipart_upload(bucket: str, settings: StoreSettings) -> None:
    six = settings.model_copy(update={"multipart_threshold": 5 * MiB})
    async with AsyncS3Store(bucket, settings=six, part_size=5 * MiB) as store:
        result = await store.upload(b"p" * (6 * MiB), "multi", options=WriteOptions(checksum_algorithm="SHA256"))
        info = await store.head("multi")
    assert info.checksum is not None and info.checksum.startswith("SHA256:") and info.checksum.endswith("-2")
    assert result.checksum == info.checksum


# Tags, presigned GET, errors


async def test_tags_round_trip(store: AsyncS3Store, s3: Any) -> None:
    await store.put_bytes("t", b"t", options=WriteOptions(tags={"a": "1"}))
    assert await store.get_tags("t") == {"a": "1"}
    await store.put_tags("t", {"b": "2", "c": "x y"})
    tags = s3.get_object_tagging(Bucket=store.bucket, Key="t")["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"b": "2", "c": "x y"}
    await store.put_tags("t", {})
    assert await store.get_tags("t") == {}
    with pytest.raises(InvalidArgument):
        await store.put_tags("t", {f"k{i}": "v" for i in range(11)})


async def test_presign_get_sets_the_answer_s_headers(store: AsyncS3Store) -> None:
    await store.put_bytes("report.bin", b"pdf bytes")
    url = await store.presign_get(
        "report.bin",
        response_content_disposition='attachment; filename="report.pdf"',
        response_content_type="application/pdf",
        response_cache_control="no-cache",
    )
    async with ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200 and await answer.read() == b"pdf bytes"
        assert answer.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
        assert answer.headers["Content-Type"] == "application/pdf"
        assert answer.headers["Cache-Control"] == "no-cache"


async def test_missing_keys_and_buckets_have_one_code_everywhere(
    store: AsyncS3Store, settings: StoreSettings, tmp_path: Path
) -> None:
    calls = [
        store.head("nope"),
        store.get_bytes("nope"),
        store.get_tags("nope"),
        store.copy("nope", "dst"),
        store.download("nope", tmp_path / "f"),
    ]
    for call in calls:
        with pytest.raises(ObjectNotFound) as caught:
            await call
        assert caught.value.code == "NoSuchKey", caught.value
        assert "NoSuchKey" in str(caught.value)
    async with AsyncS3Store(unique_name("missing"), settings=settings) as missing:
        for bucket_call in (missing.put_bytes("k", b"v"), missing.get_bytes("k"), missing.list_prefixes()):
            with pytest.raises(BucketNotFound) as lost:
                await bucket_call
            assert lost.value.code == "NoSuchBucket"


def test_a_bodiless_answer_is_named_like_its_bodied_twin() -> None:
    """A HEAD's 404 and 412 carry no error document; they get the codes a GET's answer would have."""

    def bare(status: int) -> ClientError:
        return ClientError({"Error": {}, "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadObject")

    gone = translate(bare(404), operation="HeadObject", bucket="b", key="k")
    assert isinstance(gone, ObjectNotFound) and gone.code == "NoSuchKey"
    changed = translate(bare(412), operation="HeadObject", bucket="b", key="k")
    assert isinstance(changed, ObjectChanged) and changed.code == "PreconditionFailed"
    assert "no longer matches" in str(changed)
