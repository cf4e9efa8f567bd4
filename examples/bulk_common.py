"""What bulk_upload.py and bulk_download.py share: the bucket (or a local server), the progress bar,
the summary, and how they run and fail."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import NoReturn

import anyio
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from aiostorage import AsyncS3Store, BulkProgress, BulkResult, StorageError, StoreSettings
from aiostorage.local import LocalServer


@asynccontextmanager
async def bucket_store(console: Console, doing: str) -> AsyncIterator[tuple[AsyncS3Store, bool]]:
    """A store on the configured bucket or, with none configured, on a local server (then True)."""
    async with AsyncExitStack() as stack:
        settings = StoreSettings()
        local = not settings.bucket
        if local:
            server = await stack.enter_async_context(LocalServer())
            settings = await server.provision(bucket="bulk-example")
            console.print(f"no AWS_S3_BUCKET_NAME: {doing} a local server at {server.endpoint_url}")
        yield await stack.enter_async_context(AsyncS3Store(settings=settings)), local


def run(main: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> NoReturn:
    """Exit with ``main(args)``'s code; a storage error is one line on stderr and exit code 1."""
    try:
        sys.exit(anyio.run(main, args))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


@contextmanager
def progress_bar(console: Console, verb: str, unit: str) -> Iterator[Callable[[BulkProgress], None]]:
    """A bar of bytes, items, rate and ETA (on a terminal only); yields the ``progress`` callback."""
    with Progress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[items]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bars:
        task = bars.add_task(verb, total=None, items="")

        def show(event: BulkProgress) -> None:
            items = f"{event.objects_done}/{event.objects_total} {unit}"
            bars.update(task, completed=event.bytes_done, total=event.bytes_total, items=items)

        yield show


def report(console: Console, result: BulkResult, done: str, where: str) -> None:
    """``done (N bytes) where``, then one line per failed item."""
    size = sum(item.result.size for item in result.succeeded if item.result is not None)
    console.print(f"{done} ({size:,} bytes) {where}")
    for item in result.failed:
        console.print(f"[red]failed[/red] {item.source}: {item.error}")
