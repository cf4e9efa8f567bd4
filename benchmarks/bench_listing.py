"""Listing many keys and putting many small objects: aiostorage against boto3, aioboto3, s3fs and obstore.

Three servers: the latency-bound simulator (``benchmarks/simulator.py``, a child process, 50 ms a
request: where concurrency counts, as on S3), moto (a child process, ``benchmarks/moto_seeded.py``,
seeded through its backend before it serves) and s3rver (a child process). Every figure is a median
over ``--rounds``; ratios are of medians measured in this one run. "CPU" is the client's own CPU time
(this process's): every server runs in a process of its own, so none of its CPU is counted and none
of it competes with the client for this process's GIL.

Small PUTs are also run at 256 in flight on the simulator (``--wide-puts``, 20,000 x 4 KiB by default:
79 waves of 50 ms, a floor of 3.95 s), where a regression in the per-request path shows; boto3 (256
threads) and s3fs are left out of that case, which they would stretch to minutes. Every client's PUTs
are checked after its clock stops: each round writes fresh random bytes, and a sample of the keys is
read back and compared; listings are checked by their count.

    python -m benchmarks.bench_listing [--rounds 5] [--servers simulator,moto,s3rver] [--wide-puts 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
import boto3
from botocore.config import Config

from aiostorage import AsyncS3Store
from benchmarks.servers import Server, child_process, free_port, s3rver_available, s3rver_server
from benchmarks.simulator import tree_keys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST_BUCKET = "bench-list"
PUT_BUCKET = "bench-put"
PUT_SIZE = 4 * 1024
IN_FLIGHT = 32
WIDE_IN_FLIGHT = 256
# Keys read back after each client's PUTs, to check it stored this round's bytes.
CHECKED_PUTS = 16


@dataclass(frozen=True)
class Workload:
    prefixes: int
    per_prefix: int
    puts: int

    @property
    def keys(self) -> int:
        return self.prefixes * self.per_prefix


WORKLOADS = {
    "simulator": Workload(prefixes=100, per_prefix=1000, puts=2000),
    "moto": Workload(prefixes=20, per_prefix=500, puts=500),
    "s3rver": Workload(prefixes=10, per_prefix=200, puts=1000),
}


# Servers


@contextmanager
def simulator_server(workload: Workload, delay: float, flat: bool) -> Iterator[Server]:
    port = free_port()
    with child_process(
        [
            sys.executable,
            "-m",
            "benchmarks.simulator",
            "--port",
            str(port),
            "--delay",
            str(delay),
            "--bucket",
            LIST_BUCKET,
            "--bucket",
            PUT_BUCKET,
            *(["--flat", str(workload.keys)] if flat else ["--tree", str(workload.prefixes), str(workload.per_prefix)]),
        ],
        cwd=ROOT,
        stderr=None,
    ) as process:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                boto3_client(Server("simulator", url, "x", "x")).head_bucket(Bucket=PUT_BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield Server("simulator", url, "x", "x")


def boto3_client(server: Server) -> Any:
    return boto3.client(
        "s3", config=Config(max_pool_connections=IN_FLIGHT, retries={"mode": "standard"}), **server.client_kwargs()
    )


@contextmanager
def seeded_moto_server(workload: Workload) -> Iterator[Server]:
    """moto in a child process (``benchmarks/moto_seeded.py``), seeded through its backend before it serves."""
    port = free_port()
    with child_process(
        [
            sys.executable,
            "-m",
            "benchmarks.moto_seeded",
            "--port",
            str(port),
            "--bucket",
            LIST_BUCKET,
            "--bucket",
            PUT_BUCKET,
            "--tree",
            str(workload.prefixes),
            str(workload.per_prefix),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
    ) as process:
        assert process.stdout is not None
        ready = process.stdout.readline().decode()  # "serving N keys", or nothing if the child died
        if ready != f"serving {workload.keys} keys\n":
            raise RuntimeError(f"moto did not start seeded with {workload.keys:,} keys: {ready!r}")
        server = Server("moto", f"http://127.0.0.1:{port}", "testing", "testing")
        check_seeded(server, workload)
        yield server


def check_seeded(server: Server, workload: Workload) -> None:
    """The list bucket holds exactly the workload's keys, counted over HTTP before any timing."""
    count = list_boto3(server)
    if count != workload.keys:
        raise RuntimeError(f"{server.name} lists {count:,} keys, expected {workload.keys:,}")


