"""Many objects under one concurrency budget: upload_many, download_many, copy_many and sync's transfers.

Every request of every item (a small file's PUT, a large file's parts) draws from one budget of
``concurrency`` requests, so a 5 GiB file and 10,000 small ones share the same limit; at most
``concurrency`` items are open at once. One item failing does not stop the others (unless
``fail_fast``): each item's result or error is reported in the ``BulkResult``.

Each kind (``upload_many``, ``download_many``, ``copy_many``) only says how one item is named and
transferred; ``run_jobs`` does the rest for all three.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from .._context import S3Context
from .._exceptions import InvalidArgument, StorageError
from .._models import (
    BulkItem,
    BulkProgress,
    BulkResult,
    DownloadResult,
    ObjectInfo,
    TransferProgress,
    UploadResult,
)
from .._options import WriteOptions
from .._settings import MAX_SINGLE_COPY
from .._tasks import task_group
from .copy import copy_key
from .download import download_object
from .sources import UploadSource
from .upload import ProgressCallback, object_attributes, upload

# The result models live with the others in ``_models``; importing them from here keeps working.
__all__ = [
    "BulkItem",
    "BulkOptions",
    "BulkProgress",
    "BulkResult",
    "Job",
    "copy_many",
    "describe_source",
    "download_many",
    "run_jobs",
    "source_size",
    "upload_many",
]

# One item's transfer, given the budgeted context and the item's own progress callback.
Step = Callable[[S3Context, ProgressCallback], Awaitable[UploadResult | DownloadResult]]


@dataclass(frozen=True, slots=True)
class BulkOptions:
    """What every item of one bulk call shares: the budget, the part size, progress and ``fail_fast``.

    ``explicit_part_size``: the caller chose ``part_size`` (an upload then refuses a size that needs
    more than 10,000 parts instead of growing it).
    """

    concurrency: int
    part_size: int
    explicit_part_size: bool = False
    progress: Callable[[BulkProgress], None] | None = None
    fail_fast: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """One item: how the result names it, its size when known (for the progress totals), and its step."""

    source: str
    destination: str
    size: int | None
    step: Step


class _Aggregate:
    """Sums per-item progress into one ``BulkProgress`` stream; never goes backwards."""

    def __init__(self, objects: int, total_bytes: int | None, callback: Callable[[BulkProgress], None] | None):
        self.objects_total = objects
        self.bytes_total = total_bytes
        self.objects_done = 0
        self.bytes_done = 0
        self._callback = callback
        self._per_item: dict[int, int] = {}

    def item_progress(self, index: int) -> ProgressCallback:
        def report(event: TransferProgress) -> None:
            previous = self._per_item.get(index, 0)
            if event.transferred > previous:
                self._per_item[index] = event.transferred
                self.bytes_done += event.transferred - previous
                self._emit()

        return report

    def item_done(self) -> None:
        self.objects_done += 1
        self._emit()

    def _emit(self) -> None:
        if self._callback is not None:
            self._callback(BulkProgress(self.objects_done, self.objects_total, self.bytes_done, self.bytes_total))


async def run_jobs(ctx: S3Context, jobs: Sequence[Job], options: BulkOptions) -> BulkResult:
    """Run every job under one budget of ``options.concurrency`` requests; one outcome per job, in order."""
    sizes = [job.size for job in jobs]
    total = None if any(size is None for size in sizes) else sum(size or 0 for size in sizes)
    aggregate = _Aggregate(len(jobs), total, options.progress)
    # Requests in flight, as everywhere: see ``Retrying.limiter``.
    budgeted = ctx.with_budget(anyio.Semaphore(options.concurrency, fast_acquire=True))
    outcomes: list[BulkItem | None] = [None] * len(jobs)
    # At most ``concurrency`` items open at once: that many workers take the jobs in order. (A task per job,
    # all started at once and waiting their turn, costs a task and a semaphore wait for every item.)
    pending = iter(enumerate(jobs))

    async def work(scope: anyio.CancelScope) -> None:
        for index, job in pending:
            try:
                result = await job.step(budgeted, aggregate.item_progress(index))
            except Exception as exc:  # each item's failure is its own; cancellation still propagates
                outcomes[index] = BulkItem(source=job.source, destination=job.destination, error=exc)
                if options.fail_fast:
                    scope.cancel()
            else:
                outcomes[index] = BulkItem(source=job.source, destination=job.destination, result=result)
            aggregate.item_done()

    async with task_group() as group:
        for _ in range(min(options.concurrency, len(jobs))):
            group.start_soon(work, group.cancel_scope)
    items = [
        outcome
        or BulkItem(
            source=job.source,
            destination=job.destination,
            error=StorageError("not attempted: fail_fast stopped the batch after an earlier failure"),
        )
        for job, outcome in zip(jobs, outcomes, strict=True)
    ]
    return BulkResult(items=items)


async def upload_many(
    ctx: S3Context,
    pairs: Sequence[tuple[UploadSource, str]],
    options: BulkOptions,
    *,
    metadata: dict[str, str] | None,
    write: WriteOptions | None = None,
) -> BulkResult:
    """Upload every ``(source, key)`` pair; see the module's docstring."""
    sizes = await anyio.to_thread.run_sync(lambda: [source_size(source) for source, _ in pairs])
    # One pool of part buffers for every item: memory stays within about concurrency parts in all.
    part_slots = anyio.Semaphore(options.concurrency)

    def job(source: UploadSource, key: str, size: int | None) -> Job:
        async def step(budgeted: S3Context, progress: ProgressCallback) -> UploadResult:
            return await upload(
                budgeted,
                source,
                key,
                attributes=object_attributes(key, None, metadata, write),
                part_size=options.part_size,
                explicit_part_size=options.explicit_part_size,
                concurrency=options.concurrency,
                progress=progress,
                part_slots=part_slots,
            )

        return Job(describe_source(source), f"s3://{ctx.bucket}/{key}", size, step)

    return await run_jobs(ctx, [job(*pair, size) for pair, size in zip(pairs, sizes, strict=True)], options)


