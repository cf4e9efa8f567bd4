"""The commands that work on a store: cp, cat, sync, rm, ls, du, presign.

Each takes the ``Invocation`` (global options, filters) first, then its own options, and returns the
exit code. Imported only when one of them runs.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from .._exceptions import InvalidArgument
from .._models import BulkItem, BulkResult, ObjectInfo
from .._settings import MAX_DELETE_KEYS
from .._store import AsyncS3Store
from .._tasks import task_group
from ..transfer.localtree import scan_tree
from ..transfer.sync import Direction, normalise_prefix, plan_download, scan_failures
from ._output import Output, say, size_text
from ._pipes import read_stdin, stdout_writer
from ._running import Invocation
from ._urls import S3Url, parse_s3_url, require_s3
from ._writes import Writes, attachment

__all__ = ["cat", "cp", "du", "ls", "presign", "rm", "sync"]

# DeleteObjects calls of ``rm -r`` in flight while its listing goes on.
DELETE_BATCHES_IN_FLIGHT = 8
STDIO = "-"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}{name}" if not prefix or prefix.endswith("/") else f"{prefix}/{name}"


def _names_prefix(url: S3Url) -> bool:
    return not url.key or url.key.endswith("/")


async def _delete_under(store: AsyncS3Store, prefix: str, invocation: Invocation, *, dry_run: bool) -> tuple[int, int]:
    """Delete every object under ``prefix`` the filters keep, as the listing finds them: (found, failures).

    Keys go out in DeleteObjects batches while the listing goes on, a few batches at a time, so a
    prefix of any size is deleted without holding its listing in memory.
    """
    output = invocation.output
    found = failed = 0
    slots = anyio.Semaphore(DELETE_BATCHES_IN_FLIGHT)

    async def delete(batch: list[str]) -> None:
        nonlocal failed
        try:
            failed += output.deleted(store.bucket, await store.delete_many(batch))
        finally:
            slots.release()

    async with task_group() as group, store.list(prefix) as listing:
        batch: list[str] = []
        async for info in listing:
            if not invocation.filters(info.key[len(prefix) :]):
                continue
            found += 1
            if dry_run:
                output.line(f"(dry run) delete: s3://{store.bucket}/{info.key}")
                continue
            batch.append(info.key)
            if len(batch) == MAX_DELETE_KEYS:
                await slots.acquire()
                group.start_soon(delete, batch)
                batch = []
        if batch:
            await slots.acquire()
            group.start_soon(delete, batch)
    return found, failed


async def rm(invocation: Invocation, keys: tuple[str, ...], recursive: bool, dry_run: bool) -> int:
    urls = [require_s3(key) for key in keys]
    if not recursive and (named := next((url for url in urls if _names_prefix(url)), None)):
        raise InvalidArgument(f"{named} names a prefix, not an object: use rm -r to delete everything under it")
    output = invocation.output
    settings = invocation.settings()
    failed = 0
    for bucket in sorted({url.bucket for url in urls}):
        async with AsyncS3Store(bucket, settings=settings) as store:
            chosen = [url.key for url in urls if url.bucket == bucket]
            if not recursive and dry_run:
                for key in chosen:
                    output.line(f"(dry run) delete: s3://{bucket}/{key}")
            elif not recursive:
                failed += output.deleted(bucket, await store.delete_many(chosen))
            else:
                # A prefix names a folder, as with cp -r: s3://b/data means data/..., never database/...
                for prefix in dict.fromkeys(normalise_prefix(key) for key in chosen):
                    found, failures = await _delete_under(store, prefix, invocation, dry_run=dry_run)
                    failed += failures
                    if not found:
                        say("nothing under", "yellow", f"s3://{bucket}/{prefix}")
    if failed:
        say(f"{failed} objects could not be deleted", "red")
    return 1 if failed else 0


async def presign(
    invocation: Invocation, url: str, put: bool, expires: int, content_type: str | None, filename: str | None
) -> int:
    location = require_s3(url)
    if put and filename is not None:
        raise InvalidArgument("--filename names a download: leave it out with --put")
    disposition = attachment(filename) if filename is not None else None
    async with AsyncS3Store(location.bucket, settings=invocation.settings()) as store:
        if put:
            signed = await store.presign_put(location.key, expires_in=expires, content_type=content_type)
        else:
            signed = await store.presign_get(location.key, expires_in=expires, response_content_disposition=disposition)
    invocation.output.print(signed)
    return 0


async def _to_stdout(invocation: Invocation, source: S3Url) -> int:
    """The object's bytes in order on standard output; no bar, no result line (stdout is the data)."""
    async with (
        AsyncS3Store(source.bucket, settings=invocation.settings()) as store,
        stdout_writer() as write,
        store.stream(source.key) as chunks,
    ):
        async for chunk in chunks:
            await write(chunk)
    return 0


