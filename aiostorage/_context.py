"""What the transfer engines need from a store: its transport, settings and request runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any, TypeVar

import anyio
from botocore import xform_name

from ._models import ObjectInfo, object_info_from_head
from ._retry import Retrying
from ._settings import StoreSettings
from ._transport import Transport

__all__ = ["S3Context"]

T = TypeVar("T")

# HEAD asks for the checksum S3 stored with the object.
_HEAD_ARGS: dict[str, Any] = {"ChecksumMode": "ENABLED"}
# What a request outside any bulk transfer enters in place of a budget.
_NO_BUDGET = nullcontext()


@cache
def _method_name(operation: str) -> str:
    """The client method of an S3 operation: ``"HeadObject"`` is ``head_object``."""
    name: str = xform_name(operation)
    return name


@dataclass(frozen=True, slots=True)
class S3Context:
    """A bucket on an open client; every request goes through ``call`` (deadline, retries, errors).

    ``budget``, when set, is a limit of requests in flight shared by everything done through this
    context (a bulk transfer's objects and their parts), on top of the store's connection limit.
    """

    transport: Transport
    settings: StoreSettings
    retrying: Retrying
    budget: anyio.Semaphore | None = None

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client, for the requests botocore makes."""
        return self.transport.client

    @property
    def bucket(self) -> str:
        return self.transport.bucket

    def with_budget(self, budget: anyio.Semaphore) -> S3Context:
        """This context, with every request also drawing from ``budget``."""
        return replace(self, budget=budget)

    async def request(
        self,
        operation: str,
        /,
        *,
        key: str | None = None,
        bucket: str | None = None,
        payload_bytes: int = 0,
        attempt_timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One botocore request, ``operation`` with ``params``, through ``call``; its parsed response.

        ``bucket`` (this context's by default) and ``key`` (when given) are sent as ``Bucket`` and
        ``Key`` and name the object in errors. Every attempt sends the same ``params``.
        """
        target = bucket or self.bucket
        if key is not None:
            params["Key"] = key
        send = partial(getattr(self.client, _method_name(operation)), Bucket=target, **params)
        response: dict[str, Any] = await self.call(
            operation, send, key=key, bucket=target, payload_bytes=payload_bytes, attempt_timeout=attempt_timeout
        )
        return response

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
        """Run one request's attempts for ``key``; see ``Retrying.call``.

        ``attempt`` does the whole exchange, reading the body included; a request that is one client
        call and its parsed response is ``request``.
        """
        async with self.budget if self.budget is not None else _NO_BUDGET:
            return await self.retrying.call(
                attempt,
                operation=operation,
                bucket=bucket or self.bucket,
                key=key,
                payload_bytes=payload_bytes,
                on_retry=on_retry,
                attempt_timeout=attempt_timeout,
            )

    async def head(self, key: str, *, bucket: str | None = None, version_id: str | None = None) -> ObjectInfo:
        """HeadObject as an ``ObjectInfo`` (with its checksum, where S3 stored one); raises ``ObjectNotFound``."""
        extra: dict[str, Any] = {"VersionId": version_id, "ChecksumMode": "ENABLED"} if version_id else _HEAD_ARGS
        return object_info_from_head(key, await self.request("HeadObject", key=key, bucket=bucket, **extra))
