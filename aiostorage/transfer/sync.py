"""A sync, and the planning of a recursive download: which objects map to which files, what differs, what is extra.

A sync is planned first (walk the folder, list the prefix, compare: ``plan_sync``), then run as a bulk
transfer, then reported (``sync``); deletion happens only when every item of the plan and of the transfer
succeeded, so nothing is deleted on the strength of a folder that could not be read or a key that could
not be mapped.

Keys map to files by their ``/``-separated parts below the prefix. A key is refused (an
``InvalidArgument`` item of the result, never silently passed over) when a part is empty, ``.`` or
``..`` (it would land outside the folder, or on the same file as another key), when it holds a NUL
character, when it ends in ``/`` but holds data, or when other keys use it as a folder. Empty keys ending
in ``/`` are the folder markers consoles create; they name no file and are passed over.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import anyio

from .._context import S3Context
from .._exceptions import InvalidArgument
from .._models import BulkItem, BulkResult, ObjectInfo
from .._options import WriteOptions
from .._validate import check_key
from .bulk import BulkOptions, download_many, upload_many
from .delete import delete_keys
from .listing import list_objects
from .localtree import LocalFile, TreeScan, scan_tree

__all__ = [
    "Direction",
    "DownloadPlan",
    "SyncPlan",
    "check_direction",
    "keep_remote_mtimes",
    "normalise_prefix",
    "path_for_key",
    "plan_download",
    "plan_sync",
    "remove_files",
    "scan_failures",
    "sync",
]

Direction = Literal["up", "down"]

# Files up to this size are compared by MD5 against a single-part ETag; larger ones by size and mtime.
MD5_COMPARE_LIMIT = 16 * 1024 * 1024


def check_direction(direction: str) -> Direction:
    if direction not in ("up", "down"):
        raise InvalidArgument(f"direction must be 'up' or 'down', got {direction!r}")
    return direction  # type: ignore[return-value]


def normalise_prefix(prefix: str) -> str:
    """A sync prefix names a folder: ``"backups"`` means ``"backups/"``; ``""`` is the whole bucket."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def path_for_key(folder: Path, relative_key: str) -> Path:
    """Where the object whose key is ``relative_key`` below the prefix lands in ``folder``.

    Raises ``InvalidArgument`` for a key that would land outside ``folder``, on the file of another key,
    or on no file at all (see the module's docstring).
    """
    parts = relative_key.split("/")
    if "\0" in relative_key:
        raise InvalidArgument("it holds a NUL character, which no file name can")
    if relative_key.endswith("/"):
        raise InvalidArgument("it ends in '/' and holds data: it names no file")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidArgument(
            "a part of it is empty, '.' or '..': it would not land on a file of its own below the folder"
        )
    return folder.joinpath(*parts)


def _is_folder_marker(info: ObjectInfo, relative_key: str) -> bool:
    return info.size == 0 and (relative_key == "" or relative_key.endswith("/"))


def _refused(bucket: str, key: str, folder: Path, reason: InvalidArgument) -> BulkItem:
    error = InvalidArgument(f"refused s3://{bucket}/{key}: {reason}", bucket=bucket, key=key)
    return BulkItem(source=f"s3://{bucket}/{key}", destination=os.fsdecode(folder), error=error)


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    """Objects paired with the files they land on, and the keys refused (as failed items)."""

    pairs: list[tuple[ObjectInfo, Path]]
    refused: list[BulkItem]


def plan_download(infos: Iterable[ObjectInfo], folder: Path, prefix: str, *, bucket: str) -> DownloadPlan:
    """Map every listed object under ``prefix`` to its file below ``folder``; refuse what cannot map."""
    mapped: list[tuple[ObjectInfo, str, Path]] = []
    refused: list[BulkItem] = []
    for info in infos:
        relative = info.key[len(prefix) :]
        if _is_folder_marker(info, relative):
            continue
        try:
            path = path_for_key(folder, relative)
        except InvalidArgument as reason:
            refused.append(_refused(bucket, info.key, folder, reason))
            continue
        mapped.append((info, relative, path))
    # Every ancestor of a key is a folder: "a/b/c" makes both "a/b" and "a" folders.
    folders: set[str] = set()
    for _, relative, _ in mapped:
        while "/" in relative:
            relative = relative.rsplit("/", 1)[0]
            if relative in folders:
                break  # its ancestors are in already
            folders.add(relative)
    pairs: list[tuple[ObjectInfo, Path]] = []
    for info, relative, path in mapped:
        if relative in folders:
            conflict = InvalidArgument("other keys use it as a folder, and a file cannot also be a folder")
            refused.append(_refused(bucket, info.key, folder, conflict))
        else:
            pairs.append((info, path))
    return DownloadPlan(pairs, refused)


def scan_failures(scan: TreeScan, direction: Direction, *, bucket: str, prefix: str) -> list[BulkItem]:
    """The walk's errors as failed items, named from the source side to the destination side."""
    items: list[BulkItem] = []
    for failure in scan.errors:
        local, remote = os.fsdecode(failure.path), f"s3://{bucket}/{prefix}{failure.relative}"
        source, destination = (local, remote) if direction == "up" else (remote, local)
        items.append(BulkItem(source=source, destination=destination, error=failure.error))
    return items


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
    """What a sync does: transfer these pairs, skip those unchanged, delete the extra ones, report failures."""

    transfers: list[tuple[LocalFile | None, ObjectInfo | None, str, Path]]  # local, remote, key, path
    unchanged: list[str]
    extra: list[str]  # keys (up) or local paths (down) absent on the source side
    failures: list[BulkItem]  # folders and files that could not be read, keys refused