async def _from_stdin(invocation: Invocation, target: S3Url, writes: Writes) -> int:
    """Standard input streamed into one object, multipart once it outgrows one part; size unknown."""
    if _names_prefix(target):
        raise InvalidArgument(f"{target} names a prefix: give the key to upload standard input to")
    async with AsyncS3Store(target.bucket, settings=invocation.settings()) as store:
        result = await store.upload(
            read_stdin(),
            target.key,
            content_type=writes.content_type,
            metadata=writes.metadata,
            options=writes.options,
        )
    invocation.output.line(f"upload: - to s3://{target.bucket}/{target.key} ({size_text(result.size, False)})")
    return 0


async def cat(invocation: Invocation, url: str) -> int:
    source = require_s3(url)
    if _names_prefix(source):
        raise InvalidArgument(f"{source} names a prefix, not an object")
    return await _to_stdout(invocation, source)


async def cp(
    invocation: Invocation,
    src: str,
    dst: str,
    recursive: bool,
    dry_run: bool,
    no_follow_symlinks: bool,
    **attributes: Any,
) -> int:
    writes = Writes.from_options(**attributes)
    source, target = parse_s3_url(src), parse_s3_url(dst)
    if source is None and target is None:
        raise InvalidArgument("one of SRC and DST must be an s3:// location")
    if dry_run and not recursive:
        raise InvalidArgument("--dry-run goes with cp -r")
    if src == STDIO or dst == STDIO:
        if recursive:
            raise InvalidArgument("- (standard input or output) is one object: leave out -r")
        if src == STDIO and target is not None:
            return await _from_stdin(invocation, target, writes)
        if dst == STDIO and source is not None:
            writes.refuse(what="a download")
            if _names_prefix(source):
                raise InvalidArgument(f"{source} names a prefix, not an object")
            return await _to_stdout(invocation, source)
    if source is not None and _names_prefix(source) and not recursive:
        raise InvalidArgument(f"{source} names a prefix, not an object: use cp -r to copy everything under it")
    if source is None and target is not None:
        return await _upload(invocation, Path(src), target, recursive, dry_run, no_follow_symlinks, writes)
    if source is not None and target is None:
        writes.refuse(what="a download")
        return await _download(invocation, source, Path(dst), dst, recursive, dry_run)
    assert source is not None and target is not None
    return await _copy(invocation, source, target, recursive, dry_run, writes)


async def _upload(
    invocation: Invocation,
    local: Path,
    target: S3Url,
    recursive: bool,
    dry_run: bool,
    no_follow_symlinks: bool,
    writes: Writes,
) -> int:
    output = invocation.output
    if recursive:
        # Each file's type is guessed from its name; one type for a whole folder would be wrong for most.
        writes.refuse("content_type", what="cp -r")
    async with AsyncS3Store(target.bucket, settings=invocation.settings()) as store:
        if recursive:
            scan = await anyio.to_thread.run_sync(lambda: scan_tree(local, follow_symlinks=not no_follow_symlinks))
            into = normalise_prefix(target.key)
            pairs = [(file.path, into + file.relative) for file in scan.files if invocation.filters(file.relative)]
            unread = scan_failures(scan, "up", bucket=target.bucket, prefix=into)
            if dry_run:
                planned = [(str(path), f"s3://{target.bucket}/{key}") for path, key in pairs]
                return _report_plan(output, planned, unread, "upload")
            with output.bars() as bars:
                result = await store.upload_many(
                    pairs, metadata=writes.metadata, options=writes.options, progress=output.bulk(bars, "upload")
                )
            return output.report(BulkResult(items=[*result.items, *unread]), "upload")
        if await anyio.Path(local).is_dir():
            raise InvalidArgument(f"{local} is a folder: use cp -r to copy it")
        key = target.key if not _names_prefix(target) else _join(target.key, local.name)
        size = (await anyio.Path(local).stat()).st_size
        with output.bars() as bars:
            await store.upload(
                local,
                key,
                content_type=writes.content_type,
                metadata=writes.metadata,
                options=writes.options,
                progress=output.single(bars, local.name, size),
            )
    output.line(f"upload: {local} to s3://{target.bucket}/{key}")
    return 0


