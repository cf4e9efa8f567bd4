"""Response framing on the direct path: CPU per answer read by ``OriginPool``'s connection protocol.

Feeds recorded-shape answers (a small PUT's, a 4 KiB GET's, a 1,000-key listing page with
``Content-Length`` and chunked) to the connection protocol in 64 KiB reads, as a socket delivers them,
with no network and no server: what it measures is the parsing alone, the part a change of parser moves.
Every figure is the median over ``--rounds`` of the CPU time per answer (this process's CPU).

    python -m benchmarks.bench_framing [--rounds 7] [--answers 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from aiostorage._transport.http1 import _Connection

READ = 64 * 1024


class _NullTransport(asyncio.Transport):
    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


S3_HEADERS = {
    "x-amz-id-2": "ef8yU9AS1ed4OpIszj7UDNEHGran",
    "x-amz-request-id": "318BC8BC143432E5",
    "Date": "Fri, 04 Dec 2026 17:40:00 GMT",
    "Server": "AmazonS3",
}


def _listing_body() -> bytes:
    contents = "".join(
        f"<Contents><Key>photos/2026/12/04/img-{n:06d}.jpg</Key><LastModified>2026-12-04T17:40:00.000Z"
        f"</LastModified><ETag>&quot;{n:032x}&quot;</ETag><Size>{1000 + n}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for n in range(1000)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>bench</Name><Prefix>photos/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys>"
        f"<IsTruncated>true</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


def _chunked(body: bytes, size: int = 16 * 1024) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


def answers() -> dict[str, bytes]:
    page = _listing_body()
    small = bytes(4096)
    put = {
        **S3_HEADERS,
        "ETag": '"0123456789abcdef0123456789abcdef"',
        "x-amz-checksum-crc32": "AAAAAA==",
        "Content-Length": "0",
    }
    get = {**S3_HEADERS, "ETag": '"0123456789abcdef0123456789abcdef"', "Content-Type": "image/jpeg"}
    listing = {**S3_HEADERS, "Content-Type": "application/xml"}
    return {
        "small PUT answer": _head("200 OK", put),
        "4 KiB GET answer": _head("200 OK", {**get, "Content-Length": str(len(small))}) + small,
        "listing page (Content-Length)": _head("200 OK", {**listing, "Content-Length": str(len(page))}) + page,
        "listing page (chunked)": _head("200 OK", {**listing, "Transfer-Encoding": "chunked"}) + _chunked(page),
    }


async def per_answer(answer: bytes, count: int) -> float:
    """CPU seconds per answer read on one kept-alive connection."""
    connection = _Connection()
    connection.connection_made(_NullTransport())
    reads = [answer[i : i + READ] for i in range(0, len(answer), READ)]
    started = time.process_time()
    for _ in range(count):
        future = connection.send(b"", max_body=1 << 24)
        for data in reads:
            connection.data_received(data)
        assert future.done() and future.result().status == 200
    return (time.process_time() - started) / count


async def main(rounds: int, count: int) -> None:
    print(f"response framing, CPU per answer (median of {rounds} rounds of {count} answers)")
    for name, answer in answers().items():
        figures = [await per_answer(answer, count) for _ in range(rounds)]
        print(f"  {name:<32} {statistics.median(figures) * 1e6:8.1f} µs  ({len(answer):,} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--answers", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.answers))
