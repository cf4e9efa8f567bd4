"""The receiver: one task that long-polls the queue while the ledger has room, until the poller stops.

Stopping never cancels a long poll that is waiting at SQS: SQS keeps handing the messages that arrive to
an abandoned poll, and they would stay invisible for the visibility timeout. The poll is let finish
(SQS answers it within ``wait_time``) and what it took is made visible again at once.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._exceptions import AccessDenied, ConfigError, InvalidArgument, StorageError
from .batcher import Batcher
from .ledger import Ledger, Message
from .parse import parse_s3_event
from .sqs import SqsQueue

__all__ = ["CLEANUP_TIMEOUT", "Receiver"]

logger = logging.getLogger("aiostorage.events")

# Bound on the shielded cleanup when stopping or leaving the block.
CLEANUP_TIMEOUT = 30.0
# Receive errors that no retry can fix: raised to the user at once.
_FATAL = (ConfigError, AccessDenied, InvalidArgument)
# Seconds between receives on an empty queue when long polling is off (wait_time=0).
_EMPTY_SHORT_POLL_PAUSE = 1.0
# Time past ``wait_time`` a stopping poller gives SQS to answer the long poll in flight before abandoning
# it: the answer's round trip on a slow network. A poll still unanswered by then is taken as hung.
_RECEIVE_ANSWER_MARGIN = 2.0
_RECEIVE_BACKOFF_BASE = 0.5
_RECEIVE_BACKOFF_CAP = 20.0


class Receiver:
    """Receives S3 event records into ``ledger``, as many as it has room for.

    Test events are deleted; a message that is not an S3 event is made visible again after
    ``retry_delay_for`` and left for the redrive policy (``group`` runs that change). ``on_fatal`` gets
    an error no retry can fix; the receiver has then ended.
    """

    def __init__(
        self,
        queue: SqsQueue,
        ledger: Ledger,
        batcher: Batcher,
        *,
        batch_size: int,
        wait_time: int,
        visibility_timeout: int | None,
        retry_delay_for: Callable[[Message], float],
        on_fatal: Callable[[StorageError], None],
        group: TaskGroup,
    ) -> None:
        self._queue = queue
        self._ledger = ledger
        self._batcher = batcher
        self._batch_size = batch_size
        self._wait_time = wait_time
        self._extra: dict[str, Any] = {}
        if visibility_timeout is not None:
            self._extra["VisibilityTimeout"] = visibility_timeout
        self._retry_delay_for = retry_delay_for
        self._on_fatal = on_fatal
        self._group = group
        self.stopping = False
        self.done = anyio.Event()
        # The receive in flight (cancelled only to abandon it) and the pause between receives (cancelled
        # by any stop).
        self._receive_scope: anyio.CancelScope | None = None
        self._pause_scope: anyio.CancelScope | None = None

    async def run(self) -> None:
        try:
            await self._receive_until_stopped()
        finally:
            self.done.set()

    def stop(self) -> None:
        """Send no more receives; a receive in flight goes on (see ``finish``)."""
        self.stopping = True
        if self._pause_scope is not None:
            self._pause_scope.cancel()

    def abandon(self) -> bool:
        """Cancel the receive in flight, if any; the messages SQS hands it stay hidden until they expire."""
        if self._receive_scope is None:
            return False
        self._receive_scope.cancel()
        return True

    async def finish(self) -> None:
        """Wait for the receiver to end, a receive in flight included (what it took is released).

        SQS answers a long poll within ``wait_time``: one still unanswered a margin later is abandoned.
        """
        if self.done.is_set():
            return
        with anyio.move_on_after(self._wait_time + _RECEIVE_ANSWER_MARGIN):
            await self.done.wait()
        if self.done.is_set():
            return
        if self.abandon():
            logger.warning(
                "a receive from %s was not answered within wait_time (%ss); abandoned: messages it takes stay "
                "invisible until their visibility timeout",
                self._queue.url,
                self._wait_time,
            )
        with anyio.move_on_after(CLEANUP_TIMEOUT):
            await self.done.wait()

    async def _receive_until_stopped(self) -> None:
        failures = 0
        while not self.stopping:
            wanted = await self._ledger.room_for(self._batch_size)
            if not wanted:
                return
            sent = time.monotonic()
            try:
                messages = await self._receive(wanted)
            except _FATAL as exc:
                logger.error("cannot receive from %s: %s", self._queue.url, exc)
                self._on_fatal(exc)
                return
            except StorageError as exc:
                failures += 1
                delay = random.uniform(0, min(_RECEIVE_BACKOFF_CAP, _RECEIVE_BACKOFF_BASE * 2 ** (failures - 1)))
                logger.warning("receiving from %s failed (%s); trying again in %.1fs", self._queue.url, exc, delay)
                await self._pause(delay)
                continue
            failures = 0
            if self.stopping:
                # Stopped while this receive was in flight: nobody will take what it got.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                    await self._release(messages, sent)
                return
            if messages:
                self._accept(messages, sent)
            elif self._wait_time == 0:
                # Short polling an empty queue: pause instead of spinning on ReceiveMessage.
                await self._pause(_EMPTY_SHORT_POLL_PAUSE)

    async def _pause(self, seconds: float) -> None:
        """Sleep between receives; a stop ends it at once."""
        if self.stopping:
            return
        with anyio.CancelScope() as scope:
            self._pause_scope = scope
            try:
                await anyio.sleep(seconds)
            finally:
                self._pause_scope = None

    async def _receive(self, wanted: int) -> list[dict[str, Any]]:
        """One long poll; ``[]`` when abandoned (``stop(now=True)``) or when stopped before it was sent."""

        async def receive_unless_stopping(**params: Any) -> dict[str, Any]:
            # A first attempt queued behind the connection limit, or a retry, after a stop began would be
            # a new long poll that nobody waits for.
            if self.stopping:
                return {}
            response: dict[str, Any] = await self._queue.client.receive_message(**params)
            return response

        with anyio.CancelScope() as scope:
            self._receive_scope = scope
            try:
                response = await self._queue.call(
                    "ReceiveMessage",
                    receive_unless_stopping,
                    attempt_timeout=self._wait_time + self._queue.retrying.attempt_timeout,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=self._wait_time,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    **self._extra,
                )
            finally:
                self._receive_scope = None
            messages: list[dict[str, Any]] = response.get("Messages", [])
            return messages
        return []

    def _message(self, raw: dict[str, Any], sent: float) -> Message:
        return Message.received(raw, sent, self._ledger.visibility_timeout)

    async def _release(self, messages: list[dict[str, Any]], sent: float) -> None:
        """Make messages received after a stop began visible again at once."""
        if not messages:
            return
        logger.info("returning %d message(s) received while stopping to %s", len(messages), self._queue.url)
        await self._batcher.change_visibility([(self._message(raw, sent), 0) for raw in messages])

    def _accept(self, messages: list[dict[str, Any]], sent: float) -> None:
        for raw in messages:
            message = self._message(raw, sent)
            try:
                records = parse_s3_event(raw.get("Body", ""))
            except Exception as exc:  # the poller never dies on a message, whatever the parser makes of it
                delay = self._retry_delay_for(message)
                logger.warning(
                    "message %s (receive %d) is not an S3 event; visible again in %.0fs, left for the redrive "
                    "policy: %s",
                    message.message_id,
                    message.receive_count,
                    delay,
                    exc,
                )
                self._group.start_soon(self._batcher.change_visibility, [(message, math.ceil(delay))])
                continue
            if not records:
                logger.debug("message %s is an s3:TestEvent (or has no records); deleting it", message.message_id)
                self._batcher.delete(message)
                continue
            tagged = [record.model_copy(update={"message_id": message.message_id}) for record in records]
            self._ledger.add(message, tagged)