def seed_by_puts(server: Server, workload: Workload) -> None:
    client = boto3_client(server)
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(
            pool.map(
                lambda key: client.put_object(Bucket=LIST_BUCKET, Key=key, Body=b""),
                tree_keys(workload.prefixes, workload.per_prefix),
            )
        )


# Listing


async def list_aiostorage(server: Server) -> int:
    async with AsyncS3Store(LIST_BUCKET, settings=server.store_settings(), concurrency=IN_FLIGHT) as store:
        return sum([1 async for _ in store.list()])


async def list_aiostorage_sequential(server: Server) -> int:
    async with AsyncS3Store(LIST_BUCKET, settings=server.store_settings(), concurrency=IN_FLIGHT) as store:
        return sum([1 async for _ in store.list(concurrency=1)])


async def list_aiostorage_ordered(server: Server) -> int:
    async with AsyncS3Store(LIST_BUCKET, settings=server.store_settings(), concurrency=IN_FLIGHT) as store:
        return sum([1 async for _ in store.list(ordered=True)])


def aioboto3_client(server: Server, in_flight: int = IN_FLIGHT) -> Any:
    return aioboto3.Session().client("s3", config=Config(max_pool_connections=in_flight), **server.client_kwargs())


async def list_botocore_fanout(server: Server) -> int:
    """The same prefix fan-out on aiobotocore's own parser: what a botocore-based design is capped at."""
    async with aioboto3_client(server) as client:
        semaphore = asyncio.Semaphore(IN_FLIGHT)

        async def walk(prefix: str) -> int:
            count = 0
            children: list[str] = []
            async with semaphore:
                paginator = client.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=LIST_BUCKET, Prefix=prefix, Delimiter="/"):
                    count += len(page.get("Contents", []))
                    children += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            return count + sum(await asyncio.gather(*(walk(child) for child in children)))

        return await walk("")


def list_boto3(server: Server) -> int:
    paginator = boto3_client(server).get_paginator("list_objects_v2")
    return sum(len(page.get("Contents", [])) for page in paginator.paginate(Bucket=LIST_BUCKET))


async def list_aioboto3(server: Server) -> int:
    async with aioboto3_client(server) as client:
        count = 0
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=LIST_BUCKET):
            count += len(page.get("Contents", []))
        return count


def s3fs_filesystem(server: Server, asynchronous: bool) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        key=server.access_key,
        secret=server.secret_key,
        endpoint_url=server.endpoint_url,
        client_kwargs={"region_name": server.region},
        config_kwargs={"max_pool_connections": IN_FLIGHT},
        skip_instance_cache=True,
        use_listings_cache=False,
        asynchronous=asynchronous,
    )


async def list_s3fs(server: Server) -> int:
    fs = s3fs_filesystem(server, asynchronous=True)
    session = await fs.set_session()
    try:
        return len(await fs._find(LIST_BUCKET))
    finally:
        await session.close()


def obstore_store(server: Server, bucket: str, in_flight: int = IN_FLIGHT) -> Any:
    from obstore.store import S3Store

    return S3Store(
        bucket,
        endpoint=server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=server.region,
        virtual_hosted_style_request=False,
        client_options={**server.obstore_options(), "pool_max_idle_per_host": str(in_flight)},
    )


def list_obstore(server: Server) -> int:
    import obstore

    return sum(len(chunk) for chunk in obstore.list(obstore_store(server, LIST_BUCKET), chunk_size=1000))


# Small PUTs


def payloads(count: int) -> list[tuple[str, bytes]]:
    return [(f"small/{n:06d}.bin", os.urandom(PUT_SIZE)) for n in range(count)]


def check_puts(server: Server, name: str, items: list[tuple[str, bytes]]) -> None:
    """A sample of the keys holds this round's bytes (every round writes fresh ones)."""
    client = boto3_client(server)
    step = max(1, len(items) // CHECKED_PUTS)
    for key, data in items[::step]:
        got = client.get_object(Bucket=PUT_BUCKET, Key=key)["Body"].read()
        if got != data:
            raise AssertionError(f"{name}: {key} holds {len(got)} bytes other than the {len(data)} it was given")


async def put_aiostorage(server: Server, items: list[tuple[str, bytes]], in_flight: int = IN_FLIGHT) -> int:
    async with AsyncS3Store(PUT_BUCKET, settings=server.store_settings(), concurrency=in_flight) as store:
        await asyncio.gather(*(store.put_bytes(key, data) for key, data in items))
    return len(items)


async def put_aiostorage_upload_many(server: Server, items: list[tuple[str, bytes]], in_flight: int = IN_FLIGHT) -> int:
    async with AsyncS3Store(PUT_BUCKET, settings=server.store_settings(), concurrency=in_flight) as store:
        result = await store.upload_many([(data, key) for key, data in items])
    assert result.ok
    return len(items)


def put_boto3(server: Server, items: list[tuple[str, bytes]]) -> int:
    client = boto3_client(server)
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=PUT_BUCKET, Key=item[0], Body=item[1]), items))
    return len(items)


