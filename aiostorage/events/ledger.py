"""The ledger: every message a poller holds, from its receipt to its settlement, and its visibility deadline.

A message is *buffered* from its receipt until a record of it is yielded, then *held* until all its records
are acknowledged or it is nacked, then *done*. Buffered and held messages count against the in-flight
limit. Held messages get their visibility extended (the heartbeat); buffered ones do not, so the queue
takes a prefetched message back if it waits too long, and the ledger then drops it unyielded.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from .models import S3EventRecord
from .sqs import MAX_VISIBILITY

__all__ = ["Ledger", "Message", "describe"]

logger = logging.getLogger("aiostorage.events")


@dataclass(eq=False)
class Message:
    message_id: str
    receipt_handle: str
    receive_count: int
    # When the receive was sent: SQS started the visibility clock no earlier, so deadlines err early.
    received_at: float
    visible_until: float
    unsettled: int = 0
    state: Literal["buffered", "held", "done"] = "buffered"
    past_limit_logged: bool = False

    @classmethod
    def received(cls, raw: dict[str, Any], sent: float, visibility_timeout: int) -> Message:
        """The message as ReceiveMessage returned it (``raw``), from a receive sent at ``sent``."""
        count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return cls(raw["MessageId"], raw["ReceiptHandle"], count, sent, sent + visibility_timeout)


def describe(record: S3EventRecord) -> str:
    return f"{record.event_name} s3://{record.bucket}/{record.key}"


class Ledger:
    """Buffered records in arrival order, the message of every record, and the held messages.

    ``limit`` caps the messages buffered or held. Closing it ends ``next`` and ``room_for`` for good.
    """

    def __init__(self, limit: int, visibility_timeout: int) -> None:
        self.limit = limit
        self.visibility_timeout = visibility_timeout
        self.closed = False
        self._in_flight = 0
        self._records: deque[S3EventRecord] = deque()
        # One permit per buffered record: an arrival wakes one waiting consumer, not all of run's workers,
        # and a consumer cancelled after it was woken passes its permit on.
        self._arrivals = anyio.Semaphore(0, fast_acquire=True)
        # Records buffered or handed out, by identity (records are values: equal ones can come twice).
        self._origin: dict[int, tuple[S3EventRecord, Message]] = {}
        self._held: set[Message] = set()
        # Each has one waiter (the receiver, the heartbeat), which arms a fresh Event before it looks.
        self._room = anyio.Event()
        self._renewal = anyio.Event()

    # Receiving

    def add(self, message: Message, records: list[S3EventRecord]) -> None:
        message.unsettled = len(records)
        self._in_flight += 1
        for record in records:
            self._origin[id(record)] = (record, message)
            self._records.append(record)
            self._arrivals.release()

    async def room_for(self, batch_size: int) -> int:
        """How many messages the next receive may take, once there is room for them; 0 once closed.

        Full batches (fewer, cheaper requests) unless the consumer would otherwise run dry.
        """
        while not self.closed:
            room = self.limit - self._in_flight
            if room >= min(batch_size, self.limit) or (room > 0 and not self._records):
                return min(batch_size, room)
            self._room = anyio.Event()
            await self._room.wait()
        return 0

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._room.set()

    # Yielding and settling

    async def next(self) -> S3EventRecord | None:
        """The next record, its message now held; ``None`` once closed."""
        while not self.closed:
            await self._arrivals.acquire()
            if self.closed:
                break
            record = self._records.popleft()
            if not self._records:
                self._room.set()
            message = self._origin[id(record)][1]
            if message.state == "done":
                del self._origin[id(record)]
                continue
            if message.state == "buffered":
                now = time.monotonic()
                if self.visibility_timeout > 0 and now >= message.visible_until:
                    # It may already be another consumer's: working on it would only duplicate work.
                    logger.debug("message %s expired before it was yielded; dropped", message.message_id)
                    self.settle(message)
                    del self._origin[id(record)]
                    continue
                message.state = "held"
                self._held.add(message)
                if message.visible_until - now < self.visibility_timeout / 2:
                    self._renewal.set()
            return record
        return None

    def claim(self, record: S3EventRecord) -> Message | None:
        """The record's message if it still needs settling; ``None`` (a no-op) if already settled."""
        entry = self._origin.get(id(record))
        if entry is None or entry[0] is not record or entry[1].state != "held":
            logger.debug("%s is not held by this poller (already settled?); ignored", describe(record))
            return None
        del self._origin[id(record)]
        return entry[1]

    def acknowledge(self, record: S3EventRecord) -> Message | None:
        """The record's message, settled, once every record of it is acknowledged; else ``None``."""
        message = self.claim(record)
        if message is None:
            return None
        message.unsettled -= 1
        if message.unsettled > 0:
            return None
        self.settle(message)
        return message

    def settle(self, message: Message) -> None:
        if message.state == "done":
            return
        message.state = "done"
        self._held.discard(message)
        self._in_flight -= 1
        self._room.set()

    # Stopping

    def close(self) -> None:
        """Wake every consumer and the receiver: nothing more is yielded or received."""
        self.closed = True
        for _ in range(self._arrivals.statistics().tasks_waiting):
            self._arrivals.release()
        self._room.set()

    def take_buffered(self) -> list[Message]:
        """Settle the prefetched messages of which no record was yielded, to give them back."""
        returned: list[Message] = []
        while self._records:
            record = self._records.popleft()
            message = self._origin.pop(id(record))[1]
            if message.state == "buffered":
                self.settle(message)
                returned.append(message)
        return returned

    def take_held(self) -> list[Message]:
        """Settle the held messages, to give them back."""
        held = list(self._held)
        for message in held:
            self.settle(message)
        return held

    def forget(self) -> None:
        """Drop every record: acknowledging one from now on does nothing."""
        self._origin.clear()

    # Heartbeat

    async def heartbeat(self, extend: Callable[[list[tuple[Message, int]]], Awaitable[set[Message]]]) -> None:
        """Keep held messages invisible: ``extend`` sets their visibility, returning those it failed for.

        A message is renewed once half its visibility timeout has passed, for one more timeout.
        """
        timeout = self.visibility_timeout
        while True:
            self._renewal = anyio.Event()
            now = time.monotonic()
            due: list[tuple[Message, int]] = []
            next_check = now + timeout / 4
            for message in self._held:
                renew_at = message.visible_until - timeout / 2
                if renew_at > now:
                    next_check = min(next_check, renew_at)
                    continue
                # SQS allows 12 hours from the receipt in all; past that the message comes back.
                allowed = math.floor(MAX_VISIBILITY - (now - message.received_at)) - 1
                seconds = min(timeout, allowed)
                if seconds > 0:
                    due.append((message, seconds))
                elif not message.past_limit_logged:
                    message.past_limit_logged = True
                    logger.warning("message %s reached SQS's 12-hour visibility limit", message.message_id)
            if due:
                failed = await extend(due)
                for message, seconds in due:
                    if message not in failed:
                        message.visible_until = now + seconds
                if not failed:
                    continue
                next_check = time.monotonic() + min(1.0, timeout / 4)
            with anyio.move_on_after(max(0.0, next_check - time.monotonic())):
                await self._renewal.wait()
