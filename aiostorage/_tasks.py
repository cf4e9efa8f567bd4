"""Task groups that raise one exception, never an ExceptionGroup, to our callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

__all__ = ["first_error", "task_group"]


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf that is not a cancellation (else the first leaf): the failure that started it."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    cancelled = anyio.get_cancelled_exc_class()
    for leaf in leaves:
        if not isinstance(leaf, cancelled):
            return leaf
    return leaves[0]


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """``anyio.create_task_group()`` that re-raises the first real failure of its tasks on its own."""
    error: BaseException | None = None
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as exc_group:
        error = first_error(exc_group)
    if error is not None:
        raise error
