"""Object tags: read and replaced with GetObjectTagging and PutObjectTagging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._context import S3Context
from .._options import WriteOptions

__all__ = ["check_tags", "get_tags", "put_tags"]


def check_tags(tags: object) -> dict[str, str]:
    """Tags S3 accepts (at most 10, keys up to 128 characters, values up to 256); ``InvalidArgument`` else."""
    checked = WriteOptions(tags=tags).tags
    assert checked is not None
    return checked


async def get_tags(
    ctx: S3Context, key: str, *, bucket: str | None = None, version_id: str | None = None
) -> dict[str, str]:
    """The object's tags (of ``version_id`` when given); raises ``ObjectNotFound``."""
    extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    response = await ctx.request("GetObjectTagging", key=key, bucket=bucket, **extra)
    return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}


async def put_tags(ctx: S3Context, key: str, tags: Mapping[str, str], *, version_id: str | None = None) -> None:
    """Replace the object's tags with ``tags`` (an empty mapping removes them all)."""
    extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    if not tags:
        await ctx.request("DeleteObjectTagging", key=key, **extra)
        return
    tag_set = [{"Key": name, "Value": value} for name, value in tags.items()]
    await ctx.request("PutObjectTagging", key=key, Tagging={"TagSet": tag_set}, **extra)
