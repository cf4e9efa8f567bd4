"""Checks that a benchmarked client moved the right bytes: the size, and a SHA-256 of a sample of them.

A figure for a transfer that stored the wrong bytes is worthless, so every benchmark checks each
client's result after its clock stops: the whole size, and the SHA-256 of three 1 MiB samples (the
start, the middle, the end) against the source's. Reading back a whole 256 MiB object per client and
round would double the server's work between measurements; the samples catch framing stored as data
(it shifts every byte after it), truncation and a wrong part order.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

SAMPLE = 1024 * 1024
# What botocore's aws-chunked framing puts before the first chunk: its size in hex, then CRLF.
_CHUNK_HEADER = re.compile(rb"^[0-9a-fA-F]{1,16}(;[^\r\n]*)?\r\n")


class WrongBytes(AssertionError):
    """A client's transfer stored or wrote bytes other than the source's."""


def sample_ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges of the samples: start, middle and end (fewer when the data is small)."""
    if size == 0:
        return []
    length = min(SAMPLE, size)
    starts = sorted({0, max(0, size // 2 - length // 2), size - length})
    return [(start, start + length - 1) for start in starts]


def digest_of(pieces: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for piece in pieces:
        hasher.update(piece)
    return hasher.hexdigest()


def sample_of_bytes(data: bytes | memoryview) -> str:
    return digest_of([bytes(data[first : last + 1]) for first, last in sample_ranges(len(data))])


def sample_of_file(path: Path | str, size: int | None = None) -> str:
    size = os.path.getsize(path) if size is None else size
    with open(path, "rb") as file:
        return digest_of([os.pread(file.fileno(), last - first + 1, first) for first, last in sample_ranges(size)])


def check_file(who: str, path: Path | str, size: int, sample: str) -> None:
    """``path`` holds ``size`` bytes whose sample digest is ``sample``; else ``WrongBytes`` naming ``who``."""
    got = os.path.getsize(path)
    if got != size:
        raise WrongBytes(f"{who} wrote {got:,} bytes, expected {size:,}")
    if sample_of_file(path, size) != sample:
        raise WrongBytes(f"{who} wrote {size:,} bytes, but not the source's (a sample's SHA-256 differs)")


def check_object(who: str, client: Any, bucket: str, key: str, size: int, sample: str) -> None:
    """The object ``key`` (read with boto3 ``client``) holds ``size`` bytes whose sample digest is ``sample``."""
    got = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if got != size:
        first = client.get_object(Bucket=bucket, Key=key, Range="bytes=0-63")["Body"].read()
        framing = " (aws-chunked framing stored as object bytes)" if _CHUNK_HEADER.match(first) else ""
        raise WrongBytes(f"{who}: the server holds {got:,} bytes, expected {size:,}{framing}; starts {first[:24]!r}")
    pieces = [
        client.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
        for first, last in sample_ranges(size)
    ]
    if digest_of(pieces) != sample:
        raise WrongBytes(f"{who}: the server holds {size:,} bytes, but not the source's (a sample's SHA-256 differs)")


class StreamSample:
    """The sample of data that arrives in pieces, in any order (``add`` each with its offset)."""

    def __init__(self, size: int) -> None:
        self.ranges = sample_ranges(size)
        self.buffers = [bytearray(last - first + 1) for first, last in self.ranges]

    def add(self, offset: int, piece: bytes | memoryview) -> None:
        end = offset + len(piece)
        for (first, last), buffer in zip(self.ranges, self.buffers, strict=True):
            start, stop = max(first, offset), min(last + 1, end)
            if start < stop:
                buffer[start - first : stop - first] = piece[start - offset : stop - offset]

    def digest(self) -> str:
        return digest_of([bytes(buffer) for buffer in self.buffers])
