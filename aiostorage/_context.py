"""What the transfer engines need from a store: its transport, settings and request runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anyio

from ._models import ObjectInfo, object_info_from_head
from ._retry import Retrying
from ._settings import StoreSettings
from ._transport import Transport

__all__ = ["S3Context"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class S3Context:
    """A bucket on an open client; every request goes through ``call`` (deadline, retries, errors).

    ``budget``, when set, is a limit of requests in flight shared by everything done through this
    context (a bulk transfer's objects and their parts), on top of the store's connection limit.
    """

    transport: Transport
    settings: StoreSettings
    retrying: Retrying
    budget: anyio.CapacityLimiter | None = None

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client, for the requests botocore makes."""
        return self.transport.client

    @property
    def bucket(self) -> str:
        return self.transport.bucket

    def with_budget(self, budget: anyio.CapacityLimiter) -> S3Context:
        """This context, with every request also drawing from ``budget``."""
        return replace(self, budget=budget)

    async def call(
        self,
        operation: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        key: str | None = None,
        bucket: str | None = None,
        payload_bytes: int = 0,
        on_retry: Callable[[], None] | None = None,
        attempt_timeout: float | None = None,
    ) -> T:
        """Run one request's attempts for ``key``; see ``Retrying.call``."""
        if self.budget is None:
            return await self.retrying.call(
                attempt,
                operation=operation,
                bucket=bucket or self.bucket,
                key=key,
                payload_bytes=payload_bytes,
                on_retry=on_retry,
                attempt_timeout=attempt_timeout,
            )
        async with self.budget:
            return await replace(self, budget=None).call(
                operation,
                attempt,
                key=key,
                bucket=bucket,
                payload_bytes=payload_bytes,
                on_retry=on_retry,
                attempt_timeout=attempt_timeout,
            )

    async def head(self, key: str, *, bucket: str | None = None, version_id: str | None = None) -> ObjectInfo:
        """HeadObject as an ``ObjectInfo``; raises ``ObjectNotFound``."""
        target = bucket or self.bucket
        extra = {"VersionId": version_id} if version_id else {}

        async def attempt() -> dict[str, Any]:
            response: dict[str, Any] = await self.client.head_object(Bucket=target, Key=key, **extra)
            return response

        return object_info_from_head(key, await self.call("HeadObject", attempt, key=key, bucket=target))
