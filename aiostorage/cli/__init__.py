"""The ``aiostorage`` command line: ls, cp, sync, rm, presign, events, local.

S3 locations are written ``s3://bucket/key`` as with the AWS CLI. Settings come from the environment
(``StoreSettings``), like the library. How a command runs (signals, cleanup, exit codes) is in
``_running.py``; what it prints in ``_output.py``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio

try:
    import click
    import rich  # noqa: F401 - the other half of the extra, used by _output
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise SystemExit("the aiostorage command line needs its extra: pip install 'aiostorage[cli]'") from exc

from .._exceptions import ConfigError, InvalidArgument
from .._models import BulkResult
from .._settings import MAX_DELETE_KEYS, StoreSettings
from .._store import AsyncS3Store
from .._tasks import task_group
from ..transfer.localtree import scan_tree
from ..transfer.sync import Direction, normalise_prefix, plan_download, scan_failures
from ._output import bulk_bar, echo_object, progress_bars, report, report_deleted, say, single_bar
from ._running import CommandLineError, command, stop_on_signal

__all__ = ["S3Url", "main", "parse_s3_url"]

# DeleteObjects calls of ``rm -r`` in flight while its listing goes on.
DELETE_BATCHES_IN_FLIGHT = 8


@dataclass(frozen=True)
class S3Url:
    """``s3://bucket/key``; ``key`` may be empty (the whole bucket) or end in ``/`` (a prefix)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(text: str) -> S3Url | None:
    """The S3 location ``text`` names, or ``None`` for a local path."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidArgument(f"no bucket in {text!r}: write s3://bucket/key")
    return S3Url(bucket, key)


def _require_s3(text: str) -> S3Url:
    url = parse_s3_url(text)
    if url is None:
        raise InvalidArgument(f"{text!r} is not an S3 location: write s3://bucket/key")
    return url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(context: click.Context, debug: bool) -> None:
    """aiostorage: fast, honest S3 transfers and S3 events from the command line.

    Ctrl-C or SIGTERM stops a command after its cleanup (uploads aborted, temporary files removed), with
    exit code 130 or 143; events and local stop gracefully and exit 0.
    """
    context.obj = {"debug": debug}


async def _delete_under(store: AsyncS3Store, prefix: str, *, dry_run: bool) -> tuple[int, int]:
    """Delete every object under ``prefix`` as the listing finds them: (objects found, failures).

    Keys go out in DeleteObjects batches while the listing goes on, a few batches at a time, so a
    prefix of any size is deleted without holding its listing in memory.
    """
    found = failed = 0
    slots = anyio.Semaphore(DELETE_BATCHES_IN_FLIGHT)

    async def delete(batch: list[str]) -> None:
        nonlocal failed
        try:
            failed += report_deleted(store.bucket, await store.delete_many(batch))
        finally:
            slots.release()

    async with task_group() as group, store.list(prefix) as listing:
        batch: list[str] = []
        async for info in listing:
            found += 1
            if dry_run:
                click.echo(f"(dry run) delete: s3://{store.bucket}/{info.key}")
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


@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Delete every object under each prefix.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@command
async def rm(keys: tuple[str, ...], recursive: bool, dry_run: bool) -> int:
    """Delete objects: rm s3://bucket/key [s3://bucket/other ...], or rm -r s3://bucket/prefix."""
    urls = [_require_s3(key) for key in keys]
    if not recursive and (empty := next((url for url in urls if not url.key), None)):
        raise InvalidArgument(f"{empty} names no object: use rm -r to delete everything under it")
    failed = 0
    for bucket in sorted({url.bucket for url in urls}):
        async with AsyncS3Store(bucket, settings=StoreSettings()) as store:
            chosen = [url.key for url in urls if url.bucket == bucket]
            if not recursive and dry_run:
                for key in chosen:
                    click.echo(f"(dry run) delete: s3://{bucket}/{key}")
            elif not recursive:
                failed += report_deleted(bucket, await store.delete_many(chosen))
            else:
                # A prefix names a folder, as with cp -r: s3://b/data means data/..., never database/...
                for prefix in dict.fromkeys(normalise_prefix(key) for key in chosen):
                    found, failures = await _delete_under(store, prefix, dry_run=dry_run)
                    failed += failures
                    if not found:
                        say("nothing under", "yellow", f"s3://{bucket}/{prefix}")
    if failed:
        say(f"{failed} objects could not be deleted", "red")
    return 1 if failed else 0


@main.command()
@click.argument("url")
@click.option("--put", is_flag=True, help="A URL to upload to (PUT) instead of download from.")
@click.option("--expires", default=3600, show_default=True, help="Seconds the URL stays valid (at most 7 days).")
@click.option("--content-type", default=None, help="With --put: the Content-Type the upload must send.")
@command
async def presign(url: str, put: bool, expires: int, content_type: str | None) -> int:
    """Print a presigned GET (or PUT) URL for s3://bucket/key."""
    location = _require_s3(url)
    async with AsyncS3Store(location.bucket, settings=StoreSettings()) as store:
        if put:
            signed = await store.presign_put(location.key, expires_in=expires, content_type=content_type)
        else:
            signed = await store.presign_get(location.key, expires_in=expires)
    click.echo(signed)
    return 0


