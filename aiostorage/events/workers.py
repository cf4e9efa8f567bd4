"""``run``'s worker pool: a fixed number of tasks, each calling the handler on one record at a time.

A handler that returns acks its record, one that raises nacks it; stopping gives the handlers in flight
a grace period, then cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from .._tasks import task_group
from .ledger import describe
from .models import S3EventRecord

__all__ = ["Handler", "WorkerPool"]

logger = logging.getLogger("aiostorage.events")

Handler = Callable[[S3EventRecord], Awaitable[object]]
"""``S3EventPoller.run``'s handler: an async callable taking one ``S3EventRecord``.

Returning acknowledges the record (its message is deleted once all its records are); raising an
``Exception`` nacks it (the message comes back after the poller's backoff). What it returns is ignored.
"""


@dataclass(eq=False)
class WorkerPool:
    """Workers calling ``handler`` on the records ``next_record`` gives until it gives ``None``; ``ack``
    and ``nack`` (``delay=None``: the default backoff) settle each record.
    """

    handler: Handler
    next_record: Callable[[], Awaitable[S3EventRecord | None]]
    ack: Callable[[S3EventRecord], Awaitable[None]]
    nack: Callable[[S3EventRecord, float | None], Awaitable[None]]
    grace_period: float
    # The cancel scopes of the handlers in flight (shielded: cancelling run leaves them their grace
    # period; _drain cancels them after it).
    _running: set[anyio.CancelScope] = field(default_factory=set, init=False)
    _workers: int = field(default=0, init=False)
    _all_done: anyio.Event = field(default_factory=anyio.Event, init=False)

    async def serve(self, concurrency: int, *, stopped: anyio.Event, stop: Callable[[], None]) -> None:
        """Run ``concurrency`` workers until ``stopped`` is set, or until cancelled (which calls ``stop``);
        then give the handlers in flight the grace period to finish.
        """
        async with task_group() as workers:
            for _ in range(concurrency):
                self._workers += 1
                workers.start_soon(self._work)
            try:
                await stopped.wait()
            except BaseException:
                stop()
                raise
            finally:
                with anyio.CancelScope(shield=True):
                    await self._drain()

    async def _drain(self) -> None:
        with anyio.move_on_after(self.grace_period):
            await self._all_done.wait()
        for scope in list(self._running):
            scope.cancel()

    async def _work(self) -> None:
        try:
            await self._take_records()
        finally:
            self._workers -= 1
            if not self._workers:
                self._all_done.set()

    async def _take_records(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            record = await self.next_record()
            if record is None:
                return
            scope = anyio.CancelScope(shield=True)
            self._running.add(scope)
            returned = False
            cancel_requests = task.cancelling()
            try:
                with scope:
                    try:
                        await self.handler(record)
                        returned = True
                    except Exception:
                        logger.exception("handler failed on %s; the message goes back to the queue", describe(record))
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
                                describe(record),
                            )
            finally:
                self._running.discard(scope)
            if returned:
                await self.ack(record)
                continue
            with anyio.CancelScope(shield=True):
                if scope.cancel_called:
                    logger.warning("handler still running after the grace period on %s; returned", describe(record))
                    await self.nack(record, 0)
                else:
                    await self.nack(record, None)
