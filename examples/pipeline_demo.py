"""The whole pipeline on an embedded local S3+SQS, no AWS account needed (what `make demo` runs).

Uploads sample "videos" (a few multipart-sized, a dozen small) and a couple of non-video files
concurrently; S3 notifies the queue for the videos only; a worker on ``S3EventPoller.run`` streams each
new video back, hashes it and writes ``results/<name>.json``. Duplicate deliveries (moto sends two events
per multipart upload; AWS delivers at least once) are absorbed by an idempotent result write.

    python examples/pipeline_demo.py [--large 3 --large-mib 24 --small 12 --others 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from aiostorage import AsyncS3Store, S3EventPoller, S3EventRecord, StoreSettings, TransferProgress
from aiostorage.local import LocalServer

MiB = 1024 * 1024
console = Console()


@dataclass
class Stats:
    expected: dict[str, str] = field(default_factory=dict)  # key -> SHA-256 of what was uploaded
    uploaded_at: dict[str, float] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)  # key -> SHA-256 the worker computed
    started: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0
    skipped: int = 0
    all_done: anyio.Event = field(default_factory=anyio.Event)


@dataclass(frozen=True)
class Sample:
    path: Path
    key: str
    size: int
    sha256: str


def make_samples(folder: Path, large: int, large_mib: int, small: int, others: int) -> list[Sample]:
    """Random "videos" and non-video files, with the keys they go to (blocking: run in a thread)."""
    samples: list[Sample] = []
    specs = [(f"clip-large-{i}.mp4", large_mib * MiB) for i in range(large)]
    specs += [(f"clip-{i:02d}.{('mp4', 'mov', 'mkv', 'avi')[i % 4]}", 64 * 1024 + i * 4099) for i in range(small)]
    specs += [(f"notes-{i}.txt", 2048) for i in range(others)]
    for name, size in specs:
        data = os.urandom(size)
        (folder / name).write_bytes(data)
        samples.append(Sample(folder / name, f"uploads/{name}", size, hashlib.sha256(data).hexdigest()))
    return samples


def is_video(key: str) -> bool:
    return key.endswith((".mp4", ".mov", ".avi", ".mkv"))


async def upload_all(store: AsyncS3Store, samples: list[Sample], stats: Stats) -> float:
    """Upload every sample concurrently with a progress bar each; returns the seconds it took."""
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as bars:
        started = time.monotonic()

        async def upload(sample: Sample) -> None:
            bar = bars.add_task(sample.key.removeprefix("uploads/"), total=sample.size)

            def progress(event: TransferProgress) -> None:
                bars.update(bar, completed=event.transferred)

            if is_video(sample.key):
                stats.expected[sample.key] = sample.sha256
            await store.upload(sample.path, sample.key, progress=progress)
            stats.uploaded_at[sample.key] = time.monotonic()

        async with anyio.create_task_group() as group:
            for sample in samples:
                group.start_soon(upload, sample)
        return time.monotonic() - started


def make_handler(store: AsyncS3Store, stats: Stats) -> Callable[[S3EventRecord], Awaitable[None]]:
    """The worker: stream each new video back, hash it, write its result (idempotently)."""

    async def handle(record: S3EventRecord) -> None:
        stats.events += 1
        if not record.is_created or not is_video(record.key):
            stats.skipped += 1
            return
        if record.key in stats.started:
            stats.duplicates += 1
            return
        stats.started.add(record.key)
        digest = hashlib.sha256()
        size = 0
        async with store.stream(record.key) as chunks:  # parallel ranges read ahead, bounded memory
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
        result = {"key": record.key, "size": size, "sha256": digest.hexdigest(), "etag": record.etag}
        name = record.key.removeprefix("uploads/")
        # Writing the same result twice is harmless: duplicate deliveries converge on one object.
        await store.put_bytes(f"results/{name}.json", json.dumps(result).encode(), content_type="application/json")
        stats.results[record.key] = result["sha256"]
        stats.latencies.append(time.monotonic() - stats.uploaded_at.get(record.key, time.monotonic()))
        if stats.expected and set(stats.expected) <= set(stats.results):
            stats.all_done.set()

    return handle


def matching(stats: Stats) -> int:
    return sum(stats.results.get(key) == digest for key, digest in stats.expected.items())


def summary(stats: Stats, files: int, total_bytes: int, upload_seconds: float) -> Table:
    table = Table(title="aiostorage pipeline demo")
    table.add_column("metric")
    table.add_column("value", justify="right")
    latencies = sorted(stats.latencies) or [0.0]
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    rows = [
        ("files uploaded", str(files)),
        ("videos (expected results)", str(len(stats.expected))),
        ("bytes uploaded", f"{total_bytes / MiB:.1f} MiB"),
        ("upload throughput", f"{total_bytes / MiB / max(upload_seconds, 1e-9):.1f} MiB/s"),
        ("events received", str(stats.events)),
        ("duplicate deliveries", str(stats.duplicates)),
        ("events skipped", str(stats.skipped)),
        ("results written", str(len(stats.results))),
        (
            "results matching SHA-256",
            str(sum(stats.results[k] == v for k, v in stats.expected.items() if k in stats.results)),
        ),
        ("end-to-end latency p50", f"{statistics.median(latencies):.2f} s"),
        ("end-to-end latency p95", f"{p95:.2f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


async def run(args: argparse.Namespace) -> int:
    stats = Stats()
    async with LocalServer() as server:
        settings: StoreSettings = await server.provision(bucket="media", queue="media-events")
        with tempfile.TemporaryDirectory(prefix="aiostorage-demo-") as folder:
            samples = await anyio.to_thread.run_sync(
                make_samples, Path(folder), args.large, args.large_mib, args.small, args.others
            )
            total_bytes = sum(sample.size for sample in samples)
            async with (
                AsyncS3Store(settings=settings) as store,
                S3EventPoller(settings=settings, wait_time=1, visibility_timeout=30) as poller,
                anyio.create_task_group() as group,
            ):
                group.start_soon(partial(poller.run, make_handler(store, stats), concurrency=4))
                upload_seconds = await upload_all(store, samples, stats)
                with anyio.move_on_after(args.deadline) as waiting:
                    await stats.all_done.wait()
                await poller.stop()
                if waiting.cancelled_caught:
                    missing = sorted(set(stats.expected) - set(stats.results))
                    console.print(f"[red]timed out after {args.deadline}s; no result for: {', '.join(missing)}")
                    return 1
                example = next(iter(sorted(stats.results))).removeprefix("uploads/")
                url = await store.presign_get(f"results/{example}.json", expires_in=600)
        console.print(summary(stats, len(samples), total_bytes, upload_seconds))
        console.print(
            "presigned GET for one result (valid 10 minutes on AWS; the local server stops with the demo):",
            url,
            sep="\n",
            soft_wrap=True,
        )
        mismatched = [key for key, digest in stats.expected.items() if stats.results.get(key) != digest]
        if mismatched:
            console.print(f"[red]SHA-256 mismatch for: {', '.join(mismatched)}")
            return 1
        counts = {
            "videos": len(stats.expected),
            "results": len(stats.results),
            "matching": matching(stats),
            "events": stats.events,
            "duplicates": stats.duplicates,
            "skipped": stats.skipped,
        }
        print(f"summary: {json.dumps(counts)}", file=sys.stderr)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=3, help="videos over the multipart threshold")
    parser.add_argument("--large-mib", type=int, default=24, help="size of each large video in MiB")
    parser.add_argument("--small", type=int, default=12, help="small videos")
    parser.add_argument("--others", type=int, default=2, help="non-video files (must not trigger events)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds to wait for every result")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
