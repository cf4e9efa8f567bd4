"""The two ways a fanned-out listing schedules its spans: unordered (the default) and ordered.

Unordered, as many workers as the pace allows take spans from a queue and send each page's objects to
the consumer's stream; once the server is found busy, a worker takes the queued spans of whole folders
under one parent together and lists them as one run of full pages (``walk_chain``). Ordered, each span
gets its own small stream of entries (objects and child spans, in key order) and the consumer walks
them depth first, draining a child span's stream where the child sits among its parent's keys;
children are started ahead of the consumer, up to twice the requests the pace allows, so the ordered
walk stays concurrent. Once the server is found busy, a child started with siblings of whole folders
still waiting takes them along as one run of full pages, each folder's keys sent to its own stream.
Only requests take a slot of the limiter, never a task waiting for its consumer, so the walk cannot
deadlock.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from functools import partial

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._context import S3Context
from .._models import ObjectInfo
from .._tasks import task_group
from .keyspace import Span, whole_folders
from .pace import Pace
from .readahead import Gate, ReadAhead
from .walk import folders_page, walk_chain, walk_span

__all__ = ["OrderedScheduler", "UnorderedScheduler"]

Out = MemoryObjectSendStream[list[ObjectInfo]]


class _Scheduler:
    """What both schedulers list with and send to; ``group`` runs their tasks once ``run`` has begun."""

    def __init__(self, ctx: S3Context, pace: Pace, budget: ReadAhead, out: Out) -> None:
        self.ctx = ctx
        self.pace = pace
        self.budget = budget
        self.out = out
        self.group: TaskGroup | None = None

    async def run(self, root: Span) -> None:
        raise NotImplementedError


class UnorderedScheduler(_Scheduler):
    """Workers taking spans from a queue, each page's objects sent on as they come."""

    def __init__(self, ctx: S3Context, pace: Pace, budget: ReadAhead, out: Out) -> None:
        super().__init__(ctx, pace, budget, out)
        self.reader = Gate(pace, budget)
        self.spans_in, self.spans_out = anyio.create_memory_object_stream[Span](math.inf)
        # Spans queued or being listed: the queue closes when none is left.
        self.outstanding = 0
        # As many workers as the pace lets requests run: a span waits in the queue, not in a worker, so
        # what is still queued when the server turns out busy can be listed as a chain.
        self.workers = 0

    async def run(self, root: Span) -> None:
        self.outstanding = 1
        self.spans_in.send_nowait(root)
        with self.spans_in, self.spans_out:
            async with task_group() as group:
                self.group = group
                self.hire()

    def hire(self) -> None:
        assert self.group is not None
        while self.workers < self.pace.level:
            self.workers += 1
            self.group.start_soon(self.worker)

    async def emit(self, entries: list[ObjectInfo | Span]) -> None:
        objects: list[ObjectInfo] = []
        for entry in entries:
            if isinstance(entry, Span):
                self.outstanding += 1
                self.spans_in.send_nowait(entry)
            else:
                objects.append(entry)
        self.budget.hand_on(len(objects))
        self.hire()
        if objects:
            await self.out.send(objects)

    def siblings(self, parent: str) -> tuple[list[str], int]:
        """Take every queued span of whole folders under ``parent`` off the queue: their folders, and
        how many spans they were."""
        folders: list[str] = []
        taken = 0
        for _ in range(self.spans_out.statistics().current_buffer_used):
            queued = self.spans_out.receive_nowait()
            found = whole_folders(queued)
            if found is not None and found[0] == parent:
                folders += found[1]
                taken += 1
            else:
                self.spans_in.send_nowait(queued)
        return folders, taken

    async def worker(self) -> None:
        async for span in self.spans_out:
            found = whole_folders(span) if self.pace.busy else None
            more, taken = self.siblings(found[0]) if found else ([], 0)
            if found and taken:
                # The server serves about one request at a time: the folders waiting to be listed go out
                # as one run of full pages, not a request (or more) each.
                await walk_chain(self.ctx, found[0], sorted([*found[1], *more]), self.reader, emit=self.emit)
            else:
                await walk_span(self.ctx, span, self.reader, emit=self.emit)
            self.outstanding -= 1 + taken
            if self.outstanding == 0:
                self.spans_in.close()
            self.hire()


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


