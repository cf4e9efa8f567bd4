"""The read-ahead: the listing's one bound on memory, which every page request waits on.

The keys listed and not yet taken by the consumer stay under a few pages per request the pace lets
run, however many folders there are and however many of them a run of pages covers. Ordered, the span
the consumer waits for is read past that limit only while the consumer has nothing left to take, so
the walk cannot deadlock on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from .._settings import MAX_LIST_KEYS
from .._transport import ListPage
from .pace import Pace

__all__ = ["ORDERED_READ_AHEAD", "READ_AHEAD", "SPARE_PAGES", "Gate", "ReadAhead", "Reader", "Request"]

# Pages listed ahead of the consumer for each request the pace lets run, so that a consumer keeping up
# leaves no request slot idle. Ordered, two: a page that lands before the walk reaches its span waits
# there, and with one the ordered walk falls short of the requests the pace allows.
READ_AHEAD = 1
ORDERED_READ_AHEAD = 2
# Pages besides: a consumer that takes pages unevenly still finds some waiting.
SPARE_PAGES = 4

Request = Callable[[], Awaitable[ListPage]]


class ReadAhead:
    """Keys listed and not yet taken by the consumer, kept under a limit every page request waits on.

    It is the listing's one bound on memory: the streams between the page readers and the consumer do
    not hold anything back themselves. The limit is ``per_request`` pages for each request the pace lets
    run, plus ``SPARE_PAGES``: it follows the pace, whatever the number of folders. A page counts as a
    full one while it is on its way, then as the keys handed on from it until the consumer takes them.

    Ordered, the consumer waits for one span (``head``), which may come after keys that fill the limit:
    while the consumer has nothing left to take (``starved``), that span's reader goes on regardless.
    What such a page holds is taken next, or left over from a span the consumer is inside until it is
    back there, so these pages come to a page or two per span it is inside, and stop once the consumer
    stops taking.
    """

    def __init__(self) -> None:
        self.pace: Pace | None = None
        self.per_request = READ_AHEAD
        self.listed = 0
        self.taken = 0
        # Pages asked for and not yet arrived, and requests waiting for room.
        self.asked = 0
        self.waiting = 0
        self.head: object | None = None
        self.starved = False
        self._changed: anyio.Event | None = None

    @property
    def limit(self) -> int:
        """The keys that may be listed ahead of the consumer, pages on their way counted as full."""
        level = self.pace.level if self.pace is not None else 1
        return (self.per_request * level + SPARE_PAGES) * MAX_LIST_KEYS

    def room(self) -> bool:
        """Whether a page more fits."""
        return self.listed - self.taken + (self.asked + 1) * MAX_LIST_KEYS <= self.limit

    async def ask(self, head: object | None = None) -> None:
        """Wait until a page more fits, or until the starved consumer waits for ``head`` (the span the
        page goes to); then count the page as on its way."""
        while not self.room() and not (self.starved and head is not None and head is self.head):
            self._changed = self._changed or anyio.Event()
            self.waiting += 1
            try:
                await self._changed.wait()
            finally:
                self.waiting -= 1
        self.asked += 1

    def arrived(self) -> None:
        """A page asked for is back (or failed): what counts now is the keys handed on from it."""
        self.asked -= 1
        self._wake()

    def hand_on(self, keys: int) -> None:
        """``keys`` are handed on towards the consumer. Called in the same step as their page's
        ``arrived``, with no await in between, so that no page is ever counted neither way."""
        self.listed += keys

    def take(self, keys: int) -> None:
        """The consumer took ``keys``."""
        self.taken += keys
        self._wake()

    def lead(self, head: object) -> None:
        """The ordered walk waits for ``head`` now."""
        self.head = head
        self._wake()

    def starve(self, starved: bool) -> None:
        """The consumer has taken everything handed on and waits for more (or no longer does)."""
        self.starved = starved
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class Reader(Protocol):
    """How a walk sends its page requests: ``Pace.run``, each page first waiting for room (``Gate``)."""

    async def run(self, request: Request) -> ListPage: ...


@dataclass(frozen=True, slots=True)
class Gate:
    """One reader's way to the pace: a page is asked for once it fits in the read-ahead."""

    pace: Pace
    budget: ReadAhead
    # The span the reader's next page goes to, ordered: the consumer may be waiting for it.
    head: Callable[[], object | None] = lambda: None

    async def run(self, request: Request) -> ListPage:
        await self.budget.ask(self.head())
        try:
            return await self.pace.run(request)
        finally:
            self.budget.arrived()
