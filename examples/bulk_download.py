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
from pathlib import Path

from bulk_common import bucket_store, progress_bar, report, run
from rich.console import Console
from rich.markup import escape

from aiostorage import AsyncS3Store, ObjectInfo
from aiostorage.transfer.sync import plan_download

MiB = 1024 * 1024


async def seed(store: AsyncS3Store, prefix: str) -> None:
    """Sample objects for a run against the local server: small ones in two folders and a 24 MiB one."""
    samples = {f"{prefix}docs/note-{n:02d}.txt": f"note {n}\n".encode() * (n + 1) for n in range(12)}
    samples |= {f"{prefix}images/pixel-{n}.bin": os.urandom(64 * 1024) for n in range(6)}
    samples[f"{prefix}videos/clip.mp4"] = os.urandom(24 * MiB)
    await store.upload_many((data, key) for key, data in samples.items())


async def download_prefix(store: AsyncS3Store, dest: Path, prefix: str, concurrency: int, console: Console) -> int:
    listed: list[ObjectInfo] = [info async for info in store.list(prefix)]
    # Keys map to files below dest only when they can: one with a "..", "." or empty part is refused.
    plan = plan_download(listed, dest, prefix, bucket=store.bucket)
    for item in plan.refused:
        console.print(f"[yellow]refused[/yellow] {escape(str(item.error))}")
    with progress_bar(console, "download", "objects") as show:
        result = await store.download_many(plan.pairs, concurrency=concurrency, progress=show)
    done = f"downloaded {len(result.succeeded)} of {len(plan.pairs)} objects"
    report(console, result, done, f"from s3://{store.bucket}/{prefix} to {dest}")
    return 0 if result.ok and not plan.refused else 1


async def main(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    dest = Path(args.dest)
    async with bucket_store(console, "downloading sample objects from") as (store, local):
        if local:
            await seed(store, args.prefix)
        return await download_prefix(store, dest, args.prefix, args.concurrency, console)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", help="the folder to download into (created if missing)")
    parser.add_argument("--prefix", default="uploads/", help="key prefix (default: uploads/)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight, all objects together")
    args = parser.parse_args()
    run(main, args)


if __name__ == "__main__":
    cli()
