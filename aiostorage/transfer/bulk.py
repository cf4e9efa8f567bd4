"""Many objects under one concurrency budget: upload_many, download_many, copy_many and sync's transfers.

Every request of every item (a small file's PUT, a large file's parts) draws from one budget of
``concurrency`` requests, so a 5 GiB file and 10,000 small ones share the same limit; at most
``concurrency`` items are open at once. One item failing does not stop the others (unless
``fail_fast``): each item's result or error is reported in the ``BulkResult``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
from pydantic import BaseModel, ConfigDict

from .._context import S3Context
from .._exceptions import StorageError
from .._models import DownloadResult, TransferProgress, UploadResult
from .._tasks import task_group

__all__ = ["BulkItem", "BulkProgress", "BulkResult", "Job", "describe_source", "run_bulk", "source_size"]


class BulkItem(BaseModel):
    """One item of a bulk transfer: ``result`` when it succeeded, ``error`` when it did not."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str
    destination: str
    result: UploadResult | DownloadResult | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BulkResult(BaseModel):
    """Every item's outcome, in the order given; ``skipped`` and ``deleted`` are filled by ``sync``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    items: list[BulkItem]
    skipped: list[str] = []
    deleted: list[str] = []

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def succeeded(self) -> list[BulkItem]:
        return [item for item in self.items if item.ok]

    @property
    def failed(self) -> list[BulkItem]:
        return [item for item in self.items if not item.ok]


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """Aggregate progress: objects finished (ok or not) and bytes moved, of the totals known so far."""

    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int | None


class _Aggregate:
    """Sums per-item progress into one ``BulkProgress`` stream; never goes backwards."""

    def __init__(self, objects: int, total_bytes: int | None, callback: Callable[[BulkProgress], None] | None):
        self.objects_total = objects
        self.bytes_total = total_bytes
        self.objects_done = 0
        self.bytes_done = 0
        self._callback = callback
        self._per_item: dict[int, int] = {}

    def item_progress(self, index: int) -> Callable[[TransferProgress], None]:
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


@dataclass(frozen=True, slots=True)
class Job:
    """One item to run: ``run`` gets the budgeted context and this item's progress callback."""

    source: str
    destination: str
    size: int | None
    run: Callable[[S3Context, Callable[[TransferProgress], None]], Awaitable[UploadResult | DownloadResult]]


async def run_bulk(
    ctx: S3Context,
    jobs: Sequence[Job],
    *,
    concurrency: int,
    progress: Callable[[BulkProgress], None] | None,
    fail_fast: bool,
) -> list[BulkItem]:
    """Run every job under one budget of ``concurrency`` requests; one outcome per job, in order."""
    sizes = [job.size for job in jobs]
    total = None if any(size is None for size in sizes) else sum(size or 0 for size in sizes)
    aggregate = _Aggregate(len(jobs), total, progress)
    budgeted = ctx.with_budget(anyio.CapacityLimiter(concurrency))
    open_items = anyio.CapacityLimiter(concurrency)
    outcomes: list[BulkItem | None] = [None] * len(jobs)

    async def run_one(index: int, job: Job, scope: anyio.CancelScope) -> None:
        async with open_items:
            try:
                result = await job.run(budgeted, aggregate.item_progress(index))
            except Exception as exc:  # each item's failure is its own; cancellation still propagates
                outcomes[index] = BulkItem(source=job.source, destination=job.destination, error=exc)
                if fail_fast:
                    scope.cancel()
            else:
                outcomes[index] = BulkItem(source=job.source, destination=job.destination, result=result)
            aggregate.item_done()

    async with task_group() as group:
        for index, job in enumerate(jobs):
            group.start_soon(run_one, index, job, group.cancel_scope)
    return [
        outcome
        or BulkItem(
            source=job.source,
            destination=job.destination,
            error=StorageError("not attempted: fail_fast stopped the batch after an earlier failure"),
        )
        for job, outcome in zip(jobs, outcomes, strict=True)
    ]


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
