"""Upload a folder to a prefix: every file, under one concurrency budget, with a progress bar.

    python examples/bulk_upload.py PATH [--prefix uploads/] [--concurrency 16]

With ``AWS_S3_BUCKET_NAME`` set (and credentials, and ``AWS_ENDPOINT_URL`` for an S3-compatible
server), the files go to that bucket. Without it, the script starts the embedded local server
(``aiostorage.local``), uploads there, lists what arrived and stops the server: a dry run that
touches no network but loopback.

Files large and small share the budget: a 5 GiB file's parts and a thousand small files never exceed
``--concurrency`` requests together. One failed file does not stop the others; they are listed at the
end and the exit code is 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from bulk_common import bucket_store, progress_bar, report, run
from rich.console import Console

from aiostorage import AsyncS3Store


def folder_pairs(folder: Path, prefix: str) -> list[tuple[Path, str]]:
    """Every file under ``folder`` with its key: ``prefix`` plus the path relative to the folder."""
    return [
        (path, prefix + path.relative_to(folder).as_posix()) for path in sorted(folder.rglob("*")) if path.is_file()
    ]


async def upload_folder(store: AsyncS3Store, folder: Path, prefix: str, concurrency: int, console: Console) -> int:
    pairs = await anyio.to_thread.run_sync(folder_pairs, folder, prefix)
    with progress_bar(console, "upload", "files") as show:
        result = await store.upload_many(pairs, concurrency=concurrency, progress=show)
    done = f"uploaded {len(result.succeeded)} of {len(pairs)} files"
    report(console, result, done, f"to s3://{store.bucket}/{prefix}")
    return 0 if result.ok else 1


async def main(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    folder = Path(args.path)
    async with bucket_store(console, "uploading to") as (store, local):
        code = await upload_folder(store, folder, args.prefix, args.concurrency, console)
        if local:
            listed = [info async for info in store.list(args.prefix)]
            console.print(f"the local bucket holds {len(listed)} objects under {args.prefix!r}; it stops now")
        return code


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="the folder to upload")
    parser.add_argument("--prefix", default="uploads/", help="key prefix (default: uploads/)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight, all files together")
    args = parser.parse_args()
    if not Path(args.path).is_dir():
        parser.error(f"{args.path} is not a folder")
    run(main, args)


if __name__ == "__main__":
    cli()