@main.command()
@click.option("--bucket", default="media", show_default=True)
@click.option("--queue", default="media-events", show_default=True)
@click.option("--prefix", default="uploads/", show_default=True)
@click.option("--suffix", "suffixes", multiple=True, default=(".mp4", ".mov", ".avi", ".mkv"), show_default=True)
@click.option("--port", type=int, default=None, help="Port to listen on (default: a free one).")
@command
async def local(bucket: str, queue: str, prefix: str, suffixes: tuple[str, ...], port: int | None) -> int:
    """Run an embedded S3+SQS server, provisioned like the Terraform modules, until Ctrl-C or SIGTERM.

    It accepts any credentials and checks no signatures: what works against it may still be signed wrongly.
    """
    from ..local import LocalServer

    try:
        server = LocalServer(port=port)
        await server.start()
    except (InvalidArgument, ConfigError) as exc:  # a port out of range, or taken
        raise CommandLineError(str(exc)) from exc
    try:
        settings = await server.provision(bucket=bucket, queue=queue, prefix=prefix, suffixes=suffixes)
        secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else ""
        stopped = anyio.Event()
        stop_on_signal(lambda again: stopped.set())
        click.echo("# aiostorage local server; paste these lines into another shell:")
        click.echo(f"export AWS_ENDPOINT_URL={settings.endpoint_url}")
        click.echo(f"export AWS_REGION={settings.region}")
        # boto3's SQS client and AWS CLI v1 read only this one.
        click.echo(f"export AWS_DEFAULT_REGION={settings.region}")
        click.echo(f"export AWS_ACCESS_KEY_ID={settings.aws_access_key_id}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY={secret}")
        click.echo(f"export AWS_S3_BUCKET_NAME={settings.bucket}")
        click.echo(f"export AWS_SQS_QUEUE_URL={settings.queue_url}")
        click.echo("# This server accepts any credentials and checks no signatures: signing is not tested here.")
        click.echo("# Ctrl-C stops the server.", nl=True)
        sys.stdout.flush()
        await stopped.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await server.stop()
    return 0


def _join(prefix: str, name: str) -> str:
    return f"{prefix}{name}" if not prefix or prefix.endswith("/") else f"{prefix}/{name}"


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("-r", "--recursive", is_flag=True, help="Copy a folder or every object under a prefix.")
@click.option("--concurrency", type=int, default=None, help="Requests in flight (default: settings).")
@click.option("--no-follow-symlinks", is_flag=True, help="With -r: skip symbolic links instead of following them.")
@command
async def cp(src: str, dst: str, recursive: bool, concurrency: int | None, no_follow_symlinks: bool) -> int:
    """Copy local -> s3://, s3:// -> local, or s3:// -> s3:// (server-side)."""
    source, target = parse_s3_url(src), parse_s3_url(dst)
    settings = StoreSettings()
    if source is None and target is None:
        raise InvalidArgument("one of SRC and DST must be an s3:// location")
    with progress_bars() as bars:
        if source is None and target is not None:
            async with AsyncS3Store(target.bucket, settings=settings) as store:
                local = Path(src)
                if recursive:
                    scan = await anyio.to_thread.run_sync(
                        lambda: scan_tree(local, follow_symlinks=not no_follow_symlinks)
                    )
                    into = normalise_prefix(target.key)
                    pairs = [(file.path, into + file.relative) for file in scan.files]
                    result = await store.upload_many(pairs, concurrency=concurrency, progress=bulk_bar(bars, "upload"))
                    unread = scan_failures(scan, "up", bucket=target.bucket, prefix=into)
                    return report(BulkResult(items=[*result.items, *unread]), "upload")
                if await anyio.Path(local).is_dir():
                    raise InvalidArgument(f"{src} is a folder: use cp -r to copy it")
                key = target.key if target.key and not target.key.endswith("/") else _join(target.key, local.name)
                await store.upload(local, key, concurrency=concurrency, progress=single_bar(bars, local.name))
                click.echo(f"upload: {local} to s3://{target.bucket}/{key}")
                return 0
        if source is not None and not source.key and not recursive:
            raise InvalidArgument(f"{source} names no object: use cp -r to copy everything under it")
        if source is not None and target is None:
            async with AsyncS3Store(source.bucket, settings=settings) as store:
                local = Path(dst)
                if recursive:
                    # A prefix names a folder: s3://b/data means data/..., never database/...
                    prefix = normalise_prefix(source.key)
                    listed = [info async for info in store.list(prefix)]
                    plan = plan_download(listed, local, prefix, bucket=source.bucket)
                    result = await store.download_many(
                        plan.pairs, concurrency=concurrency, progress=bulk_bar(bars, "download")
                    )
                    result = BulkResult(items=[*result.items, *plan.refused])
                    return report(result, "download")
                path = local / PurePosixPath(source.key).name if dst.endswith("/") or local.is_dir() else local
                await store.download(source.key, path, concurrency=concurrency, progress=single_bar(bars, source.key))
                click.echo(f"download: s3://{source.bucket}/{source.key} to {path}")
                return 0
        assert source is not None and target is not None
        async with AsyncS3Store(target.bucket, settings=settings) as store:
            if recursive:
                prefix, into = normalise_prefix(source.key), normalise_prefix(target.key)
                async with AsyncS3Store(source.bucket, settings=settings) as origin:
                    listed = [info async for info in origin.list(prefix) if into + info.key[len(prefix) :]]
                copies = [(info, into + info.key[len(prefix) :]) for info in listed]
                result = await store.copy_many(
                    copies, src_bucket=source.bucket, concurrency=concurrency, progress=bulk_bar(bars, "copy")
                )
                return report(result, "copy")
            key = (
                target.key
                if target.key and not target.key.endswith("/")
                else _join(target.key, PurePosixPath(source.key).name)
            )
            await store.copy(source.key, key, src_bucket=source.bucket)
            click.echo(f"copy: {source} to s3://{target.bucket}/{key}")
            return 0


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("--delete", is_flag=True, help="Delete what the source side does not have.")
@click.option("--concurrency", type=int, default=None, help="Requests in flight (default: settings).")
@click.option("--no-follow-symlinks", is_flag=True, help="Skip symbolic links instead of following them.")
@command
async def sync(src: str, dst: str, delete: bool, concurrency: int | None, no_follow_symlinks: bool) -> int:
    """Make DST like SRC, transferring only what differs (local folder <-> s3://bucket/prefix)."""
    source, target = parse_s3_url(src), parse_s3_url(dst)
    if (source is None) == (target is None):
        raise InvalidArgument("sync needs one local folder and one s3:// location")
    remote = target or source
    assert remote is not None
    direction: Direction = "up" if target is not None else "down"
    folder = Path(src if direction == "up" else dst)
    with progress_bars() as bars:
        async with AsyncS3Store(remote.bucket, settings=StoreSettings()) as store:
            result = await store.sync(
                folder,
                remote.key,
                direction=direction,
                delete=delete,
                concurrency=concurrency,
                progress=bulk_bar(bars, "sync"),
                follow_symlinks=not no_follow_symlinks,
            )
    code = report(result, "upload" if direction == "up" else "download")
    click.echo(f"{len(result.skipped)} unchanged")
    return code


