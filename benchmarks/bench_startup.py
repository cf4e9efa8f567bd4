"""Start-up: the command line's ``--help`` and ``--version``, ``import aiostorage``, the import a store
needs and a store opened, against ``import aioboto3`` and an aioboto3 S3 client opened (and an empty
interpreter, the floor).

Each case runs ``--rounds`` times as a fresh process; the figures are the medians of the wall time and
of the peak resident size (``wait4``'s ``ru_maxrss``, taken by a small launcher: see ``LAUNCHER``).
Then ``python -X importtime`` shows where the store's import time goes: the modules with the largest
cumulative time, and the total of each top-level package's own time.

    python -m benchmarks.bench_startup [--rounds 10] [--bin .venv/bin] [--top 15]

``--bin`` names the folder holding the ``python`` and ``aiostorage`` to measure, e.g. another
checkout's virtualenv to compare against.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

STORE_IMPORT = "from aiostorage import AsyncS3Store, StoreSettings; AsyncS3Store.__aenter__"
# Ready to send a first request: imported, client made and entered (no request is sent; nothing listens
# on port 9). aioboto3 imports aiohttp and botocore's endpoint machinery only when a client is made, so
# this, not the bare import, is the like-for-like comparison.
OPEN_STORE = """
import asyncio
from aiostorage import AsyncS3Store, StoreSettings
async def main():
    settings = StoreSettings(endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s")
    async with AsyncS3Store("bucket", settings=settings):
        pass
asyncio.run(main())
"""
OPEN_AIOBOTO3 = """
import asyncio
import aioboto3
async def main():
    session = aioboto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    async with session.client("s3", endpoint_url="http://127.0.0.1:9"):
        pass
asyncio.run(main())
"""
# Where the measured processes run: ``python -c`` puts the current folder first on sys.path, and a checkout's
# folder would shadow the installed package being measured.
NEUTRAL = tempfile.gettempdir()


def cases(bin_dir: Path) -> dict[str, list[str]]:
    python, script = str(bin_dir / "python"), str(bin_dir / "aiostorage")
    return {
        "python -c pass (floor)": [python, "-c", "pass"],
        "aiostorage --help": [script, "--help"],
        "aiostorage --version": [script, "--version"],
        "import aiostorage": [python, "-c", "import aiostorage"],
        "import a store needs": [python, "-c", STORE_IMPORT],
        "import aioboto3": [python, "-c", "import aioboto3"],
        "import aiobotocore.session": [python, "-c", "import aiobotocore.session"],
        "open a store": [python, "-c", OPEN_STORE],
        "open an aioboto3 S3 client": [python, "-c", OPEN_AIOBOTO3],
    }


# Starts one measured process and reports its wall time, peak RSS and exit code. A child's peak counts
# what it inherited when forked (or spawned), so the measured process is started by this small
# interpreter (no site, nothing imported) rather than by the benchmark: the floor is then an empty
# interpreter's own size.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""


def run_once(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one run of ``command``."""
    launched = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command], cwd=NEUTRAL, capture_output=True, text=True, check=True
    )
    elapsed, peak, code = launched.stdout.split()
    if int(code) != 0:
        raise subprocess.CalledProcessError(int(code), command)
    return float(elapsed), int(peak)


def importtime(python: str, statement: str) -> tuple[list[tuple[int, str]], Counter[str]]:
    """``-X importtime`` of ``statement``: (cumulative µs, module) rows and each package's own µs."""
    stderr = subprocess.run(
        [python, "-X", "importtime", "-c", statement], cwd=NEUTRAL, capture_output=True, text=True, check=True
    ).stderr
    rows: list[tuple[int, str]] = []
    packages: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), name.rstrip()))
        module = name.strip()
        packages[".".join(module.split(".")[:2]) if module.startswith("aiostorage") else module.split(".")[0]] += int(
            own
        )
    return sorted(rows, reverse=True), packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent.absolute())
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    print(f"start-up, medians of {args.rounds} runs ({args.bin})")
    print(f"{'case':<28} {'wall ms':>8} {'RSS MiB':>8}")
    figures: dict[str, tuple[float, float]] = {}
    for name, command in cases(args.bin).items():
        try:
            runs = [run_once(command) for _ in range(args.rounds)]
        except subprocess.CalledProcessError:  # an older version without this option
            print(f"{name:<28} {'n/a':>8}")
            continue
        wall = statistics.median(elapsed for elapsed, _ in runs)
        rss = statistics.median(peak for _, peak in runs)
        figures[name] = (wall, rss)
        print(f"{name:<28} {wall * 1000:>8.0f} {rss / 2**20:>8.1f}")
    store_wall, store_rss = figures["import a store needs"]
    peer_wall, peer_rss = figures["import aioboto3"]
    print(
        f"import a store needs / import aioboto3: time {store_wall / peer_wall:.2f}x, RSS {store_rss / peer_rss:.2f}x"
    )
    if "open a store" in figures:
        store_wall, store_rss = figures["open a store"]
        peer_wall, peer_rss = figures["open an aioboto3 S3 client"]
        print(
            f"open a store / open an aioboto3 S3 client: time {store_wall / peer_wall:.2f}x, "
            f"RSS {store_rss / peer_rss:.2f}x"
        )

    python = str(args.bin / "python")
    rows, packages = importtime(python, STORE_IMPORT)
    print(f"\npython -X importtime -c {STORE_IMPORT!r}: top {args.top} by cumulative time")
    for cumulative, name in rows[: args.top]:
        print(f"{cumulative / 1000:>8.1f} ms  {name}")
    print(f"\nown import time by package (top {args.top}), of {sum(packages.values()) / 1000:.0f} ms")
    for package, own in packages.most_common(args.top):
        print(f"{own / 1000:>8.1f} ms  {package}")


if __name__ == "__main__":
    main()
