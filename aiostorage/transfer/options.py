"""A write's options as S3 request parameters: merged with the settings' defaults, checked, mapped once here.

Every write (PutObject, CreateMultipartUpload, CopyObject) takes its parameters from ``write_params``;
the direct path sends the same parameters as the headers botocore's model names for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from .._context import S3Context
from .._exceptions import InvalidArgument
from .._options import WriteOptions
from .._settings import StoreSettings
from .checksum import computable_algorithms

__all__ = [
    "CHECKSUM_PARAM",
    "CONTENT_PARAMS",
    "content_params",
    "effective_options",
    "explicit_checksum",
    "resolve_options",
    "tagging",
    "write_params",
]

# The parameter naming the checksum algorithm in an object's attributes: it chooses how the body is
# hashed, and the engines hand it to each request separately.
CHECKSUM_PARAM = "ChecksumAlgorithm"

# Attributes S3 stores with the object's metadata: a copy keeps the source's unless it replaces them all.
CONTENT_PARAMS: dict[str, str] = {
    "cache_control": "CacheControl",
    "content_disposition": "ContentDisposition",
    "content_encoding": "ContentEncoding",
    "content_language": "ContentLanguage",
    "expires": "Expires",
}
# Attributes of each write: a copy has them only when it asks for them.
_WRITE_PARAMS: dict[str, str] = {
    "storage_class": "StorageClass",
    "acl": "ACL",
    "sse": "ServerSideEncryption",
    "sse_kms_key_id": "SSEKMSKeyId",
    "bucket_key_enabled": "BucketKeyEnabled",
}


def effective_options(options: WriteOptions | None, settings: StoreSettings) -> WriteOptions | None:
    """``options`` over the settings' write defaults, field by field; None when neither sets anything.

    The settings' KMS key goes with KMS encryption only: ``options`` asking for ``AES256`` does not
    inherit it.
    """
    if options is not None and not isinstance(options, WriteOptions):
        raise InvalidArgument(f"options must be a WriteOptions, got {type(options).__name__}")
    if settings.sse is None and settings.sse_kms_key_id is None and settings.storage_class is None:
        merged = options
    else:
        base = options if options is not None else WriteOptions()
        sse = base.sse or settings.sse
        kms_default = settings.sse_kms_key_id if sse is not None and sse.startswith("aws:kms") else None
        merged = base.model_copy(
            update={
                "sse": sse,
                "sse_kms_key_id": base.sse_kms_key_id or kms_default,
                "storage_class": base.storage_class or settings.storage_class,
            }
        )
    if merged is not None and merged.sse_kms_key_id and not (merged.sse or "").startswith("aws:kms"):
        raise InvalidArgument(f"sse_kms_key_id goes with sse 'aws:kms' or 'aws:kms:dsse', not {merged.sse!r}")
    return merged


def resolve_options(ctx: S3Context, options: WriteOptions | None) -> WriteOptions | None:
    """The options a write of the store sends (see ``effective_options``), their checksum checked usable here."""
    merged = effective_options(options, ctx.settings)
    if merged is not None and merged.checksum_algorithm != "CRC32":
        algorithm = merged.checksum_algorithm
        usable = computable_algorithms() & ctx.transport.checksum_algorithms
        if algorithm not in usable:
            raise InvalidArgument(
                f"checksum_algorithm {algorithm!r} is not available here (available: {', '.join(sorted(usable))}); "
                "CRC32C and CRC64NVME need botocore's CRT extra (pip install 'botocore[crt]')"
            )
    return merged


def tagging(tags: Mapping[str, str]) -> str:
    """Tags as the ``x-amz-tagging`` header carries them: a URL-encoded query string."""
    return urlencode(tags, quote_via=quote)


def content_params(options: WriteOptions | None) -> dict[str, Any]:
    """The botocore parameters of ``options``' content attributes (``CONTENT_PARAMS``) that are set."""
    if options is None:
        return {}
    return {param: value for field, param in CONTENT_PARAMS.items() if (value := getattr(options, field)) is not None}


def write_params(options: WriteOptions | None, *, content: bool = True, tags: bool = True) -> dict[str, Any]:
    """The PutObject, CreateMultipartUpload or CopyObject parameters of ``options`` (the checksum aside)."""
    if options is None:
        return {}
    params = content_params(options) if content else {}
    params.update(
        {param: value for field, param in _WRITE_PARAMS.items() if (value := getattr(options, field)) is not None}
    )
    if tags and options.tags is not None:
        params["Tagging"] = tagging(options.tags)
    return params


def explicit_checksum(options: WriteOptions | None) -> str | None:
    """The checksum algorithm ``options`` name, when they name one (a copy otherwise lets S3 choose)."""
    if options is None or "checksum_algorithm" not in options.model_fields_set:
        return None
    return options.checksum_algorithm
