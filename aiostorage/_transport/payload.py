"""Upload bodies handed to botocore with their checksums computed beforehand, off the event loop.

botocore hashes an upload's body on the event loop: CRC32 for the flexible checksum and, over plain
HTTP where SigV4 must sign the payload, SHA-256 as well, blocking the loop for every part. The engines
hash in a worker thread instead and hand the results over here: the CRC32 as ``ChecksumCRC32``, which
botocore then does not recompute, and the SHA-256 through a signer that puts the precomputed digest in
``x-amz-content-sha256`` (``compat.register_precomputed_signer``). Every byte is still covered by the
checksum and, over HTTP, by the signature: only where the hashing runs changes.

The signer is chosen (``choose-signer`` hook) only for requests that carry a precomputed digest and
would be signed with plain SigV4 anyway. Just before sending, a body is swapped for what aiohttp
really sends: a buffer's slices as views without a copy, a file range from the file itself.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, Protocol

import aiohttp.payload
import anyio.to_thread

from .._exceptions import StorageError
from . import compat

__all__ = ["Body", "FileBody", "PartBody", "install_payload_hooks", "request_args", "signs_payload"]

# Buffers are written to the socket in slices of this size (see _send_view): what the socket does not
# take of a slice at once is copied into asyncio's buffer, so each connection holds at most this much
# beyond the part itself.
SEND_CHUNK = 256 * 1024
_SIGNER = "aiostorage-s3v4"
_PARAM = "AiostoragePayloadSHA256"
_OPERATIONS = ("PutObject", "UploadPart")


class FileBody(Protocol):
    """A range of a file, read in slices, never held whole."""

    @property
    def file(self) -> BinaryIO: ...

    @property
    def offset(self) -> int: ...

    @property
    def length(self) -> int: ...

    def __len__(self) -> int: ...

    def read_slice(self, start: int) -> bytes:
        """Bytes of the range from ``start`` on: at least one, unless ``start`` is its end."""
        ...


Body = memoryview | FileBody


class PartBody:
    """A body botocore accepts (it rejects memoryviews and knows nothing of file ranges).

    ``read``/``seek``/``tell`` exist for botocore's validation and any hashing it still does; just
    before sending, the ``before-send`` hook swaps in what aiohttp really sends.
    """

    def __init__(self, part: Body) -> None:
        self.part = part
        self._position = 0

    def __len__(self) -> int:
        return len(self.part)

    def read(self, size: int = -1) -> bytes:
        end = len(self.part) if size is None or size < 0 else min(len(self.part), self._position + size)
        part = self.part
        if isinstance(part, memoryview):
            chunk = bytes(part[self._position : end])
        else:
            pieces = []
            position = self._position
            while position < end:
                piece = part.read_slice(position)[: end - position]
                pieces.append(piece)
                position += len(piece)
            chunk = b"".join(pieces)
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self.part)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def signs_payload(client: Any) -> bool:
    """Whether SigV4 signs request payloads on this client: always over plain HTTP."""
    return not str(client.meta.endpoint_url).startswith("https")


def request_args(part: Body, algorithm: str, checksum: str, sha256: str | None) -> dict[str, Any]:
    """The body and checksum arguments of a PutObject or UploadPart: the ``algorithm`` (``"CRC32"``, ...)
    ``checksum`` in base64, ``sha256`` in hex."""
    # The digest parameter is always present (empty when unsigned): it marks the request for our signer.
    return {
        "Body": PartBody(part),
        "ChecksumAlgorithm": algorithm,
        f"Checksum{algorithm}": checksum,
        _PARAM: sha256 or "",
    }


def _take_digest(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _PARAM in params:
        context[compat.DIGEST_CONTEXT_KEY] = params.pop(_PARAM)


def _choose_signer(signing_name: str, signature_version: Any, context: dict[str, Any], **_: Any) -> str | None:
    # Only where botocore would pick plain S3 SigV4 itself; S3 Express, SigV4a, unsigned operations
    # and anything else fall through to botocore's own choice.
    if (
        compat.DIGEST_CONTEXT_KEY in context
        and signing_name == "s3"
        and signature_version in ("v4", "s3v4")
        and not context.get("unsigned_payload")
    ):
        return _SIGNER
    return None


class _FileRangePayload(aiohttp.payload.Payload):
    """A file range sent with ``sendfile``: the kernel copies it from the page cache to the socket.

    Nothing passes through Python: no read into a buffer, no copy into asyncio's write buffer, no
    thread hop per slice. The range was read moments before to be hashed, so ``sendfile`` finds it in
    the page cache rather than waiting on the disk. Over TLS, or on an event loop without
    ``sendfile``, the range goes out in slices read in a worker thread.
    """

    def __init__(self, part: FileBody) -> None:
        super().__init__(part, size=len(part))
        self._part = part

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file range is sent, never decoded")

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        part = self._part
        transport = compat.plain_socket_for_body(writer)
        if transport is not None:
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


async def _slices(part: Body) -> AsyncIterator[bytes | memoryview]:
    if isinstance(part, memoryview):
        for start in range(0, len(part), SEND_CHUNK):
            yield part[start : start + SEND_CHUNK]
    else:
        start = 0
        while start < len(part):
            piece = await anyio.to_thread.run_sync(part.read_slice, start)
            yield piece
            start += len(piece)


def _send_view(request: Any, **_: Any) -> None:
    # Handed to aiohttp whole, a part is written with one transport.write(): what the socket does not
    # take at once is copied into asyncio's buffer, a second copy of each part in flight. In slices,
    # aiohttp waits for the buffer to drain between them (Content-Length is set, so not chunked).
    if isinstance(request.body, PartBody):
        part = request.body.part
        request.body = _slices(part) if isinstance(part, memoryview) else _FileRangePayload(part)


def install_payload_hooks(client: Any) -> None:
    """Register the hooks above on an S3 client (idempotent)."""
    events = client.meta.events
    signer = compat.register_precomputed_signer(_SIGNER)
    for operation in _OPERATIONS:
        events.register(
            f"before-parameter-build.s3.{operation}", _take_digest, unique_id=f"aiostorage-digest-{operation}"
        )
        if signer:
            events.register(f"choose-signer.s3.{operation}", _choose_signer, unique_id=f"aiostorage-signer-{operation}")
        # First, so that other before-send hooks (request counters, loggers) see the bytes being sent.
        events.register_first(f"before-send.s3.{operation}", _send_view, unique_id=f"aiostorage-body-{operation}")
