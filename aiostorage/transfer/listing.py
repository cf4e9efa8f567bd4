"""Concurrent listing: the ``ObjectListing`` a consumer iterates, and how a listing starts.

A listing starts with two pages without a delimiter, as a sequential listing would: they are the whole
of most folders. The rest fans out (with ``concurrency=1``, it goes on page by page without a
delimiter) over spans of the key space (``keyspace``), each walked page by page (``walk``) and
scheduled unordered or ordered (``schedulers``). How many requests run at once is found as the
listing goes (``pace.Pace``): from two, raised 4-fold up to ``concurrency`` while the server answers as
fast. Every page request first waits for room in the read-ahead (``readahead.ReadAhead``), the
listing's bound on memory.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._context import S3Context
from .._models import ObjectInfo
from .._tasks import first_error
from .._transport import ListPage
from .keyspace import DELIMITER, Span, group_size
from .pace import Pace
from .readahead import ORDERED_READ_AHEAD, ReadAhead
from .schedulers import OrderedScheduler, UnorderedScheduler
from .walk import fetch_page

__all__ = ["DELIMITER", "ObjectListing", "Span", "list_level", "list_objects"]

Producer = Callable[[MemoryObjectSendStream[list[ObjectInfo]], ReadAhead], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


async def _produce(
    producer: Producer, send: MemoryObjectSendStream[list[ObjectInfo] | _Failed], budget: ReadAhead
) -> None:
    """Run the listing, handing its failure to the consumer as the stream's last item."""
    with send:
        try:
            await producer(send, budget)
        except anyio.BrokenResourceError:
            return  # the consumer has gone
        except Exception as exc:
            with suppress(anyio.BrokenResourceError):
                await send.send(_Failed(exc))


class ObjectListing:
    """The objects under a prefix, as an async iterator of ``ObjectInfo``.

    ``async for info in listing`` works as is: the listing then runs in a background task, cancelled
    when the listing is closed (``aclose()``) or dropped (a ``break`` drops it). ``async with listing:``
    runs it in a task group of the caller's instead, so leaving the block (by ``break``, an error or
    cancellation) cancels every request of the listing before the block is left.

    Made by ``AsyncS3Store.list``, not built directly; iterate it once. Every object under the prefix is
    yielded exactly once, in key order when the listing was made with ``ordered=True``. Raises, while
    iterating: ``BucketNotFound``, ``AccessDenied``, ``TransferError`` (a page kept failing after every
    retry) and the other ``StorageError`` subclasses a request can map to.
    """

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._budget = ReadAhead()
        self._receive: MemoryObjectReceiveStream[list[ObjectInfo] | _Failed] | None = None
        self._batch: list[ObjectInfo] = []
        self._index = 0
        self._group: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    def _stream(self) -> MemoryObjectSendStream[list[ObjectInfo] | _Failed]:
        if self._receive is not None:
            raise RuntimeError("this listing has already started")
        # Unbounded in items: what it holds counts in the read-ahead, which bounds it.
        send, self._receive = anyio.create_memory_object_stream[list[ObjectInfo] | _Failed](math.inf)
        return send

    async def __aenter__(self) -> Self:
        send = self._stream()
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(_produce, self._producer, send, self._budget)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        self._close()
        if group is None:
            return
        group.cancel_scope.cancel()
        # The block's own exception (if any) propagates untouched once the listing's tasks are gone; it
        # is not handed to the group, which would wrap it and lose its __cause__.
        failure: BaseException | None = None
        try:
            await group.__aexit__(None, None, None)
        except BaseExceptionGroup as errors:
            failure = first_error(errors)
        if failure is not None and exc is None:
            raise failure

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ObjectInfo:
        if self._index < len(self._batch):
            info = self._batch[self._index]
            self._index += 1
            return info
        if self._receive is None:
            # Not inside ``async with``: the producer's only reference to us is the stream, so dropping
            # the listing lets ``__del__`` cancel it.
            self._task = asyncio.get_running_loop().create_task(_produce(self._producer, self._stream(), self._budget))
        assert self._receive is not None
        starved = self._receive.statistics().current_buffer_used == 0
        if starved:
            self._budget.starve(True)
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._close()
            raise StopAsyncIteration from None
        finally:
            if starved:
                self._budget.starve(False)
        if isinstance(item, _Failed):
            self._close()
            raise item.error
        self._budget.take(len(item))
        self._batch, self._index = item, 1
        return item[0]

    @property
    def read_ahead(self) -> int:
        """Keys listed and not yet yielded: what the listing holds in memory."""
        return self._budget.listed - self._budget.taken + len(self._batch) - self._index

    async def aclose(self) -> None:
        """Stop the listing: close the stream and cancel what is still running."""
        task = self._task
        self._close()
        if task is not None:
            with suppress(asyncio.CancelledError):
                await task

    def _close(self) -> None:
        self._batch, self._index = [], 0
        if self._receive is not None:
            self._receive.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def __del__(self) -> None:
        with suppress(RuntimeError):  # the loop may be closed already
            self._close()