def _scan_destination(folder: Path, *, follow_symlinks: bool) -> TreeScan:
    """The local side of a download: a folder that does not exist yet holds nothing."""
    if not os.path.lexists(folder):
        return TreeScan()
    return scan_tree(folder, follow_symlinks=follow_symlinks)


async def plan_sync(
    listing: AsyncIterable[ObjectInfo],
    folder: Path,
    prefix: str,
    direction: Direction,
    *,
    bucket: str,
    follow_symlinks: bool = True,
    select: Callable[[str], bool] | None = None,
) -> SyncPlan:
    """Compare the folder with the objects under ``prefix`` as ``listing`` yields them.

    ``select``, given the ``/``-separated path below the folder and the prefix, leaves out what it
    rejects on both sides: neither transferred nor deleted.
    """
    walk = scan_tree if direction == "up" else _scan_destination
    scan = await anyio.to_thread.run_sync(lambda: walk(folder, follow_symlinks=follow_symlinks))
    failures = scan_failures(scan, direction, bucket=bucket, prefix=prefix)
    if select is not None:
        scan = TreeScan(files=[file for file in scan.files if select(file.relative)], errors=scan.errors)
    remote: dict[str, ObjectInfo] = {}
    async for info in listing:
        if select is None or select(info.key[len(prefix) :]):
            remote[info.key] = info
    transfers: list[tuple[LocalFile | None, ObjectInfo | None, str, Path]] = []
    unchanged: list[str] = []
    if direction == "up":
        for file in scan.files:
            key = prefix + file.relative
            existing = remote.get(key)
            if existing is None or await anyio.to_thread.run_sync(differs, file, existing, direction):
                transfers.append((file, existing, key, file.path))
            else:
                unchanged.append(key)
        extra = sorted(set(remote) - {prefix + file.relative for file in scan.files})
        return SyncPlan(transfers, unchanged, extra, failures)
    download = plan_download(sorted(remote.values(), key=lambda info: info.key), folder, prefix, bucket=bucket)
    by_relative = {file.relative: file for file in scan.files}
    wanted: set[str] = set()
    for info, path in download.pairs:
        relative = info.key[len(prefix) :]
        wanted.add(relative)
        local = by_relative.get(relative)
        if local is None or await anyio.to_thread.run_sync(differs, local, info, direction):
            transfers.append((local, info, info.key, path))
        else:
            unchanged.append(info.key)
    extra = sorted(os.fsdecode(file.path) for file in scan.files if file.relative not in wanted)
    return SyncPlan(transfers, unchanged, extra, failures + download.refused)


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


def _planned(bucket: str, plan: SyncPlan, direction: Direction, *, delete: bool) -> BulkResult:
    """What ``plan`` would do, as a result with no transfer done."""
    items: list[BulkItem] = []
    for _, _, key, path in plan.transfers:
        remote, local = f"s3://{bucket}/{key}", os.fsdecode(path)
        source, destination = (local, remote) if direction == "up" else (remote, local)
        items.append(BulkItem(source=source, destination=destination))
    # As in a real run, nothing would be deleted after a failure.
    deleting = delete and not plan.failures
    extra = [f"s3://{bucket}/{key}" for key in plan.extra] if direction == "up" else plan.extra
    return BulkResult(items=[*items, *plan.failures], skipped=plan.unchanged, deleted=extra if deleting else [])


async def sync(
    ctx: S3Context,
    folder: Path,
    prefix: str,
    direction: Direction,
    options: BulkOptions,
    *,
    delete: bool,
    follow_symlinks: bool,
    write: WriteOptions | None = None,
    select: Callable[[str], bool] | None = None,
    dry_run: bool = False,
) -> BulkResult:
    """Plan, transfer what differs under one budget, delete what is extra (only after no failure), report.

    ``prefix`` names a folder (see ``normalise_prefix``); ``write`` are the options of uploads. A dry run
    stops after the plan: its items are the transfers that would run (no result, no error), ``deleted``
    what would be deleted.
    """
    async with list_objects(ctx, prefix, concurrency=options.concurrency, ordered=False) as listing:
        plan = await plan_sync(
            listing, folder, prefix, direction, bucket=ctx.bucket, follow_symlinks=follow_symlinks, select=select
        )
    if dry_run:
        return _planned(ctx.bucket, plan, direction, delete=delete)
    if direction == "up":
        uploads = [(path, check_key(key)) for _, _, key, path in plan.transfers]
        result = await upload_many(ctx, uploads, options, metadata=None, write=write)
    else:
        remote = [(info, path) for _, info, _, path in plan.transfers if info is not None]
        downloads = [(info.key, info, path) for info, path in remote]
        result = await download_many(ctx, downloads, options, fsync=True)
        await anyio.to_thread.run_sync(keep_remote_mtimes, result.items, remote)
    items = [*result.items, *plan.failures]
    deleted: list[str] = []
    if delete and all(item.ok for item in items):
        if direction == "up":
            removal = await delete_keys(ctx, plan.extra)
            deleted = [f"s3://{ctx.bucket}/{key}" for key in removal.deleted]
        else:
            deleted = await anyio.to_thread.run_sync(remove_files, plan.extra)
    return BulkResult(items=items, skipped=plan.unchanged, deleted=deleted)