async def _download(
    invocation: Invocation, source: S3Url, local: Path, dst: str, recursive: bool, dry_run: bool
) -> int:
    output = invocation.output
    async with AsyncS3Store(source.bucket, settings=invocation.settings()) as store:
        if recursive:
            # A prefix names a folder: s3://b/data means data/..., never database/...
            prefix = normalise_prefix(source.key)
            listed = [info async for info in store.list(prefix) if invocation.filters(info.key[len(prefix) :])]
            plan = plan_download(listed, local, prefix, bucket=source.bucket)
            if dry_run:
                planned = [(f"s3://{source.bucket}/{info.key}", str(path)) for info, path in plan.pairs]
                return _report_plan(output, planned, plan.refused, "download")
            with output.bars() as bars:
                result = await store.download_many(plan.pairs, progress=output.bulk(bars, "download"))
            return output.report(BulkResult(items=[*result.items, *plan.refused]), "download")
        into_folder = dst.endswith("/") or await anyio.Path(local).is_dir()
        path = local / PurePosixPath(source.key).name if into_folder else local
        with output.bars() as bars:
            # The size reaches the bar with the download's first progress event: no HEAD of its own.
            await store.download(source.key, path, progress=output.single(bars, source.key, None))
    output.line(f"download: s3://{source.bucket}/{source.key} to {path}")
    return 0


async def _copy(
    invocation: Invocation, source: S3Url, target: S3Url, recursive: bool, dry_run: bool, writes: Writes
) -> int:
    output = invocation.output
    # A server-side copy keeps the source's content type; copy_many keeps each source's metadata too.
    if recursive:
        writes.refuse("content_type", "metadata", what="cp -r between s3:// locations")
    else:
        writes.refuse("content_type", what="a server-side copy")
    settings = invocation.settings()
    async with AsyncS3Store(target.bucket, settings=settings) as store:
        if recursive:
            prefix, into = normalise_prefix(source.key), normalise_prefix(target.key)
            async with AsyncS3Store(source.bucket, settings=settings) as origin:
                listed = [
                    info
                    async for info in origin.list(prefix)
                    if into + info.key[len(prefix) :] and invocation.filters(info.key[len(prefix) :])
                ]
            copies = [(info, into + info.key[len(prefix) :]) for info in listed]
            if dry_run:
                planned = [(f"s3://{source.bucket}/{info.key}", f"s3://{target.bucket}/{key}") for info, key in copies]
                return _report_plan(output, planned, [], "copy")
            with output.bars() as bars:
                pairs: list[tuple[str | ObjectInfo, str]] = list(copies)
                result = await store.copy_many(
                    pairs, src_bucket=source.bucket, options=writes.options, progress=output.bulk(bars, "copy")
                )
            return output.report(result, "copy")
        key = target.key if not _names_prefix(target) else _join(target.key, PurePosixPath(source.key).name)
        await store.copy(source.key, key, src_bucket=source.bucket, metadata=writes.metadata, options=writes.options)
    output.line(f"copy: {source} to s3://{target.bucket}/{key}")
    return 0


def _report_plan(output: Output, planned: list[tuple[str, str]], failures: list[BulkItem], verb: str) -> int:
    """The lines of a dry run: what would be transferred, and what could not be planned."""
    items = [BulkItem(source=source, destination=destination) for source, destination in planned]
    return output.report(BulkResult(items=[*items, *failures]), verb, dry_run=True)


