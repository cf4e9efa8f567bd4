"""Results and progress events, of single objects and of bulk transfers; every result is a frozen pydantic model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "BulkItem",
    "BulkProgress",
    "BulkResult",
    "DeleteError",
    "DeleteResult",
    "DownloadResult",
    "ObjectInfo",
    "ObjectVersion",
    "PresignedPost",
    "TransferProgress",
    "UploadResult",
    "strip_etag",
]


def strip_etag(etag: str | None) -> str | None:
    """S3 sends ETags in double quotes; we never do."""
    return etag.strip('"') if etag else etag


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class UploadResult(_Result):
    """What was stored: ``checksum`` is ``"ALGORITHM:base64"`` where S3 reported one."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str | None = None
    checksum: str | None = None
    parts: int = 1


class DownloadResult(_Result):
    """A finished download: the file at ``path`` holds exactly the object's ``size`` bytes."""

    bucket: str
    key: str
    path: Path
    etag: str
    size: int
    version_id: str | None = None


class ObjectInfo(_Result):
    """An object as listed or inspected; the fields from ``content_type`` on are filled by ``head``
    (``None`` where S3 sent none). ``checksum`` is ``"ALGORITHM:base64"``, as in ``UploadResult``."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    version_id: str | None = None
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    # Object options and attributes (WriteOptions), as HEAD reports them.
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    expires: datetime | None = None
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    checksum: str | None = None


class ObjectVersion(_Result):
    """One version of an object, or a delete marker (``size`` and ``etag`` then ``None``)."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int | None = None
    etag: str | None = None
    last_modified: datetime | None = None


class DeleteError(_Result):
    """One key that a batch delete could not remove, with S3's reason."""

    key: str
    code: str
    message: str


class DeleteResult(_Result):
    """Keys deleted and keys that failed, each reported by S3."""

    deleted: list[str]
    errors: list[DeleteError]


class PresignedPost(_Result):
    """A browser form upload: POST ``fields`` (then the file) as multipart/form-data to ``url``."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A transfer's progress: ``transferred`` bytes of ``total`` (``None`` while the size is unknown)."""

    key: str
    transferred: int
    total: int | None


class BulkItem(BaseModel):
    """One item of a bulk transfer: ``result`` when it succeeded, ``error`` when it did not."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str
    destination: str
    result: UploadResult | DownloadResult | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BulkResult(BaseModel):
    """Every item's outcome, in the order given; ``skipped`` and ``deleted`` are filled by ``sync``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    items: list[BulkItem]
    skipped: list[str] = []
    deleted: list[str] = []

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def succeeded(self) -> list[BulkItem]:
        return [item for item in self.items if item.ok]

    @property
    def failed(self) -> list[BulkItem]:
        return [item for item in self.items if not item.ok]


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """Aggregate progress: objects finished (ok or not) and bytes moved, of the totals known so far."""

    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int | None


def object_info_from_head(key: str, response: dict[str, Any]) -> ObjectInfo:
    """An ObjectInfo from a HeadObject (or GetObject) response."""
    return ObjectInfo(
        key=key,
        size=int(response.get("ContentLength", 0)),
        etag=strip_etag(response.get("ETag")) or "",
        last_modified=response.get("LastModified"),
        version_id=response.get("VersionId"),
        content_type=response.get("ContentType"),
        metadata=dict(response.get("Metadata") or {}),
        cache_control=response.get("CacheControl"),
        content_disposition=response.get("ContentDisposition"),
        content_encoding=response.get("ContentEncoding"),
        content_language=response.get("ContentLanguage"),
        expires=response.get("Expires"),
        storage_class=response.get("StorageClass"),
        sse=response.get("ServerSideEncryption"),
        sse_kms_key_id=response.get("SSEKMSKeyId"),
        checksum=checksum_from_response(response),
    )


# Strongest first: the one a response carries is the one reported and verified.
CHECKSUM_FIELDS = ("ChecksumCRC64NVME", "ChecksumCRC32C", "ChecksumCRC32", "ChecksumSHA256", "ChecksumSHA1")


def checksum_from_response(response: dict[str, Any]) -> str | None:
    """``"ALGORITHM:value"`` for the strongest checksum S3 reported in a response, if any."""
    for field in CHECKSUM_FIELDS:
        value = response.get(field)
        if value:
            return f"{field.removeprefix('Checksum')}:{value}"
    return None


def upload_result(bucket: str, key: str, response: dict[str, Any], *, size: int, parts: int) -> UploadResult:
    """An UploadResult from a PutObject, CopyObject result or CompleteMultipartUpload response."""
    return UploadResult(
        bucket=bucket,
        key=key,
        etag=strip_etag(response.get("ETag")) or "",
        size=size,
        # An unversioned bucket has no version to name: S3 sends none for a PUT, while a completed
        # multipart upload can report the string "null"; both read as None.
        version_id=response.get("VersionId") if response.get("VersionId") != "null" else None,
        checksum=checksum_from_response(response),
        parts=parts,
    )