async def put_aioboto3(server: Server, items: list[tuple[str, bytes]], in_flight: int = IN_FLIGHT) -> int:
    async with aioboto3_client(server, in_flight) as client:
        semaphore = asyncio.Semaphore(in_flight)

        async def put(key: str, data: bytes) -> None:
            async with semaphore:
                await client.put_object(Bucket=PUT_BUCKET, Key=key, Body=data)

        await asyncio.gather(*(put(key, data) for key, data in items))
    return len(items)


async def put_s3fs(server: Server, items: list[tuple[str, bytes]]) -> int:
    fs = s3fs_filesystem(server, asynchronous=True)
    session = await fs.set_session()
    try:
        await fs._pipe({f"{PUT_BUCKET}/{key}": data for key, data in items}, batch_size=IN_FLIGHT)
    finally:
        await session.close()
    return len(items)


async def put_obstore(server: Server, items: list[tuple[str, bytes]], in_flight: int = IN_FLIGHT) -> int:
    import obstore

    store = obstore_store(server, PUT_BUCKET, in_flight)
    semaphore = asyncio.Semaphore(in_flight)

    async def put(key: str, data: bytes) -> None:
        async with semaphore:
            await obstore.put_async(store, key, data)

    await asyncio.gather(*(put(key, data) for key, data in items))
    return len(items)


# Measuring


def run(func: Callable[..., Any], *args: Any) -> Any:
    result = func(*args)
    if asyncio.iscoroutine(result):
        return asyncio.run(result)
    return result


def measure(func: Callable[..., int | Awaitable[int]], args: tuple[Any, ...], expected: int) -> tuple[float, float]:
    cpu = time.process_time()
    start = time.perf_counter()
    count = run(func, *args)
    elapsed = time.perf_counter() - start
    if count != expected:
        raise AssertionError(f"{func.__name__} gave {count}, expected {expected}")
    return elapsed, time.process_time() - cpu


