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
    "MultipartUploadInfo",
    "ObjectInfo",
    "ObjectVersion",
    "PresignedMultipartUpload",
    "PresignedPart",
    "PresignedPost",
    "TransferProgress",
    "UploadResult",
    "UploadedPart",
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
    """The bucket the object was written to."""
    key: str
    """The object's key."""
    etag: str
    """The object's ETag (``ETag`` header), without quotes; a multipart upload's ends in ``-<parts>``."""
    size: int
    """The bytes stored."""
    version_id: str | None = None
    """The new version's id (``x-amz-version-id``); ``None`` in a bucket without versioning."""
    checksum: str | None = None
    """``"ALGORITHM:base64"`` of the checksum S3 stored (``x-amz-checksum-*``), or ``None`` if it sent none."""
    parts: int = 1
    """The parts uploaded or copied: 1 for a single PutObject or CopyObject."""


class DownloadResult(_Result):
    """A finished download: the file at ``path`` holds exactly the object's ``size`` bytes."""

    bucket: str
    """The bucket the object came from."""
    key: str
    """The object's key."""
    path: Path
    """The file written (the ``dest`` given)."""
    etag: str
    """The ETag every range was pinned to, without quotes."""
    size: int
    """The bytes written: the object's size."""
    version_id: str | None = None
    """The version downloaded (``x-amz-version-id``); ``None`` in a bucket without versioning."""


class ObjectInfo(_Result):
    """An object as listed or inspected; the fields from ``content_type`` on are filled by ``head``
    (``None`` where S3 sent none). ``checksum`` is ``"ALGORITHM:base64"``, as in ``UploadResult``."""

    key: str
    """The object's key."""
    size: int
    """The object's size in bytes (``Content-Length`` of a HEAD)."""
    etag: str
    """The object's ETag, without quotes."""
    last_modified: datetime | None = None
    """When the object (this version) was written (``Last-Modified``)."""
    version_id: str | None = None
    """The version's id (``x-amz-version-id``), from ``head``; ``None`` from a listing or without versioning."""
    content_type: str | None = None
    """``Content-Type`` (``head`` only)."""
    metadata: dict[str, str] | None = None
    """The user metadata (``x-amz-meta-*`` headers, names without the prefix); ``head`` only."""
    # Object options and attributes (WriteOptions), as HEAD reports them.
    cache_control: str | None = None
    """``Cache-Control`` (``head`` only)."""
    content_disposition: str | None = None
    """``Content-Disposition`` (``head`` only)."""
    content_encoding: str | None = None
    """``Content-Encoding`` (``head`` only)."""
    content_language: str | None = None
    """``Content-Language`` (``head`` only)."""
    expires: datetime | None = None
    """``Expires`` (``head`` only; a caching header, not a deletion date)."""
    storage_class: str | None = None
    """``x-amz-storage-class`` (``head`` only); S3 sends none for ``STANDARD``, so ``None`` means it."""
    sse: str | None = None
    """Server-side encryption (``x-amz-server-side-encryption``), e.g. ``"AES256"``, ``"aws:kms"``; ``head`` only."""
    sse_kms_key_id: str | None = None
    """The KMS key of ``aws:kms`` encryption (``x-amz-server-side-encryption-aws-kms-key-id``); ``head`` only."""
    checksum: str | None = None
    """``"ALGORITHM:base64"`` of the stored checksum (``x-amz-checksum-*``), where S3 holds one; ``head`` only."""


class ObjectVersion(_Result):
    """One version of an object, or a delete marker (``size`` and ``etag`` then ``None``)."""

    key: str
    """The object's key."""
    version_id: str
    """The version's id; ``"null"`` for the one written before versioning was enabled."""
    is_latest: bool
    """Whether this is the key's current version (or delete marker)."""
    is_delete_marker: bool
    """Whether this is a delete marker rather than a version with data."""
    size: int | None = None
    """The version's size in bytes; ``None`` for a delete marker."""
    etag: str | None = None
    """The version's ETag, without quotes; ``None`` for a delete marker."""
    last_modified: datetime | None = None
    """When the version or delete marker was created."""


class DeleteError(_Result):
    """One key that a batch delete could not remove, with S3's reason."""

    key: str
    """The key that was not deleted."""
    code: str
    """S3's error code for it, e.g. ``"AccessDenied"``."""
    message: str
    """S3's error message for it."""


class DeleteResult(_Result):
    """Keys deleted and keys that failed, each reported by S3."""

    deleted: list[str]
    """The keys S3 reported deleted (a key that did not exist counts as deleted)."""
    errors: list[DeleteError]
    """The keys S3 could not delete, with its reasons; empty when all went."""


