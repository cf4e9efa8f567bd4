"""Request bodies and their checksums, hashed in a worker thread rather than by botocore on the event loop.

botocore hashes an upload's body on the event loop: CRC32 for the flexible checksum and, over plain
HTTP where SigV4 must sign the payload, SHA-256 as well (~8 ms of blocked loop per 8 MiB part here).
We hash in a worker thread instead (zlib-ng and hashlib release the GIL on large buffers) and hand the
results to botocore: the CRC32 as ``ChecksumCRC32``, which botocore then does not recompute, and the
SHA-256 through a signer that puts the precomputed digest in ``x-amz-content-sha256``. Every byte is
still covered by the checksum and, over HTTP, by the signature: only where the hashing runs changes.

The signer is an ``S3SigV4Auth`` registered under its own name and chosen (``choose-signer`` hook)
only for requests that carry a precomputed digest and would be signed with plain SigV4 anyway.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp.payload
import anyio.to_thread
import botocore.auth
from zlib_ng import zlib_ng

from .._exceptions import StorageError
from ..transfer.sources import RANGE_CHUNK, FileRange, Part

__all__ = [
    "PartBody",
    "PayloadHashes",
    "hash_payload",
    "prepare_client",
    "request_args",
    "signs_payload",
    "small_bytes",
]

# Bodies are written to the socket in slices of this size (see _send_view).
SEND_CHUNK = 1024 * 1024
# Bodies smaller than this are hashed inline: a thread hop would cost more than it saves.
THREAD_HASH_MIN = 256 * 1024
_SIGNER = "aiostorage-s3v4"
_PARAM = "AiostoragePayloadSHA256"
_CONTEXT_KEY = "aiostorage_payload_sha256"
_OPERATIONS = ("PutObject", "UploadPart")


class PartBody:
    """A part as a body botocore accepts (it rejects memoryviews and knows nothing of file ranges).

    ``read``/``seek``/``tell`` exist for botocore's validation and any hashing it still does; just
    before sending, the ``before-send`` hook swaps in what aiohttp really sends: a buffer's slices as
    views without a copy, a file range as ``_FileRangePayload``.
    """

    def __init__(self, part: Part) -> None:
        self.part = part
        self._position = 0

    def __len__(self) -> int:
        return len(self.part)

    def read(self, size: int = -1) -> bytes:
        end = len(self.part) if size is None or size < 0 else min(len(self.part), self._position + size)
        if isinstance(self.part, memoryview):
            chunk = bytes(self.part[self._position : end])
        else:
            chunk = b"".join(
                self.part.read_slice(start)[: end - start] for start in range(self._position, end, RANGE_CHUNK)
            )
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self.part)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


@dataclass(frozen=True, slots=True)
class PayloadHashes:
    """A body's CRC32 (base64, as S3 wants it) and, when the payload is signed, its SHA-256 (hex)."""

    crc32: str
    sha256: str | None


def _hash(part: Part, sign: bool) -> PayloadHashes:
    crc32 = 0
    sha256 = hashlib.sha256() if sign else None
    for piece in [part] if isinstance(part, memoryview) else part.slices():
        crc32 = zlib_ng.crc32(piece, crc32)
        if sha256 is not None:
            sha256.update(piece)
    return PayloadHashes(
        base64.b64encode(crc32.to_bytes(4, "big")).decode(), sha256.hexdigest() if sha256 is not None else None
    )


async def hash_payload(part: Part, *, sign: bool) -> PayloadHashes:
    """CRC32 (and SHA-256 when ``sign``) of ``part``, off the event loop unless it is small."""
    if len(part) < THREAD_HASH_MIN:
        return _hash(part, sign)
    return await anyio.to_thread.run_sync(_hash, part, sign)


async def small_bytes(part: Part) -> bytes:
    """A small part's bytes in memory, read off the event loop from a file unless it is tiny."""
    if isinstance(part, memoryview):
        return bytes(part)
    if len(part) < THREAD_HASH_MIN:
        return b"".join(part.slices())
    return await anyio.to_thread.run_sync(lambda: b"".join(part.slices()))


def signs_payload(client: Any) -> bool:
    """Whether SigV4 signs request payloads on this client: always over plain HTTP."""
    return not str(client.meta.endpoint_url).startswith("https")


def request_args(part: Part, hashes: PayloadHashes) -> dict[str, Any]:
    """The body and checksum arguments of a PutObject or UploadPart."""
    # The digest parameter is always present (empty when unsigned): it marks the request for our signer.
    return {
        "Body": PartBody(part),
        "ChecksumAlgorithm": "CRC32",
        "ChecksumCRC32": hashes.crc32,
        _PARAM: hashes.sha256 or "",
    }


