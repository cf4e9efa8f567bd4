"""Deletes and visibility changes, ten messages a call (DeleteMessageBatch, ChangeMessageVisibilityBatch).

Acknowledged messages are queued and deleted by one task in full batches, or after ``interval`` seconds
at the latest; an entry SQS reports as failed is queued again, up to ``_DELETE_ATTEMPTS`` flushes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import anyio

from .._exceptions import StorageError
from .._tasks import task_group
from .ledger import Message
from .sqs import MAX_BATCH, SqsQueue

__all__ = ["Batcher"]

logger = logging.getLogger("aiostorage.events")

# Flushes a delete that SQS reports as failed is tried in before it is given up (and logged).
_DELETE_ATTEMPTS = 3


@dataclass(eq=False)
class _Delete:
    message: Message
    attempts: int = 0


class Batcher:
    """Batches of deletes (``delete``, sent by ``run``'s task) and of visibility changes."""

    def __init__(self, queue: SqsQueue, interval: float) -> None:
        self._queue = queue
        self._interval = interval
        self._deletes: list[_Delete] = []
        # The delete task is its one waiter: it arms a fresh Event before it looks.
        self._queued = anyio.Event()
        self._flush_lock = anyio.Lock()

    # Deleting

    def delete(self, message: Message) -> None:
        """Queue ``message`` for deletion; never fails (a failed delete is retried, then logged)."""
        self._queue_delete(_Delete(message))

    def _queue_delete(self, entry: _Delete) -> None:
        self._deletes.append(entry)
        # The delete task waits for a first entry, then for a full batch or its timer.
        if len(self._deletes) in (1, MAX_BATCH):
            self._queued.set()

    async def run(self) -> None:
        """The delete task: flush once a batch is full or the first entry has waited ``interval``."""
        while True:
            while not self._deletes:
                await self._wait_for_entries()
            deadline = time.monotonic() + self._interval
            while len(self._deletes) < MAX_BATCH and (remaining := deadline - time.monotonic()) > 0:
                with anyio.move_on_after(remaining):
                    await self._wait_for_entries()
            await self.flush()

    async def _wait_for_entries(self) -> None:
        self._queued = anyio.Event()
        await self._queued.wait()

    async def flush(self, *, final: bool = False) -> None:
        """Delete the queued messages; on ``final``, retry failed entries until given up."""
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
            response = await self._queue.call(
                "DeleteMessageBatch", self._queue.client.delete_message_batch, Entries=request
            )
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

    # Visibility

    async def change_visibility(self, entries: list[tuple[Message, int]]) -> set[Message]:
        """Set each message's visibility timeout; the messages it could not be set for (logged)."""
        failed: set[Message] = set()
        if not entries:
            return failed

        async def one_batch(batch: list[tuple[Message, int]]) -> None:
            request = [
                {"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": seconds}
                for index, (message, seconds) in enumerate(batch)
            ]
            try:
                response = await self._queue.call(
                    "ChangeMessageVisibilityBatch", self._queue.client.change_message_visibility_batch, Entries=request
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
