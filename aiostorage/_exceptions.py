"""The exception tree, and the one place where botocore's errors become ours."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError, SSLError

__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "ConfigError",
    "EventParseError",
    "IntegrityError",
    "InvalidArgument",
    "ObjectChanged",
    "ObjectNotFound",
    "StorageError",
    "TransferError",
    "error_code",
    "is_certificate_error",
    "map_errors",
]


class StorageError(Exception):
    """Base class of every error aiostorage raises.

    The error from the layer below (botocore's, the network's, the file system's), when there was one, is
    the ``__cause__``. ``bucket``, ``key``, ``operation`` and ``code`` say where it happened, where known.
    """

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        operation: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.bucket = bucket
        """The bucket the failed request was about, or ``None``."""
        self.key = key
        """The object's key, or ``None`` for a request about no one object."""
        self.operation = operation
        """The S3 or SQS operation that failed (``"GetObject"``, ``"ReceiveMessage"``, ...), or ``None``."""
        self.code = code
        """The server's error code (``"NoSuchKey"``, ``"SlowDown"``, ...), or ``None`` when it sent none."""


class ConfigError(StorageError):
    """The store or poller is configured wrongly (no bucket, missing queue, bad credentials setup)."""


class InvalidArgument(StorageError, ValueError):
    """An argument is invalid; raised before any request is sent."""


class ObjectNotFound(StorageError):
    """The object (or the requested version of it) does not exist."""


class BucketNotFound(StorageError):
    """The bucket does not exist."""


class AccessDenied(StorageError):
    """The credentials are not allowed to do this."""


class ObjectChanged(StorageError):
    """The object was replaced while it was being read; nothing mixing two versions was kept."""


class IntegrityError(StorageError):
    """The bytes received do not match the size or checksum the server announced."""


class TransferError(StorageError):
    """A request kept failing after every retry; the last underlying error is the ``__cause__``."""


class EventParseError(StorageError):
    """A message body is not an S3 event notification in any format we understand."""


# S3 and SQS error codes (and bare HTTP statuses, for HEAD responses without a body) to our classes.
# Anything else becomes a plain StorageError; retryable failures that outlive their retries become
# TransferError in the retry loop, not here.
_CODE_TO_ERROR: dict[str, type[StorageError]] = {
    "NoSuchKey": ObjectNotFound,
    "NoSuchVersion": ObjectNotFound,
    "NotFound": ObjectNotFound,
    "404": ObjectNotFound,
    "NoSuchUpload": ObjectNotFound,
    "NoSuchBucket": BucketNotFound,
    "AccessDenied": AccessDenied,
    "Forbidden": AccessDenied,
    "403": AccessDenied,
    "AllAccessDisabled": AccessDenied,
    "InvalidAccessKeyId": AccessDenied,
    "SignatureDoesNotMatch": AccessDenied,
    "ExpiredToken": AccessDenied,
    "AccessDeniedException": AccessDenied,
    "PreconditionFailed": ObjectChanged,
    "412": ObjectChanged,
    "InvalidRange": InvalidArgument,
    "416": InvalidArgument,
    "InvalidArgument": InvalidArgument,
    "EntityTooSmall": InvalidArgument,
    "EntityTooLarge": InvalidArgument,
    "KeyTooLongError": InvalidArgument,
    "InvalidTag": InvalidArgument,
    "InvalidStorageClass": InvalidArgument,
    "InvalidEncryptionAlgorithmError": InvalidArgument,
    "InvalidPart": IntegrityError,
    "BadDigest": IntegrityError,
    "InvalidDigest": IntegrityError,
    "XAmzContentSHA256Mismatch": IntegrityError,
    "AWS.SimpleQueueService.NonExistentQueue": ConfigError,
    "QueueDoesNotExist": ConfigError,
    "InvalidClientTokenId": AccessDenied,
}


# The code and message an error carries when the answer had none of its own (a HEAD has no body): a bare
# 404 is a missing key (a HEAD cannot tell a missing bucket apart) and a bare 412 a failed precondition, so
# every operation reports them alike.
_CODE_ALIASES = {
    "404": ("NoSuchKey", "the key does not exist"),
    "NotFound": ("NoSuchKey", "the key does not exist"),
    "412": ("PreconditionFailed", "the object no longer matches the version asked for"),
}


def error_code(exc: ClientError) -> str:
    """The error's code, falling back to the HTTP status when the response had no body (HEAD)."""
    code = exc.response.get("Error", {}).get("Code")
    if code:
        return str(code)
    return str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def is_certificate_error(exc: BaseException) -> bool:
    """Whether the server's TLS certificate was refused: a setup matter, never worth another attempt."""
    # aiohttp's certificate error is an ssl.SSLCertVerificationError too; botocore wraps it in SSLError.
    cause = exc.kwargs.get("error") if isinstance(exc, SSLError) else exc
    return isinstance(cause, ssl.SSLCertVerificationError)


def translate(exc: BaseException, *, operation: str, bucket: str | None = None, key: str | None = None) -> StorageError:
    """Our exception for a lower layer's one (not raised: the caller chains it)."""
    if isinstance(exc, StorageError):
        return exc
    where = f"s3://{bucket}/{key}" if bucket and key else (f"s3://{bucket}" if bucket else "")
    context = f"{operation} {where}".strip()
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        cls = _CODE_TO_ERROR.get(code, StorageError)
        if code in _CODE_ALIASES:
            code, message = _CODE_ALIASES[code]
        return cls(f"{context}: {code}: {message}", bucket=bucket, key=key, operation=operation, code=code)
    if is_certificate_error(exc):
        return ConfigError(
            f"{context}: the server's TLS certificate was refused ({exc}); if it is signed by your own CA, "
            "point AWS_CA_BUNDLE at that CA's certificate",
            bucket=bucket,
            key=key,
            operation=operation,
        )
    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            f"{context}: no AWS credentials found (set them in StoreSettings or the environment)",
            bucket=bucket,
            key=key,
            operation=operation,
        )
    if isinstance(exc, ParamValidationError):
        return InvalidArgument(f"{context}: {exc}", bucket=bucket, key=key, operation=operation)
    if isinstance(exc, TimeoutError):
        return TransferError(
            f"{context}: no answer within the attempt's deadline", bucket=bucket, key=key, operation=operation
        )
    if isinstance(exc, BotoCoreError | OSError):
        return TransferError(f"{context}: {exc}", bucket=bucket, key=key, operation=operation)
    return StorageError(f"{context}: {exc!r}", bucket=bucket, key=key, operation=operation)


@contextmanager
def map_errors(operation: str, *, bucket: str | None = None, key: str | None = None) -> Iterator[None]:
    """Re-raise botocore's and the network's exceptions as ours, the original as ``__cause__``."""
    try:
        yield
    except StorageError:
        raise
    except (ClientError, BotoCoreError, OSError) as exc:
        raise translate(exc, operation=operation, bucket=bucket, key=key) from exc
