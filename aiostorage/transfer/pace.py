"""How many listing requests run at once: as many as the server rewards, found as the listing goes.

S3 answers many requests at once as fast as one (each waits on latency, not on the server), so every
request more in flight is a gain. A server that works on one request at a time (moto, s3rver, a busy
box) answers two at half the speed each: more in flight only adds contention, and the requests a
fan-out adds on top of a sequential listing cost it real time. Nothing tells the two apart before the
listing starts, so the listing measures.

Pages sent with nothing else in flight (the listing's first ones) show how long a page takes alone,
as a line through the smallest and the largest of them: on a server bound by its CPU a page of 500
keys takes about half as long as one of 1,000, on S3 about as long. A page sent with more in flight
is judged against that line for its own size (its slowdown). The limit starts at two requests in
flight and rises ``STEP``-fold, up to ``ceiling``, while the mean slowdown at the new level stays
within ``GROWTH`` times the level before's (1 with nothing else in flight). A level is judged by its
first answers (``VOTES``, or one per slot if more) among requests sent with every slot of the level
taken, so that each of them met the level's full load; a mean, so one request that had to open a new
connection does not decide alone. The first level that slows answers down more than that stays.

The time a request took leaves out the garbage collector's pauses meanwhile: a full collection stops
the event loop, every request in flight looks that much slower, and a server that answers many
requests at once as fast as one would be judged to serve one at a time (the listing would then go on
at two requests in flight).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._transport import ListPage

__all__ = ["GROWTH", "STEP", "VOTES", "CollectorPauses", "Pace", "collector_pauses"]

# Answers at a raised level may take this much longer: 4 times the requests then bring 3 times the
# answers a second.
GROWTH = 4 / 3
# Answers that judge a level, at the least.
VOTES = 4
# Each rise multiplies the requests in flight by this: S3 rewards dozens, and every level judged costs
# a round trip or two at less than the server could do.
STEP = 4


class CollectorPauses:
    """Seconds the garbage collector has stopped the process for, summed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.monotonic()
        else:
            self.total += time.monotonic() - self._started


collector_pauses = CollectorPauses()


def _entries(page: ListPage) -> int:
    return len(page.objects) + len(page.prefixes)


class Pace:
    """A limit on requests in flight that starts at 2 and rises while that keeps answers as fast.

    ``alone`` holds (entries, seconds) of pages fetched with nothing else in flight.
    """

    def __init__(self, ceiling: int, alone: list[tuple[int, float]]) -> None:
        if collector_pauses not in gc.callbacks:
            gc.callbacks.append(collector_pauses)
        self.ceiling = ceiling
        self._first_level = self.level = min(2, ceiling)
        self.limiter = anyio.CapacityLimiter(self.level)
        # The smallest page fetched alone (the fastest of that size) and the largest (likewise).
        self._small = self._large = alone[0]
        for entries, seconds in alone[1:]:
            self.learn(entries, seconds)
        self._slowdown = 1.0
        self._growing = self.level < ceiling
        self._votes: list[float] = []
        # Judged to serve about one request at a time: even the first level slowed its answers down.
        self.busy = False

    async def run(self, request: Callable[[], Awaitable[ListPage]]) -> ListPage:
        """``request()`` within the limit, timed to judge the level it was sent at."""
        async with self.limiter:
            level = self.level
            taken = self.limiter.borrowed_tokens
            started, paused = anyio.current_time(), collector_pauses.total
            page = await request()
            seconds = anyio.current_time() - started - (collector_pauses.total - paused)
        if taken == 1:
            self.learn(_entries(page), seconds)
        elif taken >= level and self._growing:
            self.observe(level, seconds / self.alone(_entries(page)))
        return page

    def learn(self, entries: int, seconds: float) -> None:
        """A page of ``entries`` took ``seconds`` with nothing else in flight."""
        sample = (entries, seconds)
        self._small = min(self._small, sample, key=lambda known: (known[0], known[1]))
        self._large = max(self._large, sample, key=lambda known: (known[0], -known[1]))

    def alone(self, entries: int) -> float:
        """How long a page of ``entries`` takes with nothing else in flight, judged by those seen so."""
        small, large = self._small, self._large
        if large[0] == small[0]:
            return max(min(small[1], large[1]), 1e-6)
        per_entry = max(0.0, (large[1] - small[1]) / (large[0] - small[0]))
        return max(small[1] + per_entry * (entries - small[0]), small[1] / 2, 1e-6)

    def observe(self, level: int, slowdown: float) -> None:
        """A request sent at ``level`` with every slot taken took ``slowdown`` times as long as alone."""
        if not self._growing or level != self.level:
            return
        self._votes.append(slowdown)
        if len(self._votes) < max(VOTES, level):
            return
        mean = sum(self._votes) / len(self._votes)
        self._votes = []
        if mean > GROWTH * self._slowdown:
            self._growing = False
            self.busy = level == self._first_level
            return
        self._slowdown = max(mean, 1.0)
        self.level = min(STEP * level, self.ceiling)
        self.limiter.total_tokens = self.level
        self._growing = self.level < self.ceiling
