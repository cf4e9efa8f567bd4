"""Downloading an object to a file: parallel pinned ranges, a temporary file, verified, then renamed.

The first ranged GET learns the object (size from ``Content-Range``, ETag, version) and already carries
the first part: one request for anything up to a part, and no HEAD round trip before the data starts
flowing. The other parts start as soon as its headers are in. Parts are written with positioned writes
by one worker thread per download, fed through a queue, so they land in any order and the event loop
never blocks on the disk. Only a complete, verified file is renamed over ``dest``; on any failure or
cancellation the temporary file is removed and ``dest`` is untouched.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.abc import TaskGroup

from .._context import S3Context
from .._exceptions import IntegrityError, StorageError
from .._models import DownloadResult, TransferProgress
from .._settings import MiB
from .._tasks import task_group
from .._transport import DIRECT_MAX
from .checksum import bytes_checksum, file_checksum, supported
from .ranged import Checksum, ObjectVersion, RangeReader, Sink

__all__ = ["CLEANUP_DEADLINE", "WRITE_SIZE", "download_object"]

# Received chunks are gathered up to this many bytes per positioned write: few thread hand-offs, and
# memory per part in flight stays small whatever the part size (two batches: one being written while
# the next is read). Much larger batches stall each connection while the disk takes them.
WRITE_SIZE = 1 * MiB
# Seconds the shielded removal of the temporary file may take after a failure or cancellation.
CLEANUP_DEADLINE = 10.0
TEMP_SUFFIX = ".aiostorage-part"
# With fsync on, written data is flushed in the background every this many bytes, overlapping the disk
# with the network: the fsync before the rename then has little left to do, instead of the whole file.
SYNC_EVERY = 32 * MiB

# fdatasync skips the metadata flush an fsync does; the final fsync covers both.
_datasync = getattr(os, "fdatasync", os.fsync)


def _write(fd: int, offset: int, chunks: list[bytes]) -> None:
    written = os.pwritev(fd, chunks, offset)
    total = sum(map(len, chunks))
    if written < total:
        # A short positioned write (rare: signals, quotas) is finished with plain writes.
        rest = memoryview(b"".join(chunks))[written:]
        while rest:
            count = os.pwrite(fd, rest, offset + written)
            written += count
            rest = rest[count:]


class _Writer:
    """Writes the batches it is handed to the temporary file, in one worker thread, in order.

    Handing over a batch is a queue put: no task, no thread hop and no wake-up of the event loop per
    batch. The loop waits only when more than ``limit`` bytes are handed over and not yet written, so
    memory stays bounded when the disk is slower than the network.
    """

    def __init__(self, temp: _TempFile, limit: int) -> None:
        self._temp = temp
        self._limit = limit
        self._queue: queue.SimpleQueue[tuple[int, list[bytes]] | None] = queue.SimpleQueue()
        # Each counter has one writer (the loop, the thread): no lock; their difference is what is queued.
        self.queued = 0
        self.written = 0
        self._room: anyio.Event | None = None
        self._abort = False

    async def put(self, offset: int, chunks: list[bytes]) -> int:
        """Hand ``chunks`` over for writing at ``offset``, first waiting while too much is waiting already;
        the bytes handed over.

        Nothing is handed over when the wait is cancelled: a retried range then fetches those bytes again.
        """
        while self.queued - self.written > self._limit:
            # One event for every range waiting at the time; a new one once it has been set.
            room = self._room
            if room is None or room.is_set():
                room = self._room = anyio.Event()
            # Checked again after publishing the event: the thread may have caught up in between.
            if self.queued - self.written <= self._limit:
                break
            await room.wait()
        self._queue.put((offset, chunks))
        size = sum(map(len, chunks))
        self.queued += size
        return size

    def close(self, abort: bool) -> None:
        """No more batches: ``run`` returns once the queue is written (or, with ``abort``, dropped)."""
        self._abort = abort
        self._queue.put(None)

    def run(self) -> None:
        """Write batches until ``close`` (blocking: the worker thread's whole job)."""
        while (item := self._queue.get()) is not None:
            if self._abort:
                continue
            offset, chunks = item
            self._temp.write(offset, chunks)
            self.written += sum(map(len, chunks))
            room = self._room
            if room is not None and not room.is_set() and self.queued - self.written <= self._limit:
                anyio.from_thread.run_sync(room.set)


class _TempFile:
    """The file beside ``dest`` that receives the parts; created on first use, never left behind."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        # The name must fit the file system's 255-byte limit even when dest's own name nearly fills it.
        stem = os.fsencode(dest.name)[:200].decode(errors="ignore")
        self.path = dest.parent / f".{stem}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"
        self.fd: int | None = None
        # Ranges are written from several worker threads: the first one creates the file.
        self._creating = threading.Lock()

    def open(self) -> int:
        """The file's descriptor, creating the file on first use (blocking)."""
        with self._creating:
            if self.fd is None:
                self.dest.parent.mkdir(parents=True, exist_ok=True)
                # 0o666 and the umask, like any new file (mkstemp's 0o600 would surprise whoever reads it next).
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                self.fd = os.open(self.path, flags, 0o666)
            return self.fd

    def write(self, offset: int, chunks: list[bytes]) -> None:
        """Write ``chunks`` at ``offset``, opening the file on first use (blocking)."""
        _write(self.open(), offset, chunks)

    def datasync(self) -> None:
        """Flush what is written so far (blocking); nothing when nothing was written yet."""
        if self.fd is not None:
            _datasync(self.fd)

    def commit(self, fsync: bool) -> None:
        """Flush, close and rename over ``dest`` (blocking)."""
        assert self.fd is not None
        fd, self.fd = self.fd, None
        try:
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.path, self.dest)
        if fsync and hasattr(os, "O_DIRECTORY"):
            # Make the rename itself durable.
            directory = os.open(self.dest.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def discard(self) -> None:
        """Close and remove the temporary file (blocking); ``dest`` is not touched."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        # Never created: missing, or its folder could not be made (a file stands where it should be).
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.path.unlink()


async def download_object(
    ctx: S3Context,
    key: str,
    dest: Path,
    *,
    version_id: str | None,
    part_size: int,
    concurrency: int,
    progress: Callable[[TransferProgress], None] | None,
    fsync: bool = True,
    size_hint: int | None = None,
) -> DownloadResult:
    """Download ``key`` into ``dest`` atomically; see the module's docstring.

    ``size_hint`` is the size a listing reported: an object that fits one part is then asked for whole,
    which brings its checksum along (one request, where a ranged GET needs a HEAD after it). Up to
    ``DIRECT_MAX`` bytes it is fetched on the direct path, checked in memory and written in one go.
    """
    if size_hint is not None and size_hint <= DIRECT_MAX and ctx.transport.direct and not version_id:
        small = RangeReader(ctx, key, version_id=None, part_size=part_size)
        body = await small.fetch_small()
        if body is not None:
            return await _save_small(small, body, dest, fsync, progress)
        size_hint = None  # it grew since it was listed: ranged, in parallel, like any large object
    reader = RangeReader(ctx, key, version_id=version_id, part_size=part_size)
    temp = _TempFile(dest)
    # As much waiting to be written as when each range had one batch being written while it read the next.
    writer = _Writer(temp, concurrency * WRITE_SIZE)
    checksums: list[Checksum | None] = []

    unsynced = 0
    syncing = False

    def sink_in(group: TaskGroup) -> Sink:
        async def sink(offset: int, chunks: list[bytes]) -> None:
            nonlocal unsynced, syncing
            unsynced += await writer.put(offset, chunks)
            if fsync and unsynced >= SYNC_EVERY and not syncing:
                syncing, unsynced = True, 0
                group.start_soon(sync_early)
            if progress is not None:
                progress(TransferProgress(key=key, transferred=writer.queued, total=reader.size))

        return sink

    async def sync_early() -> None:
        """Start the disk on what is written so far, so the final fsync only waits for the tail."""
        nonlocal syncing
        try:
            await anyio.to_thread.run_sync(temp.datasync)
        finally:
            syncing = False

    async def learn_checksum() -> None:
        checksums.append(await reader.checksum())

    async def write_all() -> None:
        # Its own limiter: a writer holds its thread for the whole download, and must never wait for
        # one behind other downloads' writers. Local file errors (permissions, a full disk) surface as
        # the OSError they are, never retried.
        await anyio.to_thread.run_sync(writer.run, limiter=anyio.CapacityLimiter(1))

    async with _landing(temp, ctx.bucket, key):
        limiter = anyio.Semaphore(concurrency, fast_acquire=True)
        # The writer's thread ends before the temporary file is closed, committed or removed.
        async with task_group() as outer:
            outer.start_soon(write_all)
            failed = True
            try:
                async with task_group() as group:
                    sink = sink_in(group)
                    group.start_soon(_fetch_first, limiter, reader, sink, size_hint)
                    await reader.learned.wait()
                    if reader.version is not None:
                        group.start_soon(learn_checksum)
                        size, start = reader.version.size, reader.first_last + 1
                        ranges = ((first, min(first + part_size, size) - 1) for first in range(start, size, part_size))
                        # One worker per range at most: a small object has none left, and needs no idle tasks.
                        for _ in range(min(concurrency, -(-(size - start) // part_size))):
                            group.start_soon(_fetch_ranges, limiter, reader, ranges, sink)
                failed = False
            finally:
                writer.close(abort=failed)
        version = reader.version
        assert version is not None  # else the first request failed and the group raised its error
        checksum = checksums[0] if checksums else None
        # One worker-thread hop for the whole ending: many small objects pay it once each.
        await anyio.to_thread.run_sync(_finish, temp, version, writer.written, checksum, fsync, ctx.bucket, key)
    return _result(ctx.bucket, key, dest, version)


@contextlib.asynccontextmanager
async def _landing(temp: _TempFile, bucket: str, key: str) -> AsyncIterator[None]:
    """Around everything that writes ``temp`` until it is committed: a failed destination (a full disk, a
    file where a folder should be, permissions) becomes ``StorageError``, and unless the block completes
    the temporary file is removed, even on cancellation."""
    committed = False
    try:
        yield
        committed = True
    except OSError as exc:
        raise StorageError(f"s3://{bucket}/{key} to {temp.dest}: {exc}", bucket=bucket, key=key) from exc
    finally:
        if not committed:
            with anyio.move_on_after(CLEANUP_DEADLINE, shield=True):
                await anyio.to_thread.run_sync(temp.discard)


def _result(bucket: str, key: str, dest: Path, version: ObjectVersion) -> DownloadResult:
    return DownloadResult(
        bucket=bucket, key=key, path=dest, etag=version.etag, size=version.size, version_id=version.version_id
    )


async def _save_small(
    reader: RangeReader,
    body: bytes,
    dest: Path,
    fsync: bool,
    progress: Callable[[TransferProgress], None] | None,
) -> DownloadResult:
    """Check a whole object held in memory, then write it beside ``dest`` and rename it there in one go."""
    version, bucket, key = reader.version, reader.ctx.bucket, reader.key
    assert version is not None
    checksum = reader.first_checksum
    if len(body) != version.size:
        message = f"s3://{bucket}/{key}: got {len(body)} bytes, expected {version.size}"
        raise IntegrityError(message, bucket=bucket, key=key)
    if checksum is not None and supported(checksum):
        _compare(checksum, bytes_checksum(body, checksum.algorithm), bucket, key)
    temp = _TempFile(dest)
    async with _landing(temp, bucket, key):
        await anyio.to_thread.run_sync(_write_whole, temp, body, fsync)
    if progress is not None:
        progress(TransferProgress(key=key, transferred=len(body), total=len(body)))
    return _result(bucket, key, dest, version)


def _write_whole(temp: _TempFile, body: bytes, fsync: bool) -> None:
    """Write all of ``body``, flush and rename over the destination (blocking)."""
    temp.write(0, [body])
    temp.commit(fsync)


async def _fetch_first(limiter: anyio.Semaphore, reader: RangeReader, sink: Sink, size_hint: int | None) -> None:
    async with limiter:
        await reader.fetch(0, None, sink, flush_bytes=WRITE_SIZE, size_hint=size_hint)


async def _fetch_ranges(
    limiter: anyio.Semaphore,
    reader: RangeReader,
    ranges: Iterator[tuple[int, int]],
    sink: Sink,
) -> None:
    """One worker: fetch the next range not yet taken until none is left."""
    for first, last in ranges:
        async with limiter:
            await reader.fetch(first, last, sink, flush_bytes=WRITE_SIZE)


def _finish(
    temp: _TempFile,
    version: ObjectVersion,
    transferred: int,
    checksum: Checksum | None,
    fsync: bool,
    bucket: str,
    key: str,
) -> None:
    """Verify the file, then flush and rename it over the destination (blocking)."""
    fd = temp.open()  # an empty object wrote nothing
    _verify(fd, version, transferred, checksum, bucket, key)
    temp.commit(fsync)


def _verify(
    fd: int, version: ObjectVersion, transferred: int, checksum: Checksum | None, bucket: str, key: str
) -> None:
    """Size, then the full-object checksum when the object has one we can compute (blocking)."""
    size = os.fstat(fd).st_size
    if transferred != version.size or size != version.size:
        raise IntegrityError(
            f"s3://{bucket}/{key}: got {transferred} bytes ({size} in the file), expected {version.size}",
            bucket=bucket,
            key=key,
        )
    if checksum is None or not supported(checksum):
        return
    _compare(checksum, file_checksum(fd, version.size, checksum.algorithm), bucket, key)


def _compare(checksum: Checksum, actual: str, bucket: str, key: str) -> None:
    """Raise ``IntegrityError`` unless ``actual`` is the checksum S3 reported."""
    if actual != checksum.value:
        raise IntegrityError(
            f"s3://{bucket}/{key}: {checksum.algorithm} of the downloaded bytes is {actual}, S3 has {checksum.value}",
            bucket=bucket,
            key=key,
        )