async def download_many(
    ctx: S3Context, pairs: Sequence[tuple[str, ObjectInfo | None, Path]], options: BulkOptions, *, fsync: bool
) -> BulkResult:
    """Download every ``(key, listed info or None, dest)``; a ``dest`` with a ``..`` part fails its item.

    A listed size counts in the progress totals, and one that fits a part has the object asked for whole.
    """

    def job(key: str, listed: ObjectInfo | None, dest: Path) -> Job:
        size = listed.size if listed else None

        async def step(budgeted: S3Context, progress: ProgressCallback) -> DownloadResult:
            if ".." in dest.parts:
                raise InvalidArgument(
                    f"refused {dest}: a '..' part would let the key s3://{ctx.bucket}/{key} land outside"
                    " the folder meant; resolve the path first to mean a parent folder",
                    bucket=ctx.bucket,
                    key=key,
                )
            return await download_object(
                budgeted,
                key,
                dest,
                version_id=None,
                part_size=options.part_size,
                concurrency=options.concurrency,
                progress=progress,
                fsync=fsync,
                size_hint=size,
            )

        return Job(f"s3://{ctx.bucket}/{key}", str(dest), size, step)

    return await run_jobs(ctx, [job(*pair) for pair in pairs], options)


async def copy_many(
    ctx: S3Context,
    pairs: Sequence[tuple[str, ObjectInfo | None, str]],
    options: BulkOptions,
    *,
    src_bucket: str,
    write: WriteOptions | None = None,
) -> BulkResult:
    """Copy every ``(src_key, listed info or None, dst_key)`` from ``src_bucket`` into ``ctx.bucket``.

    A listed source needs no HEAD first (see ``copy_key``); the source's metadata is kept, and so are
    its other attributes unless ``write`` replaces them.
    """

    def job(src_key: str, listed: ObjectInfo | None, dst_key: str) -> Job:
        async def step(budgeted: S3Context, progress: ProgressCallback) -> UploadResult:
            result = await copy_key(
                budgeted,
                src_key,
                src_bucket,
                dst_key,
                listed=listed,
                metadata=None,
                options=write,
                multipart_threshold=MAX_SINGLE_COPY,
                part_size=options.part_size,
                concurrency=options.concurrency,
            )
            progress(TransferProgress(dst_key, result.size, result.size))
            return result

        size = listed.size if listed else None
        return Job(f"s3://{src_bucket}/{src_key}", f"s3://{ctx.bucket}/{dst_key}", size, step)

    return await run_jobs(ctx, [job(*pair) for pair in pairs], options)


def source_size(source: object) -> int | None:
    """The size of an upload source when it is known up front (blocking for paths: stat)."""
    if isinstance(source, str | os.PathLike):
        try:
            return os.stat(source).st_size
        except OSError:
            return 0  # the item will fail on its own; it has no bytes to count
    if isinstance(source, bytes | bytearray | memoryview):
        return len(source)
    return None


def describe_source(source: object) -> str:
    """How an upload source is named in results: its path, or what it is."""
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"
