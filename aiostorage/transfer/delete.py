"""Deleting many keys: DeleteObjects batches of at most 1,000 keys, sent in parallel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._context import S3Context
from .._models import DeleteError, DeleteResult
from .._settings import MAX_DELETE_KEYS
from .._tasks import task_group

__all__ = ["delete_keys"]


async def delete_keys(ctx: S3Context, keys: Iterable[str]) -> DeleteResult:
    """Delete every key once (repeats are sent once); S3's per-key errors are reported, not raised."""
    unique = list(dict.fromkeys(keys))
    deleted: list[str] = []
    errors: list[DeleteError] = []

    async def delete_batch(batch: list[str]) -> None:
        objects: list[dict[str, Any]] = [{"Key": key} for key in batch]
        response = await ctx.request("DeleteObjects", Delete={"Objects": objects, "Quiet": False})
        deleted.extend(item["Key"] for item in response.get("Deleted", []))
        errors.extend(
            DeleteError(key=item.get("Key", ""), code=item.get("Code", ""), message=item.get("Message", ""))
            for item in response.get("Errors", [])
        )

    async with task_group() as group:
        for start in range(0, len(unique), MAX_DELETE_KEYS):
            group.start_soon(delete_batch, unique[start : start + MAX_DELETE_KEYS])
    return DeleteResult(deleted=deleted, errors=errors)
