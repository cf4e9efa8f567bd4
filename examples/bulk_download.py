"""Download every object under a prefix into a folder, under one concurrency budget, with a progress bar.

    python examples/bulk_download.py DEST [--prefix uploads/] [--concurrency 16]

With ``AWS_S3_BUCKET_NAME`` set (and credentials, and ``AWS_ENDPOINT_URL`` for an S3-compatible
server), the objects come from that bucket. Without it, the script starts the embedded local server
(``aiostorage.local``), puts a few sample objects under the prefix (one large enough for parallel
ranges) and downloads those: no network but loopback.

Keys become paths below DEST (``uploads/a/b.txt`` -> ``DEST/a/b.txt``). Each file is written to a
temporary name and renamed when complete and checked, so DEST never holds a partial file; a key that
would land outside DEST (``..``) is refused. One failed object does not stop the others; they are
listed at the end and the exit code is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from aiostorage import AsyncS3Store, BulkProgress, ObjectInfo, StorageError, StoreSettings
from aiostorage.local import LocalServer

MiB = 1024 * 1024


def destination(dest: Path, prefix: str, key: str) -> Path | None:
    """Where ``key`` goes below ``dest``, or ``None`` when it would escape it."""
    relative = key.removeprefix(prefix).lstrip("/")
    target = (dest / relative).resolve()
    return target if relative and target.is_relative_to(dest.resolve()) else None


async def seed(store: AsyncS3Store, prefix: str) -> None:
    """Sample objects for a run against the local server: small ones in two folders and a 24 MiB one."""
    samples = {f"{prefix}docs/note-{n:02d}.txt": f"note {n}\n".encode() * (n + 1) for n in range(12)}
    samples |= {f"{prefix}images/pixel-{n}.bin": os.urandom(64 * 1024) for n in range(6)}
    samples[f"{prefix}videos/clip.mp4"] = os.urandom(24 * MiB)
    await store.upload_many((data, key) for key, data in samples.items())


async def download_prefix(store: AsyncS3Store, dest: Path, prefix: str, concurrency: int, console: Console) -> int:
    listed: list[ObjectInfo] = [info async for info in store.list(prefix)]
    pairs: list[tuple[ObjectInfo, Path]] = []
    for info in listed:
        target = destination(dest, prefix, info.key)
        if target is None:
            console.print(f"[yellow]skipped[/yellow] {info.key}: it would land outside {dest}")
        else:
            pairs.append((info, target))
    with Progress(
        TextColumn("[bold]download"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[objects]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bars:
        task = bars.add_task("download", total=None, objects="")

        def show(event: BulkProgress) -> None:
            bars.update(
                task,
                completed=event.bytes_done,
                total=event.bytes_total,
                objects=f"{event.objects_done}/{event.objects_total} objects",
            )

        result = await store.download_many(pairs, concurrency=concurrency, progress=show)
    size = sum(item.result.size for item in result.succeeded if item.result is not None)
    console.print(
        f"downloaded {len(result.succeeded)} of {len(pairs)} objects ({size:,} bytes) "
        f"from s3://{store.bucket}/{prefix} to {dest}"
    )
    for item in result.failed:
        console.print(f"[red]failed[/red] {item.source}: {item.error}")
    return 0 if result.ok and len(pairs) == len(listed) else 1


async def main(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    dest = Path(args.dest)
    async with AsyncExitStack() as stack:
        settings = StoreSettings()
        if not settings.bucket:
            server = await stack.enter_async_context(LocalServer())
            settings = await server.provision(bucket="bulk-example")
            console.print(
                f"no AWS_S3_BUCKET_NAME: downloading sample objects from a local server at {server.endpoint_url}"
            )
            store = await stack.enter_async_context(AsyncS3Store(settings=settings))
            await seed(store, args.prefix)
        else:
            store = await stack.enter_async_context(AsyncS3Store(settings=settings))
        return await download_prefix(store, dest, args.prefix, args.concurrency, console)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", help="the folder to download into (created if missing)")
    parser.add_argument("--prefix", default="uploads/", help="key prefix (default: uploads/)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight, all objects together")
    args = parser.parse_args()
    try:
        sys.exit(anyio.run(main, args))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
