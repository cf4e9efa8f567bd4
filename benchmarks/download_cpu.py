"""aiostorage's client CPU per GiB downloaded, alone: for profiling and for before/after comparisons.

One s3rver, one 256 MiB object, then ``--rounds`` rounds of each mode in turn (``stream``: ``store.stream()``
counting the bytes; ``file``: ``download(fsync=False)``; ``file-fsync``: ``download()``), in this one
process, so ``py-spy record`` or ``strace -c -f`` can be pointed at it. Prints the medians of user and
system CPU seconds per GiB (``getrusage``, all threads) and of minor page faults per GiB; every file is
checked (size and samples). CPU per GiB moves far less with the machine's load than MiB/s does.

    python -m benchmarks.download_cpu [--rounds 5] [--modes stream,file,file-fsync] [--tls]

To compare two versions, run it from a checkout of each (or with ``PYTHONPATH`` naming the other
version's package first) and compare the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiostorage import AsyncS3Store

from .bench_download import BUCKET, KEY, GiB, MiB, ca_bundle_in_environment, seed
from .servers import Server, s3rver_server
from .verify import check_file

MODES = ("stream", "file", "file-fsync")


def _usage() -> tuple[float, float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


async def _one(server: Server, mode: str, dest: Path, size: int, part: int) -> tuple[float, float, float, int]:
    """(seconds, user CPU, system CPU, minor faults) of one transfer, the store opened outside the clock."""
    async with AsyncS3Store(BUCKET, settings=server.store_settings(), concurrency=8) as store:
        before, started = _usage(), time.perf_counter()
        if mode == "stream":
            total = 0
            async with store.stream(KEY, part_size=part) as chunks:
                async for chunk in chunks:
                    total += len(chunk)
            if total != size:
                raise AssertionError(f"the stream gave {total:,} bytes, expected {size:,}")
        else:
            await store.download(KEY, dest, part_size=part, fsync=mode == "file-fsync")
        after, ended = _usage(), time.perf_counter()
    return ended - started, after[0] - before[0], after[1] - before[1], after[2] - before[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tls", action="store_true", help="s3rver over HTTPS, its certificate checked")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop instead of asyncio's")
    args = parser.parse_args()
    modes = args.modes.split(",")
    size, part = args.size_mib * MiB, args.part_mib * MiB
    run: Any = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    with s3rver_server(tls=args.tls) as server, ca_bundle_in_environment(server):
        sample = seed(server, size)
        runs: dict[str, list[tuple[float, float, float, int]]] = {mode: [] for mode in modes}
        with tempfile.TemporaryDirectory(prefix="download-cpu-") as folder:
            dest = Path(folder) / "object.bin"
            for _ in range(args.rounds):
                for mode in modes:
                    runs[mode].append(run(_one(server, mode, dest, size, part)))
                    if mode != "stream":
                        check_file(f"aiostorage {mode}", dest, size, sample)
                        dest.unlink()
    gib = size / GiB
    print(f"{server.name}: {args.size_mib} MiB, {args.part_mib} MiB parts, 8 in flight, median of {args.rounds}")
    print(f"{'mode':<11} {'MiB/s':>6} {'CPU s/GiB':>10} {'user':>6} {'system':>7} {'minor faults/GiB':>17}")
    for mode, results in runs.items():
        speed = statistics.median(size / MiB / seconds for seconds, _, _, _ in results)
        user = statistics.median(user / gib for _, user, _, _ in results)
        system = statistics.median(system / gib for _, _, system, _ in results)
        total = statistics.median((user + system) / gib for _, user, system, _ in results)
        faults = statistics.median(faults / gib for _, _, _, faults in results)
        print(f"{mode:<11} {speed:>6.0f} {total:>10.2f} {user:>6.2f} {system:>7.2f} {faults:>17,.0f}")


if __name__ == "__main__":
    main()
