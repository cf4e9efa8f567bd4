"""Streaming uploads: one PutObject below the threshold, a bounded pipeline of parts above it.

Memory stays within about ``concurrency * part_size``: a slot is taken before the next part is read
and given back only once S3 has acknowledged that part, so a slow server holds the source back instead
of letting parts pile up. A part's buffer is kept until it succeeds, so retries resend the same bytes.
Whatever fails, or cancels the caller, aborts the multipart upload before the error propagates
(see ``multipart.open_multipart``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .._context import S3Context
from .._exceptions import InvalidArgument
from .._models import TransferProgress, UploadResult, upload_result
from .._options import WriteOptions
from .._settings import MAX_OBJECT_SIZE, MAX_PARTS
from .._tasks import task_group
from .._validate import check_attributes, guess_content_type
from .checksum import hash_payload, small_bytes
from .multipart import open_multipart
from .options import CHECKSUM_PARAM, write_params
from .parts import PartSizer
from .sources import Part, PartReader, UploadSource, open_source

__all__ = ["ProgressCallback", "object_attributes", "put_object", "upload"]

ProgressCallback = Callable[[TransferProgress], None]


def object_attributes(
    key: str, content_type: str | None, metadata: dict[str, str] | None, options: WriteOptions | None = None
) -> dict[str, Any]:
    """What an object is written with, as botocore's parameters: its content type (guessed from the key
    when not given), metadata, and the ``options`` (already merged with the settings' defaults), their
    checksum algorithm as ``ChecksumAlgorithm`` unless it is CRC32.

    Raises ``InvalidArgument`` for values that cannot travel as headers.
    """
    check_attributes(content_type, metadata)
    attributes = {"ContentType": content_type or guess_content_type(key), "Metadata": metadata or {}}
    if options is not None:
        attributes.update(write_params(options))
        if options.checksum_algorithm != "CRC32":
            attributes[CHECKSUM_PARAM] = options.checksum_algorithm
    return attributes


def _split_checksum(attributes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The checksum algorithm the attributes name (CRC32 by default), and the other attributes."""
    if CHECKSUM_PARAM not in attributes:
        return "CRC32", attributes
    rest = dict(attributes)
    return rest.pop(CHECKSUM_PARAM), rest


class _Progress:
    """Reports acknowledged bytes only, so a retried part is never counted twice."""

    def __init__(self, key: str, total: int | None, callback: ProgressCallback | None) -> None:
        self.key = key
        self.total = total
        self.transferred = 0
        self._callback = callback
        self._reported: tuple[int, int | None] | None = None

    def advance(self, n: int) -> None:
        self.transferred += n
        self._report()

    def finish(self, size: int) -> None:
        self.total = size
        self._report()

    def _report(self) -> None:
        if self._callback is None or self._reported == (self.transferred, self.total):
            return
        self._reported = (self.transferred, self.total)
        self._callback(TransferProgress(self.key, self.transferred, self.total))


async def put_object(
    ctx: S3Context,
    key: str,
    body: Part,
    *,
    attributes: dict[str, Any],
    progress: ProgressCallback | None = None,
) -> UploadResult:
    """One PutObject of ``body`` with a checksum (CRC32 by default): a small one on the direct path, when it fits."""
    transport = ctx.transport
    response: dict[str, Any] | None = None
    algorithm = attributes.get(CHECKSUM_PARAM, "CRC32")
    if transport.takes_small_put(len(body), attributes):
        data = await small_bytes(body)
        # The direct path computes CRC32 itself; another algorithm's checksum is computed here.
        checksum = None
        if algorithm != "CRC32":
            checksum = (await hash_payload(body, sign=False, algorithm=algorithm)).checksum
        direct = partial(transport.put_small, key, data, attributes, checksum)
        # None: the bucket answered from elsewhere, and the direct path is off for botocore to take over.
        response = await ctx.call("PutObject", direct, key=key, payload_bytes=len(body))
    if response is None:
        _, params = _split_checksum(attributes)
        hashes = await hash_payload(body, sign=transport.signs_payload, algorithm=algorithm)
        response = await ctx.request(
            "PutObject",
            key=key,
            payload_bytes=len(body),
            **params,
            **transport.upload_args(body, checksum=hashes.checksum, sha256=hashes.sha256, algorithm=algorithm),
        )
    _Progress(key, len(body), progress).advance(len(body))
    return upload_result(ctx.bucket, key, response, size=len(body), parts=1)


async def upload(
    ctx: S3Context,
    source: UploadSource,
    key: str,
    *,
    attributes: dict[str, Any],
    part_size: int,
    explicit_part_size: bool,
    concurrency: int,
    progress: ProgressCallback | None = None,
    part_slots: anyio.Semaphore | None = None,
) -> UploadResult:
    """Upload ``source`` to ``key``; ``attributes`` (content type, metadata) go to the object.

    One PutObject up to the settings' ``multipart_threshold``, a multipart upload above it.
    ``part_slots`` shares the limit of parts in memory with other uploads (a bulk transfer's items);
    by default this upload has ``concurrency`` slots of its own.
    """
    multipart_threshold = ctx.settings.multipart_threshold
    reader = await open_source(source)
    try:
        sizer = PartSizer(reader.size, part_size, explicit=explicit_part_size)
        if reader.size is not None and reader.size <= multipart_threshold:
            return await put_object(ctx, key, await reader.read(reader.size), attributes=attributes, progress=progress)

        # Of unknown length: read until past the threshold (or the end) to choose between the two.
        head: list[Part] = []
        buffered = 0
        ended = False
        while reader.size is None and buffered <= multipart_threshold:
            wanted = sizer(len(head) + 1)
            part = await reader.read(wanted)
            if part:
                head.append(part)
                buffered += len(part)
            if len(part) < wanted:
                ended = True
                break
        if ended and buffered <= multipart_threshold:
            # Sources of unknown length hand out buffers, never file ranges: these join.
            body = head[0] if len(head) == 1 else memoryview(b"".join(head))  # type: ignore[arg-type]
            return await put_object(ctx, key, body, attributes=attributes, progress=progress)
        slots = part_slots if part_slots is not None else anyio.Semaphore(concurrency)
        return await _multipart(ctx, reader, key, head, sizer, attributes, slots, progress)
    finally:
        with anyio.CancelScope(shield=True):
            await reader.aclose()


async def _multipart(
    ctx: S3Context,
    reader: PartReader,
    key: str,
    head: list[Part],
    sizer: PartSizer,
    attributes: dict[str, Any],
    slots: anyio.Semaphore,
    progress: ProgressCallback | None,
) -> UploadResult:
    transport = ctx.transport
    reporter = _Progress(key, reader.size, progress)
    size = 0
    number = 0
    algorithm, params = _split_checksum(attributes)
    async with open_multipart(ctx, key, ChecksumAlgorithm=algorithm, **params) as multipart:

        async def send(number: int, part: Part) -> None:
            try:
                hashes = await hash_payload(part, sign=transport.signs_payload, algorithm=algorithm)
                response = await ctx.request(
                    "UploadPart",
                    key=key,
                    payload_bytes=len(part),
                    UploadId=multipart.upload_id,
                    PartNumber=number,
                    **transport.upload_args(part, checksum=hashes.checksum, sha256=hashes.sha256, algorithm=algorithm),
                )
                multipart.record(number, {"ETag": response["ETag"], f"Checksum{algorithm}": hashes.checksum})
                reporter.advance(len(part))
            finally:
                slots.release()

        async with task_group() as group:
            while True:
                # The slot is taken before reading: at most `concurrency` parts exist at any time.
                await slots.acquire()
                try:
                    part = head.pop(0) if head else await reader.read(sizer(number + 1))
                except BaseException:
                    slots.release()
                    raise
                if not part:
                    slots.release()
                    break
                number += 1
                size += len(part)
                if number > MAX_PARTS or size > MAX_OBJECT_SIZE:
                    raise InvalidArgument("the source is larger than S3's limits (10,000 parts, 5 TiB)")
                group.start_soon(send, number, part)
                del part  # the part task owns it now: holding it here would keep one more buffer alive
        reporter.finish(size)
        response = await multipart.complete()
    return upload_result(ctx.bucket, key, response, size=size, parts=number)
