"""Concurrent listing: fan out over common prefixes and split long flat ranges, stream objects out.

A listing starts with two pages without a delimiter, as a sequential listing would: they are the whole
of most folders. The rest fans out (with ``concurrency=1``, it goes on page by page without a
delimiter). The work unit is a ``Span``: the keys under a prefix (listed with ``Delimiter="/"``),
optionally only those in ``(after, upto]``. Listing a span yields its objects and new spans: one per
common prefix, or one per group of common prefixes when the first pages showed folders much smaller
than a page (listed together without a delimiter), and, when a page comes back truncated, the rest of
the span cut into ranges (``keyspace.split_points``), the first of which continues with the page's
continuation token. Every key belongs to exactly one span, so every object is yielded exactly once.
How many requests run at once is found as the listing goes (``pace.Pace``): from two, raised 4-fold up
to ``concurrency`` while the server answers as fast.

Unordered (the default), as many workers as the pace allows take spans from a queue and send each page's
objects to the consumer's stream; once the server is found busy, a worker takes the queued spans of whole
folders under one parent together and lists them as one run of full pages (``walk_chain``). Ordered,
each span gets its own small stream of entries (objects and child spans, in key order) and the consumer
walks them depth first, draining a child span's stream where the child sits among its parent's keys;
children are started ahead of the consumer, up to twice the requests the pace allows, so the ordered
walk stays concurrent. Once the server is found busy, a child started with siblings of whole folders
still waiting takes them along as one run of full pages, each folder's keys sent to its own stream.
Only requests take a slot of the limiter, never a task waiting for its consumer, so the walk cannot
deadlock.

In both, every page request first waits for room in the read-ahead (``ReadAhead``): the keys listed and
not yet taken by the consumer stay under a few pages per request the pace lets run, however many folders
there are and however many of them a run of pages covers. Ordered, the span the consumer waits for is
read past that limit only while the consumer has nothing left to take, so the walk cannot deadlock on it
either.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Protocol, Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._context import S3Context
from .._models import ObjectInfo
from .._tasks import first_error, task_group
from .._transport import ListPage
from .keyspace import split_points
from .pace import Pace

__all__ = ["DELIMITER", "ObjectListing", "Span", "list_level", "list_objects"]

DELIMITER = "/"
# The most keys a page holds: S3's page size, which the pages are asked for with.
PAGE_KEYS = 1000
# Pages listed ahead of the consumer for each request the pace lets run, so that a consumer keeping up
# leaves no request slot idle. Ordered, two: a page that lands before the walk reaches its span waits
# there, and with one the ordered walk falls short of the requests the pace allows.
READ_AHEAD = 1
ORDERED_READ_AHEAD = 2
# Pages besides: a consumer that takes pages unevenly still finds some waiting.
SPARE_PAGES = 4
# Keys a group of small folders aims at: 80% of the most S3 puts in one page.
GROUP_KEYS = 800

Emit = Callable[[list["ObjectInfo | Span"]], Awaitable[None]]
Request = Callable[[], Awaitable[ListPage]]


async def fetch_page(
    ctx: S3Context, prefix: str, *, delimiter: str | None, start_after: str | None = None, token: str | None = None
) -> ListPage:
    """One page of keys under ``prefix`` (after ``start_after``, or from a continuation ``token``)."""

    async def attempt() -> ListPage:
        return await ctx.transport.list_page(prefix, delimiter=delimiter, start_after=start_after, token=token)

    return await ctx.call("ListObjectsV2", attempt)


class ReadAhead:
    """Keys listed and not yet taken by the consumer, kept under a limit every page request waits on.

    It is the listing's one bound on memory: the streams between the page readers and the consumer do
    not hold anything back themselves. The limit is ``per_request`` pages for each request the pace lets
    run, plus ``SPARE_PAGES``: it follows the pace, whatever the number of folders. A page counts as a
    full one while it is on its way, then as the keys handed on from it until the consumer takes them.

    Ordered, the consumer waits for one span (``head``), which may come after keys that fill the limit:
    while the consumer has nothing left to take (``starved``), that span's reader goes on regardless.
    What such a page holds is taken next, or left over from a span the consumer is inside until it is
    back there, so these pages come to a page or two per span it is inside, and stop once the consumer
    stops taking.
    """

    def __init__(self) -> None:
        self.pace: Pace | None = None
        self.per_request = READ_AHEAD
        self.listed = 0
        self.taken = 0
        # Pages asked for and not yet arrived, and requests waiting for room.
        self.asked = 0
        self.waiting = 0
        self.head: object | None = None
        self.starved = False
        self._changed: anyio.Event | None = None

    @property
    def limit(self) -> int:
        """The keys that may be listed ahead of the consumer, pages on their way counted as full."""
        level = self.pace.level if self.pace is not None else 1
        return (self.per_request * level + SPARE_PAGES) * PAGE_KEYS

    def room(self) -> bool:
        """Whether a page more fits."""
        return self.listed - self.taken + (self.asked + 1) * PAGE_KEYS <= self.limit

    async def ask(self, head: object | None = None) -> None:
        """Wait until a page more fits, or until the starved consumer waits for ``head`` (the span the
        page goes to); then count the page as on its way."""
        while not self.room() and not (self.starved and head is not None and head is self.head):
            self._changed = self._changed or anyio.Event()
            self.waiting += 1
            try:
                await self._changed.wait()
            finally:
                self.waiting -= 1
        self.asked += 1

    def arrived(self) -> None:
        """A page asked for is back (or failed): what counts now is the keys handed on from it."""
        self.asked -= 1
        self._wake()

    def hand_on(self, keys: int) -> None:
        """``keys`` are handed on towards the consumer. Called in the same step as their page's
        ``arrived``, with no await in between, so that no page is ever counted neither way."""
        self.listed += keys

    def take(self, keys: int) -> None:
        """The consumer took ``keys``."""
        self.taken += keys
        self._wake()

    def lead(self, head: object) -> None:
        """The ordered walk waits for ``head`` now."""
        self.head = head
        self._wake()

    def starve(self, starved: bool) -> None:
        """The consumer has taken everything handed on and waits for more (or no longer does)."""
        self.starved = starved
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class Reader(Protocol):
    """How a walk sends its page requests: ``Pace.run``, each page first waiting for room (``Gate``)."""

    async def run(self, request: Request) -> ListPage: ...


@dataclass(frozen=True, slots=True)
class Gate:
    """One reader's way to the pace: a page is asked for once it fits in the read-ahead."""

    pace: Pace
    budget: ReadAhead
    # The span the reader's next page goes to, ordered: the consumer may be waiting for it.
    head: Callable[[], object | None] = lambda: None

    async def run(self, request: Request) -> ListPage:
        await self.budget.ask(self.head())
        try:
            return await self.pace.run(request)
        finally:
            self.budget.arrived()


