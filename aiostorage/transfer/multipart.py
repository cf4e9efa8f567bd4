"""A multipart upload's life: created, parts recorded, completed, or aborted on any failure.

Whatever fails (a part, the source, the completion) or cancels the caller, the upload is aborted before
the error propagates, shielded from the cancellation with a deadline of its own: an open multipart upload
is billed storage until someone aborts it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .._context import S3Context
from .._exceptions import ObjectNotFound, StorageError
from .._models import ObjectInfo

__all__ = ["ABORT_DEADLINE", "MultipartUpload", "open_multipart"]

logger = logging.getLogger("aiostorage")

# Seconds an abort may take after a failure or cancellation before we give up and log it.
ABORT_DEADLINE = 30.0
# S3 may take minutes to assemble a large object, keeping the connection open (with whitespace).
COMPLETE_ATTEMPT_TIMEOUT = 600.0


def _multipart_etag(part_etags: list[str]) -> str | None:
    """S3's ETag for an object made of these parts (MD5 of the parts' MD5s, then -N), if they are MD5s."""
    digests = [etag.strip('"') for etag in part_etags]
    if not digests or not all(re.fullmatch(r"[0-9a-f]{32}", digest) for digest in digests):
        return None  # SSE-KMS and some servers' part ETags are not MD5s: nothing to compare
    joined = b"".join(bytes.fromhex(digest) for digest in digests)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(digests)}"


class MultipartUpload:
    """An open multipart upload; parts are recorded as they finish, in any order."""

    def __init__(self, ctx: S3Context, key: str, upload_id: str) -> None:
        self.ctx = ctx
        self.key = key
        self.upload_id = upload_id
        self._parts: dict[int, dict[str, Any]] = {}

    def record(self, number: int, part: dict[str, Any]) -> None:
        """Remember a finished part (``ETag`` and any checksum) for the completion."""
        self._parts[number] = {"PartNumber": number, **part}

    async def complete(self) -> dict[str, Any]:
        """Assemble the recorded parts, in order, into the object."""
        parts = [self._parts[number] for number in sorted(self._parts)]
        try:
            return await self.ctx.request(
                "CompleteMultipartUpload",
                key=self.key,
                attempt_timeout=COMPLETE_ATTEMPT_TIMEOUT,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except ObjectNotFound as missing:
            if missing.code != "NoSuchUpload":
                raise
            # A retried completion whose first attempt succeeded, its answer lost, finds the upload gone.
            # The object is ours if its ETag is the one these exact parts produce.
            expected = _multipart_etag([part["ETag"] for part in parts])
            try:
                info: ObjectInfo | None = await self.ctx.head(self.key)
            except ObjectNotFound:
                info = None
            if expected is None or info is None or info.etag != expected:
                raise
            logger.info("s3://%s/%s: completed by an earlier attempt whose answer was lost", self.ctx.bucket, self.key)
            return {"ETag": info.etag, "VersionId": info.version_id}

    async def abort(self) -> None:
        """Abort, within ``ABORT_DEADLINE`` and shielded from cancellation; failures are logged."""
        with anyio.move_on_after(ABORT_DEADLINE, shield=True) as scope:
            try:
                await self.ctx.request("AbortMultipartUpload", key=self.key, UploadId=self.upload_id)
            except StorageError as exc:
                logger.warning(
                    "could not abort multipart upload %s of s3://%s/%s: %s",
                    self.upload_id,
                    self.ctx.bucket,
                    self.key,
                    exc,
                )
        if scope.cancelled_caught:
            logger.warning(
                "aborting multipart upload %s of s3://%s/%s timed out; a lifecycle rule must clean it up",
                self.upload_id,
                self.ctx.bucket,
                self.key,
            )


@asynccontextmanager
async def open_multipart(ctx: S3Context, key: str, **create_args: Any) -> AsyncIterator[MultipartUpload]:
    """Create a multipart upload; abort it if the body raises or is cancelled before completing it."""
    response = await ctx.request("CreateMultipartUpload", key=key, **create_args)
    upload = MultipartUpload(ctx, key, response["UploadId"])
    try:
        yield upload
    except BaseException:
        await upload.abort()
        raise
