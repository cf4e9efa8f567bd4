"""S3EventPoller: typed S3 event records from an SQS queue, for worker services.

One receiver task long-polls the queue while fewer than ``max_in_flight`` messages are held (a slow
consumer stops the receiving); records wait in a bounded buffer until yielded; a heartbeat task extends
the visibility of yielded, unsettled messages; a delete task batches acknowledgements into
DeleteMessageBatch calls. Every request goes through ``Retrying`` (deadline, retries, error mapping).

Stopping never cancels a long poll that is waiting at SQS: SQS keeps handing the messages that arrive to
an abandoned poll, and they would stay invisible for the visibility timeout. The poll is let finish
(SQS answers it within ``wait_time``) and what it took is made visible again at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup

from .._exceptions import AccessDenied, ConfigError, InvalidArgument, StorageError
from .._retry import Retrying
from .._settings import StoreSettings
from .._tasks import task_group
from .._transport import create_client
from .models import S3EventRecord
from .parse import parse_s3_event

__all__ = ["Handler", "S3EventPoller"]

logger = logging.getLogger("aiostorage.events")

Handler = Callable[[S3EventRecord], Awaitable[object]]

# SQS limits: entries per receive or batch call, long-poll wait, and visibility from a receipt.
MAX_BATCH = 10
MAX_WAIT_TIME = 20
MAX_VISIBILITY = 12 * 3600
# Connections for one poller: a long poll, delete and visibility batches, nacks from concurrent handlers.
_POOL = 16
# Bound on the shielded cleanup when stopping or leaving the block.
_CLEANUP_TIMEOUT = 30.0
# Flushes a delete that SQS reports as failed is tried in before it is given up (and logged).
_DELETE_ATTEMPTS = 3
# Receive errors that no retry can fix: raised to the user at once.
_FATAL = (ConfigError, AccessDenied, InvalidArgument)
# Seconds between receives on an empty queue when long polling is off (wait_time=0).
_EMPTY_SHORT_POLL_PAUSE = 1.0
# Time past ``wait_time`` a stopping poller gives SQS to answer the long poll in flight before abandoning
# it: the answer's round trip on a slow network. A poll still unanswered by then is taken as hung.
_RECEIVE_ANSWER_MARGIN = 2.0
_RECEIVE_BACKOFF_BASE = 0.5
_RECEIVE_BACKOFF_CAP = 20.0


@dataclass(eq=False)
class _Message:
    message_id: str
    receipt_handle: str
    receive_count: int
    # When the receive was sent: SQS started the visibility clock no earlier, so deadlines err early.
    received_at: float
    visible_until: float
    unsettled: int = 0
    state: Literal["buffered", "held", "done"] = "buffered"
    past_limit_logged: bool = False


@dataclass(eq=False)
class _Delete:
    message: _Message
    attempts: int = 0


class _Wakeup:
    """Wakes tasks waiting on it (all, or as many as there is work for); cheap when nobody waits."""

    def __init__(self) -> None:
        self._waiters: deque[anyio.Event] = deque()

    def set(self, count: int | None = None) -> None:
        woken = len(self._waiters) if count is None else min(count, len(self._waiters))
        for _ in range(woken):
            self._waiters.popleft().set()

    async def wait(self) -> None:
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        finally:
            if not event.is_set():
                self._waiters.remove(event)


def _check(name: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(f"{name} must be {bounds}, got {value}")


class S3EventPoller:
    """S3 event records from an SQS queue, one at a time, acknowledged one by one; see the README.

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
        self.batch_size = batch_size
        self.wait_time = wait_time
        self.visibility_timeout = visibility_timeout
        self.max_in_flight = max_in_flight
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.grace_period = grace_period
        self.delete_interval = delete_interval

        self._client: Any = None
        self._retrying: Retrying | None = None
        self._group: TaskGroup | None = None
        self._group_stack: AsyncExitStack | None = None
        self._client_stack: AsyncExitStack | None = None
        self._vt = 0
        self._limit = max_in_flight if max_in_flight is not None else batch_size
        self._buffer: deque[S3EventRecord] = deque()
        # Records handed out or buffered, by identity (records are values: equal ones can come twice).
        self._origin: dict[int, tuple[S3EventRecord, _Message]] = {}
        self._held: set[_Message] = set()
        self._in_flight = 0
        self._deletes: list[_Delete] = []
        self._stopping = False
        self._fatal: StorageError | None = None
        self._fatal_reported = False
        # The receive in flight (cancelled only to abandon it) and the receiver's pause between receives
        # (cancelled by any stop).
        self._receive_scope: anyio.CancelScope | None = None
        self._pause_scope: anyio.CancelScope | None = None
        self._receiver_done = anyio.Event()
        # Records buffered (or stopping); stopping; room to receive; a handler finished; heartbeat;
        # deletes queued.
        self._arrived = _Wakeup()
        self._stopped = _Wakeup()
        self._room = _Wakeup()
        self._idle = _Wakeup()
        self._beat = _Wakeup()
        self._delete_wakeup = _Wakeup()
        self._flush_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"S3EventPoller(queue_url={self.queue_url!r})"

    # Life cycle

    async def __aenter__(self) -> Self:
        if self._client_stack is not None:
            raise StorageError("this S3EventPoller is already open")
        # A poller can be opened again after it was left: it starts afresh.
        self._stopping, self._fatal, self._fatal_reported = False, None, False
        self._buffer.clear()
        self._held.clear()
        self._deletes.clear()
        self._in_flight = 0
        self._flush_lock = anyio.Lock()
        self._receiver_done = anyio.Event()
        # A long poll keeps the response pending for up to wait_time: the read timeout must outlast it.
        sqs_settings = self.settings.model_copy(
            update={"read_timeout": max(self.settings.read_timeout, self.wait_time + self.settings.connect_timeout)}
        )
        client_stack = AsyncExitStack()
        try:
            self._client = await client_stack.enter_async_context(
                create_client("sqs", sqs_settings, max_connections=_POOL)
            )
            self._retrying = Retrying(
                max_attempts=self.settings.max_attempts,
                attempt_timeout=self.settings.connect_timeout + self.settings.read_timeout,
                max_connections=_POOL,
            )
            self._vt = await self._queue_visibility_timeout()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await client_stack.aclose()
            raise
        self._client_stack = client_stack
        group_stack = AsyncExitStack()
        self._group = await group_stack.enter_async_context(task_group())
        self._group_stack = group_stack
        self._group.start_soon(self._receive_loop)
        self._group.start_soon(self._delete_loop)
        if self._vt > 0:
            self._group.start_soon(self._heartbeat_loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()
        if exc_type is None and self._fatal is not None and not self._fatal_reported:
            self._fatal_reported = True
            raise self._fatal

    async def _close(self) -> None:
        group_stack, client_stack = self._group_stack, self._client_stack
        if client_stack is None or group_stack is None or self._group is None:
            return
        self._begin_stop()
        with anyio.CancelScope(shield=True):
            await self._let_receive_finish()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
            held = list(self._held)
            for message in held:
                self._settle(message)
            if held:
                logger.info("returning %d unacknowledged message(s) to %s", len(held), self.queue_url)
            await self._change_visibility([(message, 0) for message in held])
            await self._return_buffered()
            await self._flush_deletes(final=True)
        self._group.cancel_scope.cancel()
        self._group_stack = self._client_stack = self._group = None
        self._origin.clear()
        try:
            await group_stack.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                await client_stack.aclose()

    @property
    def client(self) -> Any:
        """The underlying aiobotocore SQS client, for what the poller does not cover."""
        if self._client is None:
            raise StorageError("S3EventPoller is not open: use it inside `async with S3EventPoller(...)`")
        return self._client

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
        message = self._message_of(record)
        if message is None:
            return
        message.unsettled -= 1
        if message.unsettled > 0:
            return
        self._settle(message)
        self._queue_delete(_Delete(message))

    async def nack(self, record: S3EventRecord, *, delay: float | None = None) -> None:
        """Give ``record``'s message back to the queue, visible again after ``delay`` seconds.

        The default delay grows with the message's receive count (``retry_delay``, doubling, at most
        ``max_retry_delay``), so the queue's redrive policy ends up moving a message that keeps failing
        to its dead-letter queue. Any other record of the same message is given back with it.
        """
        if delay is not None:
            _check("delay", delay, 0, MAX_VISIBILITY)
        message = self._message_of(record)
        if message is None:
            return
        self._settle(message)
        seconds = self._retry_delay_for(message) if delay is None else delay
        await self._change_visibility([(message, math.ceil(seconds))])

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
        if now:
            self._abandon_receive()
        if self._client_stack is None:
            return
        try:
            await self._let_receive_finish()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                await self._return_buffered()
                await self._flush_deletes()

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
        if self._client_stack is None:
            raise StorageError("S3EventPoller is not open: use it inside `async with S3EventPoller(...)`")
        previous = self._limit
        if self.max_in_flight is None:
            self._limit = max(self._limit, concurrency + self.batch_size)
            self._room.set()
        # The cancel scopes of the handlers in flight (shielded: cancelling run leaves them their grace
        # period; _drain cancels them after it).
        running: set[anyio.CancelScope] = set()
        try:
            async with task_group() as workers:
                for _ in range(concurrency):
                    workers.start_soon(self._work, handler, running)
                try:
                    while not self._stopping:
                        await self._stopped.wait()
                except BaseException:
                    self._begin_stop()
                    raise
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._drain(running)
        finally:
            self._limit = previous
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                await self._flush_deletes()
        if self._fatal is not None:
            self._fatal_reported = True
            raise self._fatal

    async def _work(self, handler: Handler, running: set[anyio.CancelScope]) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            record = await self._next(raise_fatal=False)
            if record is None:
                return
            scope = anyio.CancelScope(shield=True)
            running.add(scope)
            returned = False
            cancel_requests = task.cancelling()
            try:
                with scope:
                    try:
                        await handler(record)
                        returned = True
                    except Exception:
                        logger.exception("handler failed on %s; the message goes back to the queue", _describe(record))
                    except asyncio.CancelledError:
                        # The shield keeps run's cancellation out until the grace period ends, when _drain
                        # cancels this scope: that one is run's, and is handled below. Any other cancellation
                        # (a future or task the handler awaited, cancelled elsewhere) fails this record
                        # only: let out, it would end run silently, with the poller stopped for good.
                        if not scope.cancel_called:
                            # A request to cancel this very task can only come from the handler's own code
                            # (the task is ours); left pending it would confuse later timeouts and scopes.
                            while task.cancelling() > cancel_requests:
                                task.uncancel()
                            logger.exception(
                                "handler failed on %s with a CancelledError that was not run's cancellation; "
                                "the message goes back to the queue",
                                _describe(record),
                            )
            finally:
                running.discard(scope)
                self._idle.set()
            if returned:
                await self.ack(record)
                continue
            with anyio.CancelScope(shield=True):
                if scope.cancel_called:
                    logger.warning("handler still running after the grace period on %s; returned", _describe(record))
                    await self.nack(record, delay=0)
                else:
                    await self.nack(record)

    async def _drain(self, running: set[anyio.CancelScope]) -> None:
        with anyio.move_on_after(self.grace_period):
            while running:
                await self._idle.wait()
        for scope in list(running):
            scope.cancel()

    # Internals

    async def _next(self, *, raise_fatal: bool = True) -> S3EventRecord | None:
        if self._client_stack is None and not self._stopping:
            raise StorageError("S3EventPoller is not open: use it inside `async with S3EventPoller(...)`")
        while True:
            if self._fatal is not None and raise_fatal:
                self._fatal_reported = True
                raise self._fatal
            if self._stopping:
                return None
            while self._buffer:
                record = self._buffer.popleft()
                if not self._buffer:
                    self._room.set()
                message = self._origin[id(record)][1]
                if message.state == "done":
                    del self._origin[id(record)]
                    continue
                if message.state == "buffered":
                    now = time.monotonic()
                    if self._vt > 0 and now >= message.visible_until:
                        # It may already be another consumer's: working on it would only duplicate work.
                        logger.debug("message %s expired before it was yielded; dropped", message.message_id)
                        self._settle(message)
                        del self._origin[id(record)]
                        continue
                    message.state = "held"
                    self._held.add(message)
                    if message.visible_until - now < self._vt / 2:
                        self._beat.set()
                return record
            await self._arrived.wait()

    def _message_of(self, record: S3EventRecord) -> _Message | None:
        """The record's message if it still needs settling; ``None`` (a no-op) if already settled."""
        entry = self._origin.get(id(record))
        if entry is None or entry[0] is not record or entry[1].state != "held":
            logger.debug("%s is not held by this poller (already settled?); ignored", _describe(record))
            return None
        del self._origin[id(record)]
        return entry[1]

    def _settle(self, message: _Message) -> None:
        if message.state == "done":
            return
        message.state = "done"
        self._held.discard(message)
        self._in_flight -= 1
        self._room.set()

    def _begin_stop(self) -> None:
        """Stop receiving and wake every waiter; a receive in flight goes on (see ``stop``)."""
        self._stopping = True
        if self._pause_scope is not None:
            self._pause_scope.cancel()
        for wakeup in (self._arrived, self._stopped, self._room, self._idle):
            wakeup.set()

    def _abandon_receive(self) -> bool:
        """Cancel the receive in flight, if any; the messages SQS hands it stay hidden until they expire."""
        if self._receive_scope is None:
            return False
        self._receive_scope.cancel()
        return True

    async def _let_receive_finish(self) -> None:
        """Wait for the receiver to end, a receive in flight included (what it took is released).

        SQS answers a long poll within ``wait_time``: one still unanswered a margin later is abandoned.
        """
        done = self._receiver_done
        if done.is_set():
            return
        with anyio.move_on_after(self.wait_time + _RECEIVE_ANSWER_MARGIN):
            await done.wait()
        if done.is_set():
            return
        if self._abandon_receive():
            logger.warning(
                "a receive from %s was not answered within wait_time (%ss); abandoned: messages it takes stay "
                "invisible until their visibility timeout",
                self.queue_url,
                self.wait_time,
            )
        with anyio.move_on_after(_CLEANUP_TIMEOUT):
            await done.wait()

    def _retry_delay_for(self, message: _Message) -> float:
        return float(min(self.max_retry_delay, self.retry_delay * 2 ** max(0, message.receive_count - 1)))

    async def _call(
        self,
        operation: str,
        method: Callable[..., Awaitable[Any]],
        *,
        attempt_timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        assert self._retrying is not None

        async def attempt() -> dict[str, Any]:
            response: dict[str, Any] = await method(QueueUrl=self.queue_url, **params)
            return response

        return await self._retrying.call(attempt, operation=operation, attempt_timeout=attempt_timeout)

    async def _queue_visibility_timeout(self) -> int:
        try:
            response = await self._call(
                "GetQueueAttributes", self._client.get_queue_attributes, AttributeNames=["VisibilityTimeout"]
            )
        except StorageError as exc:
            raise type(exc)(f"{self.queue_url}: {exc}", operation=exc.operation, code=exc.code) from exc
        if self.visibility_timeout is not None:
            return self.visibility_timeout
        return int(response.get("Attributes", {}).get("VisibilityTimeout", 30))

    # Receiving

    async def _receive_loop(self) -> None:
        try:
            await self._receive_until_stopped()
        finally:
            self._receiver_done.set()

    async def _receive_until_stopped(self) -> None:
        failures = 0
        while not self._stopping:
            room = self._limit - self._in_flight
            # Full batches (fewer, cheaper requests) unless the consumer would otherwise run dry.
            if room <= 0 or (room < min(self.batch_size, self._limit) and self._buffer):
                await self._room.wait()
                continue
            wanted = min(self.batch_size, room)
            sent = time.monotonic()
            try:
                messages = await self._receive(wanted)
            except _FATAL as exc:
                logger.error("cannot receive from %s: %s", self.queue_url, exc)
                self._fatal = exc
                self._begin_stop()
                return
            except StorageError as exc:
                failures += 1
                delay = random.uniform(0, min(_RECEIVE_BACKOFF_CAP, _RECEIVE_BACKOFF_BASE * 2 ** (failures - 1)))
                logger.warning("receiving from %s failed (%s); trying again in %.1fs", self.queue_url, exc, delay)
                await self._pause(delay)
                continue
            failures = 0
            if self._stopping:
                # Stopped while this receive was in flight: nobody will take what it got.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                    await self._release(messages, sent)
                return
            if messages:
                self._accept(messages, sent)
            elif self.wait_time == 0:
                # Short polling an empty queue: pause instead of spinning on ReceiveMessage.
                await self._pause(_EMPTY_SHORT_POLL_PAUSE)

    async def _pause(self, seconds: float) -> None:
        """Sleep between receives; a stop ends it at once."""
        if self._stopping:
            return
        with anyio.CancelScope() as scope:
            self._pause_scope = scope
            try:
                await anyio.sleep(seconds)
            finally:
                self._pause_scope = None

    async def _receive(self, wanted: int) -> list[dict[str, Any]]:
        """One long poll; ``[]`` when abandoned (``stop(now=True)``) or when stopped before it was sent."""
        extra: dict[str, Any] = {}
        if self.visibility_timeout is not None:
            extra["VisibilityTimeout"] = self.visibility_timeout
        assert self._retrying is not None

        async def receive_unless_stopping(**params: Any) -> dict[str, Any]:
            # A first attempt queued behind the connection limit, or a retry, after a stop began would be
            # a new long poll that nobody waits for.
            if self._stopping:
                return {}
            response: dict[str, Any] = await self._client.receive_message(**params)
            return response

        with anyio.CancelScope() as scope:
            self._receive_scope = scope
            try:
                response = await self._call(
                    "ReceiveMessage",
                    receive_unless_stopping,
                    attempt_timeout=self.wait_time + self._retrying.attempt_timeout,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=self.wait_time,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    **extra,
                )
            finally:
                self._receive_scope = None
            messages: list[dict[str, Any]] = response.get("Messages", [])
            return messages
        return []

    def _message(self, raw: dict[str, Any], sent: float) -> _Message:
        count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return _Message(raw["MessageId"], raw["ReceiptHandle"], count, sent, sent + self._vt)

    async def _release(self, messages: list[dict[str, Any]], sent: float) -> None:
        """Make messages received after a stop began visible again at once."""
        if not messages:
            return
        logger.info("returning %d message(s) received while stopping to %s", len(messages), self.queue_url)
        await self._change_visibility([(self._message(raw, sent), 0) for raw in messages])

    def _accept(self, messages: list[dict[str, Any]], sent: float) -> None:
        for raw in messages:
            message = self._message(raw, sent)
            count = message.receive_count
            try:
                records = parse_s3_event(raw.get("Body", ""))
            except Exception as exc:  # the poller never dies on a message, whatever the parser makes of it
                delay = self._retry_delay_for(message)
                logger.warning(
                    "message %s (receive %d) is not an S3 event; visible again in %.0fs, left for the redrive "
                    "policy: %s",
                    message.message_id,
                    count,
                    delay,
                    exc,
                )
                assert self._group is not None
                self._group.start_soon(self._change_visibility, [(message, math.ceil(delay))])
                continue
            if not records:
                logger.debug("message %s is an s3:TestEvent (or has no records); deleting it", message.message_id)
                message.state = "done"
                self._queue_delete(_Delete(message))
                continue
            message.unsettled = len(records)
            self._in_flight += 1
            for record in records:
                self._origin[id(record)] = (record, message)
                self._buffer.append(record)
            # One waiting consumer per record: waking all of run's idle workers for a few records costs
            # more CPU than the records themselves.
            self._arrived.set(len(records))

    async def _return_buffered(self) -> None:
        """Give prefetched, never-yielded messages back to the queue at once."""
        returned: list[_Message] = []
        while self._buffer:
            record = self._buffer.popleft()
            message = self._origin.pop(id(record))[1]
            if message.state == "buffered":
                self._settle(message)
                returned.append(message)
        if returned:
            logger.debug("returning %d prefetched message(s) to %s", len(returned), self.queue_url)
            await self._change_visibility([(message, 0) for message in returned])

    # Visibility

    async def _change_visibility(self, entries: list[tuple[_Message, int]]) -> set[_Message]:
        """Set each message's visibility timeout; the messages it could not be set for (logged)."""
        failed: set[_Message] = set()
        if not entries:
            return failed

        async def one_batch(batch: list[tuple[_Message, int]]) -> None:
            request = [
                {"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": seconds}
                for index, (message, seconds) in enumerate(batch)
            ]
            try:
                response = await self._call(
                    "ChangeMessageVisibilityBatch", self._client.change_message_visibility_batch, Entries=request
                )
            except StorageError as exc:
                logger.warning("changing the visibility of %d message(s) failed: %s", len(batch), exc)
                failed.update(message for message, _ in batch)
                return
            for entry in response.get("Failed", []):
                message = batch[int(entry["Id"])][0]
                failed.add(message)
                logger.warning(
                    "changing the visibility of message %s failed: %s: %s",
                    message.message_id,
                    entry.get("Code"),
                    entry.get("Message"),
                )

        async with task_group() as group:
            for start in range(0, len(entries), MAX_BATCH):
                group.start_soon(one_batch, entries[start : start + MAX_BATCH])
        return failed

    async def _heartbeat_loop(self) -> None:
        while True:
            now = time.monotonic()
            due: list[tuple[_Message, int]] = []
            next_check = now + self._vt / 4
            for message in self._held:
                renew_at = message.visible_until - self._vt / 2
                if renew_at > now:
                    next_check = min(next_check, renew_at)
                    continue
                # SQS allows 12 hours from the receipt in all; past that the message comes back.
                allowed = math.floor(MAX_VISIBILITY - (now - message.received_at)) - 1
                seconds = min(self._vt, allowed)
                if seconds > 0:
                    due.append((message, seconds))
                elif not message.past_limit_logged:
                    message.past_limit_logged = True
                    logger.warning("message %s reached SQS's 12-hour visibility limit", message.message_id)
            if due:
                failed = await self._change_visibility(due)
                for message, seconds in due:
                    if message not in failed:
                        message.visible_until = now + seconds
                if failed:
                    next_check = time.monotonic() + min(1.0, self._vt / 4)
                else:
                    continue
            with anyio.move_on_after(max(0.0, next_check - time.monotonic())):
                await self._beat.wait()

    # Deleting

    def _queue_delete(self, entry: _Delete) -> None:
        self._deletes.append(entry)
        # The delete task waits for a first entry, then for a full batch or its timer.
        if len(self._deletes) in (1, MAX_BATCH):
            self._delete_wakeup.set()

    async def _delete_loop(self) -> None:
        while True:
            while not self._deletes:
                await self._delete_wakeup.wait()
            deadline = time.monotonic() + self.delete_interval
            while len(self._deletes) < MAX_BATCH and (remaining := deadline - time.monotonic()) > 0:
                with anyio.move_on_after(remaining):
                    await self._delete_wakeup.wait()
            await self._flush_deletes()

    async def _flush_deletes(self, *, final: bool = False) -> None:
        """Delete acknowledged messages, 10 a call; on ``final``, retry failed entries until given up."""
        assert self._flush_lock is not None
        async with self._flush_lock:
            while self._deletes:
                pending, self._deletes = self._deletes, []
                async with task_group() as group:
                    for start in range(0, len(pending), MAX_BATCH):
                        group.start_soon(self._delete_batch, pending[start : start + MAX_BATCH])
                if not final:
                    return

    async def _delete_batch(self, batch: list[_Delete]) -> None:
        request = [{"Id": str(index), "ReceiptHandle": item.message.receipt_handle} for index, item in enumerate(batch)]
        failures: list[tuple[_Delete, str]] = []
        try:
            response = await self._call("DeleteMessageBatch", self._client.delete_message_batch, Entries=request)
        except StorageError as exc:
            failures = [(entry, str(exc)) for entry in batch]
        else:
            for failed in response.get("Failed", []):
                entry = batch[int(failed["Id"])]
                if failed.get("Code") == "ReceiptHandleIsInvalid":
                    entry.attempts = _DELETE_ATTEMPTS
                failures.append((entry, f"{failed.get('Code')}: {failed.get('Message')}"))
        for entry, reason in failures:
            entry.attempts += 1
            if entry.attempts < _DELETE_ATTEMPTS:
                self._queue_delete(entry)
            else:
                logger.warning(
                    "could not delete message %s (%s); it will be delivered again", entry.message.message_id, reason
                )


def _describe(record: S3EventRecord) -> str:
    return f"{record.event_name} s3://{record.bucket}/{record.key}"