@dataclass(frozen=True, slots=True)
class Span:
    """Keys under ``prefix`` in ``(after, upto]``; ``token`` resumes an earlier page's listing.

    With ``children`` (common prefixes next to each other, with no object between them), the span is
    those children's keys, listed together without a delimiter: small folders share pages instead of
    taking a request each. ``group`` is how many of its common prefixes to list together like that.
    """

    prefix: str
    after: str | None = None
    upto: str | None = None
    token: str | None = None
    children: tuple[str, ...] = ()
    group: int = 1


# Every key under a common prefix ``p/`` sorts after ``p.`` and before ``p0``: the bounds of a group.
_BELOW = chr(ord(DELIMITER) - 1)
_ABOVE = chr(ord(DELIMITER) + 1)


def _grouped(entries: list[ObjectInfo | Span], parent: Span) -> list[ObjectInfo | Span]:
    """``entries`` with each run of fresh child spans cut into groups of ``parent.group``."""
    if parent.group == 1:
        return entries
    grouped: list[ObjectInfo | Span] = []
    run: list[str] = []

    def close_run() -> None:
        for start in range(0, len(run), parent.group):
            chunk = run[start : start + parent.group]
            if len(chunk) == 1:
                grouped.append(Span(chunk[0]))
            else:
                grouped.append(
                    Span(
                        parent.prefix,
                        after=chunk[0][:-1] + _BELOW,
                        upto=chunk[-1][:-1] + _ABOVE,
                        children=tuple(chunk),
                        group=parent.group,
                    )
                )
        run.clear()

    for entry in entries:
        if isinstance(entry, Span) and entry.after is None and not entry.children:
            run.append(entry.prefix)
        else:
            close_run()
            grouped.append(entry)
    close_run()
    return grouped


