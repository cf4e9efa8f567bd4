"""Many objects under one concurrency budget: upload_many, download_many, sync.

Every request of every item (a small file's PUT, a large file's parts) draws from one budget of
``concurrency`` requests, so a 5 GiB file and 10,000 small ones share the same limit; at most
``concurrency`` items are open at once. One item failing does not stop the others (unless
``fail_fast``): each item's result or error is reported in the ``BulkResult``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict

from .._context import S3Context
from .._exceptions import InvalidArgument, StorageError
from .._models import DownloadResult, ObjectInfo, TransferProgress, UploadResult
from .._tasks import task_group

__all__ = ["BulkItem", "BulkProgress", "BulkResult", "Direction", "plan_sync", "run_bulk"]

Direction = Literal["up", "down"]

# Files up to this size are compared by MD5 against a single-part ETag; larger ones by size and mtime.
MD5_COMPARE_LIMIT = 16 * 1024 * 1024


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


# sync


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    relative: str  # posix path below the synced folder
    size: int
    mtime: float


def scan_folder(folder: Path) -> list[LocalFile]:
    """Every regular file below ``folder`` (blocking: run it in a thread)."""
    files: list[LocalFile] = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            stat = path.stat()
            relative = path.relative_to(folder).as_posix()
            files.append(LocalFile(path, relative, stat.st_size, stat.st_mtime))
    return files


def local_path_for(folder: Path, relative_key: str) -> Path | None:
    """Where an object lands below ``folder``, or ``None`` if its key would escape it or name no file."""
    parts = PurePosixPath(relative_key).parts
    if not parts or relative_key.endswith("/") or any(part in ("..", ".") for part in parts) or parts[0] == "/":
        return None
    return folder.joinpath(*parts)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def differs(local: LocalFile, remote: ObjectInfo, direction: Direction) -> bool:
    """Whether the file and the object differ: size, then MD5 for single-part ETags, else the newer side.

    Blocking (it may hash the file): run it in a thread.
    """
    if local.size != remote.size:
        return True
    if "-" not in remote.etag and len(remote.etag) == 32 and local.size <= MD5_COMPARE_LIMIT:
        return _md5(local.path) != remote.etag
    if direction == "up":
        return local.mtime > _timestamp(remote.last_modified)
    return _timestamp(remote.last_modified) > local.mtime


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync does: transfer these pairs, skip those unchanged, delete the extra ones."""

    transfers: list[tuple[LocalFile | None, ObjectInfo | None, str, Path]]  # local, remote, key, path
    unchanged: list[str]
    extra: list[str]  # keys (up) or local paths (down) absent on the source side


async def plan_sync(listing: AsyncIterable[ObjectInfo], folder: Path, prefix: str, direction: Direction) -> SyncPlan:
    """Compare the folder with the objects under ``prefix`` as ``listing`` yields them."""
    local_files = await anyio.to_thread.run_sync(scan_folder, folder)
    remote: dict[str, ObjectInfo] = {}
    async for info in listing:
        remote[info.key] = info
    by_relative = {file.relative: file for file in local_files}
    transfers: list[tuple[LocalFile | None, ObjectInfo | None, str, Path]] = []
    unchanged: list[str] = []
    if direction == "up":
        for file in local_files:
            key = prefix + file.relative
            existing = remote.get(key)
            if existing is None or await anyio.to_thread.run_sync(differs, file, existing, direction):
                transfers.append((file, existing, key, file.path))
            else:
                unchanged.append(key)
        extra = sorted(set(remote) - {prefix + file.relative for file in local_files})
        return SyncPlan(transfers, unchanged, extra)
    wanted: set[str] = set()
    for key, info in sorted(remote.items()):
        path = local_path_for(folder, key[len(prefix) :])
        if path is None:
            continue
        relative = path.relative_to(folder).as_posix()
        wanted.add(relative)
        local = by_relative.get(relative)
        if local is None or await anyio.to_thread.run_sync(differs, local, info, direction):
            transfers.append((local, info, key, path))
        else:
            unchanged.append(key)
    extra = sorted(str(file.path) for file in local_files if file.relative not in wanted)
    return SyncPlan(transfers, unchanged, extra)


def check_direction(direction: str) -> Direction:
    if direction not in ("up", "down"):
        raise InvalidArgument(f"direction must be 'up' or 'down', got {direction!r}")
    return direction  # type: ignore[return-value]


def normalise_prefix(prefix: str) -> str:
    """A sync prefix names a folder: ``"backups"`` means ``"backups/"``; ``""`` is the whole bucket."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def keep_remote_mtimes(items: Sequence[BulkItem], remote: Sequence[tuple[ObjectInfo, Path]]) -> None:
    """Give each downloaded file its object's modification time, so the next sync sees them equal."""
    for item, (info, path) in zip(items, remote, strict=True):
        if item.ok and info.last_modified is not None:
            stamp = info.last_modified.timestamp()
            os.utime(path, (stamp, stamp))


def remove_files(paths: Sequence[str]) -> list[str]:
    """Delete local files a sync down found extra; the ones removed."""
    removed: list[str] = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
