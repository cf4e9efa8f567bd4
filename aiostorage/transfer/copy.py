"""Server-side copy: one CopyObject up to 5 GiB, parallel UploadPartCopy above it."""

from __future__ import annotations

from typing import Any

import anyio

from .._context import S3Context
from .._exceptions import ObjectChanged
from .._models import ObjectInfo, UploadResult, upload_result
from .._options import WriteOptions
from .._tasks import task_group
from .multipart import open_multipart
from .options import CHECKSUM_PARAM, CONTENT_PARAMS, content_params, explicit_checksum, tagging, write_params
from .parts import part_ranges, part_size_for
from .tags import get_tags

__all__ = ["copy_key", "copy_object"]


async def copy_key(
    ctx: S3Context,
    src_key: str,
    src_bucket: str,
    dst_key: str,
    *,
    listed: ObjectInfo | None = None,
    metadata: dict[str, str] | None,
    options: WriteOptions | None = None,
    multipart_threshold: int,
    part_size: int,
    concurrency: int,
) -> UploadResult:
    """Copy ``src_key`` to ``dst_key`` in ``ctx.bucket``, inspected first with a HEAD unless ``listed``.

    A listed source is copied as listed, pinned to its listed ETag: a source replaced since the listing
    fails as ``ObjectChanged``. Above ``multipart_threshold``, or when ``metadata`` or ``options``
    replace some of its content attributes, it is inspected all the same: the copy must then carry the
    source's other attributes itself (and a listing has none).
    """
    source = listed
    if source is None or source.size > multipart_threshold or _replaces_content(metadata, options):
        source = await ctx.head(src_key, bucket=src_bucket)
        if listed is not None and source.etag != listed.etag:
            raise ObjectChanged(
                f"s3://{src_bucket}/{src_key} changed since it was listed", bucket=src_bucket, key=src_key
            )
    return await copy_object(
        ctx,
        source,
        src_bucket,
        dst_key,
        metadata=metadata,
        options=options,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        concurrency=concurrency,
    )


def _replaces_content(metadata: dict[str, str] | None, options: WriteOptions | None) -> bool:
    return metadata is not None or bool(content_params(options))


def _content_attributes(
    source: ObjectInfo, metadata: dict[str, str] | None, options: WriteOptions | None
) -> dict[str, Any]:
    """The destination's content type, metadata and content attributes: the source's, except those given."""
    attributes: dict[str, Any] = {"Metadata": metadata if metadata is not None else (source.metadata or {})}
    if source.content_type:
        attributes["ContentType"] = source.content_type
    for field, param in CONTENT_PARAMS.items():
        value = getattr(source, field)
        if value is not None:
            attributes[param] = value
    attributes.update(content_params(options))
    return attributes


async def copy_object(
    ctx: S3Context,
    source: ObjectInfo,
    src_bucket: str,
    dst_key: str,
    *,
    metadata: dict[str, str] | None,
    options: WriteOptions | None = None,
    multipart_threshold: int,
    part_size: int,
    concurrency: int,
) -> UploadResult:
    """Copy ``source`` (as just inspected: its ETag pins every request) to ``dst_key`` in ``ctx.bucket``.

    The source's content type, metadata, content attributes (Cache-Control, Content-Disposition...) and
    tags are kept, except those ``metadata`` and ``options`` give. Storage class, encryption and ACL
    are the write's own (``options``, else S3's defaults), as with S3's CopyObject.
    """
    copy_source = {"Bucket": src_bucket, "Key": source.key}
    if source.version_id:
        copy_source["VersionId"] = source.version_id
    # Storage class, encryption, ACL and checksum: every request that writes says them itself.
    own = write_params(options, content=False, tags=False)
    algorithm = explicit_checksum(options)
    if algorithm is not None:
        own[CHECKSUM_PARAM] = algorithm
    tags = options.tags if options is not None else None
    # An entity tag in a precondition is quoted (RFC 9110), as ranged downloads send it in If-Match.
    pin = f'"{source.etag}"'

    if source.size <= multipart_threshold:
        extra = dict(own)
        if _replaces_content(metadata, options):
            # S3 keeps the source's metadata unless told to replace it, and replacing drops every
            # content attribute not given: the source's others are carried over explicitly.
            extra.update(MetadataDirective="REPLACE", **_content_attributes(source, metadata, options))
        if tags is not None:
            extra.update(TaggingDirective="REPLACE", Tagging=tagging(tags))
        # S3 holds the connection while it copies: give the attempt time for the object's bytes.
        response = await ctx.request(
            "CopyObject",
            key=dst_key,
            payload_bytes=source.size,
            CopySource=copy_source,
            CopySourceIfMatch=pin,
            **extra,
        )
        result = {**response.get("CopyObjectResult", {}), "VersionId": response.get("VersionId")}
        return upload_result(ctx.bucket, dst_key, result, size=source.size, parts=1)

    # A multipart copy starts a new object: it brings the source's attributes and tags along itself,
    # as CopyObject would.
    attributes = {**_content_attributes(source, metadata, options), **own}
    if tags is None:
        tags = await get_tags(ctx, source.key, bucket=src_bucket, version_id=source.version_id)
    if tags:
        attributes["Tagging"] = tagging(tags)
    ranges = part_ranges(source.size, part_size_for(source.size, part_size))
    in_flight = anyio.Semaphore(concurrency, fast_acquire=True)
    async with open_multipart(ctx, dst_key, **attributes) as upload:

        async def copy_part(number: int, first: int, last: int) -> None:
            async with in_flight:
                response = await ctx.request(
                    "UploadPartCopy",
                    key=dst_key,
                    payload_bytes=last - first + 1,
                    UploadId=upload.upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceIfMatch=pin,
                    CopySourceRange=f"bytes={first}-{last}",
                )
            result = response["CopyPartResult"]
            part = {"ETag": result["ETag"]}
            if algorithm is not None and result.get(f"Checksum{algorithm}"):
                part[f"Checksum{algorithm}"] = result[f"Checksum{algorithm}"]
            upload.record(number, part)

        async with task_group() as group:
            for number, (first, last) in enumerate(ranges, start=1):
                group.start_soon(copy_part, number, first, last)
        # Not every S3-compatible server honours CopySourceIfMatch on UploadPartCopy: check the
        # source is still the version we copied before the parts become an object.
        current = await ctx.head(source.key, bucket=src_bucket, version_id=source.version_id)
        if current.etag != source.etag:
            raise ObjectChanged(
                f"s3://{src_bucket}/{source.key} changed during the copy", bucket=src_bucket, key=source.key
            )
        response = await upload.complete()
    return upload_result(ctx.bucket, dst_key, response, size=source.size, parts=len(ranges))
