"""How many listing requests run at once: as many as the server rewards, found as the listing goes.

S3 answers many requests at once as fast as one (each waits on latency, not on the server), so every
request more in flight is a gain. A server that works on one request at a time (moto, s3rver, a busy
box) answers two at half the speed each: more in flight only adds contention, and the requests a
fan-out adds on top of a sequential listing cost it real time. Nothing tells the two apart before the
listing starts, so the listing measures. It starts with two requests in flight and rises ``STEP``-fold,
up to ``ceiling``, while the answers at the new level take at most ``GROWTH`` times as long as at the
level before (one at a time, for the first). A level is judged by the mean time of its first answers
(``VOTES``, or one per slot if more) among requests sent with every slot of the level taken, so that
each of them met the level's full load; a mean, so one request that had to open a new connection does
not decide alone. The first level whose answers slow down more than that stays for the rest of the
listing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ["GROWTH", "STEP", "VOTES", "Pace"]

T = TypeVar("T")

# Answers at a raised level may take this much longer: 4 times the requests then bring 3 times the
# answers a second.
GROWTH = 4 / 3
# Answers that judge a level, at the least.
VOTES = 4
# Each rise multiplies the requests in flight by this: S3 rewards dozens, and every level judged costs
# a round trip or two at less than the server could do.
STEP = 4


class Pace:
    """A limit on requests in flight that starts at 2 and rises while that brings more answers.

    ``base`` is how long a request took with nothing else in flight (the listing's first pages).
    """

    def __init__(self, ceiling: int, base: float) -> None:
        self.ceiling = ceiling
        self.level = min(2, ceiling)
        self.limiter = anyio.CapacityLimiter(self.level)
        self._latency = base
        self._growing = self.level < ceiling
        self._votes: list[float] = []

    async def run(self, request: Callable[[], Awaitable[T]]) -> T:
        """``request()`` within the limit, timed to judge the level it was sent at."""
        async with self.limiter:
            level = self.level
            full = self.limiter.borrowed_tokens >= level
            started = anyio.current_time()
            result = await request()
            if full:
                self.observe(level, anyio.current_time() - started)
        return result

    def observe(self, level: int, seconds: float) -> None:
        """A request sent at ``level`` with every slot taken was answered in ``seconds``."""
        if not self._growing or level != self.level:
            return
        self._votes.append(seconds)
        if len(self._votes) < max(VOTES, level):
            return
        latency = sum(self._votes) / len(self._votes)
        self._votes = []
        if latency > GROWTH * self._latency:
            self._growing = False
            return
        self._latency = latency
        self.level = min(STEP * level, self.ceiling)
        self.limiter.total_tokens = self.level
        self._growing = self.level < self.ceiling
