"""Every request's attempts: a deadline on each, backoff between them, one shared connection budget.

botocore's own retry loop cannot help with a server that accepts a connection and never answers: under
aiobotocore the read timer only starts once the body is sent, so such an attempt waits forever and is
never retried. We therefore own the loop (botocore is configured for a single attempt), bound every
attempt with a deadline, and retry what botocore's ``standard`` mode would retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

import aiohttp
import anyio
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from ._exceptions import StorageError, TransferError, error_code, is_certificate_error, translate

__all__ = ["Retrying", "allow_time_for", "is_retryable"]

T = TypeVar("T")

logger = logging.getLogger("aiostorage")

# The transient and throttling codes of botocore's standard retry mode.
_RETRYABLE_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
        "AWS.SimpleQueueService.ServiceUnavailable",
        "OverLimit",
    }
)
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Throughput below which an attempt carrying a payload is considered stuck (bytes per second).
MIN_TRANSFER_RATE = 256 * 1024
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 20.0


# asyncio's timeout, not anyio's fail_after: its cancel scope costs more to enter and leave than the
# timeout, and every small PUT is an attempt.
_attempt_timeout: ContextVar[asyncio.Timeout | None] = ContextVar("aiostorage_attempt_timeout", default=None)


def allow_time_for(payload_bytes: int) -> None:
    """Inside an attempt: extend its deadline for a body whose size the response has just announced.

    A GET's size is known only from its headers; without this, a large body could never finish within
    a deadline sized for the headers alone.
    """
    timeout = _attempt_timeout.get()
    if timeout is not None and (when := timeout.when()) is not None:
        timeout.reschedule(when + payload_bytes / MIN_TRANSFER_RATE)


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt could succeed where this one failed."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error_code(exc) in _RETRYABLE_CODES or status in _RETRYABLE_STATUSES
    if is_certificate_error(exc):
        return False
    return isinstance(
        exc,
        ConnectionError
        | HTTPClientError
        | IncompleteReadError
        | ResponseStreamingError
        | aiohttp.ClientError
        | TimeoutError
        | ConnectionResetError,
    )


class Retrying:
    """Runs request attempts under a shared limit of connections, each with its own deadline."""

    def __init__(self, *, max_attempts: int, attempt_timeout: float, max_connections: int) -> None:
        self.max_attempts = max_attempts
        self.attempt_timeout = attempt_timeout
        # A semaphore, not a CapacityLimiter: thousands of queued calls (a gather of small PUTs) wait on
        # it, and a limiter's per-task borrower bookkeeping adds to every one of them. ``fast_acquire``:
        # an attempt that finds a connection free starts at once instead of first passing through the
        # event loop, which every request would pay for.
        self.limiter = anyio.Semaphore(max_connections, fast_acquire=True)

    def deadline_for(self, payload_bytes: int) -> float:
        """Seconds one attempt may take: the timeouts, plus time for its payload at a crawling rate."""
        return self.attempt_timeout + payload_bytes / MIN_TRANSFER_RATE

    @staticmethod
    def backoff(attempt: int) -> float:
        """Full-jitter exponential backoff after the given (1-based) failed attempt."""
        return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        operation: str,
        bucket: str | None = None,
        key: str | None = None,
        payload_bytes: int = 0,
        on_retry: Callable[[], None] | None = None,
        attempt_timeout: float | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or runs out of attempts.

        ``attempt`` must do the whole exchange, including reading the response body, so that a body
        cut short is retried too. ``on_retry`` runs before each new attempt (e.g. to rewind a source).
        ``attempt_timeout`` replaces the computed per-attempt deadline, for requests the server is allowed to
        hold open (SQS long polling). Errors are raised as ours, with the last underlying error as
        ``__cause__``.
        """
        deadline = attempt_timeout if attempt_timeout is not None else self.deadline_for(payload_bytes)
        for number in range(1, self.max_attempts + 1):
            try:
                async with self.limiter:
                    async with asyncio.timeout(deadline) as timeout:
                        token = _attempt_timeout.set(timeout)
                        try:
                            return await attempt()
                        finally:
                            _attempt_timeout.reset(token)
            except StorageError:
                raise
            except Exception as exc:
                if not is_retryable(exc):
                    raise translate(exc, operation=operation, bucket=bucket, key=key) from exc
                if number == self.max_attempts:
                    mapped = translate(exc, operation=operation, bucket=bucket, key=key)
                    raise TransferError(
                        f"{mapped} (gave up after {number} attempts)",
                        bucket=bucket,
                        key=key,
                        operation=operation,
                        code=mapped.code,
                    ) from exc
                delay = self.backoff(number)
                logger.debug(
                    "%s %s/%s failed (%r); attempt %d of %d in %.2fs",
                    operation,
                    bucket,
                    key,
                    exc,
                    number + 1,
                    self.max_attempts,
                    delay,
                )
                await anyio.sleep(delay)
                if on_retry is not None:
                    on_retry()
        raise AssertionError("unreachable: the loop returns or raises")