async def sync(
    invocation: Invocation,
    src: str,
    dst: str,
    delete: bool,
    dry_run: bool,
    no_follow_symlinks: bool,
    **attributes: Any,
) -> int:
    writes = Writes.from_options(**attributes)
    source, target = parse_s3_url(src), parse_s3_url(dst)
    if (source is None) == (target is None):
        raise InvalidArgument("sync needs one local folder and one s3:// location")
    remote = target or source
    assert remote is not None
    direction: Direction = "up" if target is not None else "down"
    if direction == "down":
        writes.refuse(what="a sync down")
    else:
        writes.refuse("content_type", "metadata", what="sync")
    folder = Path(src if direction == "up" else dst)
    output = invocation.output
    async with AsyncS3Store(remote.bucket, settings=invocation.settings()) as store:
        with output.bars() as bars:
            result = await store.sync(
                folder,
                remote.key,
                direction=direction,
                delete=delete,
                progress=output.bulk(bars, "sync"),
                follow_symlinks=not no_follow_symlinks,
                options=writes.options,
                select=invocation.filters if invocation.filters else None,
                dry_run=dry_run,
            )
    code = output.report(result, "upload" if direction == "up" else "download", dry_run=dry_run)
    output.line(f"{len(result.skipped)} unchanged")
    return code


async def ls(invocation: Invocation, url: str, recursive: bool, long_format: bool, exact: bool, summarize: bool) -> int:
    location = require_s3(url)
    output = invocation.output
    count = total = 0
    async with AsyncS3Store(location.bucket, settings=invocation.settings()) as store:
        if recursive:
            async with store.list(location.key, ordered=True) as listing:
                async for info in listing:  # printed as listed: a large bucket is never held in memory
                    output.object(info, long_format=long_format, exact=exact)
                    count, total = count + 1, total + info.size
        else:
            prefixes, objects = await store.list_level(location.key)
            for prefix in prefixes:
                output.print(f"{'PRE':>10} {prefix}" if long_format else prefix)
            for info in objects:
                output.object(info, long_format=long_format, exact=exact)
                count, total = count + 1, total + info.size
    if summarize:
        output.print(f"\nTotal Objects: {count}\n   Total Size: {size_text(total, exact)}")
    return 0


async def _usage(store: AsyncS3Store, prefix: str) -> tuple[int, int]:
    """(bytes, objects) under ``prefix``."""
    size = count = 0
    async with store.list(prefix) as listing:
        async for info in listing:
            size, count = size + info.size, count + 1
    return size, count


async def du(invocation: Invocation, url: str, by_prefix: bool, exact: bool) -> int:
    location = require_s3(url)
    # A prefix names a folder, as with cp -r: s3://b/data means data/..., never database/...
    prefix = normalise_prefix(location.key)
    output = invocation.output

    def line(size: int, count: int, name: str) -> None:
        output.print(f"{size_text(size, exact):>10} {count:>9} objects  {name}")

    async with AsyncS3Store(location.bucket, settings=invocation.settings()) as store:
        if not by_prefix:
            size, count = await _usage(store, prefix)
            line(size, count, f"s3://{location.bucket}/{prefix}")
            return 0
        prefixes, objects = await store.list_level(prefix)
        usages: dict[str, tuple[int, int]] = {}

        async def measure(sub: str) -> None:
            usages[sub] = await _usage(store, sub)

        # Each folder is itself listed concurrently; the store's request budget bounds the whole.
        async with task_group() as group:
            for sub in prefixes:
                group.start_soon(measure, sub)
    size = sum(info.size for info in objects) + sum(size for size, _ in usages.values())
    count = len(objects) + sum(count for _, count in usages.values())
    for sub in prefixes:
        line(*usages[sub], f"s3://{location.bucket}/{sub}")
    if objects:
        line(
            sum(info.size for info in objects), len(objects), f"s3://{location.bucket}/{prefix} (objects at this level)"
        )
    line(size, count, f"s3://{location.bucket}/{prefix} (total)")
    return 0