def _folders(span: Span) -> tuple[str, tuple[str, ...]] | None:
    """The parent and the whole folders a span lists (one fresh child, or a group), else None."""
    if span.children:
        if span.after == span.children[0][:-1] + _BELOW:
            return span.prefix, span.children
        return None
    if span.after is None and span.upto is None and span.token is None and span.prefix.endswith(DELIMITER):
        parent = span.prefix[: span.prefix[:-1].rfind(DELIMITER) + 1]
        return parent, (span.prefix,)
    return None


def _under(folders: list[str] | tuple[str, ...], key: str) -> bool:
    """Whether ``key`` is under one of ``folders`` (sorted)."""
    index = bisect.bisect_right(folders, key) - 1
    return index >= 0 and key.startswith(folders[index])


async def _folders_page(
    ctx: S3Context, parent: str, folders: list[str] | tuple[str, ...], reader: Reader, token: str | None
) -> tuple[ListPage, list[ObjectInfo], bool]:
    """One page without a delimiter over whole ``folders`` (sorted, under ``parent``), from their start or
    from ``token``: the page, its keys under the folders, and whether the folders are done.

    Keys between the folders that are not under one of them (objects of the level, folders listed
    elsewhere) are left out.
    """
    after, upto = folders[0][:-1] + _BELOW, folders[-1][:-1] + _ABOVE
    page = await reader.run(
        partial(fetch_page, ctx, parent, delimiter=None, start_after=None if token else after, token=token)
    )
    inside = [info for info in page.objects if info.key <= upto]
    objects = [info for info in inside if _under(folders, info.key)]
    return page, objects, page.next_token is None or len(inside) < len(page.objects)


async def walk_chain(ctx: S3Context, parent: str, folders: list[str], reader: Reader, *, emit: Emit) -> None:
    """List whole ``folders`` (sorted, all under ``parent``) page after page without a delimiter.

    For a server that serves one request at a time: full pages, the fewest requests.
    """
    token: str | None = None
    while True:
        page, objects, done = await _folders_page(ctx, parent, folders, reader, token)
        await emit([*objects])
        if done:
            return
        token = page.next_token


def _name(entry: ObjectInfo | Span) -> str:
    return entry.key if isinstance(entry, ObjectInfo) else entry.prefix


async def walk_group(ctx: S3Context, span: Span, reader: Reader, *, emit: Emit) -> None:
    """List a group of common prefixes without a delimiter, handing their objects to ``emit``.

    The objects directly at the parent's level that fall between the group's bounds are the parent's
    (its delimited page listed them) and are left out. A truncated page ends the group: the child it
    stopped in resumes as a span of its own, the children after it are grouped again.
    """
    page, objects, done = await _folders_page(ctx, span.prefix, span.children, reader, None)
    if done:
        await emit([*objects])
        return
    last = page.objects[-1].key
    rest: list[ObjectInfo | Span] = [Span(child) for child in span.children if child > last]
    current = [Span(child, after=last) for child in span.children if last.startswith(child)]
    await emit([*objects, *current, *_grouped(rest, span)])


async def walk_span(ctx: S3Context, span: Span, reader: Reader, *, emit: Emit) -> None:
    """List ``span`` page by page, handing each page's entries in key order to ``emit``.

    A truncated page whose rest can be cut (``split_points``) ends this span: the rest is handed out as
    ranges, the first resuming from the page's continuation token.
    """
    if span.children:
        await walk_group(ctx, span, reader, emit=emit)
        return
    token = span.token
    after = span.after
    # An ``after`` below this level (the first page's last key, ``a/b/c``) is not given as StartAfter:
    # whether the common prefix holding it (``a/``) is still reported is not something to rely on. The
    # level is listed from its start instead, dropping what ``after`` already covered.
    deep = after if after is not None and DELIMITER in after[len(span.prefix) :] else None
    while True:
        page = await reader.run(
            partial(
                fetch_page,
                ctx,
                span.prefix,
                delimiter=DELIMITER,
                start_after=None if token or deep else after,
                token=token,
            )
        )
        objects, prefixes = page.objects, page.prefixes
        if deep is not None:
            objects = [info for info in objects if info.key > deep]
            prefixes = [prefix for prefix in prefixes if prefix > deep or deep.startswith(prefix)]
        finished = page.next_token is None
        if span.upto is not None:
            upto = span.upto
            objects = [info for info in objects if info.key <= upto]
            prefixes = [prefix for prefix in prefixes if prefix <= upto]
            finished = finished or len(objects) < len(page.objects) or len(prefixes) < len(page.prefixes)
        # The common prefix holding a deep ``after`` is listed after it too: its earlier keys are done.
        children = [Span(prefix, after=deep if deep and deep.startswith(prefix) else None) for prefix in prefixes]
        entries: list[ObjectInfo | Span] = (
            _grouped(sorted([*objects, *children], key=_name), span) if children else [*objects]
        )
        if finished:
            await emit(entries)
            return
        last = max(objects[-1].key if objects else "", prefixes[-1] if prefixes else "")
        names = [info.key for info in objects] + prefixes
        points = split_points(span.prefix, last, span.upto, names, delimiter=DELIMITER)
        if points:
            bounds = [last, *points, span.upto]
            ranges = [
                Span(span.prefix, after=low, upto=high, token=page.next_token if index == 0 else None)
                for index, (low, high) in enumerate(itertools.pairwise(bounds))
            ]
            await emit([*entries, *ranges])
            return
        await emit(entries)
        token = page.next_token


