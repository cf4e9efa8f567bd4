"""Download one large object, and many small ones, to files: aiostorage against its peers, on s3rver and moto.

python -m benchmarks.bench_download [--rounds 5] [--size-mib 256] [--part-mib 8] [--concurrency 8]
                                    [--small 300] [--servers s3rver,s3rver-tls,moto]

Every client gets the same part size and parallelism where it has the notion. The ceiling is raw ranged
GETs with aiohttp on one presigned URL (signed once, nothing hashed per byte), discarding the bytes: the
most any client could get from the server on this machine. Two more ceilings write the bytes where they
belong (``os.pwrite`` on the event loop, no temporary file, no checks), with and without one fsync at the
end: what the page cache and the disk add, whoever downloads. After its clock stops, every client's result
is checked (``benchmarks/verify.py``): the size, and the SHA-256 of samples of the bytes against the
source's. ``s3rver-tls`` is s3rver over HTTPS with a CA made for the run, which every client checks.
Clients run one after another inside each round, in a fresh event loop each (asyncio's; one row runs
aiostorage on uvloop's, which many asyncio services use); moto runs in its own
process so the CPU figures are the client's.
Medians over the rounds; only the ratios measured in this one run mean anything.

The small objects (``--small`` of 4 KiB, 32 in flight, keys known from a listing made before the clock
starts) are what a bulk download or a ``sync`` of many files is made of: there the client's CPU per
request, not the bandwidth, sets the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import resource
import shutil
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import boto3
from boto3.s3.transfer import TransferConfig

from aiostorage import AsyncS3Store

from .servers import Server, moto_process_server, s3rver_available, s3rver_server
from .verify import StreamSample, check_file, sample_of_bytes

MiB = 1024 * 1024
GiB = 1024 * MiB
BUCKET = "bench-download"
KEY = "big/object.bin"
SMALL_PREFIX = "small/"
SMALL_SIZE = 4096
SMALL_IN_FLIGHT = 32


def boto3_client(server: Server, pool: int) -> Any:
    return boto3.client("s3", config=server.botocore_config(max_pool_connections=pool), **server.client_kwargs())


def aioboto3_client(server: Server, pool: int) -> Any:
    """An aioboto3 client (an async context manager) with ``pool`` connections."""
    config = server.botocore_config(max_pool_connections=pool)
    return aioboto3.Session().client("s3", config=config, **server.client_kwargs())


def obstore_store(server: Server) -> Any:
    from obstore.store import S3Store

    return S3Store(
        BUCKET,
        endpoint=server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=server.region,
        client_options=server.obstore_options(),
    )


def seed(server: Server, size: int) -> str:
    """Put the large object (random bytes, no two MiB alike); the SHA-256 of its sample."""
    client = boto3_client(server, 10)
    client.create_bucket(Bucket=BUCKET)
    data = os.urandom(size)
    with tempfile.TemporaryFile() as source:
        source.write(data)
        source.seek(0)
        client.upload_fileobj(source, BUCKET, KEY, Config=TransferConfig(multipart_chunksize=16 * MiB))
    return sample_of_bytes(data)


class Clock:
    """Times only the transfer itself: clients are created (and models loaded) outside it."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.user = 0.0  # the part of ``cpu`` spent in the process itself; the rest is the kernel's

    @contextmanager
    def section(self) -> Iterator[None]:
        wall, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        yield
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = time.perf_counter() - wall
        self.user = after.ru_utime - before.ru_utime
        self.cpu = self.user + after.ru_stime - before.ru_stime