async def _timed_page(ctx: S3Context, prefix: str, token: str | None) -> tuple[ListPage, float]:
    started = anyio.current_time()
    page = await fetch_page(ctx, prefix, delimiter=None, token=token)
    return page, anyio.current_time() - started


async def _list(
    ctx: S3Context,
    prefix: str,
    concurrency: int,
    ordered: bool,
    out: MemoryObjectSendStream[list[ObjectInfo]],
    budget: ReadAhead,
) -> None:
    # Two pages without a delimiter first, as a sequential listing would: one is the whole of most
    # folders, two the whole of many more, where fanning out would take a request per common prefix.
    # Their timing is what the fan-out's pace is judged against.
    keys: list[str] = []
    token: str | None = None
    alone: list[tuple[int, float]] = []
    for _ in range(2):
        page, seconds = await _timed_page(ctx, prefix, token)
        alone.append((len(page.objects), seconds))
        if page.objects:
            keys += [info.key for info in page.objects]
            budget.hand_on(len(page.objects))
            await out.send(page.objects)
        token = page.next_token
        if token is None:
            return
    if concurrency == 1:
        # Nothing to overlap: the fewest requests win, i.e. full pages without a delimiter, in key order.
        while token is not None:
            await budget.ask()
            try:
                page = await fetch_page(ctx, prefix, delimiter=None, token=token)
            finally:
                budget.arrived()
            if page.objects:
                budget.hand_on(len(page.objects))
                await out.send(page.objects)
            token = page.next_token
        return
    root = Span(prefix, after=keys[-1], group=group_size(prefix, keys))
    budget.pace = Pace(concurrency, alone)
    if ordered:
        budget.per_request = ORDERED_READ_AHEAD
    scheduler = OrderedScheduler if ordered else UnorderedScheduler
    await scheduler(ctx, budget.pace, budget, out).run(root)


def list_objects(ctx: S3Context, prefix: str, *, concurrency: int, ordered: bool) -> ObjectListing:
    """Every object under ``prefix`` exactly once; in key order with ``ordered``."""
    return ObjectListing(partial(_list, ctx, prefix, concurrency, ordered))


async def list_level(ctx: S3Context, prefix: str, delimiter: str) -> tuple[list[str], list[ObjectInfo]]:
    """One level below ``prefix``: its common prefixes and the objects directly in it, each sorted."""
    prefixes: list[str] = []
    objects: list[ObjectInfo] = []
    token: str | None = None
    while True:
        page = await fetch_page(ctx, prefix, delimiter=delimiter, token=token)
        prefixes.extend(page.prefixes)
        objects.extend(page.objects)
        token = page.next_token
        if token is None:
            return sorted(prefixes), sorted(objects, key=lambda info: info.key)
