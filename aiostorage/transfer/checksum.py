"""Checksums off the event loop: of upload bodies before they are sent, of downloads against S3's.

botocore would hash an upload's body on the event loop (CRC32, and SHA-256 where SigV4 signs the
payload); here it is hashed in a worker thread (zlib-ng and hashlib release the GIL on large buffers)
and the results go to the transport (``Transport.upload_args``). A downloaded file is read back and
checked against the full-object checksum S3 reported.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Protocol

import anyio.to_thread
from zlib_ng import zlib_ng

from .ranged import Checksum
from .sources import Part

__all__ = [
    "PayloadHashes",
    "bytes_checksum",
    "computable_algorithms",
    "file_checksum",
    "hash_payload",
    "small_bytes",
    "supported",
]

logger = logging.getLogger("aiostorage")

_READ_SIZE = 4 * 1024 * 1024
# Bodies smaller than this are hashed inline: a thread hop would cost more than it saves.
THREAD_HASH_MIN = 256 * 1024


@dataclass(frozen=True, slots=True)
class PayloadHashes:
    """A body's checksum (base64, as S3 wants it) and, when the payload is signed, its SHA-256 (hex)."""

    checksum: str
    sha256: str | None
    algorithm: str = "CRC32"


def _hash(part: Part, sign: bool, algorithm: str) -> PayloadHashes:
    sha256 = hashlib.sha256() if sign else None
    pieces = [part] if isinstance(part, memoryview) else part.slices()
    if algorithm == "CRC32":
        crc32 = 0
        for piece in pieces:
            crc32 = zlib_ng.crc32(piece, crc32)
            if sha256 is not None:
                sha256.update(piece)
        digest = crc32.to_bytes(4, "big")
    else:
        hasher = _start(algorithm)
        for piece in pieces:
            hasher.update(piece)
            if sha256 is not None:
                sha256.update(piece)
        digest = hasher.digest()
    return PayloadHashes(
        base64.b64encode(digest).decode(), sha256.hexdigest() if sha256 is not None else None, algorithm
    )


async def hash_payload(part: Part, *, sign: bool, algorithm: str = "CRC32") -> PayloadHashes:
    """The ``algorithm`` checksum (and SHA-256 when ``sign``) of ``part``, off the event loop unless it is small."""
    if len(part) < THREAD_HASH_MIN:
        return _hash(part, sign, algorithm)
    return await anyio.to_thread.run_sync(_hash, part, sign, algorithm)


async def small_bytes(part: Part) -> bytes:
    """A small part's bytes in memory, read off the event loop from a file unless it is tiny."""
    if isinstance(part, memoryview):
        return bytes(part)
    if len(part) < THREAD_HASH_MIN:
        return b"".join(part.slices())
    return await anyio.to_thread.run_sync(lambda: b"".join(part.slices()))


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib_ng.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


@cache
def _crt_checksums() -> ModuleType | None:
    """awscrt's checksums, which botocore's CRT extra brings (CRC32C, CRC64NVME); None without it."""
    try:
        from awscrt import checksums  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    module: ModuleType = checksums
    return module


class _CrtChecksum:
    def __init__(self, function: Callable[[bytes | memoryview, int], int], size: int) -> None:
        self._function = function
        self._size = size
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self._function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self._size, "big")


def _hasher(algorithm: str) -> Callable[[], _Hasher] | None:
    if algorithm == "CRC32":
        return _Crc32
    if algorithm == "SHA256":
        return hashlib.sha256
    if algorithm == "SHA1":
        return hashlib.sha1
    # CRC32C and CRC64NVME have no implementation in the standard library: awscrt's, where installed
    # (else a download is checked by size only, and a write cannot ask for them).
    crt = _crt_checksums()
    if algorithm == "CRC32C" and crt is not None and hasattr(crt, "crc32c"):
        return lambda: _CrtChecksum(crt.crc32c, 4)
    if algorithm == "CRC64NVME" and crt is not None and hasattr(crt, "crc64nvme"):
        return lambda: _CrtChecksum(crt.crc64nvme, 8)
    return None


@cache
def computable_algorithms() -> frozenset[str]:
    """The checksum algorithms this process can compute for an upload."""
    return frozenset(name for name in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME") if _hasher(name))


def supported(checksum: Checksum) -> bool:
    """Whether this process can compute ``checksum``'s algorithm."""
    supported_here = _hasher(checksum.algorithm) is not None
    if not supported_here:
        logger.debug("no %s implementation here; only the size is checked", checksum.algorithm)
    return supported_here


def _start(algorithm: str) -> _Hasher:
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
