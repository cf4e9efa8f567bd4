"""Versions of objects in a versioned bucket: ListObjectVersions, page after page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from .._context import S3Context
from .._models import ObjectVersion, strip_etag

__all__ = ["list_versions"]

_OLDEST = datetime.min.replace(tzinfo=UTC)


def _version(row: dict[str, Any], *, delete_marker: bool) -> ObjectVersion:
    return ObjectVersion(
        key=row["Key"],
        version_id=row.get("VersionId") or "null",
        is_latest=bool(row.get("IsLatest")),
        is_delete_marker=delete_marker,
        size=None if delete_marker else int(row.get("Size", 0)),
        etag=None if delete_marker else strip_etag(row.get("ETag")),
        last_modified=row.get("LastModified"),
    )


async def list_versions(ctx: S3Context, prefix: str, *, page_size: int | None = None) -> AsyncIterator[ObjectVersion]:
    """Every version and delete marker under ``prefix``: keys in order, each key's newest first.

    ``page_size`` asks for smaller pages than S3's 1,000 entries.
    """
    markers: dict[str, Any] = {"MaxKeys": page_size} if page_size else {}
    while True:
        page = await ctx.request("ListObjectVersions", Prefix=prefix, **markers)
        rows = [_version(row, delete_marker=False) for row in page.get("Versions", [])]
        rows += [_version(row, delete_marker=True) for row in page.get("DeleteMarkers", [])]
        # botocore parses versions and delete markers into two lists; S3 sends them interleaved, by key
        # and then newest first. Sorted twice (stable): by date, newest (and within one second the
        # latest) first, then by key.
        rows.sort(key=lambda version: (version.last_modified or _OLDEST, version.is_latest), reverse=True)
        rows.sort(key=lambda version: version.key)
        for version in rows:
            yield version
        if not page.get("IsTruncated"):
            return
        markers["KeyMarker"] = page.get("NextKeyMarker", "")
        markers["VersionIdMarker"] = page.get("NextVersionIdMarker", "")
