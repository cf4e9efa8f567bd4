"""Ranged GETs of one object version: the first learns the object, the rest are pinned to it.

A later range could otherwise read a newer version than an earlier one and mix two objects. Every
request after the first carries ``If-Match`` with the first response's ETag (and its ``VersionId`` on a
versioned bucket), and every response's own ETag and ``Content-Range`` are checked too, which also
catches servers that ignore ``If-Match``. A range whose body is cut short is retried from the first byte
not yet delivered, so nothing is fetched twice and progress never goes backwards.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from botocore.exceptions import ClientError

from .._context import S3Context
from .._exceptions import IntegrityError, ObjectChanged, error_code
from .._models import CHECKSUM_FIELDS, strip_etag
from .._transport import DIRECT_MAX, body_reader

__all__ = ["CONTENT_RANGE", "RANGE_REFUSED", "Checksum", "ObjectVersion", "RangeReader", "Sink"]

# Receives a range's bytes in order: (offset in the object, chunks). It may keep the chunks.
Sink = Callable[[int, list[bytes]], Awaitable[None]]
# The bytes of a body that have arrived; empty at its end.
_Read = Callable[[], Awaitable[bytes]]

# More buffers than this in one positioned write would exceed IOV_MAX on some systems.
_MAX_CHUNKS = 512
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# S3 refuses any range of an empty object with these: the whole of it is no bytes.
RANGE_REFUSED = frozenset({"InvalidRange", "416"})


@dataclass(frozen=True, slots=True)
class Checksum:
    """A full-object checksum as S3 reports it: ``algorithm`` like ``"CRC32"``, ``value`` base64."""

    algorithm: str
    value: str


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """The version every range is read from, as the first response described it."""

    size: int
    etag: str
    version_id: str | None

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'


def full_object_checksum(response: dict[str, Any]) -> Checksum | None:
    """The response's whole-object checksum; ``None`` when absent or composite (``"...-N"``).

    A composite checksum of a multipart upload is a checksum of the parts' checksums: it cannot be
    computed from the object's bytes without knowing the upload's part boundaries. A multipart object
    (ETag ``"...-N"``) counts as composite unless S3 says ``FULL_OBJECT``: some servers (moto's HEAD)
    report the composite value without its ``-N`` suffix or its type.
    """
    checksum_type = response.get("ChecksumType")
    multipart = "-" in (response.get("ETag") or "")
    if checksum_type == "COMPOSITE" or (multipart and checksum_type != "FULL_OBJECT"):
        return None
    for field in CHECKSUM_FIELDS:
        value = response.get(field)
        if value and "-" not in value:
            return Checksum(field.removeprefix("Checksum"), value)
    return None


class RangeReader:
    """Reads ranges of ``key``: ``fetch`` with ``last=None`` first, to learn the object, then pinned ranges.

    ``version`` and ``first_checksum`` are set once the first response's headers are in; ``learned``
    is set then, or when the first request fails (its error is raised by ``fetch`` itself).
    """

    def __init__(self, ctx: S3Context, key: str, *, version_id: str | None, part_size: int) -> None:
        self.ctx = ctx
        self.key = key
        self.requested_version = version_id
        self.part_size = part_size
        self.version: ObjectVersion | None = None
        self.first_checksum: Checksum | None = None
        # A whole-object answer to a GET with ChecksumMode settles the checksum, even as "none".
        self._checksum_settled = False
        self.first_last = -1
        self.learned = anyio.Event()

    @property
    def size(self) -> int | None:
        return self.version.size if self.version is not None else None

    def _pins(self) -> dict[str, Any]:
        pins: dict[str, Any] = {}
        version_id = self.requested_version or (self.version.version_id if self.version else None)
        if version_id:
            pins["VersionId"] = version_id
        if self.version is not None:
            pins["IfMatch"] = self.version.quoted_etag
        return pins

    async def fetch(
        self,
        first: int,
        last: int | None,
        sink: Sink,
        *,
        flush_bytes: int = 0,
        cap: int | None = None,
        size_hint: int | None = None,
    ) -> int:
        """Deliver bytes ``first..last`` (inclusive) to ``sink``; return how many were delivered.

        ``last=None`` is the first request: it asks for one part from ``first`` (no further than
        ``cap``; the whole object when the object is empty) and learns the version; the range actually
        fetched, up to ``first_last``, ends at the object's end or the part's, whichever comes first.
        With ``first=0`` and a ``size_hint`` (a listing's size) that fits one part, the first request
        asks for the whole object instead: S3 then reports its full-object checksum, which it leaves out
        of ranged answers, and no HEAD is needed to learn it. Chunks are handed to ``sink`` once at least
        ``flush_bytes`` are gathered; a retry resumes after the last byte handed over.
        """
        whole = first == 0 and size_hint is not None and size_hint <= self.part_size
        cursor = _Cursor()
        # The range's last byte once known (None until the first response of a learning request).
        end: list[int | None] = [last]

        async def attempt() -> None:
            start = first + cursor.delivered
            stop = end[0]
            learning = self.version is None
            if stop is not None and start > stop:
                return
            asked_end = stop if stop is not None else first + self.part_size - 1
            if stop is None and cap is not None:
                asked_end = min(asked_end, cap)
            try:
                if whole and learning and start == 0:
                    response, read, close = await self._get(None, learning)
                    self._checksum_settled = True
                else:
                    response, read, close = await self._get(f"bytes={start}-{asked_end}", learning)
            except ClientError as exc:
                # An empty object has no range to give: read it whole instead.
                if not (learning and first == 0 and error_code(exc) in RANGE_REFUSED):
                    raise
                response, read, close = await self._get(None, learning)
            try:
                got_last = self._check(response, start, learning)
                if learning:
                    end[0] = self.first_last = got_last
                    self.learned.set()
                elif got_last != stop:
                    raise IntegrityError(
                        f"s3://{self.ctx.bucket}/{self.key}: asked for bytes {start}-{stop}, got up to {got_last}",
                        bucket=self.ctx.bucket,
                        key=self.key,
                    )
                await _pump(read, cursor, first, got_last - first + 1, sink, flush_bytes)
            finally:
                close()

        payload = (last - first + 1) if last is not None else self.part_size
        try:
            await self.ctx.call("GetObject", attempt, key=self.key, payload_bytes=payload)
        finally:
            # Whoever waits for the first response must wake up even when it failed.
            if last is None:
                self.learned.set()
        return cursor.delivered

    async def _get(self, byte_range: str | None, learning: bool) -> tuple[dict[str, Any], _Read, Callable[[], None]]:
        """One GetObject of ``byte_range`` (None: the whole object), pinned: its headers as botocore names
        them, a read of its body as it arrives, and its close. Signed and sent by the transport where it
        can (botocore's per-request pipeline costs more CPU than a large part's bytes), else by botocore."""
        pins = self._pins()
        transport = self.ctx.transport
        if transport.direct:
            headers = {"Range": byte_range} if byte_range is not None else {}
            if "IfMatch" in pins:
                headers["If-Match"] = pins["IfMatch"]
            if learning:
                headers["x-amz-checksum-mode"] = "ENABLED"
            query = {"versionId": pins["VersionId"]} if "VersionId" in pins else {}
            answer = await transport.open_get(self.key, headers, query)
            if answer is not None:
                length = answer.headers.get("content-length")
                return _fields(answer.headers, int(length) if length is not None else 0), answer.read, answer.close
        params: dict[str, Any] = {"Bucket": self.ctx.bucket, "Key": self.key, **pins}
        if learning:
            params["ChecksumMode"] = "ENABLED"
        if byte_range is not None:
            params["Range"] = byte_range
        response = await self.ctx.client.get_object(**params)
        return response, body_reader(response["Body"]), response["Body"].close

    async def fetch_small(self) -> bytes | None:
        """The whole object, held in memory, on the direct path; it learns the version and the checksum.

        None when that path cannot give it: the object is over ``DIRECT_MAX`` (it grew since it was
        listed), or the bucket answered from elsewhere. The ranged path is then the one to take.
        """

        async def attempt() -> bytes | None:
            answer = await self._get_small()
            if answer is None:
                return None
            response, body = answer
            self._check(response, 0, learning=True)
            return body

        return await self.ctx.call("GetObject", attempt, key=self.key, payload_bytes=DIRECT_MAX)

    async def _get_small(self) -> tuple[dict[str, Any], bytes] | None:
        """The whole object on the direct path, its headers as botocore would parse them; None: ask botocore."""
        answer = await self.ctx.transport.get_small(self.key, {"x-amz-checksum-mode": "ENABLED"})
        if answer is None:
            return None  # it grew past DIRECT_MAX since it was listed, or the bucket redirected
        return _fields(answer.headers, len(answer.body)), answer.body

    def _check(self, response: dict[str, Any], start: int, learning: bool) -> int:
        """The last byte the response carries from ``start``; learns the version, or checks it is the pinned one."""
        etag = strip_etag(response.get("ETag")) or ""
        length = int(response.get("ContentLength", 0))
        content_range = response.get("ContentRange")
        if content_range:
            match = CONTENT_RANGE.fullmatch(content_range.strip())
            if match is None:
                raise IntegrityError(
                    f"s3://{self.ctx.bucket}/{self.key}: unreadable Content-Range {content_range!r}",
                    bucket=self.ctx.bucket,
                    key=self.key,
                )
            got_first, got_last = int(match[1]), int(match[2])
            total = int(match[3]) if match[3] != "*" else None
        else:
            # The whole object (an empty one, or a server that ignores Range).
            got_first, got_last, total = 0, length - 1, length
        if got_first != start:
            raise IntegrityError(
                f"s3://{self.ctx.bucket}/{self.key}: asked for bytes from {start}, got {got_first}",
                bucket=self.ctx.bucket,
                key=self.key,
            )
        if learning:
            if total is None:
                raise IntegrityError(
                    f"s3://{self.ctx.bucket}/{self.key}: the server did not tell the object's size",
                    bucket=self.ctx.bucket,
                    key=self.key,
                )
            version_id = response.get("VersionId")
            self.version = ObjectVersion(
                size=total, etag=etag, version_id=version_id if version_id and version_id != "null" else None
            )
            if got_first == 0 and got_last == total - 1:
                self.first_checksum = full_object_checksum(response)
            return got_last
        assert self.version is not None
        if etag != self.version.etag or (total is not None and total != self.version.size):
            # A second line of defence for servers that ignore If-Match.
            raise ObjectChanged(
                f"s3://{self.ctx.bucket}/{self.key} changed during the read (ETag {self.version.etag} became {etag})",
                bucket=self.ctx.bucket,
                key=self.key,
            )
        return got_last

    async def checksum(self) -> Checksum | None:
        """The pinned version's full-object checksum from a HEAD, or ``None`` when it has none."""
        if self.first_checksum is not None or self._checksum_settled:
            return self.first_checksum
        response = await self.ctx.request("HeadObject", key=self.key, ChecksumMode="ENABLED", **self._pins())
        return full_object_checksum(response)


def _fields(headers: dict[str, str], length: int) -> dict[str, Any]:
    """A GetObject answer's headers (names in lower case) under the names botocore parses them to."""
    response: dict[str, Any] = {
        "ETag": headers.get("etag"),
        "ContentLength": length,
        "ContentRange": headers.get("content-range"),
        "VersionId": headers.get("x-amz-version-id"),
        "ChecksumType": headers.get("x-amz-checksum-type"),
    }
    for field in CHECKSUM_FIELDS:
        response[field] = headers.get(f"x-amz-checksum-{field.removeprefix('Checksum').lower()}")
    return response


class _Cursor:
    """How many bytes of a range have been handed to its sink, across attempts."""

    __slots__ = ("delivered",)

    def __init__(self) -> None:
        self.delivered = 0


async def _pump(read: _Read, cursor: _Cursor, first: int, length: int, sink: Sink, flush: int) -> None:
    """Stream the body into ``sink`` until ``length`` bytes of the range are delivered; short bodies raise.

    Bytes are counted as delivered only once the sink has them, so a retry resumes exactly after them.
    """
    pending: list[bytes] = []
    pending_bytes = 0
    while cursor.delivered + pending_bytes < length:
        chunk = await read()
        if not chunk:
            break
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= flush or len(pending) >= _MAX_CHUNKS:
            await sink(first + cursor.delivered, pending)
            cursor.delivered += pending_bytes
            pending, pending_bytes = [], 0
    if pending:
        await sink(first + cursor.delivered, pending)
        cursor.delivered += pending_bytes
    if cursor.delivered > length:
        raise IntegrityError(f"the response body is longer than announced ({cursor.delivered} > {length} bytes)")
    if cursor.delivered < length:
        raise ConnectionResetError(f"body cut short: {cursor.delivered} of {length} bytes")
