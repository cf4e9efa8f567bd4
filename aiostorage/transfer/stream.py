"""Streaming an object's bytes in order from parallel pinned ranges, with bounded read-ahead."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup

from .._context import S3Context
from .._exceptions import StorageError
from .._tasks import task_group
from .ranged import RangeReader

__all__ = ["ObjectStream"]


class _Range:
    """One range's bytes as they arrive; ``done`` once complete or failed (``error``)."""

    __slots__ = ("chunks", "done", "error")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = anyio.Event()
        self.error: Exception | None = None

    async def sink(self, offset: int, chunks: list[bytes]) -> None:
        self.chunks.extend(chunks)


class ObjectStream:
    """An async iterator of an object's bytes, and an async context manager for read-ahead.

    Inside ``async with``, a task group keeps up to ``concurrency`` ranges in flight or buffered ahead
    of the consumer (memory about ``concurrency * part_size``); leaving the block cancels them and
    releases their connections, however the loop ended. Iterated without ``async with``, it fetches
    ``concurrency`` ranges in parallel whenever its buffer runs dry and keeps nothing in flight between
    chunks, so breaking out of the loop leaves no task or request behind. A failed range raises at the
    point in the stream where its bytes would have come, after every byte before it.

    Made by ``AsyncS3Store.stream``, not built directly. Raises, while iterating: ``ObjectNotFound`` (no
    such key or version), ``ObjectChanged`` (the object was replaced mid-stream: every range is pinned to
    the first answer's ETag), ``TransferError`` (a range kept failing after every retry), and the other
    ``StorageError`` subclasses a request can map to. Bytes are not checksum-verified: they reach the
    consumer before the last one arrives (``download`` verifies).
    """

    def __init__(
        self,
        ctx: S3Context,
        key: str,
        *,
        version_id: str | None,
        byte_range: tuple[int, int] | None,
        part_size: int,
        concurrency: int,
    ) -> None:
        self._reader = RangeReader(ctx, key, version_id=version_id, part_size=part_size)
        self._first = byte_range[0] if byte_range is not None else 0
        self._last: int | None = byte_range[1] if byte_range is not None else None
        self._part_size = part_size
        self._concurrency = concurrency
        self._started = False
        self._ranges: Iterator[tuple[int, int]] | None = None
        self._pending: deque[_Range] = deque()
        self._current: list[bytes] = []
        self._index = 0
        # Read-ahead (inside ``async with``) only.
        self._stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._slots = anyio.Semaphore(concurrency)
        self._holding_slot = False
        self._exhausted = False
        self._changed = anyio.Event()

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._started:
            raise RuntimeError("enter an ObjectStream once, before iterating it")
        stack = AsyncExitStack()
        group = await stack.enter_async_context(task_group())
        group.start_soon(self._read_ahead, group)
        self._stack, self._group = stack, group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel whatever is in flight and drop the buffered bytes."""
        stack, self._stack = self._stack, None
        self._pending.clear()
        self._current = []
        self._exhausted = True
        if stack is not None:
            assert self._group is not None
            # Every range task keeps its own error for the consumer, so only this cancellation ends them.
            self._group.cancel_scope.cancel()
            await stack.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._index < len(self._current):
                chunk = self._current[self._index]
                self._index += 1
                return chunk
            self._current, self._index = [], 0
            if self._holding_slot:
                self._holding_slot = False
                self._slots.release()
            if not self._pending:
                if self._exhausted:
                    raise StopAsyncIteration
                if self._stack is not None:
                    while not self._pending and not self._exhausted:
                        self._changed = anyio.Event()
                        await self._changed.wait()
                else:
                    await self._fetch_batch()
                if not self._pending:
                    raise StopAsyncIteration
            head = self._pending[0]
            await head.done.wait()
            self._pending.popleft()
            self._holding_slot = self._stack is not None
            if head.error is not None:
                self._pending.clear()
                self._exhausted = True
                raise head.error
            self._current = head.chunks

    async def _fetch_batch(self) -> None:
        """Without read-ahead: fetch the next ``concurrency`` ranges in parallel, within this call."""
        async with task_group() as group:
            for _ in range(self._concurrency):
                if not await self._start_next(group):
                    break

    async def _read_ahead(self, group: TaskGroup) -> None:
        """Keep starting ranges while fewer than ``concurrency`` are in flight or unconsumed."""
        while True:
            await self._slots.acquire()
            if not await self._start_next(group):
                self._slots.release()
                break
            self._changed.set()
        self._exhausted = True
        self._changed.set()

    async def _start_next(self, group: TaskGroup) -> bool:
        """Start fetching the next range, if any is left."""
        reader = self._reader
        if not self._started:
            self._started = True
            self._start(group, self._first, None)
            return True
        if self._ranges is None:
            await reader.learned.wait()
            if reader.version is None:
                return False  # the first range failed; its error is raised when the consumer reaches it
            end = reader.version.size - 1 if self._last is None else min(self._last, reader.version.size - 1)
            self._ranges = (
                (start, min(start + self._part_size, end + 1) - 1)
                for start in range(reader.first_last + 1, end + 1, self._part_size)
            )
        bounds = next(self._ranges, None)
        if bounds is None:
            return False
        self._start(group, *bounds)
        return True

    def _start(self, group: TaskGroup, first: int, last: int | None) -> None:
        item = _Range()
        self._pending.append(item)
        group.start_soon(self._fetch, item, first, last)

    async def _fetch(self, item: _Range, first: int, last: int | None) -> None:
        try:
            await self._reader.fetch(first, last, item.sink, cap=self._last)
        except Exception as exc:
            item.error = exc
        except BaseException:
            # Cancelled mid-range (e.g. a timeout around one ``__anext__``): its bytes are incomplete, so
            # the stream must fail there rather than go on without them.
            bucket, key = self._reader.ctx.bucket, self._reader.key
            item.error = StorageError(
                f"s3://{bucket}/{key}: reading was cancelled mid-range; the stream cannot continue",
                bucket=bucket,
                key=key,
            )
            raise
        finally:
            item.done.set()
