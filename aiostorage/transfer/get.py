"""An object's bytes (or a range of them) in memory: the direct path first, botocore for what it cannot take.

Up to ``DIRECT_MAX`` bytes (an object, or a range) come on the direct path in one request. A larger
object's first ``DIRECT_MAX`` bytes do too, and botocore fetches the rest, pinned with ``If-Match`` to
the ETag of the first answer, so the two halves are of one version.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, ResponseStreamingError

from .._context import S3Context
from .._exceptions import error_code
from .._retry import allow_time_for
from .._transport import DIRECT_MAX
from .ranged import CONTENT_RANGE, RANGE_REFUSED

__all__ = ["get_bytes", "get_small"]


async def get_bytes(ctx: S3Context, key: str, *, version_id: str | None, byte_range: tuple[int, int] | None) -> bytes:
    """The object's bytes, or the inclusive ``byte_range=(first, last)`` of them."""
    extra: dict[str, Any] = {}
    if version_id:
        extra["VersionId"] = version_id
    if byte_range is not None:
        extra["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    start = b""
    if ctx.transport.direct and not version_id:
        got = await get_small(ctx, key, byte_range)
        if got is not None:
            start, rest = got
            if rest is None:
                return start
            extra["Range"], extra["IfMatch"] = f"bytes={rest[0]}-", rest[1]

    async def attempt() -> bytes:
        response = await ctx.client.get_object(Bucket=ctx.bucket, Key=key, **extra)
        allow_time_for(response.get("ContentLength") or 0)
        async with response["Body"] as body:
            data: bytes = await body.read()
        expected = response.get("ContentLength")
        if expected is not None and len(data) != expected:
            raise ConnectionResetError(f"body cut short: {len(data)} of {expected} bytes")
        return data

    return start + await ctx.call("GetObject", attempt, key=key)


async def get_small(
    ctx: S3Context, key: str, byte_range: tuple[int, int] | None
) -> tuple[bytes, tuple[int, str] | None] | None:
    """GetObject of ``key`` (or its inclusive ``byte_range``) on the direct path, with ``ctx``'s retries.

    Asks for at most ``DIRECT_MAX`` bytes: the whole object when it is no bigger, else its first
    ``DIRECT_MAX`` bytes, with where the rest starts and the ETag to pin the rest to. None when botocore
    should make the request: a range over ``DIRECT_MAX``, a redirect, a server that sent more than asked.
    """
    if byte_range is not None:
        first, last = byte_range
        if last - first + 1 > DIRECT_MAX:
            return None
    else:
        first, last = 0, DIRECT_MAX - 1

    async def attempt() -> tuple[bytes, tuple[int, str] | None] | None:
        try:
            answer = await ctx.transport.get_small(key, {"Range": f"bytes={first}-{last}"})
        except ClientError as exc:
            if byte_range is None and error_code(exc) in RANGE_REFUSED:
                return b"", None
            raise
        if answer is None:
            return None
        body = answer.body
        if answer.status != 206:  # the whole object, the range ignored
            return (body if byte_range is None else body[first : last + 1]), None
        match = CONTENT_RANGE.fullmatch(answer.headers.get("content-range", "").strip())
        if match is None or int(match[1]) != first or len(body) != int(match[2]) - first + 1:
            raise ResponseStreamingError(error=f"unexpected Content-Range {answer.headers.get('content-range')!r}")
        end, total = int(match[2]), match[3]
        if byte_range is not None or total == "*" or end + 1 >= int(total):
            return body, None
        return body, (end + 1, answer.headers.get("etag", ""))

    return await ctx.call("GetObject", attempt, key=key, payload_bytes=last - first + 1)