@main.command(name="ls")
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True, help="Every object under the prefix, not one level.")
@click.option("-l", "--long", "long_format", is_flag=True, help="Size, date and ETag too.")
@command
async def ls(url: str, recursive: bool, long_format: bool) -> int:
    """List objects (and, without -r, the folders one level down) under s3://bucket/prefix."""
    location = _require_s3(url)
    async with AsyncS3Store(location.bucket, settings=StoreSettings()) as store:
        if recursive:
            async with store.list(location.key, ordered=True) as listing:
                async for info in listing:  # printed as listed: a large bucket is never held in memory
                    echo_object(info, long_format)
        else:
            prefixes, objects = await store.list_level(location.key)
            for prefix in prefixes:
                click.echo(f"{'PRE':>10} {prefix}" if long_format else prefix)
            for info in objects:
                echo_object(info, long_format)
    return 0


@main.command()
@click.option("--queue-url", default=None, help="The queue to follow (default: AWS_SQS_QUEUE_URL).")
@click.option("--ack/--no-ack", default=True, show_default=True, help="Delete each message once printed.")
@click.option("--limit", type=int, default=None, help="Stop after this many records.")
@click.option(
    "--wait-time",
    type=click.IntRange(0, 20),
    default=20,
    show_default=True,
    help="Seconds each long poll waits for messages; stopping waits for the poll in flight.",
)
@command
async def events(queue_url: str | None, ack: bool, limit: int | None, wait_time: int) -> int:
    """Follow the queue and print each S3 event record as one JSON line, until Ctrl-C or SIGTERM (exit 0).

    Stopping (a signal, or --limit reached) lets the long poll in flight finish, up to --wait-time
    seconds, and returns what it took to the queue at once; a second signal stops without waiting.
    """
    from ..events import S3EventPoller

    printed = 0
    async with S3EventPoller(queue_url, settings=StoreSettings(), wait_time=wait_time) as poller:
        loop = asyncio.get_running_loop()
        # A second signal stops waiting for the long poll in flight; its messages come back later.
        stop_on_signal(lambda again: loop.create_task(poller.stop(now=again)))
        async for record in poller:
            click.echo(record.model_dump_json(exclude={"extra"}))
            sys.stdout.flush()
            if ack:
                await poller.ack(record)
            else:
                await poller.nack(record, delay=0)
            printed += 1
            if limit is not None and printed >= limit:
                break
    return 0
