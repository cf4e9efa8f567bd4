"""S3EventPoller: typed S3 event records from an SQS queue, for worker services.

The poller wires its parts together and owns their life cycle: the receiver task (``receiver.py``)
long-polls the queue into the ledger (``ledger.py``) while fewer than ``max_in_flight`` messages are held,
so a slow consumer stops the receiving; the ledger's heartbeat task extends the visibility of yielded,
unsettled messages; the batcher's task (``batcher.py``) sends acknowledgements as DeleteMessageBatch
calls; ``run`` hands records to a worker pool (``workers.py``). Every request goes through the queue's
``Retrying`` (``sqs.py``).
"""

from __future__ import annotations

import logging
import math
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup

from .._exceptions import ConfigError, InvalidArgument, StorageError
from .._settings import StoreSettings
from .._tasks import task_group
from .batcher import Batcher
from .ledger import Ledger, Message
from .models import S3EventRecord
from .receiver import CLEANUP_TIMEOUT, Receiver
from .sqs import MAX_BATCH, MAX_VISIBILITY, MAX_WAIT_TIME, SqsQueue, open_queue
from .workers import Handler, WorkerPool

__all__ = ["Handler", "S3EventPoller"]

logger = logging.getLogger("aiostorage.events")

_NOT_OPEN = "S3EventPoller is not open: use it inside `async with S3EventPoller(...)`"