def table(title: str, unit: str, amount: int, results: dict[str, list[tuple[float, float]]], ours: str) -> None:
    medians = {
        name: (statistics.median(t for t, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in results.items()
    }
    print(f"\n{title}")
    print(f"{'client':<38}{'median s':>10}{unit + '/s':>12}{'CPU s':>9}{'ours vs it':>12}")
    for name, (seconds, cpu) in medians.items():
        ratio = "" if name == ours else f"{seconds / medians[ours][0]:.2f}x"
        print(f"{name:<38}{seconds:>10.2f}{amount / seconds:>12.0f}{cpu:>9.2f}{ratio:>12}")
    peers = {name: s for name, (s, _) in medians.items() if not name.startswith("aiostorage")}
    if peers:
        best = min(peers, key=peers.__getitem__)
        verdict = "no slower than" if medians[ours][0] <= peers[best] else "SLOWER than"
        print(f"=> {ours} is {verdict} the best peer ({best}): {peers[best] / medians[ours][0]:.2f}x")


def bench_server(
    server: Server, workload: Workload, rounds: int, only: set[str] | None, parts: set[str], flat: bool = False
) -> None:
    layout = "under one prefix, no delimiter below it" if flat else f"in {workload.prefixes} prefixes"
    print(
        f"\n== {server.name}: list {workload.keys:,} keys {layout}; "
        f"{workload.puts:,} x {PUT_SIZE // 1024} KiB PUTs with {IN_FLIGHT} in flight; {rounds} rounds"
    )
    listers: dict[str, Callable[..., Any]] = {
        "aiostorage store.list": list_aiostorage,
        "aiostorage store.list(ordered)": list_aiostorage_ordered,
        "aiostorage store.list(concurrency=1)": list_aiostorage_sequential,
        "fan-out on botocore's parser": list_botocore_fanout,
        "boto3 paginator": list_boto3,
        "aioboto3 paginator": list_aioboto3,
        "s3fs find": list_s3fs,
        "obstore list": list_obstore,
    }
    putters: dict[str, Callable[..., Any]] = {
        "aiostorage put_bytes (gather)": put_aiostorage,
        "aiostorage upload_many": put_aiostorage_upload_many,
        "boto3 threads": put_boto3,
        "aioboto3 gather": put_aioboto3,
        "s3fs _pipe": put_s3fs,
        "obstore put_async": put_obstore,
    }
    if only:
        listers = {k: v for k, v in listers.items() if k.split()[0] in only or k.startswith("aiostorage")}
        putters = {k: v for k, v in putters.items() if k.split()[0] in only or k.startswith("aiostorage")}
    if "list" not in parts:
        listers = {}
    if "put" not in parts:
        putters = {}
    listed: dict[str, list[tuple[float, float]]] = {name: [] for name in listers}
    for _ in range(rounds):
        for name, func in listers.items():
            listed[name].append(measure(func, (server,), workload.keys))
    if listed:
        table("Listing (all keys, unordered unless said)", "keys", workload.keys, listed, "aiostorage store.list")
    put: dict[str, list[tuple[float, float]]] = {name: [] for name in putters}
    for _ in range(rounds):
        for name, func in putters.items():
            items = payloads(workload.puts)
            put[name].append(measure(func, (server, items), workload.puts))
            check_puts(server, name, items)
    if put:
        table("Small PUTs", "PUT", workload.puts, put, "aiostorage put_bytes (gather)")


def bench_wide_puts(server: Server, count: int, delay: float, rounds: int, only: set[str] | None) -> None:
    """``count`` small PUTs with ``WIDE_IN_FLIGHT`` in flight, against the simulator's floor."""
    putters: dict[str, Callable[..., Any]] = {
        "aiostorage put_bytes (gather)": put_aiostorage,
        "aiostorage upload_many": put_aiostorage_upload_many,
        "aioboto3 gather": put_aioboto3,
        "obstore put_async": put_obstore,
    }
    if only:
        putters = {k: v for k, v in putters.items() if k.split()[0] in only or k.startswith("aiostorage")}
    put: dict[str, list[tuple[float, float]]] = {name: [] for name in putters}
    for _ in range(rounds):
        for name, func in putters.items():
            items = payloads(count)
            put[name].append(measure(func, (server, items, WIDE_IN_FLIGHT), count))
            check_puts(server, name, items)
    floor = -(-count // WIDE_IN_FLIGHT) * delay
    title = f"Small PUTs, {count:,} x {PUT_SIZE // 1024} KiB with {WIDE_IN_FLIGHT} in flight (floor {floor:.2f} s)"
    table(title, "PUT", count, put, "aiostorage put_bytes (gather)")
    for name, runs in put.items():
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:<36} CPU {cpu * 1000 / count:.3f} ms per PUT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="simulator,moto,s3rver")
    parser.add_argument("--delay", type=float, default=0.05, help="the simulator's delay per request (s)")
    parser.add_argument(
        "--layout", choices=["tree", "flat"], default="tree", help="simulator keys: in prefixes, or all under flat/"
    )
    parser.add_argument("--parts", default="list,put", help="list, put or both (default)")
    parser.add_argument("--only", default="", help="comma-separated peers to run (boto3,aioboto3,s3fs,obstore,fan-out)")
    parser.add_argument(
        "--wide-puts", type=int, default=20000, help=f"PUTs with {WIDE_IN_FLIGHT} in flight on the simulator (0: skip)"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    only = set(filter(None, args.only.split(","))) or None
    for name in args.servers.split(","):
        workload = WORKLOADS[name]
        if name == "simulator":
            flat = args.layout == "flat"
            with simulator_server(workload, args.delay, flat) as server:
                bench_server(server, workload, args.rounds, only, set(args.parts.split(",")), flat)
                if args.wide_puts and "put" in args.parts.split(","):
                    bench_wide_puts(server, args.wide_puts, args.delay, args.rounds, only)
        elif name == "moto":
            with seeded_moto_server(workload) as server:
                bench_server(server, workload, args.rounds, only, set(args.parts.split(",")))
        elif name == "s3rver":
            if not s3rver_available():
                print("\n== s3rver: not installed (make bench installs it); skipped")
                continue
            with s3rver_server() as server:
                client = boto3_client(server)
                client.create_bucket(Bucket=LIST_BUCKET)
                client.create_bucket(Bucket=PUT_BUCKET)
                seed_by_puts(server, workload)
                bench_server(server, workload, args.rounds, only, set(args.parts.split(",")))


if __name__ == "__main__":
    main()