class Bench:
    def __init__(self, server: Server, size: int, sample: str, part: int, concurrency: int, folder: Path) -> None:
        self.server = server
        self.size = size
        self.sample = sample
        self.part = part
        self.concurrency = concurrency
        self.folder = folder
        self.clock = Clock()
        self.transfer_config = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=concurrency, use_threads=True
        )

    def dest(self, name: str) -> Path:
        return self.folder / f"{name}.bin"

    def check(self, name: str) -> None:
        check_file(name, self.dest(name), self.size, self.sample)

    def check_received(self, name: str, received: int, sample: StreamSample) -> None:
        if received != self.size:
            raise AssertionError(f"{name} received {received:,} bytes, expected {self.size:,}")
        if sample.digest() != self.sample:
            raise AssertionError(f"{name} received {received:,} bytes, but not the object's (a sample differs)")

    async def aiostorage(self, fsync: bool) -> None:
        async with AsyncS3Store(BUCKET, settings=self.server.store_settings(), concurrency=self.concurrency) as store:
            with self.clock.section():
                await store.download(KEY, self.dest("aiostorage"), part_size=self.part, fsync=fsync)
        self.check("aiostorage")

    async def aiostorage_stream(self) -> None:
        total = 0
        sample = StreamSample(self.size)
        async with AsyncS3Store(BUCKET, settings=self.server.store_settings(), concurrency=self.concurrency) as store:
            with self.clock.section():
                async with store.stream(KEY, part_size=self.part) as chunks:
                    async for chunk in chunks:
                        sample.add(total, chunk)
                        total += len(chunk)
        self.check_received("aiostorage stream", total, sample)

    def boto3(self) -> None:
        client = boto3_client(self.server, self.concurrency)
        with self.clock.section():
            client.download_file(BUCKET, KEY, str(self.dest("boto3")), Config=self.transfer_config)
        self.check("boto3")

    async def aioboto3(self) -> None:
        async with aioboto3_client(self.server, self.concurrency) as client:
            with self.clock.section():
                await client.download_file(BUCKET, KEY, str(self.dest("aioboto3")), Config=self.transfer_config)
        self.check("aioboto3")

    async def s3fs(self) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(
            key=self.server.access_key,
            secret=self.server.secret_key,
            endpoint_url=self.server.endpoint_url,
            client_kwargs={"verify": self.server.ca_bundle},
            asynchronous=True,
            skip_instance_cache=True,
        )
        session = await fs.set_session()
        try:
            with self.clock.section():
                await fs._get_file(f"{BUCKET}/{KEY}", str(self.dest("s3fs")))
        finally:
            await session.close()
        self.check("s3fs")

    async def obstore(self) -> None:
        import obstore

        store = obstore_store(self.server)
        with self.clock.section():
            response = await obstore.get_async(store, KEY)
            # Writes on the loop, like obstore's own examples; a thread per chunk would only slow it.
            with open(self.dest("obstore"), "wb") as file:  # noqa: ASYNC230
                async for chunk in response.stream(min_chunk_size=8 * MiB):
                    file.write(chunk)
        self.check("obstore")

    async def ceiling(self, to_file: bool = False, fsync: bool = False) -> None:
        """Raw aiohttp ranged GETs on a presigned URL: no signing, no checks, no pinning. The bytes are
        discarded, or (``to_file``) written where they belong with ``os.pwrite`` on the event loop, the
        cheapest writer there is, and optionally fsynced once at the end: what a download costs the
        machine (the page cache, the disk) with no client around it."""
        url = boto3_client(self.server, 1).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600
        )
        ranges = iter(range(0, self.size, self.part))
        received = 0
        sample = StreamSample(self.size)
        name = "ceiling-file" if to_file else "ceiling"
        fd = -1

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal received
            for start in ranges:
                end = min(start + self.part, self.size) - 1
                offset = start
                async with session.get(url, headers={"Range": f"bytes={start}-{end}"}) as response:
                    response.raise_for_status()
                    while chunk := await response.content.readany():
                        if to_file:
                            os.pwrite(fd, chunk, offset)
                        else:
                            sample.add(offset, chunk)
                        offset += len(chunk)
                received += offset - start

        tls = ssl.create_default_context(cafile=self.server.ca_bundle) if self.server.ca_bundle else None
        connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=tls if tls is not None else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            with self.clock.section():
                if to_file:
                    fd = os.open(self.dest(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                try:
                    await asyncio.gather(*(worker(session) for _ in range(self.concurrency)))
                    if fsync:
                        os.fsync(fd)
                finally:
                    if to_file:
                        os.close(fd)
        if to_file:
            self.check(name)
        else:
            self.check_received(name, received, sample)


class SmallBench:
    """Many small objects to files, 32 in flight: every client gets the same keys."""

    def __init__(self, server: Server, count: int, folder: Path) -> None:
        self.server = server
        self.count = count
        self.folder = folder
        self.clock = Clock()
        client = boto3_client(server, SMALL_IN_FLIGHT)
        with concurrent.futures.ThreadPoolExecutor(SMALL_IN_FLIGHT) as pool:
            self.data = dict(
                pool.map(
                    lambda n: seed_small(client, f"{SMALL_PREFIX}{n:05d}.bin"),
                    range(count),
                )
            )
        self.keys = list(self.data)

    def dest(self, client: str, key: str) -> Path:
        return self.folder / client / key

    def check(self, client: str) -> None:
        """Every file is there with its object's bytes (4 KiB each: all of them are compared)."""
        for key, data in self.data.items():
            if self.dest(client, key).read_bytes() != data:
                raise AssertionError(f"{client} wrote {key} with bytes other than the object's")

    async def aiostorage(self, fsync: bool) -> None:
        async with AsyncS3Store(BUCKET, settings=self.server.store_settings(), concurrency=SMALL_IN_FLIGHT) as store:
            infos = [info async for info in store.list(SMALL_PREFIX)]
            with self.clock.section():
                result = await store.download_many(
                    [(info, self.dest("aiostorage", info.key)) for info in infos], fsync=fsync
                )
        assert result.ok and len(result.items) == self.count
        self.check("aiostorage")

    def boto3(self) -> None:
        client = boto3_client(self.server, SMALL_IN_FLIGHT)
        for key in self.keys:
            self.dest("boto3", key).parent.mkdir(parents=True, exist_ok=True)
        with self.clock.section(), concurrent.futures.ThreadPoolExecutor(SMALL_IN_FLIGHT) as pool:
            list(pool.map(lambda key: client.download_file(BUCKET, key, str(self.dest("boto3", key))), self.keys))
        self.check("boto3")

    async def aioboto3(self) -> None:
        semaphore = asyncio.Semaphore(SMALL_IN_FLIGHT)
        self.dest("aioboto3", self.keys[0]).parent.mkdir(parents=True, exist_ok=True)
        async with aioboto3_client(self.server, SMALL_IN_FLIGHT) as client:

            async def get(key: str) -> None:
                async with semaphore:
                    response = await client.get_object(Bucket=BUCKET, Key=key)
                    async with response["Body"] as body:
                        self.dest("aioboto3", key).write_bytes(await body.read())

            with self.clock.section():
                await asyncio.gather(*(get(key) for key in self.keys))
        self.check("aioboto3")

    async def obstore(self) -> None:
        import obstore

        store = obstore_store(self.server)
        semaphore = asyncio.Semaphore(SMALL_IN_FLIGHT)
        self.dest("obstore", self.keys[0]).parent.mkdir(parents=True, exist_ok=True)

        async def get(key: str) -> None:
            async with semaphore:
                response = await obstore.get_async(store, key)
                self.dest("obstore", key).write_bytes(bytes(await response.bytes_async()))

        with self.clock.section():
            await asyncio.gather(*(get(key) for key in self.keys))
        self.check("obstore")


def seed_small(client: Any, key: str) -> tuple[str, bytes]:
    data = os.urandom(SMALL_SIZE)
    client.put_object(Bucket=BUCKET, Key=key, Body=data)
    return key, data


def bench_small(server: Server, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-download-small-") as folder:
        bench = SmallBench(server, args.small, Path(folder))
        clients: dict[str, Callable[[], None]] = {
            "aiostorage download_many": async_run(lambda: bench.aiostorage(fsync=True)),
            "aiostorage fsync=False": async_run(lambda: bench.aiostorage(fsync=False)),
            "boto3 download_file threads": bench.boto3,
            "aioboto3 get_object gather": async_run(bench.aioboto3),
            "obstore get_async gather": async_run(bench.obstore),
        }
        walls, cpus, _ = rounds_of(clients, args.rounds, bench.clock, lambda: empty_folder(Path(folder)))
    wall = {name: statistics.median(values) for name, values in walls.items()}
    ours = wall["aiostorage download_many"]
    print(
        f"\n{server.name}: {args.small} x {SMALL_SIZE // 1024} KiB objects to files, {SMALL_IN_FLIGHT} in flight, "
        f"median of {args.rounds}"
    )
    print(f"{'client':<30} {'seconds':>8} {'objects/s':>10} {'CPU ms/object':>14} {'ours vs it':>11}")
    for name in clients:
        cpu = statistics.median(cpus[name]) * 1000 / args.small
        ratio = "" if name == "aiostorage download_many" else f"{wall[name] / ours:.2f}x"
        print(f"{name:<30} {wall[name]:>8.2f} {args.small / wall[name]:>10.0f} {cpu:>14.2f} {ratio:>11}")


def empty_folder(folder: Path) -> None:
    """Remove what a client wrote (files, and the folders ``download_many`` made for keys with a ``/``)."""
    shutil.rmtree(folder)
    folder.mkdir()


def rounds_of(
    clients: dict[str, Callable[[], None]], rounds: int, clock: Clock, reset: Callable[[], None]
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Each client once per round, in turn, ``reset`` after each: the wall, CPU and user CPU times of its
    sections. Each round starts with the next client, so none always follows the same one."""
    walls: dict[str, list[float]] = {name: [] for name in clients}
    cpus: dict[str, list[float]] = {name: [] for name in clients}
    users: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    for number in range(rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            run = clients[name]
            run()
            walls[name].append(clock.wall)
            cpus[name].append(clock.cpu)
            users[name].append(clock.user)
            reset()
    return walls, cpus, users


def async_run(factory: Callable[[], Awaitable[None]], *, uvloop: bool = False) -> Callable[[], None]:
    def run() -> None:
        if uvloop:
            import uvloop as loops

            loops.run(factory())  # type: ignore[arg-type]
        else:
            asyncio.run(factory())  # type: ignore[arg-type]

    return run


def bench_server(server: Server, args: argparse.Namespace) -> None:
    size = args.size_mib * MiB
    sample = seed(server, size)
    with tempfile.TemporaryDirectory(prefix="bench-download-") as folder:
        bench = Bench(server, size, sample, args.part_mib * MiB, args.concurrency, Path(folder))
        clients: dict[str, Callable[[], None]] = {
            "aiostorage": async_run(lambda: bench.aiostorage(fsync=True)),
            "aiostorage fsync=False": async_run(lambda: bench.aiostorage(fsync=False)),
            "aiostorage stream": async_run(bench.aiostorage_stream),
            "aiostorage on uvloop": async_run(lambda: bench.aiostorage(fsync=True), uvloop=True),
            "boto3 download_file": bench.boto3,
            "aioboto3 download_file": async_run(bench.aioboto3),
            "s3fs _get_file": async_run(bench.s3fs),
            "obstore (one GET)": async_run(bench.obstore),
            "ceiling (aiohttp ranges)": async_run(bench.ceiling),
            "ceiling to a file": async_run(lambda: bench.ceiling(to_file=True)),
            "ceiling to a file, fsync": async_run(lambda: bench.ceiling(to_file=True, fsync=True)),
        }
        walls, cpus, users = rounds_of(clients, args.rounds, bench.clock, lambda: empty_folder(Path(folder)))
    speed = {name: size / MiB / statistics.median(values) for name, values in walls.items()}
    print(
        f"\n{server.name}: {args.size_mib} MiB to a file, {args.part_mib} MiB parts, {args.concurrency} in flight, "
        f"median of {args.rounds}"
    )
    # CPU is user + system time; "user" leaves out the kernel's part (receiving, and copying into the page
    # cache, which varies with the machine's other disk writers).
    print(
        f"{'client':<26} {'MiB/s':>8} {'CPU s/GiB':>10} {'user s/GiB':>11} {'vs boto3':>9} {'vs obstore':>11} "
        f"{'vs ceiling':>11}"
    )
    for name in clients:
        cpu_per_gib = statistics.median(cpus[name]) / (size / GiB)
        user_per_gib = statistics.median(users[name]) / (size / GiB)
        print(
            f"{name:<26} {speed[name]:>8.0f} {cpu_per_gib:>10.2f} {user_per_gib:>11.2f} "
            f"{speed[name] / speed['boto3 download_file']:>8.2f}x {speed[name] / speed['obstore (one GET)']:>10.2f}x "
            f"{speed[name] / speed['ceiling (aiohttp ranges)']:>10.2f}x"
        )
    # The ceiling discards what it receives; a download writes it. Against the ceiling that writes too:
    for ours, theirs in (
        ("aiostorage", "ceiling to a file, fsync"),
        ("aiostorage fsync=False", "ceiling to a file"),
    ):
        print(f"{ours} vs {theirs}: {speed[ours] / speed[theirs]:.2f}x")


@contextmanager
def ca_bundle_in_environment(server: Server) -> Iterator[None]:
    """aiostorage's botocore reads the CA bundle to check the server's certificate from the environment."""
    saved = {name: os.environ.get(name) for name in server.environ()}
    os.environ.update(server.environ())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--small", type=int, default=300, help="small objects (0: skip that part)")
    parser.add_argument("--servers", default="s3rver,s3rver-tls,moto")
    args = parser.parse_args()
    for name in args.servers.split(","):
        if name in ("s3rver", "s3rver-tls"):
            if not s3rver_available():
                print("s3rver is not installed (make bench installs it); skipped")
                continue
            with s3rver_server(tls=name == "s3rver-tls") as server, ca_bundle_in_environment(server):
                bench_server(server, args)
                if args.small:
                    bench_small(server, args)
        elif name == "moto":
            with moto_process_server() as server:
                bench_server(server, args)
                if args.small:
                    bench_small(server, args)
        else:
            parser.error(f"unknown server {name!r}")


if __name__ == "__main__":
    main()
