"""One SQS queue as the poller sees it: its client, every request through ``Retrying``, and SQS's limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from .._exceptions import StorageError
from .._retry import Retrying
from .._settings import StoreSettings
from .._transport import create_client

__all__ = ["MAX_BATCH", "MAX_VISIBILITY", "MAX_WAIT_TIME", "SqsQueue", "open_queue"]

# SQS limits: entries per receive or batch call, long-poll wait, and visibility from a receipt.
MAX_BATCH = 10
MAX_WAIT_TIME = 20
MAX_VISIBILITY = 12 * 3600
# Connections for one poller: a long poll, delete and visibility batches, nacks from concurrent handlers.
_POOL = 16


class SqsQueue:
    """Requests to one queue, each retried and mapped to our errors by ``Retrying``."""

    def __init__(self, url: str, client: Any, retrying: Retrying) -> None:
        self.url = url
        self.client = client
        self.retrying = retrying

    async def call(
        self,
        operation: str,
        method: Callable[..., Awaitable[Any]],
        *,
        attempt_timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            response: dict[str, Any] = await method(QueueUrl=self.url, **params)
            return response

        return await self.retrying.call(attempt, operation=operation, attempt_timeout=attempt_timeout)

    async def visibility_timeout(self) -> int:
        """The queue's own visibility timeout; asking for it also proves the queue exists and is ours."""
        try:
            response = await self.call(
                "GetQueueAttributes", self.client.get_queue_attributes, AttributeNames=["VisibilityTimeout"]
            )
        except StorageError as exc:
            raise type(exc)(f"{self.url}: {exc}", operation=exc.operation, code=exc.code) from exc
        return int(response.get("Attributes", {}).get("VisibilityTimeout", 30))


@asynccontextmanager
async def open_queue(url: str, settings: StoreSettings, wait_time: int) -> AsyncIterator[SqsQueue]:
    # A long poll keeps the response pending for up to wait_time: the read timeout must outlast it.
    read_timeout = max(settings.read_timeout, wait_time + settings.connect_timeout)
    sqs_settings = settings.model_copy(update={"read_timeout": read_timeout})
    async with create_client("sqs", sqs_settings, max_connections=_POOL) as client:
        retrying = Retrying(
            max_attempts=settings.max_attempts,
            attempt_timeout=settings.connect_timeout + settings.read_timeout,
            max_connections=_POOL,
        )
        yield SqsQueue(url, client, retrying)
