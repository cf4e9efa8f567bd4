"""Every kind of upload source, read as a sequence of parts.

A path becomes file ranges, read only when hashed and sent. Anything else is handed out as one buffer
per part, copied at most once: slices of a bytes-like source and read-only chunks of a stream at least
a part long are passed on as memoryviews without a copy, file objects are read straight into the part's
buffer, and only chunks that straddle a part boundary are copied. Disk reads and synchronous iterators
run in a worker thread, so the event loop never waits on them.
"""

from __future__ import annotations

import inspect
import mmap
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeAlias

import anyio
import anyio.to_thread

from .._exceptions import StorageError

__all__ = ["AsyncReadable", "Buffer", "FileRange", "Part", "PartReader", "UploadSource", "open_source"]

Buffer: TypeAlias = bytes | bytearray | memoryview


class AsyncReadable(Protocol):
    """An async binary file: anything with ``async read(n)`` (aiofiles, anyio's files, ...)."""

    async def read(self, n: int, /) -> bytes: ...


UploadSource: TypeAlias = (
    str | os.PathLike[str] | Buffer | BinaryIO | AsyncReadable | Iterable[Buffer] | AsyncIterable[Buffer]
)


class PartReader(Protocol):
    """Reads a source part by part; ``size`` is ``None`` while the length is unknown."""

    size: int | None

    async def read(self, n: int) -> Part:
        """The next ``n`` bytes, fewer only at the end of the source, empty once it is exhausted."""
        ...

    async def aclose(self) -> None: ...


EMPTY = memoryview(b"")


class BufferReader:
    """A bytes-like source, cut into memoryview slices without copying."""

    def __init__(self, data: Buffer) -> None:
        self._view = memoryview(data).cast("B")
        self.size: int | None = len(self._view)
        self._offset = 0

    async def read(self, n: int) -> memoryview:
        part = self._view[self._offset : self._offset + n]
        self._offset += len(part)
        return part

    async def aclose(self) -> None:
        self._view.release()


# Part buffers from this size up are anonymous memory maps rather than malloc'd bytearrays.
MAP_MIN = 1024 * 1024


def allocate(n: int) -> memoryview:
    """A writable ``n``-byte buffer. Large ones are mapped: unmapped the moment they are freed, they
    never linger in malloc's per-thread arenas, which would otherwise keep them resident."""
    if n < MAP_MIN:
        return memoryview(bytearray(n))
    return memoryview(mmap.mmap(-1, n))


def _read_into(read_into: Callable[[memoryview], int | None], n: int) -> memoryview:
    """Fill a new ``n``-byte buffer by ``readinto`` calls until it is full or the file ends."""
    view = allocate(n)
    filled = 0
    while filled < n:
        got = read_into(view[filled:])
        if not got:
            break
        filled += got
    return view[:filled]


def _read_exactly(read: Callable[[int], bytes], n: int) -> memoryview:
    """``n`` bytes from a ``read(n)`` that may return less, copying only when it does."""
    first = read(n)
    if len(first) == n or not first:
        return memoryview(first)
    buffer = bytearray(first)
    while len(buffer) < n:
        chunk = read(n - len(buffer))
        if not chunk:
            break
        buffer += chunk
    return memoryview(buffer)


# File ranges are read, hashed and sent in slices of this size.
RANGE_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileRange:
    """A part of a file we opened, read in slices when hashed, never held whole.

    It is sent from the file as well: with ``sendfile`` over plain HTTP, read again in slices over TLS
    (``_transport/payload.py``). Holding every part in flight in memory instead would cost ``concurrency *
    part_size``. A file changed between hashing and sending fails its checksum at S3.
    """

    file: BinaryIO
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length

    def read_slice(self, start: int) -> bytes:
        """The ``RANGE_CHUNK`` (or fewer, at the end) bytes at ``start`` within the range."""
        want = min(RANGE_CHUNK, self.length - start)
        data = os.pread(self.file.fileno(), want, self.offset + start)
        if len(data) != want:
            raise StorageError(f"the source file shrank while it was being uploaded ({len(data)} of {want} bytes)")
        return data

    def slices(self) -> Iterator[bytes]:
        for start in range(0, self.length, RANGE_CHUNK):
            yield self.read_slice(start)


Part: TypeAlias = memoryview | FileRange