class _Chain:
    """Nodes of whole folders listed as one run of pages, closed in key order as the run passes them."""

    def __init__(self, nodes: list[_Node]) -> None:
        self.nodes = nodes
        self.closed = 0

    def head(self) -> _Node | None:
        """The first node not closed: the next page goes on from it, and the consumer may wait for it."""
        return self.nodes[self.closed] if self.closed < len(self.nodes) else None

    def close_before(self, index: int) -> None:
        while self.closed < index:
            self.nodes[self.closed].send.close()
            self.closed += 1

    def close_all(self) -> None:
        self.close_before(len(self.nodes))


class OrderedScheduler(_Scheduler):
    """A stream of entries per span, drained depth first by the consumer, children started ahead."""

    def __init__(self, ctx: S3Context, pace: Pace, budget: ReadAhead, out: Out) -> None:
        super().__init__(ctx, pace, budget, out)
        # Spans started ahead of the consumer, each holding at most two pages until the walk reaches
        # it: up to twice the requests the pace lets run, so that spans not needed yet are still
        # waiting, to be chained, when the server turns out busy.
        self.ahead = 0
        # Children not yet started, in the order found: started as read-ahead slots free up.
        self.waiting: deque[_Node] = deque()

    async def run(self, root: Span) -> None:
        async with task_group() as group:
            self.group = group
            await self.drain(_Node(root))

    async def emit(self, node: _Node, entries: list[ObjectInfo | Span]) -> None:
        converted: list[ObjectInfo | _Node] = []
        keys = 0
        for entry in entries:
            if isinstance(entry, Span):
                child = _Node(entry)
                self.prefetch(child)
                converted.append(child)
            else:
                converted.append(entry)
                keys += 1
        self.budget.hand_on(keys)
        await node.send.send(converted)

    async def list_node(self, node: _Node) -> None:
        with node.send:
            reader = Gate(self.pace, self.budget, lambda: node)
            await walk_span(self.ctx, node.span, reader, emit=partial(self.emit, node))

    async def list_chain(self, parent: str, chained: list[tuple[_Node, tuple[str, ...]]]) -> None:
        """Nodes of whole folders under ``parent`` (with their folders, in key order) as one run of full
        pages without a delimiter, as ``walk_chain``; each folder's objects go to its own node."""
        chain = _Chain([node for node, _ in chained])
        owners = [(folder, index) for index, (_, folders) in enumerate(chained) for folder in folders]
        folders = [folder for folder, _ in owners]
        reader = Gate(self.pace, self.budget, chain.head)
        try:
            token: str | None = None
            while True:
                page, objects, done = await folders_page(self.ctx, parent, folders, reader, token)
                self.budget.hand_on(len(objects))
                for owner, run_objects in itertools.groupby(
                    objects, key=lambda info: owners[bisect.bisect_right(folders, info.key) - 1][1]
                ):
                    chain.close_before(owner)
                    await chain.nodes[owner].send.send([*run_objects])
                if done:
                    return
                token = page.next_token
        finally:
            chain.close_all()

    def start(self, node: _Node) -> None:
        assert self.group is not None
        node.started = True
        found = whole_folders(node.span) if self.pace.busy else None
        if found is None:
            self.group.start_soon(self.list_node, node)
            return
        # The server serves about one request at a time: the sibling folders not started yet go out
        # with this one as one run of full pages, not a request (or more) each.
        chained = [(node, found[1])]
        for other in self.waiting:
            if not other.started and (folders := whole_folders(other.span)) is not None and folders[0] == found[0]:
                other.started = True
                chained.append((other, folders[1]))
        self.group.start_soon(self.list_chain, found[0], sorted(chained, key=lambda pair: pair[1][0]))

    def prefetch(self, node: _Node | None = None) -> None:
        if node is not None:
            self.waiting.append(node)
        while self.ahead < 2 * self.pace.level and self.waiting:
            candidate = self.waiting.popleft()
            if not candidate.started:
                self.ahead += 1
                candidate.prefetched = True
                self.start(candidate)

    async def drain(self, node: _Node) -> None:
        if not node.started:
            self.start(node)
        self.budget.lead(node)
        with node.receive:
            async for entries in node.receive:
                batch: list[ObjectInfo] = []
                for entry in entries:
                    if isinstance(entry, _Node):
                        if batch:
                            await self.out.send(batch)
                            batch = []
                        await self.drain(entry)
                        self.budget.lead(node)
                    else:
                        batch.append(entry)
                if batch:
                    await self.out.send(batch)
        if node.prefetched:
            self.ahead -= 1
            self.prefetch()
