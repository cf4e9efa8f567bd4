"""Checking a downloaded file against the full-object checksum S3 reported, off the event loop."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable

from zlib_ng import zlib_ng

from .ranged import Checksum

__all__ = ["bytes_checksum", "file_checksum", "supported"]

logger = logging.getLogger("aiostorage")

_READ_SIZE = 4 * 1024 * 1024


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib_ng.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _hasher(algorithm: str) -> Callable[[], _Crc32 | hashlib._Hash] | None:
    # CRC32C and CRC64NVME have no implementation in the standard library: not checked (size only).
    if algorithm == "CRC32":
        return _Crc32
    if algorithm == "SHA256":
        return hashlib.sha256
    if algorithm == "SHA1":
        return hashlib.sha1
    return None


def supported(checksum: Checksum) -> bool:
    """Whether this process can compute ``checksum``'s algorithm."""
    supported_here = _hasher(checksum.algorithm) is not None
    if not supported_here:
        logger.debug("no %s implementation here; only the size is checked", checksum.algorithm)
    return supported_here


def _start(algorithm: str) -> _Crc32 | hashlib._Hash:
    factory = _hasher(algorithm)
    if factory is None:
        raise ValueError(f"unsupported checksum algorithm {algorithm}")
    return factory()


def file_checksum(fd: int, size: int, algorithm: str) -> str:
    """The base64 checksum of the first ``size`` bytes of ``fd`` (blocking: run it in a worker thread).

    The file is read back rather than hashed as parts arrive because parts land out of order; it also
    checks what reached the file, not only what crossed the network. hashlib and zlib release the GIL.
    """
    hasher = _start(algorithm)
    offset = 0
    while offset < size:
        data = os.pread(fd, min(_READ_SIZE, size - offset), offset)
        if not data:
            break
        hasher.update(data)
        offset += len(data)
    return base64.b64encode(hasher.digest()).decode("ascii")


def bytes_checksum(data: bytes, algorithm: str) -> str:
    """The base64 checksum of ``data``, an object small enough to be held whole."""
    hasher = _start(algorithm)
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode("ascii")
