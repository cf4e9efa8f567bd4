"""Upload benchmark: a 256 MiB file in 8 MiB parts, 8 in flight, against moto and s3rver (HTTP and HTTPS).

aiostorage's ``upload`` side by side with boto3's threaded ``upload_file`` (TransferConfig with the same
part size and concurrency), aioboto3's ``upload_fileobj`` and obstore's ``put``, and a "bare" client
(parts from memory, unsigned, no checksum, bare aiohttp) that shows the server's own pace. Every upload runs in
a fresh child process, so its CPU time (user + system, worker threads included) and its peak RSS are its
own; moto runs in a process of its own too. Medians over the rounds; ratios are against the peers in
the same run (the machine is shared: absolute figures mean little).

Every upload is checked after its clock stops (``benchmarks/verify.py``): the stored object's size, and
the SHA-256 of samples of its bytes against the source's. Over HTTPS (``s3rver-tls``, a CA made for the
run, checked by every client) botocore sends bodies aws-chunked with a trailing CRC32, which s3rver 3.7.1
stores as object bytes: boto3 and aioboto3 are told to add checksums only where required there
(``Server.botocore_config``); ``--botocore-default-checksums`` leaves botocore's default to show the
problem (those uploads then fail the check).

    python -m benchmarks.bench_upload [--rounds 5] [--size-mib 256] [--servers moto,s3rver,s3rver-tls]
    python -m benchmarks.bench_upload --profile   # cProfile of aiostorage's client, top functions
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3

from benchmarks.servers import DEFAULT_CHECKSUMS, Server, moto_process_server, s3rver_available, s3rver_server
from benchmarks.verify import WrongBytes, check_object, sample_of_file

MiB = 1024 * 1024
GiB = 1024 * MiB
PART = 8 * MiB
CONCURRENCY = 8
CLIENTS = ("aiostorage", "boto3", "aioboto3", "obstore", "bare")


def _status(field: str) -> int:
    # VmHWM, not ru_maxrss: the latter survives exec, so a child would report its parent's peak.
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


# Child side: one upload by one client, measured from after its client is created to the end.


class Measure:
    """Wall time, CPU time and peak RSS of the ``with`` block, in this process."""

    def __enter__(self) -> Measure:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # the peak from here on
        except OSError:
            pass
        self.baseline = _status("VmRSS")
        self.cpu, self.wall = _cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = {
            "seconds": time.perf_counter() - self.wall,
            "cpu": _cpu() - self.cpu,
            "peak": _status("VmHWM"),
            "baseline": self.baseline,
        }


class Unseekable(io.RawIOBase):
    """The file as a pipe would give it: no size, no seeking, so every client must buffer parts."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer) or 0

    def close(self) -> None:
        self._file.close()
        super().close()


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            yield chunk


async def _upload_aiostorage(server: Server, bucket: str, key: str, path: Path, measure: Measure, stream: bool) -> None:
    from aiostorage import AsyncS3Store

    async with AsyncS3Store(bucket, settings=server.store_settings(), concurrency=CONCURRENCY, part_size=PART) as store:
        with measure:
            await store.upload(_chunks(path) if stream else path, key)


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY)


async def _upload_boto3(server: Server, bucket: str, key: str, path: Path, measure: Measure, stream: bool) -> None:
    client = boto3.client(
        "s3", config=server.botocore_config(max_pool_connections=CONCURRENCY), **server.client_kwargs()
    )
    with measure:
        if stream:
            with Unseekable(path) as file:
                client.upload_fileobj(file, bucket, key, Config=_transfer_config())
        else:
            client.upload_file(str(path), bucket, key, Config=_transfer_config())


async def _upload_aioboto3(server: Server, bucket: str, key: str, path: Path, measure: Measure, stream: bool) -> None:
    import aioboto3

    config = server.botocore_config(max_pool_connections=CONCURRENCY)
    async with aioboto3.Session().client("s3", config=config, **server.client_kwargs()) as client:
        with measure, Unseekable(path) if stream else path.open("rb") as file:
            await client.upload_fileobj(file, bucket, key, Config=_transfer_config())


async def _upload_obstore(server: Server, bucket: str, key: str, path: Path, measure: Measure, stream: bool) -> None:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        virtual_hosted_style_request=False,
        client_options=server.obstore_options(),
    )
    with measure:
        source = _chunks(path) if stream else path
        await obstore.put_async(store, key, source, chunk_size=PART, max_concurrency=CONCURRENCY)


