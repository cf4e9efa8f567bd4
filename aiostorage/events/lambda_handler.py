"""sqs_lambda_handler: an async S3 event handler as the handler of an AWS Lambda function fed by SQS.

In this shape AWS's event source mapping does what ``S3EventPoller`` does in a long-running worker: it
polls the queue, scales the function out, deletes the messages of a batch that succeeded and leaves the
others to the queue's redrive policy. The function only handles one batch per invocation and names the
messages that failed (``ReportBatchItemFailures``), so one bad message does not send the whole batch back.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from .._exceptions import InvalidArgument, StorageError
from .ledger import describe
from .models import S3EventRecord
from .parse import parse_s3_event
from .workers import Handler

__all__ = ["DEFAULT_MARGIN", "LambdaHandler", "sqs_lambda_handler"]

logger = logging.getLogger("aiostorage.events")

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, list[dict[str, str]]]]

# Seconds before the function's timeout at which handlers still running are cancelled: enough for their
# cleanup (an aborted multipart upload is one request) and for the response to leave before Lambda kills
# the invocation, which would send the whole batch back, the successes too.
DEFAULT_MARGIN = 1.0
# How often the remaining time is read; the check is a subtraction, the interval bounds the overshoot.
_CHECK_INTERVAL = 0.05

# One event loop per process, kept across warm invocations: clients opened in one invocation (a store
# opened lazily at module level) are bound to this loop and stay usable in the next. A loop factory keeps
# the Runner from installing its loop as the thread's current one.
_runner: asyncio.Runner | None = None


def _loop_runner() -> asyncio.Runner:
    global _runner
    if _runner is None:
        _runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        atexit.register(_runner.close)
    return _runner


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _is_async_callable(handler: object) -> bool:
    # An instance with an ``async def __call__`` is an async handler too.
    call = inspect.getattr_static(type(handler), "__call__", None)
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


def sqs_lambda_handler(handler: Handler, *, concurrency: int = 10, margin: float = DEFAULT_MARGIN) -> LambdaHandler:
    """Wrap an async ``handler(record)`` as a Lambda handler for an SQS event source mapping.

    The mapping must report batch item failures (``function_response_types = ["ReportBatchItemFailures"]``).
    Each SQS record's ``body`` is parsed with ``parse_s3_event`` (S3's own notification, SNS-wrapped,
    EventBridge); ``s3:TestEvent`` succeeds with no call. The records of the batch are handled concurrently,
    at most ``concurrency`` at a time, each with ``message_id`` set to its SQS message's id. The return value
    names every message whose body did not parse or one of whose records' handler raised:
    ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}``; Lambda deletes the others.

    Handlers still running ``margin`` seconds before the function's timeout
    (``context.get_remaining_time_in_millis()``) are cancelled and their messages reported failed, as are
    records not started by then: the batch is answered instead of being lost to the timeout. Every failure
    is logged on one line with the message id and the key.

    One event loop serves every invocation of the process, so a store opened in the first invocation and
    kept (e.g. in a module-level variable) is reused by the warm invocations that follow.
    """
    if not callable(handler) or not _is_async_callable(handler):
        raise InvalidArgument(f"handler must be an async function (async def handler(record)), got {handler!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgument(f"concurrency must be an integer of at least 1, got {concurrency!r}")
    if margin < 0:
        raise InvalidArgument(f"margin must be at least 0 seconds, got {margin!r}")

    def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
        if _running_loop() is not None:
            raise StorageError(
                "the Lambda handler runs its own event loop: call it from synchronous code (Lambda's runtime, "
                "a script, a thread), not from a coroutine"
            )
        return _loop_runner().run(_handle_batch(handler, event, context, concurrency, margin))

    lambda_handler.__doc__ = f"Lambda handler for S3 events from SQS, calling {getattr(handler, '__name__', handler)}."
    return lambda_handler


def _messages(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # A malformed event cannot name its failed messages: raising sends the whole batch back, as it should.
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidArgument("not an SQS event: expected a mapping with a list of Records")
    for raw in records:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("messageId"), str):
            raise InvalidArgument("not an SQS event: a record without a messageId")
    return records


async def _handle_batch(
    handler: Handler, event: Mapping[str, Any], context: Any, concurrency: int, margin: float
) -> dict[str, list[dict[str, str]]]:
    messages = _messages(event)
    failed: set[str] = set()
    jobs: list[S3EventRecord] = []
    for raw in messages:
        message_id: str = raw["messageId"]
        try:
            records = parse_s3_event(raw.get("body", ""))
        except Exception as exc:  # one message, whatever the parser makes of it, never fails the batch
            attributes = raw.get("attributes")
            receives = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
            logger.warning(
                "message %s%s is not an S3 event; reported failed, left for the redrive policy: %s",
                message_id,
                f" (receive {receives})" if receives else "",
                exc,
            )
            failed.add(message_id)
            continue
        jobs.extend(record.model_copy(update={"message_id": message_id}) for record in records)
    if jobs:
        await _run(handler, jobs, context, concurrency, margin, failed)
    reported: list[dict[str, str]] = []
    for raw in messages:
        message_id = raw["messageId"]
        if message_id in failed:
            failed.discard(message_id)  # a message id given twice is reported once
            reported.append({"itemIdentifier": message_id})
    return {"batchItemFailures": reported}


async def _run(
    handler: Handler,
    jobs: list[S3EventRecord],
    context: Any,
    concurrency: int,
    margin: float,
    failed: set[str],
) -> None:
    pending = iter(jobs)
    started: set[int] = set()  # indices into jobs
    done: set[int] = set()
    positions = {id(record): index for index, record in enumerate(jobs)}
    deadline = anyio.CancelScope()

    async def work() -> None:
        for record in pending:
            assert record.message_id is not None
            if record.message_id in failed:
                continue  # another record of its message failed: the whole message comes back anyway
            index = positions[id(record)]
            started.add(index)
            if await _call(handler, record, deadline):
                done.add(index)
            else:
                failed.add(record.message_id)

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    async with anyio.create_task_group() as watch:
        if callable(remaining):
            watch.start_soon(_watch_deadline, remaining, margin, deadline)
        with deadline:
            async with anyio.create_task_group() as workers:
                for _ in range(min(concurrency, len(jobs))):
                    workers.start_soon(work)
        watch.cancel_scope.cancel()
    if deadline.cancel_called:
        for index, record in enumerate(jobs):
            assert record.message_id is not None
            if index not in done and record.message_id not in failed:
                logger.error(
                    "message %s: %s %s %.1fs before the function's timeout; reported failed",
                    record.message_id,
                    describe(record),
                    "still running, cancelled" if index in started else "not started",
                    margin,
                )
        for index, record in enumerate(jobs):
            if index not in done:
                assert record.message_id is not None
                failed.add(record.message_id)


async def _watch_deadline(remaining_ms: Callable[[], int], margin: float, deadline: anyio.CancelScope) -> None:
    while True:
        left = remaining_ms() / 1000 - margin
        if left <= 0:
            deadline.cancel()
            return
        await anyio.sleep(min(left, _CHECK_INTERVAL))


async def _call(handler: Handler, record: S3EventRecord, deadline: anyio.CancelScope) -> bool:
    """Whether ``handler`` returned for ``record``; a failure is logged here."""
    task = asyncio.current_task()
    assert task is not None
    cancel_requests = task.cancelling()
    try:
        await handler(record)
        return True
    except Exception as exc:
        logger.error(
            "message %s: handler failed on %s; reported failed: %r",
            record.message_id,
            describe(record),
            exc,
            exc_info=True,
        )
        return False
    except asyncio.CancelledError:
        if deadline.cancel_called:
            raise
        # Not the deadline's: a task or future the handler awaited was cancelled elsewhere. It fails this
        # record only; a cancel request the handler's code made on this task is withdrawn with it.
        while task.cancelling() > cancel_requests:
            task.uncancel()
        logger.error(
            "message %s: handler failed on %s with a CancelledError that was not the deadline's; reported failed",
            record.message_id,
            describe(record),
            exc_info=True,
        )
        return False
