"""A multipart upload's life: created, parts recorded, completed, or aborted on any failure.

Whatever fails (a part, the source, the completion) or cancels the caller, the upload is aborted before
the error propagates, shielded from the cancellation with a deadline of its own: an open multipart upload
is billed storage until someone aborts it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .._context import S3Context
from .._exceptions import StorageError

__all__ = ["ABORT_DEADLINE", "MultipartUpload", "open_multipart"]

logger = logging.getLogger("aiostorage")

# Seconds an abort may take after a failure or cancellation before we give up and log it.
ABORT_DEADLINE = 30.0
# S3 may take minutes to assemble a large object, keeping the connection open (with whitespace).
COMPLETE_ATTEMPT_TIMEOUT = 600.0


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
        client = self.ctx.client

        async def attempt() -> dict[str, Any]:
            response: dict[str, Any] = await client.complete_multipart_upload(
                Bucket=self.ctx.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
            return response

        return await self.ctx.call(
            "CompleteMultipartUpload", attempt, key=self.key, attempt_timeout=COMPLETE_ATTEMPT_TIMEOUT
        )

    async def abort(self) -> None:
        """Abort, within ``ABORT_DEADLINE`` and shielded from cancellation; failures are logged."""
        client = self.ctx.client

        async def attempt() -> None:
            await client.abort_multipart_upload(Bucket=self.ctx.bucket, Key=self.key, UploadId=self.upload_id)

        with anyio.move_on_after(ABORT_DEADLINE, shield=True) as scope:
            try:
                await self.ctx.call("AbortMultipartUpload", attempt, key=self.key)
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
    client = ctx.client

    async def create() -> dict[str, Any]:
        response: dict[str, Any] = await client.create_multipart_upload(Bucket=ctx.bucket, Key=key, **create_args)
        return response

    response = await ctx.call("CreateMultipartUpload", create, key=key)
    upload = MultipartUpload(ctx, key, response["UploadId"])
    try:
        yield upload
    except BaseException:
        await upload.abort()
        raise