async def _list_unordered(
    ctx: S3Context, root: Span, pace: Pace, budget: ReadAhead, out: MemoryObjectSendStream[list[ObjectInfo]]
) -> None:
    reader = Gate(pace, budget)
    spans_in, spans_out = anyio.create_memory_object_stream[Span](math.inf)
    outstanding = 1
    spans_in.send_nowait(root)
    # As many workers as the pace lets requests run: a span waits in the queue, not in a worker, so
    # what is still queued when the server turns out busy can be listed as a chain.
    workers = 0

    async def emit(entries: list[ObjectInfo | Span]) -> None:
        nonlocal outstanding
        objects: list[ObjectInfo] = []
        for entry in entries:
            if isinstance(entry, Span):
                outstanding += 1
                spans_in.send_nowait(entry)
            else:
                objects.append(entry)
        budget.hand_on(len(objects))
        hire()
        if objects:
            await out.send(objects)

    def siblings(parent: str) -> tuple[list[str], int]:
        """Take every queued span of whole folders under ``parent`` off the queue: their folders, and
        how many spans they were."""
        folders: list[str] = []
        taken = 0
        for _ in range(spans_out.statistics().current_buffer_used):
            queued = spans_out.receive_nowait()
            found = _folders(queued)
            if found is not None and found[0] == parent:
                folders += found[1]
                taken += 1
            else:
                spans_in.send_nowait(queued)
        return folders, taken

    async def worker() -> None:
        nonlocal outstanding
        async for span in spans_out:
            found = _folders(span) if pace.busy else None
            more, taken = siblings(found[0]) if found else ([], 0)
            if found and taken:
                # The server serves about one request at a time: the folders waiting to be listed go out
                # as one run of full pages, not a request (or more) each.
                await walk_chain(ctx, found[0], sorted([*found[1], *more]), reader, emit=emit)
            else:
                await walk_span(ctx, span, reader, emit=emit)
            outstanding -= 1 + taken
            if outstanding == 0:
                spans_in.close()
            hire()

    with spans_in, spans_out:
        async with task_group() as group:

            def hire() -> None:
                nonlocal workers
                while workers < pace.level:
                    workers += 1
                    group.start_soon(worker)

            hire()


@dataclass(eq=False)
class _Node:
    """A span in the ordered walk, with the stream its entries arrive on."""

    span: Span
    prefetched: bool = False
    started: bool = False
    send: MemoryObjectSendStream[list[ObjectInfo | _Node]] = field(init=False)
    receive: MemoryObjectReceiveStream[list[ObjectInfo | _Node]] = field(init=False)

    def __post_init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[list[ObjectInfo | _Node]](1)