class _PrecomputedPayloadAuth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    """S3's SigV4 signer, using the payload's precomputed SHA-256 instead of hashing it again."""

    def _should_sha256_sign_payload(self, request: Any) -> bool:
        # botocore leaves the payload unsigned over TLS when a checksum header protects a streaming
        # body, but only recognises a checksum it computed itself; ours is just as present.
        s3_config = getattr(request.context.get("client_config"), "s3", None) or {}
        if (
            s3_config.get("payload_signing_enabled") is None
            and request.url.startswith("https")
            and request.context.get("has_streaming_input", False)
            and any(name.lower().startswith("x-amz-checksum-") for name in request.headers)
        ):
            return False
        result: bool = super()._should_sha256_sign_payload(request)
        return result

    def payload(self, request: Any) -> str:
        digest = request.context.get(_CONTEXT_KEY)
        if digest and not self._is_streaming_checksum_payload(request) and self._should_sha256_sign_payload(request):
            return str(digest)
        result: str = super().payload(request)
        return result


botocore.auth.AUTH_TYPE_MAPS.setdefault(_SIGNER, _PrecomputedPayloadAuth)


def _take_digest(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _PARAM in params:
        context[_CONTEXT_KEY] = params.pop(_PARAM)


def _choose_signer(signing_name: str, signature_version: Any, context: dict[str, Any], **_: Any) -> str | None:
    # Only where botocore would pick plain S3 SigV4 itself; S3 Express, SigV4a, unsigned operations
    # and anything else fall through to botocore's own choice.
    if (
        _CONTEXT_KEY in context
        and signing_name == "s3"
        and signature_version in ("v4", "s3v4")
        and not context.get("unsigned_payload")
    ):
        return _SIGNER
    return None


class _FileRangePayload(aiohttp.payload.Payload):
    """A file range sent with ``sendfile``: the kernel copies it from the page cache to the socket.

    Nothing passes through Python: no read into a buffer, no copy into asyncio's write buffer, no
    thread hop per slice (~0.5 s of CPU per GiB here). The range was read moments before to be hashed,
    so ``sendfile`` finds it in the page cache rather than waiting on the disk. Over TLS, or on an
    event loop without ``sendfile``, the range goes out in slices read in a worker thread.
    """

    def __init__(self, part: FileRange) -> None:
        super().__init__(part, size=len(part))
        self._part = part

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file range is sent, never decoded")

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        part = self._part
        transport = writer.transport
        if transport is not None and transport.get_extra_info("sslcontext") is None:
            writer.send_headers()
            try:
                sent = await asyncio.get_running_loop().sendfile(
                    transport, part.file, part.offset, part.length, fallback=False
                )
            except (NotImplementedError, RuntimeError):
                pass  # raised before anything is sent: this loop or transport cannot sendfile
            else:
                if sent != part.length:
                    raise StorageError(
                        f"the source file shrank while it was being uploaded ({sent} of {part.length} bytes)"
                    )
                return
        async for piece in _slices(part):
            await writer.write(piece)


async def _slices(part: Part) -> AsyncIterator[bytes | memoryview]:
    if isinstance(part, memoryview):
        for start in range(0, len(part), SEND_CHUNK):
            yield part[start : start + SEND_CHUNK]
    else:
        for start in range(0, len(part), RANGE_CHUNK):
            yield await anyio.to_thread.run_sync(part.read_slice, start)


def _send_view(request: Any, **_: Any) -> None:
    # Handed to aiohttp whole, a part is written with one transport.write(): what the socket does not
    # take at once is copied into asyncio's buffer, a second copy of each part in flight. In slices,
    # aiohttp waits for the buffer to drain between them (Content-Length is set, so not chunked).
    if isinstance(request.body, PartBody):
        part = request.body.part
        request.body = _FileRangePayload(part) if isinstance(part, FileRange) else _slices(part)


def prepare_client(client: Any) -> None:
    """Register the hooks above on an S3 client (idempotent)."""
    events = client.meta.events
    for operation in _OPERATIONS:
        events.register(
            f"before-parameter-build.s3.{operation}", _take_digest, unique_id=f"aiostorage-digest-{operation}"
        )
        events.register(f"choose-signer.s3.{operation}", _choose_signer, unique_id=f"aiostorage-signer-{operation}")
        # First, so that other before-send hooks (request counters, loggers) see the bytes being sent.
        events.register_first(f"before-send.s3.{operation}", _send_view, unique_id=f"aiostorage-body-{operation}")
