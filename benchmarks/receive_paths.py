"""What reading response bodies straight into part buffers would save: client CPU per GiB of ranged GETs
read by aiohttp (``readany``, a new ``bytes`` for every read) against a bare ``asyncio.BufferedProtocol``
that reads each range into one preallocated part buffer (over TLS, asyncio's SSL layer then decrypts
into that buffer directly).

Neither client signs, checks or retries anything: both read the same presigned URL, 8 ranges of 8 MiB in
flight, from s3rver, and either discard the bytes or write them on the event loop (aiohttp: ``os.pwrite``
per read; the buffered client: one ``os.pwrite`` per part, which stops the loop for as long as the kernel
takes to copy 8 MiB: its writing figures show that stall, not the receiving). Rounds alternate the two;
medians of CPU (user + system) and user CPU per GiB, and MiB/s.

    python -m benchmarks.receive_paths [--rounds 3] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .bench_download import BUCKET, KEY, MiB, boto3_client, ca_bundle_in_environment, seed
from .servers import s3rver_server

SIZE = 256 * MiB
PART = 8 * MiB
IN_FLIGHT = 8
HEAD_BUFFER = 64 * 1024


async def read_with_aiohttp(url: str, tls: ssl.SSLContext | None, fd: int | None) -> None:
    ranges = iter(range(0, SIZE, PART))

    async def worker(session: aiohttp.ClientSession) -> None:
        for start in ranges:
            end = min(start + PART, SIZE) - 1
            offset = start
            async with session.get(url, headers={"Range": f"bytes={start}-{end}"}) as response:
                while chunk := await response.content.readany():
                    if fd is not None:
                        os.pwrite(fd, chunk, offset)
                    offset += len(chunk)
            if offset != end + 1:
                raise AssertionError(f"range {start}-{end}: {offset - start} bytes")

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT, ssl=tls if tls is not None else True)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(IN_FLIGHT)))


class PartReceiver(asyncio.BufferedProtocol):
    """One kept-alive connection; each answer's head is read into a small buffer, its body into the part's."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head_bytes = bytearray(HEAD_BUFFER)
        self.head = memoryview(self.head_bytes)
        self.head_filled = 0
        self.body = memoryview(bytearray(0))
        self.filled = 0
        self.length: int | None = None
        self.done: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get(self, request: bytes, body: memoryview) -> asyncio.Future[int]:
        assert self.transport is not None
        self.head_filled, self.filled, self.length, self.body = 0, 0, None, body
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.done

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.length is None:
            return self.head[self.head_filled :]
        if self.filled >= len(self.body):
            return self.head  # nothing more is expected; an empty buffer would be read as the end
        return self.body[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        assert self.done is not None
        if self.length is not None:
            if self.filled >= len(self.body):
                self.done.set_exception(AssertionError("bytes after the answer"))
                return
            self.filled += nbytes
        else:
            self.head_filled += nbytes
            head = self.head_bytes
            end = head.find(b"\r\n\r\n", 0, self.head_filled)
            if end < 0:
                return
            lines = bytes(head[:end]).split(b"\r\n")
            if lines[0].split()[1] != b"206":
                self.done.set_exception(AssertionError(lines[0]))
                return
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.length = int(value)
            extra = self.head_filled - (end + 4)
            self.body[:extra] = self.head[end + 4 : self.head_filled]
            self.filled = extra
        if self.length is not None and self.filled >= self.length:
            self.done.set_result(self.filled)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed by the server"))


async def read_into_parts(url: str, tls: ssl.SSLContext | None, fd: int | None) -> None:
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    loop = asyncio.get_running_loop()
    ranges = iter(range(0, SIZE, PART))

    async def worker() -> None:
        assert parts.hostname is not None and parts.port is not None
        transport, receiver = await loop.create_connection(PartReceiver, parts.hostname, parts.port, ssl=tls)
        buffer = memoryview(bytearray(PART))
        try:
            for start in ranges:
                end = min(start + PART, SIZE) - 1
                request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nRange: bytes={start}-{end}\r\n\r\n"
                received = await receiver.get(request.encode(), buffer[: end - start + 1])
                if fd is not None:
                    os.pwrite(fd, buffer[:received], start)
        finally:
            transport.close()

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


Reader = Callable[[str, "ssl.SSLContext | None", "int | None"], Coroutine[Any, Any, None]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args()
    readers: dict[str, Reader] = {"aiohttp readany": read_with_aiohttp, "BufferedProtocol": read_into_parts}
    runs: dict[str, list[tuple[float, float, float]]] = {}
    with s3rver_server(tls=not args.http) as server, ca_bundle_in_environment(server):
        seed(server, SIZE)
        url = boto3_client(server, 1).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600
        )
        tls = None if args.http else ssl.create_default_context(cafile=server.ca_bundle)
        with tempfile.TemporaryDirectory(prefix="receive-paths-") as folder:
            dest = Path(folder) / "object.bin"
            for _ in range(args.rounds):
                for write in (False, True):
                    for name, reader in readers.items():
                        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if write else None
                        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                        try:
                            asyncio.run(reader(url, tls, fd))
                        finally:
                            if fd is not None:
                                os.close(fd)
                        seconds = time.perf_counter() - started
                        after = resource.getrusage(resource.RUSAGE_SELF)
                        if write and dest.stat().st_size != SIZE:
                            raise AssertionError(f"{name} wrote {dest.stat().st_size:,} bytes")
                        user = after.ru_utime - before.ru_utime
                        total = user + after.ru_stime - before.ru_stime
                        runs.setdefault(f"{name}{', writing' if write else ''}", []).append((total, user, seconds))
    gib = SIZE / (1024 * MiB)
    print(f"s3rver{'' if args.http else ' over HTTPS'}: 256 MiB in 8 MiB ranges, 8 in flight, median of {args.rounds}")
    print(f"{'reader':<28} {'CPU s/GiB':>10} {'user':>6} {'MiB/s':>6}")
    for name, results in runs.items():
        total = statistics.median(r[0] for r in results) / gib
        user = statistics.median(r[1] for r in results) / gib
        speed = statistics.median(SIZE / MiB / r[2] for r in results)
        print(f"{name:<28} {total:>10.2f} {user:>6.2f} {speed:>6.0f}")


if __name__ == "__main__":
    main()