async def _list_ordered(
    ctx: S3Context, root: Span, pace: Pace, budget: ReadAhead, out: MemoryObjectSendStream[list[ObjectInfo]]
) -> None:
    # Spans started ahead of the consumer, each holding at most two pages until the walk reaches it: up to
    # twice the requests the pace lets run, so that spans not needed yet are still waiting, to be chained,
    # when the server turns out busy.
    ahead = 0

    async def run(node: _Node) -> None:
        async def emit(entries: list[ObjectInfo | Span]) -> None:
            converted: list[ObjectInfo | _Node] = []
            keys = 0
            for entry in entries:
                if isinstance(entry, Span):
                    child = _Node(entry)
                    prefetch(child)
                    converted.append(child)
                else:
                    converted.append(entry)
                    keys += 1
            budget.hand_on(keys)
            await node.send.send(converted)

        with node.send:
            await walk_span(ctx, node.span, Gate(pace, budget, lambda: node), emit=emit)

    async def run_chain(parent: str, chain: list[tuple[_Node, tuple[str, ...]]]) -> None:
        """Nodes of whole folders under ``parent`` (with their folders, in key order) as one run of full
        pages without a delimiter, as ``walk_chain``; each folder's objects go to its own node, which is
        closed once the run has passed it."""
        nodes = [node for node, _ in chain]
        owners = [(folder, index) for index, (_, folders) in enumerate(chain) for folder in folders]
        folders = [folder for folder, _ in owners]
        closed = 0
        # The next page goes on from the first node not closed: the consumer may be waiting for that one.
        reader = Gate(pace, budget, lambda: nodes[closed] if closed < len(nodes) else None)

        async def close_before(index: int) -> None:
            nonlocal closed
            while closed < index:
                nodes[closed].send.close()
                closed += 1

        try:
            token: str | None = None
            while True:
                page, objects, done = await _folders_page(ctx, parent, folders, reader, token)
                budget.hand_on(len(objects))
                for owner, run_objects in itertools.groupby(
                    objects, key=lambda info: owners[bisect.bisect_right(folders, info.key) - 1][1]
                ):
                    await close_before(owner)
                    await nodes[owner].send.send([*run_objects])
                if done:
                    return
                token = page.next_token
        finally:
            for node in nodes[closed:]:
                node.send.close()

    # Children not yet started, in the order found: started as read-ahead slots free up.
    waiting: deque[_Node] = deque()

    async with task_group() as group:

        def start(node: _Node) -> None:
            node.started = True
            found = _folders(node.span) if pace.busy else None
            if found is None:
                group.start_soon(run, node)
                return
            # The server serves about one request at a time: the sibling folders not started yet go out
            # with this one as one run of full pages, not a request (or more) each.
            chain = [(node, found[1])]
            for other in waiting:
                if not other.started and (folders := _folders(other.span)) is not None and folders[0] == found[0]:
                    other.started = True
                    chain.append((other, folders[1]))
            group.start_soon(run_chain, found[0], sorted(chain, key=lambda chained: chained[1][0]))

        def prefetch(node: _Node | None = None) -> None:
            nonlocal ahead
            if node is not None:
                waiting.append(node)
            while ahead < 2 * pace.level and waiting:
                candidate = waiting.popleft()
                if not candidate.started:
                    ahead += 1
                    candidate.prefetched = True
                    start(candidate)

        async def drain(node: _Node) -> None:
            nonlocal ahead
            if not node.started:
                start(node)
            budget.lead(node)
            with node.receive:
                async for entries in node.receive:
                    batch: list[ObjectInfo] = []
                    for entry in entries:
                        if isinstance(entry, _Node):
                            if batch:
                                await out.send(batch)
                                batch = []
                            await drain(entry)
                            budget.lead(node)
                        else:
                            batch.append(entry)
                    if batch:
                        await out.send(batch)
            if node.prefetched:
                ahead -= 1
                prefetch()

        await drain(_Node(root))


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


def _group_size(prefix: str, keys: list[str]) -> int:
    """How many common prefixes below ``prefix`` fit in a page, judged by those the first pages covered.

    A group that fills its page takes a request more to learn that its last folder has ended, so
    groups aim at 80% of a page. The last folder of the pages may go on past them, so it is not
    counted; with none before it, 1.
    """
    sizes: dict[str, int] = {}
    for key in keys:
        child, found, _ = key[len(prefix) :].partition(DELIMITER)
        if found:
            sizes[child] = sizes.get(child, 0) + 1
    complete = list(sizes.values())[:-1]
    if not complete:
        return 1
    return max(1, GROUP_KEYS * len(complete) // sum(complete))


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
    engine = _list_ordered if ordered else _list_unordered
    root = Span(prefix, after=keys[-1], group=_group_size(prefix, keys))
    budget.pace = Pace(concurrency, alone)
    if ordered:
        budget.per_request = ORDERED_READ_AHEAD
    await engine(ctx, root, budget.pace, budget, out)


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
