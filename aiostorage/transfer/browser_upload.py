"""Multipart uploads whose parts another client sends: a browser PUTs each part to a presigned URL.

The server side creates the upload and signs one URL per part (``presign_multipart``), says which parts
have arrived (``list_parts``, for resuming after a reload), and completes (``complete``) or aborts it.
The browser holds no credentials and the bytes never pass through the server. Completion checks the
parts first, so a part that never arrived, or a short one in the middle, is named in an
``InvalidArgument`` instead of becoming a silently truncated object or S3's ``EntityTooSmall``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio.lowlevel

from .._context import S3Context
from .._exceptions import InvalidArgument, ObjectNotFound
from .._models import (
    MultipartUploadInfo,
    PresignedMultipartUpload,
    PresignedPart,
    UploadedPart,
    UploadResult,
    strip_etag,
    upload_result,
)
from .._options import WriteOptions
from .._settings import MAX_PARTS, MIN_PART_SIZE
from .multipart import MultipartUpload
from .options import CHECKSUM_PARAM, effective_options, explicit_checksum
from .parts import PartSizer, part_ranges
from .presign import presign_url
from .upload import object_attributes

__all__ = [
    "PAGE_SIZE",
    "abort_upload",
    "check_parts",
    "checked_parts",
    "complete_upload",
    "list_parts",
    "list_uploads",
    "presign_multipart",
    "upload_attributes",
]

# Entries per ListParts / ListMultipartUploads page: S3's maximum.
PAGE_SIZE = 1000
# Signing is local CPU work: give the event loop back every so many URLs (a 5 TiB upload has 10,000).
_SIGN_BATCH = 64


def upload_attributes(
    ctx: S3Context, key: str, content_type: str | None, metadata: dict[str, str] | None, options: WriteOptions | None
) -> dict[str, Any]:
    """What the object is created with: content type, metadata and ``options`` over the settings' write
    defaults, all fixed at creation. No checksum algorithm: S3 would then demand a checksum with every part,
    and a browser's plain PUT sends none, so asking for one is refused.
    """
    merged = effective_options(options, ctx.settings)  # checks the type, too
    algorithm = explicit_checksum(options)
    if algorithm is not None:
        raise InvalidArgument(
            f"checksum_algorithm {algorithm!r} cannot apply to a presigned multipart upload: "
            "the parts come from a browser's plain PUTs, without checksums"
        )
    attributes = object_attributes(key, content_type, metadata, merged)
    attributes.pop(CHECKSUM_PARAM, None)
    return attributes


async def presign_multipart(
    ctx: S3Context,
    key: str,
    size: int,
    *,
    part_size: int,
    explicit_part_size: bool,
    attributes: dict[str, Any],
    expires_in: int,
) -> PresignedMultipartUpload:
    """Create a multipart upload of ``size`` bytes and presign a PUT for each of its parts.

    ``attributes`` (content type, metadata, write options) are fixed here: parts carry none. If signing
    fails or is cancelled, the upload just created is aborted.
    """
    chosen = PartSizer(size, part_size, explicit=explicit_part_size).part_size
    # No checksum algorithm: a browser sends plain PUTs, and S3 would refuse parts without the checksum.
    response = await ctx.request("CreateMultipartUpload", key=key, **attributes)
    upload = MultipartUpload(ctx, key, response["UploadId"])
    parts: list[PresignedPart] = []
    try:
        for number, (first, last) in enumerate(part_ranges(size, chosen), start=1):
            url = await presign_url(ctx, "upload_part", key, expires_in, UploadId=upload.upload_id, PartNumber=number)
            parts.append(PresignedPart(part_number=number, url=url, size=last - first + 1))
            if number % _SIGN_BATCH == 0:
                await anyio.lowlevel.checkpoint()
    except BaseException:
        await upload.abort()
        raise
    return PresignedMultipartUpload(
        bucket=ctx.bucket,
        key=key,
        upload_id=upload.upload_id,
        size=size,
        part_size=chosen,
        expires_in=expires_in,
        parts=parts,
    )


async def list_parts(ctx: S3Context, key: str, upload_id: str) -> list[UploadedPart]:
    """Every part S3 holds for the upload, in part-number order, across as many pages as it takes."""
    parts: list[UploadedPart] = []
    marker: int | None = None
    while True:
        extra: dict[str, Any] = {"PartNumberMarker": marker} if marker is not None else {}
        page = await ctx.request("ListParts", key=key, UploadId=upload_id, MaxParts=PAGE_SIZE, **extra)
        parts.extend(
            UploadedPart(
                part_number=int(part["PartNumber"]),
                etag=strip_etag(part.get("ETag")) or "",
                size=int(part.get("Size", 0)),
                last_modified=part.get("LastModified"),
            )
            for part in page.get("Parts", [])
        )
        following = page.get("NextPartNumberMarker")
        if not page.get("IsTruncated") or following is None or int(following) == marker:
            return sorted(parts, key=lambda part: part.part_number)
        marker = int(following)


def check_parts(
    uploaded: Sequence[UploadedPart], chosen: Sequence[tuple[int, str]] | None, *, size: int | None
) -> list[UploadedPart]:
    """The parts to complete with, in order; ``InvalidArgument`` naming every missing, mismatched or
    short part (and a total that is not ``size``) otherwise.

    ``chosen``: ``(part_number, etag)`` pairs, or ``None`` for every uploaded part. Part numbers must run
    from 1 without a gap: a gap is a part that never arrived, and S3 would join the others without it.
    """
    held = {part.part_number: part for part in uploaded}
    if chosen is None:
        selected = list(held.values())
    else:
        wanted: dict[int, str] = {}
        for number, etag in chosen:
            if wanted.setdefault(number, strip_etag(etag) or "") != (strip_etag(etag) or ""):
                raise InvalidArgument(f"part {number} is given twice, with two ETags")
        absent = sorted(number for number in wanted if number not in held)
        if absent:
            raise InvalidArgument(f"parts not uploaded: {_numbers(absent)}")
        changed = sorted(number for number, etag in wanted.items() if held[number].etag != etag)
        if changed:
            raise InvalidArgument(
                f"parts whose ETag is not the uploaded part's (sent again since?): {_numbers(changed)}"
            )
        selected = [held[number] for number in wanted]
    if not selected:
        raise InvalidArgument("no part has been uploaded")
    selected.sort(key=lambda part: part.part_number)
    last = selected[-1].part_number
    missing = sorted(set(range(1, last + 1)) - {part.part_number for part in selected})
    if missing:
        raise InvalidArgument(f"parts missing before part {last}: {_numbers(missing)}")
    short = [part for part in selected[:-1] if part.size < MIN_PART_SIZE]
    if short:
        sizes = ", ".join(f"part {part.part_number} ({part.size} bytes)" for part in short)
        raise InvalidArgument(f"every part but the last must be at least 5 MiB ({MIN_PART_SIZE} bytes): {sizes}")
    total = sum(part.size for part in selected)
    if size is not None and total != size:
        raise InvalidArgument(f"the parts hold {total} bytes, not the {size} expected (parts missing or resized)")
    return selected


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


async def complete_upload(
    ctx: S3Context, key: str, upload_id: str, parts: Sequence[tuple[int, str]] | None, *, size: int | None
) -> UploadResult:
    """Complete the upload with ``parts`` (or every part S3 holds), once ``check_parts`` accepts them."""
    selected = check_parts(await list_parts(ctx, key, upload_id), parts, size=size)
    upload = MultipartUpload(ctx, key, upload_id)
    for part in selected:
        upload.record(part.part_number, {"ETag": f'"{part.etag}"'})
    response = await upload.complete()
    total = sum(part.size for part in selected)
    return upload_result(ctx.bucket, key, response, size=total, parts=len(selected))


async def abort_upload(ctx: S3Context, key: str, upload_id: str) -> None:
    """Abort the upload and free its parts; an upload already gone (completed or aborted) is not an error."""
    try:
        await ctx.request("AbortMultipartUpload", key=key, UploadId=upload_id)
    except ObjectNotFound as gone:
        if gone.code != "NoSuchUpload":
            raise


async def list_uploads(ctx: S3Context, prefix: str) -> AsyncIterator[MultipartUploadInfo]:
    """Every open multipart upload under ``prefix``, in key order, page by page."""
    markers: dict[str, Any] = {}
    while True:
        page = await ctx.request("ListMultipartUploads", Prefix=prefix, MaxUploads=PAGE_SIZE, **markers)
        for upload in page.get("Uploads", []):
            yield MultipartUploadInfo(
                key=upload["Key"], upload_id=upload["UploadId"], initiated=upload.get("Initiated")
            )
        following = {"KeyMarker": page.get("NextKeyMarker"), "UploadIdMarker": page.get("NextUploadIdMarker")}
        following = {name: value for name, value in following.items() if value}
        # A page that names no next marker, or the same one again, ends the listing rather than looping.
        if not page.get("IsTruncated") or "KeyMarker" not in following or following == markers:
            return
        markers = following


def checked_parts(parts: object) -> list[tuple[int, str]] | None:
    """``(part_number, etag)`` pairs as given to a completion, checked: numbers 1 to 10,000, ETags strings."""
    if parts is None:
        return None
    if isinstance(parts, str | bytes) or not hasattr(parts, "__iter__"):
        raise InvalidArgument(f"parts must be (part_number, etag) pairs, got {type(parts).__name__}")
    checked: list[tuple[int, str]] = []
    for pair in parts:
        try:
            number, etag = pair
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"parts must be (part_number, etag) pairs, got {pair!r}") from exc
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_PARTS:
            raise InvalidArgument(f"a part number must be an int from 1 to {MAX_PARTS}, got {number!r}")
        if not isinstance(etag, str) or not etag.strip('"'):
            raise InvalidArgument(f"part {number}: the ETag must be a non-empty str, got {etag!r}")
        checked.append((number, etag))
    return checked