class PresignedPost(_Result):
    """A browser form upload: POST ``fields`` (then the file) as multipart/form-data to ``url``."""

    url: str
    """Where the form is POSTed: the bucket's URL."""
    fields: dict[str, str]
    """The form fields to send, as given, before the file: ``key``, the signed ``policy``, the signature fields."""


# Browser uploads: a multipart upload whose parts someone else PUTs to presigned URLs


class PresignedPart(_Result):
    """One part of a presigned multipart upload: PUT exactly ``size`` bytes to ``url``."""

    part_number: int
    """The part's number, from 1."""
    url: str
    """The presigned UploadPart URL to PUT the part's bytes to."""
    size: int
    """The part's size in bytes: ``part_size``, or the rest for the last part."""


class PresignedMultipartUpload(_Result):
    """A multipart upload created for a client that sends the parts itself, one presigned PUT per part.

    Part ``n`` (from 1) holds bytes ``(n - 1) * part_size`` up to ``n * part_size`` of the ``size``;
    the last one the rest.
    """

    bucket: str
    """The bucket the object goes to."""
    key: str
    """The object's key."""
    upload_id: str
    """The multipart upload's id: what ``complete_multipart_upload`` and ``abort_multipart_upload`` take."""
    size: int
    """The object's total size in bytes, as given."""
    part_size: int
    """The size of every part but the last."""
    expires_in: int
    """Seconds the part URLs stay valid, from when they were signed."""
    parts: list[PresignedPart]
    """One presigned PUT per part, in part order."""


class UploadedPart(_Result):
    """A part S3 holds for an open multipart upload, as ListParts reports it."""

    part_number: int
    """The part's number, from 1."""
    etag: str
    """The part's ETag, without quotes: what ``complete_multipart_upload`` pairs with its number."""
    size: int
    """The part's size in bytes."""
    last_modified: datetime | None = None
    """When the part was uploaded."""


class MultipartUploadInfo(_Result):
    """An open (neither completed nor aborted) multipart upload."""

    key: str
    """The key the upload will create."""
    upload_id: str
    """The upload's id."""
    initiated: datetime | None = None
    """When the upload was created."""


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A transfer's progress: ``transferred`` bytes of ``total`` (``None`` while the size is unknown)."""

    key: str
    """The object's key."""
    transferred: int
    """Bytes transferred so far."""
    total: int | None
    """The object's size in bytes, or ``None`` while unknown (an upload from a stream)."""


class BulkItem(BaseModel):
    """One item of a bulk transfer: ``result`` when it succeeded, ``error`` when it did not."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str
    """Where it came from: a path (or ``"<N bytes>"``, ``"<type>"`` for other upload sources), or ``s3://bucket/key``."""
    destination: str
    """Where it went: ``s3://bucket/key`` (upload, copy), or a path (download)."""
    result: UploadResult | DownloadResult | None = None
    """The transfer's result (``UploadResult`` of an upload or copy, ``DownloadResult`` of a download);
    ``None`` when it failed."""
    error: BaseException | None = None
    """Why the item failed (a ``StorageError`` such as ``ObjectNotFound``, or the source's own exception);
    ``None`` when it succeeded."""

    @property
    def ok(self) -> bool:
        """Whether the item succeeded (``error`` is ``None``)."""
        return self.error is None


class BulkResult(BaseModel):
    """Every item's outcome, in the order given; ``skipped`` and ``deleted`` are filled by ``sync``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    items: list[BulkItem]
    """One per transfer, in the order given (``sync``: also one per path or key it refused)."""
    skipped: list[str] = []
    """``sync`` only: the keys left alone because both sides were already alike."""
    deleted: list[str] = []
    """``sync(delete=True)`` only: what was removed because the source side lacked it (``s3://bucket/key``
    going up, file paths going down)."""

    @property
    def ok(self) -> bool:
        """Whether every item succeeded (``True`` when there were none)."""
        return all(item.ok for item in self.items)

    @property
    def succeeded(self) -> list[BulkItem]:
        """The items that succeeded, in order."""
        return [item for item in self.items if item.ok]

    @property
    def failed(self) -> list[BulkItem]:
        """The items that failed, in order; each has its ``error``."""
        return [item for item in self.items if not item.ok]


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """Aggregate progress: objects finished (ok or not) and bytes moved, of the totals known so far."""

    objects_done: int
    """Items finished so far, succeeded or failed."""
    objects_total: int
    """Items to transfer in this call."""
    bytes_done: int
    """Bytes moved so far, across every item."""
    bytes_total: int | None
    """Bytes to move in all; ``None`` when an item's size is not known up front (an upload from a stream)."""


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
