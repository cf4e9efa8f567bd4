"""Presigned requests: URLs and browser form uploads, signed locally; no request is sent."""

from __future__ import annotations

from typing import Any

from .._context import S3Context
from .._exceptions import map_errors
from .._models import PresignedPost

__all__ = ["presign_post", "presign_url"]


async def presign_url(ctx: S3Context, method: str, key: str, expires_in: int, **params: Any) -> str:
    """A URL anyone can use for the client ``method`` (``"get_object"``, ...) on ``key`` until it expires."""
    with map_errors(f"Presign {method}", bucket=ctx.bucket, key=key):
        url: str = await ctx.client.generate_presigned_url(
            method, Params={"Bucket": ctx.bucket, "Key": key, **params}, ExpiresIn=expires_in
        )
    return url


async def presign_post(
    ctx: S3Context, key: str, *, expires_in: int, max_size: int | None, content_type: str | None
) -> PresignedPost:
    """A browser form upload of ``key``; ``max_size`` caps the accepted size (content-length-range)."""
    fields: dict[str, str] = {}
    conditions: list[Any] = []
    if max_size is not None:
        conditions.append(["content-length-range", 0, max_size])
    if content_type:
        fields["Content-Type"] = content_type
        conditions.append({"Content-Type": content_type})
    with map_errors("PresignPost", bucket=ctx.bucket, key=key):
        response = await ctx.client.generate_presigned_post(
            Bucket=ctx.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )
    return PresignedPost(url=response["url"], fields={k: str(v) for k, v in response["fields"].items()})