async def _upload_bare(server: Server, bucket: str, key: str, path: Path, measure: Measure, stream: bool) -> None:
    """The server's own pace: the parts already in memory, sent by bare aiohttp, unsigned and unchecksummed.

    No client does less work per byte, so against a server that sets the pace no client should be much
    faster than this (within the noise of a shared machine: a few per cent either way).
    """
    import ssl

    import aiohttp
    from botocore.config import Config

    if stream:
        raise ValueError("the bare client has no streamed variant")
    client = boto3.client("s3", config=Config(signature_version="s3v4"), **server.client_kwargs())
    data = memoryview(await asyncio.to_thread(path.read_bytes))  # not measured: reading is not the server's work
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        with measure:
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

            async def send(number: int) -> dict[str, Any]:
                params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
                url = client.generate_presigned_url("upload_part", Params=params)
                body = data[(number - 1) * PART : number * PART]
                async with session.put(url, data=body) as response:
                    response.raise_for_status()
                    return {"PartNumber": number, "ETag": response.headers["ETag"]}

            parts = await asyncio.gather(*(send(number) for number in range(1, -(-len(data) // PART) + 1)))
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": list(parts)}
            )


UPLOADERS = {
    "aiostorage": _upload_aiostorage,
    "boto3": _upload_boto3,
    "aioboto3": _upload_aioboto3,
    "obstore": _upload_obstore,
    "bare": _upload_bare,
}


def child(client: str, server: Server, bucket: str, key: str, path: Path, stream: bool, profile: bool) -> None:
    measure = Measure()
    upload = UPLOADERS[client](server, bucket, key, path, measure, stream)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, upload)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        asyncio.run(upload)
    print(json.dumps(measure.result), flush=True)
    sys.stderr.flush()
    # Measured and reported: skip interpreter teardown, where obstore 0.12's runtime sometimes aborts.
    os._exit(0)


# Parent side: servers, rounds, table.


def _run_child(
    client: str, server: Server, bucket: str, path: Path, *, stream: bool = False, profile: bool = False
) -> dict[str, float]:
    key = f"bench/{client}-{uuid.uuid4().hex[:8]}.bin"
    args = [server.name, server.endpoint_url, server.access_key, server.secret_key, bucket, key, str(path)]
    args.append("stream" if stream else "file")
    command = [sys.executable, "-m", "benchmarks.bench_upload", "--child", client, *args]
    if profile:
        command.append("--profile")
    env = {**os.environ, **server.environ()}
    server_cpu = server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    server_used = None if server_cpu is None else (server.cpu_seconds() or 0.0) - server_cpu
    if profile:
        print(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(
            f"{client} failed on {server.name} (exit {done.returncode}):\n{done.stderr[-3000:]}{done.stdout[-3000:]}"
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if server_used is not None:
        result["server_cpu"] = server_used  # the whole upload, creation and completion included
    oracle = _oracle(server)
    try:
        check_object(f"{client} on {server.name}", oracle, bucket, key, path.stat().st_size, _source_sample(path))
    finally:
        oracle.delete_object(Bucket=bucket, Key=key)  # moto keeps objects in memory
    return result


def _source_sample(path: Path, samples: dict[Path, str] = {}) -> str:  # noqa: B006 (one source per run)
    if path not in samples:
        samples[path] = sample_of_file(path)
    return samples[path]


def _oracle(server: Server) -> Any:
    return boto3.client("s3", config=server.botocore_config(), **server.client_kwargs())


def _servers(names: list[str]) -> Iterator[Callable[[], AbstractContextManager[Server]]]:
    for name in names:
        if name == "moto":
            yield moto_process_server
        elif name == "s3rver":
            if not s3rver_available():
                print("s3rver is not installed (run `make bench`); skipping it", file=sys.stderr)
                continue
            yield s3rver_server
        elif name == "s3rver-tls" and s3rver_available():
            # Over HTTPS botocore leaves a checksummed payload unsigned: CRC32 is the only hash left.
            yield lambda: s3rver_server(tls=True)


def _table(server: str, size: int, results: dict[str, list[dict[str, float]]]) -> None:
    rows = {}
    for client, runs in results.items():
        rows[client] = {
            "mib_s": statistics.median(size / MiB / run["seconds"] for run in runs),
            "cpu_gib": statistics.median(run["cpu"] / (size / GiB) for run in runs),
            "peak": statistics.median(run["peak"] for run in runs) / MiB,
            "growth": statistics.median(run["peak"] - run["baseline"] for run in runs) / MiB,
            "server_gib": statistics.median(run.get("server_cpu", 0.0) / (size / GiB) for run in runs),
        }
    rounds = len(next(iter(results.values())))
    print(f"\n{server}: {size // MiB} MiB, {PART // MiB} MiB parts, {CONCURRENCY} in flight, median of {rounds}")
    print(
        f"{'client':<11} {'MiB/s':>7} {'CPU s/GiB':>10} {'server CPU s/GiB':>17} {'peak RSS MiB':>13} "
        f"{'RSS growth MiB':>15}"
    )
    for client, row in rows.items():
        print(
            f"{client:<11} {row['mib_s']:>7.1f} {row['cpu_gib']:>10.2f} {row['server_gib']:>17.2f} "
            f"{row['peak']:>13.0f} {row['growth']:>15.0f}"
        )
    ours = rows["aiostorage"]
    for peer in (name for name in rows if name != "aiostorage"):
        theirs = rows[peer]
        print(
            f"aiostorage vs {peer:<9} speed {ours['mib_s'] / theirs['mib_s']:.2f}x   "
            f"CPU {ours['cpu_gib'] / theirs['cpu_gib']:.2f}x   "
            f"server CPU {ours['server_gib'] / max(theirs['server_gib'], 1e-9):.2f}x   "
            f"peak RSS {ours['peak'] / theirs['peak']:.2f}x   "
            f"RSS growth {ours['growth'] / max(theirs['growth'], 1):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--servers", default="moto,s3rver,s3rver-tls")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--profile", action="store_true", help="profile aiostorage's client once per server")
    parser.add_argument(
        "--botocore-default-checksums",
        action="store_true",
        help="leave boto3's and aioboto3's checksums as botocore sets them (aws-chunked over HTTPS)",
    )
    parser.add_argument("--child", nargs=9, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.botocore_default_checksums:
        os.environ[DEFAULT_CHECKSUMS] = "1"  # read by Server.botocore_config, here and in the children
    if args.child:
        client, name, endpoint, access, secret, bucket, key, path, mode = args.child
        ca_bundle = os.environ.get("AWS_CA_BUNDLE") if endpoint.startswith("https:") else None
        server = Server(name, endpoint, access, secret, ca_bundle=ca_bundle)
        child(client, server, bucket, key, Path(path), mode == "stream", args.profile)
        return

    size = args.size_mib * MiB
    clients = args.clients.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as directory:
        path = Path(directory) / "source.bin"
        with path.open("wb") as file:
            for _ in range(size // MiB):
                file.write(os.urandom(MiB))
        for make_server in _servers(args.servers.split(",")):
            with make_server() as server:
                bucket = f"bench-{uuid.uuid4().hex[:8]}"
                _oracle(server).create_bucket(Bucket=bucket)
                if args.profile:
                    print(f"== cProfile of aiostorage on {server.name}")
                    _run_child("aiostorage", server, bucket, path, profile=True)
                    continue
                results: dict[str, list[dict[str, float]]] = {client: [] for client in clients}
                for number in range(args.rounds):
                    # Interleaved, so load changes hit every client alike, and rotated: each round starts
                    # with the next client, so none always follows the same one. (moto's CPU per upload
                    # depends on what the upload before it left in its memory.)
                    order = list(results)
                    for client in order[number % len(order) :] + order[: number % len(order)]:
                        try:
                            results[client].append(_run_child(client, server, bucket, path))
                        except WrongBytes as wrong:
                            print(f"{server.name}: {wrong}; {client} left out of the table", file=sys.stderr)
                            del results[client]
                _table(server.name, size, results)
                # Memory when streaming: a source of unknown length (a pipe, a generator) must be
                # buffered part by part by every client; one round each, peak RSS is what matters.
                streamed = {
                    client: [_run_child(client, server, bucket, path, stream=True)]
                    for client in results
                    if client != "bare"
                }
                _table(f"{server.name}, streamed from a source of unknown length", size, streamed)


if __name__ == "__main__":
    main()
