"""WriteOptions: every attribute a write can give an object beyond its content type and metadata."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

from ._exceptions import InvalidArgument

__all__ = ["CANNED_ACLS", "CHECKSUM_ALGORITHMS", "ChecksumAlgorithm", "ServerSideEncryption", "WriteOptions"]

ServerSideEncryption = Literal["AES256", "aws:kms", "aws:kms:dsse"]
ChecksumAlgorithm = Literal["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]
CHECKSUM_ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")
CannedACL = Literal[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
]
CANNED_ACLS: tuple[str, ...] = get_args(CannedACL)

# S3's limits on object tags.
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_HEADER_BREAK = re.compile("[\r\n\0]")


class WriteOptions(BaseModel):
    """What a write sets on the object besides its content type and metadata; every field optional.

    ``None`` leaves a field to the store's settings (``sse``, ``sse_kms_key_id``, ``storage_class``)
    and then to S3's defaults (the bucket's default encryption, ``STANDARD``...). A bad value raises
    ``InvalidArgument``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cache_control: str | None = None
    """``Cache-Control`` of later GETs, e.g. ``"max-age=3600"``."""
    content_disposition: str | None = None
    """``Content-Disposition`` of later GETs, e.g. ``'attachment; filename="a.pdf"'``."""
    content_encoding: str | None = None
    """``Content-Encoding``, e.g. ``"gzip"`` for bytes stored compressed."""
    content_language: str | None = None
    """``Content-Language``, e.g. ``"fr-CA"``."""
    expires: AwareDatetime | None = None
    """``Expires`` of later GETs (a caching header: S3 does not delete the object)."""
    storage_class: str | None = None
    """``x-amz-storage-class``, e.g. ``"STANDARD_IA"``, ``"INTELLIGENT_TIERING"``."""
    tags: dict[str, str] | None = None
    """Object tags (at most 10; keys up to 128 characters, values up to 256)."""
    acl: CannedACL | None = None
    """A canned ACL (``x-amz-acl``), e.g. ``"bucket-owner-full-control"``."""
    sse: ServerSideEncryption | None = None
    """Server-side encryption (``x-amz-server-side-encryption``)."""
    sse_kms_key_id: str | None = None
    """The KMS key of ``aws:kms`` or ``aws:kms:dsse`` encryption (an id, alias or ARN)."""
    bucket_key_enabled: bool | None = None
    """Use an S3 Bucket Key for SSE-KMS (fewer KMS calls)."""
    checksum_algorithm: ChecksumAlgorithm = "CRC32"
    """The checksum S3 verifies and stores; CRC32C and CRC64NVME need botocore's CRT extra."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}" for error in exc.errors()
            )
            raise InvalidArgument(f"invalid WriteOptions: {problems}") from None

    @field_validator(
        "cache_control",
        "content_disposition",
        "content_encoding",
        "content_language",
        "storage_class",
        "sse_kms_key_id",
    )
    @classmethod
    def _one_header_line(cls, value: str | None) -> str | None:
        if value is not None and (not value or _HEADER_BREAK.search(value)):
            raise ValueError(f"must be a non-empty header value without line breaks or NUL, got {value!r}")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str] | None) -> dict[str, str] | None:
        if tags is None:
            return None
        if len(tags) > MAX_TAGS:
            raise ValueError(f"S3 allows at most {MAX_TAGS} tags, got {len(tags)}")
        for name, value in tags.items():
            if not 1 <= len(name) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
                raise ValueError(
                    f"tag keys are 1 to {MAX_TAG_KEY} characters and values at most {MAX_TAG_VALUE}: {name!r}"
                )
        return dict(tags)