def _check(name: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(f"{name} must be {bounds}, got {value}")


class S3EventPoller:
    """S3 event records from an SQS queue, one at a time, acknowledged one by one; see the events guide.

    Use it inside ``async with``: ``async for record in poller`` with ``ack`` / ``nack``, or ``run(handler)``.
    The queue is checked on entering the block: a missing queue raises ``ConfigError``, missing rights
    ``AccessDenied``. ``queue_url`` falls back to ``settings.queue_url`` (``ConfigError`` if neither is set);
    ``settings`` (region, endpoint, credentials, attempts, timeouts) falls back to ``StoreSettings()``.

    ``batch_size`` (1-10) messages per receive, long-polling ``wait_time`` seconds (0-20).
    ``visibility_timeout`` (seconds) is asked for on every receive; ``None`` means the queue's own.
    ``max_in_flight`` caps the messages held (prefetched or yielded, not yet settled): receiving
    pauses at the cap. ``None`` means ``batch_size`` for ``async for`` and ``concurrency + batch_size``
    within ``run``. ``nack`` without a delay waits ``retry_delay * 2 ** (receive count - 1)`` seconds,
    at most ``max_retry_delay``. ``grace_period`` is how long ``run``'s handlers may keep running
    after a stop before they are cancelled and their messages returned. Acknowledged messages are
    deleted in batches of 10, or after ``delete_interval`` seconds at the latest.

    Leaving the ``async with`` block stops the poller as ``stop()`` does: a long poll in flight is let
    finish (up to about ``wait_time``) and what it took goes back to the queue at once; then held,
    unsettled messages go back too and acknowledged ones are deleted.
    """

    def __init__(
        self,
        queue_url: str | None = None,
        *,
        settings: StoreSettings | None = None,
        batch_size: int = 10,
        wait_time: int = 20,
        visibility_timeout: int | None = None,
        max_in_flight: int | None = None,
        retry_delay: float = 2.0,
        max_retry_delay: float = 300.0,
        grace_period: float = 30.0,
        delete_interval: float = 0.2,
    ) -> None:
        self.settings = settings if settings is not None else StoreSettings()
        """Where the queue is, with what credentials, attempts and timeouts."""
        resolved = queue_url if queue_url is not None else self.settings.queue_url
        if not resolved:
            raise ConfigError("no queue: pass queue_url to S3EventPoller() or set AWS_SQS_QUEUE_URL")
        _check("batch_size", batch_size, 1, MAX_BATCH)
        _check("wait_time", wait_time, 0, MAX_WAIT_TIME)
        if visibility_timeout is not None:
            _check("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY)
        if max_in_flight is not None:
            _check("max_in_flight", max_in_flight, 1)
        _check("retry_delay", retry_delay, 0, MAX_VISIBILITY)
        _check("max_retry_delay", max_retry_delay, retry_delay, MAX_VISIBILITY)
        _check("grace_period", grace_period, 0)
        _check("delete_interval", delete_interval, 0)
        self.queue_url: str = resolved
        """The queue polled."""
        self.batch_size = batch_size
        """Messages asked for per ReceiveMessage (1 to 10)."""
        self.wait_time = wait_time
        """Seconds each long poll waits for messages (0 to 20); a stop waits for the poll in flight."""
        self.visibility_timeout = visibility_timeout
        """Seconds asked for on every receive; ``None`` uses the queue's own."""
        self.max_in_flight = max_in_flight
        """Messages held at most, prefetched or yielded and not settled; ``None``: see the class."""
        self.retry_delay = retry_delay
        """The first default ``nack`` delay, in seconds; it doubles with each receive of the message."""
        self.max_retry_delay = max_retry_delay
        """The cap of the default ``nack`` delay, in seconds."""
        self.grace_period = grace_period
        """Seconds ``run``'s handlers may keep running after a stop before they are cancelled."""
        self.delete_interval = delete_interval
        """Seconds an acknowledged message may wait for a full batch of deletes."""

        self._client_stack: AsyncExitStack | None = None
        self._group_stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._queue: SqsQueue | None = None
        self._batcher: Batcher | None = None
        self._receiver: Receiver | None = None
        # Every open gets its own ledger; this one only answers acks and iteration before the first.
        self._ledger = Ledger(self._default_limit(), 0)
        self._stopping = False
        self._stopped = anyio.Event()
        self._fatal: StorageError | None = None
        self._fatal_reported = False

    def __repr__(self) -> str:
        return f"S3EventPoller(queue_url={self.queue_url!r})"

    def _default_limit(self) -> int:
        return self.max_in_flight if self.max_in_flight is not None else self.batch_size

    # Life cycle

    async def __aenter__(self) -> Self:
        if self._client_stack is not None:
            raise StorageError("this S3EventPoller is already open")
        # A poller can be opened again after it was left: it starts afresh.
        self._stopping, self._fatal, self._fatal_reported = False, None, False
        self._stopped = anyio.Event()
        client_stack = AsyncExitStack()
        try:
            queue = await client_stack.enter_async_context(open_queue(self.queue_url, self.settings, self.wait_time))
            visibility_timeout = await queue.visibility_timeout()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await client_stack.aclose()
            raise
        if self.visibility_timeout is not None:
            visibility_timeout = self.visibility_timeout
        self._client_stack, self._queue = client_stack, queue
        self._ledger = ledger = Ledger(self._default_limit(), visibility_timeout)
        self._batcher = batcher = Batcher(queue, self.delete_interval)
        group_stack = AsyncExitStack()
        self._group = group = await group_stack.enter_async_context(task_group())
        self._group_stack = group_stack
        self._receiver = Receiver(
            queue,
            ledger,
            batcher,
            batch_size=self.batch_size,
            wait_time=self.wait_time,
            visibility_timeout=self.visibility_timeout,
            retry_delay_for=self._retry_delay_for,
            on_fatal=self._on_fatal,
            group=group,
        )
        group.start_soon(self._receiver.run)
        group.start_soon(batcher.run)
        if visibility_timeout > 0:
            group.start_soon(ledger.heartbeat, batcher.change_visibility)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()
        if exc_type is None and self._fatal is not None and not self._fatal_reported:
            self._fatal_reported = True
            raise self._fatal

    async def _close(self) -> None:
        group_stack, client_stack, group = self._group_stack, self._client_stack, self._group
        receiver, batcher = self._receiver, self._batcher
        if client_stack is None or group_stack is None or group is None or receiver is None or batcher is None:
            return
        self._begin_stop()
        with anyio.CancelScope(shield=True):
            await receiver.finish()
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
            held = self._ledger.take_held()
            if held:
                logger.info("returning %d unacknowledged message(s) to %s", len(held), self.queue_url)
            await batcher.change_visibility([(message, 0) for message in held])
            await self._return_buffered(batcher)
            await batcher.flush(final=True)
        group.cancel_scope.cancel()
        self._group_stack = self._client_stack = self._group = None
        self._ledger.forget()
        try:
            await group_stack.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                await client_stack.aclose()

    @property
    def client(self) -> Any:
        """The underlying aiobotocore SQS client, for what the poller does not cover."""
        if self._queue is None:
            raise StorageError(_NOT_OPEN)
        return self._queue.client

    # Consuming

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> S3EventRecord:
        record = await self._next()
        if record is None:
            raise StopAsyncIteration
        return record

    async def ack(self, record: S3EventRecord) -> None:
        """Acknowledge ``record``; its message is deleted (batched) once all its records are acked.

        Never raises for a failed delete: that is retried on later flushes and logged if it still
        fails (the message then comes back: delivery is at least once).
        """
        message = self._ledger.acknowledge(record)
        if message is not None:
            assert self._batcher is not None
            self._batcher.delete(message)

    async def nack(self, record: S3EventRecord, *, delay: float | None = None) -> None:
        """Give ``record``'s message back to the queue, visible again after ``delay`` seconds.

        The default delay grows with the message's receive count (``retry_delay``, doubling, at most
        ``max_retry_delay``), so the queue's redrive policy ends up moving a message that keeps failing
        to its dead-letter queue. Any other record of the same message is given back with it.
        """
        if delay is not None:
            _check("delay", delay, 0, MAX_VISIBILITY)
        message = self._ledger.claim(record)
        if message is None:
            return
        self._ledger.settle(message)
        seconds = self._retry_delay_for(message) if delay is None else delay
        assert self._batcher is not None
        await self._batcher.change_visibility([(message, math.ceil(seconds))])

    async def stop(self, *, now: bool = False) -> None:
        """Stop receiving and end ``async for`` and ``run``; return prefetched messages at once.

        Safe from any task, also while records are held (they can still be acked or nacked until the
        block is left). ``async for`` ends at once; ``run`` returns once its handlers finish (cancelled
        and returned to the queue after ``grace_period``).

        A long poll in flight is not cancelled: SQS would still hand it the messages that arrive before
        it ends, and they would stay invisible for the visibility timeout. ``stop`` waits for it (SQS
        answers within ``wait_time``; one unanswered a couple of seconds later is abandoned) and makes
        what it took visible again at once. ``stop(now=True)``, also from another task while a stop or
        the block's exit waits, abandons the poll instead: no waiting, but the messages it takes stay
        hidden until their visibility timeout. Cancelling a waiting ``stop`` only ends the wait: the poll
        still finishes in the background and is released, and leaving the block waits for it.
        """
        self._begin_stop()
        receiver, batcher = self._receiver, self._batcher
        if now and receiver is not None:
            receiver.abandon()
        if self._client_stack is None or receiver is None or batcher is None:
            return
        try:
            await receiver.finish()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                await self._return_buffered(batcher)
                await batcher.flush()

    async def run(self, handler: Handler, *, concurrency: int = 8) -> None:
        """Call ``handler`` for every record, at most ``concurrency`` at a time, until stopped.

        A handler that returns acks its record; one that raises nacks it (with the default delay) and
        is logged. That includes a ``CancelledError`` that is not ``run``'s own cancellation (a handler
        awaiting a task or future that something else cancelled): it fails that record, not ``run``.
        Cancelling ``run`` stops the poller gracefully: handlers in flight get ``grace_period`` to
        finish, then are cancelled and their messages returned to the queue. A long poll in flight is
        not waited for (leaving the block waits for it, see ``stop``); it is released when it ends.
        """
        _check("concurrency", concurrency, 1)
        batcher = self._batcher
        if self._client_stack is None or batcher is None:
            raise StorageError(_NOT_OPEN)
        ledger = self._ledger
        previous = ledger.limit
        if self.max_in_flight is None:
            ledger.set_limit(max(previous, concurrency + self.batch_size))
        pool = WorkerPool(
            handler=handler,
            next_record=lambda: self._next(raise_fatal=False),
            ack=self.ack,
            nack=lambda record, delay: self.nack(record, delay=delay),
            grace_period=self.grace_period,
        )
        try:
            await pool.serve(concurrency, stopped=self._stopped, stop=self._begin_stop)
        finally:
            ledger.limit = previous
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                await batcher.flush()
        if self._fatal is not None:
            self._fatal_reported = True
            raise self._fatal

    # Internals

    async def _next(self, *, raise_fatal: bool = True) -> S3EventRecord | None:
        if self._client_stack is None and not self._stopping:
            raise StorageError(_NOT_OPEN)
        record = await self._ledger.next()
        if record is None and raise_fatal and self._fatal is not None:
            self._fatal_reported = True
            raise self._fatal
        return record

    def _begin_stop(self) -> None:
        """Stop receiving and wake every waiter; a receive in flight goes on (see ``stop``)."""
        self._stopping = True
        if self._receiver is not None:
            self._receiver.stop()
        self._ledger.close()
        self._stopped.set()

    def _on_fatal(self, error: StorageError) -> None:
        self._fatal = error
        self._begin_stop()

    async def _return_buffered(self, batcher: Batcher) -> None:
        """Give prefetched, never-yielded messages back to the queue at once."""
        returned = self._ledger.take_buffered()
        if returned:
            logger.debug("returning %d prefetched message(s) to %s", len(returned), self.queue_url)
            await batcher.change_visibility([(message, 0) for message in returned])

    def _retry_delay_for(self, message: Message) -> float:
        return float(min(self.max_retry_delay, self.retry_delay * 2 ** max(0, message.receive_count - 1)))