class FileReader:
    """A sync binary file, read in a worker thread straight into each part's buffer; or a path we
    opened, handed out as file ranges.

    When the size is known (a path, or a seekable file) exactly that many bytes are read: a file that
    shrinks meanwhile raises ``StorageError`` rather than uploading a shorter object than announced.
    """

    def __init__(self, file: Any, *, owned: bool) -> None:
        self._file = file
        self._owned = owned
        self.size: int | None = self._remaining(file)
        self._left = self.size
        # A file we opened ourselves, of known size, is handed out as ranges rather than buffers.
        self._offset: int | None = file.tell() if owned and self.size is not None else None
        read_into = getattr(file, "readinto", None)
        self._read: Callable[[int], memoryview] = (
            (lambda n: _read_into(read_into, n)) if read_into is not None else (lambda n: _read_exactly(file.read, n))
        )

    @staticmethod
    def _remaining(file: Any) -> int | None:
        try:
            if not file.seekable():
                return None
            position: int = file.tell()
            end: int = file.seek(0, os.SEEK_END)
            file.seek(position)
        except (AttributeError, OSError, ValueError):
            return None
        return max(0, end - position)

    async def read(self, n: int) -> Part:
        if self._left is not None:
            n = min(n, self._left)
            if n == 0:
                return EMPTY
        if self._offset is not None and self._left is not None:
            part: Part = FileRange(self._file, self._offset, n)
            self._offset += n
            self._left -= n
            return part
        part = await anyio.to_thread.run_sync(self._read, n)
        if self._left is not None:
            if len(part) < n:
                raise StorageError(f"the source file ended {self._left - len(part)} bytes short of its size")
            self._left -= len(part)
        return part

    async def aclose(self) -> None:
        if self._owned:
            await anyio.to_thread.run_sync(self._file.close)


class AsyncFileReader:
    """Anything with ``async read(n)``; reads that come back short are joined."""

    size: int | None = None

    def __init__(self, file: Any) -> None:
        self._file = file

    async def read(self, n: int) -> memoryview:
        first = await self._file.read(n)
        if len(first) == n or not first:
            return memoryview(first).cast("B")
        buffer = bytearray(first)
        while len(buffer) < n:
            chunk = await self._file.read(n - len(buffer))
            if not chunk:
                break
            buffer += chunk
        return memoryview(buffer)

    async def aclose(self) -> None:
        pass


class _Assembler:
    """Joins chunks of any size into parts: read-only chunks are sliced, others copied once.

    ``fill`` is a generator that yields whenever it needs the next chunk (sent back in, ``None`` at
    the end), so the same logic serves sync iterables (in a thread) and async ones (on the loop).
    """

    def __init__(self) -> None:
        self._pending = EMPTY

    def fill(self, n: int) -> Generator[None, Buffer | None, memoryview]:
        buffer: memoryview | None = None
        filled = 0
        while filled < n:
            if not self._pending:
                chunk = yield
                if chunk is None:
                    break
                self._pending = memoryview(chunk).cast("B")
                continue
            pending = self._pending
            if buffer is None and len(pending) >= n and pending.readonly:
                # Immutable and large enough: the part is a slice of the chunk itself. Mutable chunks
                # are always copied, since the producer may reuse them for the next chunk.
                self._pending = pending[n:]
                return pending[:n]
            if buffer is None:
                buffer = allocate(n)
            take = min(n - filled, len(pending))
            buffer[filled : filled + take] = pending[:take]
            filled += take
            self._pending = pending[take:]
        if buffer is None:
            return EMPTY
        return buffer[:filled]


class IterableReader:
    """An ``Iterable[bytes]``; each part is gathered in a worker thread, so slow producers never block."""

    size: int | None = None

    def __init__(self, chunks: Iterable[Buffer]) -> None:
        self._chunks: Iterator[Buffer] = iter(chunks)
        self._assembler = _Assembler()

    def _fill(self, n: int) -> memoryview:
        filling = self._assembler.fill(n)
        try:
            next(filling)
            while True:
                filling.send(next(self._chunks, None))
        except StopIteration as done:
            part: memoryview = done.value
            return part

    async def read(self, n: int) -> memoryview:
        return await anyio.to_thread.run_sync(self._fill, n)

    async def aclose(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            await anyio.to_thread.run_sync(close)


class AsyncIterableReader:
    """An ``AsyncIterable[bytes]``; chunks are joined into parts as they arrive."""

    size: int | None = None

    def __init__(self, chunks: AsyncIterable[Buffer]) -> None:
        self._chunks: AsyncIterator[Buffer] = aiter(chunks)
        self._assembler = _Assembler()

    async def read(self, n: int) -> memoryview:
        filling = self._assembler.fill(n)
        try:
            next(filling)
            while True:
                filling.send(await anext(self._chunks, None))
        except StopIteration as done:
            part: memoryview = done.value
            return part

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()


async def open_source(source: UploadSource) -> PartReader:
    """A reader for any supported source; raises ``TypeError`` for anything else."""
    if isinstance(source, bytes | bytearray | memoryview):
        return BufferReader(source)
    if isinstance(source, str | os.PathLike):
        return await anyio.to_thread.run_sync(_open_path, source)
    read = getattr(source, "read", None)
    if read is not None:
        if inspect.iscoroutinefunction(read):
            return AsyncFileReader(source)
        return await anyio.to_thread.run_sync(lambda: FileReader(source, owned=False))
    if isinstance(source, AsyncIterable):
        return AsyncIterableReader(source)
    if isinstance(source, Iterable):
        return IterableReader(source)
    raise TypeError(
        "source must be a path, bytes-like, a binary file (sync or async read), "
        f"or an iterable or async iterable of bytes; got {type(source).__name__}"
    )


def _open_path(path: str | os.PathLike[str]) -> FileReader:
    file = open(path, "rb", buffering=0)  # noqa: SIM115 - the reader closes it
    try:
        return FileReader(file, owned=True)
    except BaseException:
        file.close()
        raise
