"""aiostorage: the async S3 client for asyncio services.

Names are imported on first use (PEP 562), so ``import aiostorage`` and the command line's ``--help``
pay nothing for aiobotocore, aiohttp or pydantic until something needs them. ``from aiostorage import X``
and ``aiostorage.X`` work as usual; type checkers and IDEs read the imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exceptions import (
        AccessDenied,
        BucketNotFound,
        ConfigError,
        EventParseError,
        IntegrityError,
        InvalidArgument,
        ObjectChanged,
        ObjectNotFound,
        StorageError,
        TransferError,
    )
    from ._models import (
        BulkItem,
        BulkProgress,
        BulkResult,
        DeleteError,
        DeleteResult,
        DownloadResult,
        MultipartUploadInfo,
        ObjectInfo,
        ObjectVersion,
        PresignedMultipartUpload,
        PresignedPart,
        PresignedPost,
        TransferProgress,
        UploadedPart,
        UploadResult,
    )
    from ._options import WriteOptions
    from ._settings import StoreSettings
    from ._store import AsyncS3Store
    from .events import S3EventPoller, S3EventRecord, parse_s3_event, sqs_lambda_handler
    from .transfer.listing import ObjectListing
    from .transfer.stream import ObjectStream

# Each public name and the module defining it; kept in step with the imports above by tests/test_startup.py.
_LOCATIONS = {
    "AccessDenied": "._exceptions",
    "BucketNotFound": "._exceptions",
    "ConfigError": "._exceptions",
    "EventParseError": "._exceptions",
    "IntegrityError": "._exceptions",
    "InvalidArgument": "._exceptions",
    "ObjectChanged": "._exceptions",
    "ObjectNotFound": "._exceptions",
    "StorageError": "._exceptions",
    "TransferError": "._exceptions",
    "BulkItem": "._models",
    "BulkProgress": "._models",
    "BulkResult": "._models",
    "DeleteError": "._models",
    "DeleteResult": "._models",
    "DownloadResult": "._models",
    "MultipartUploadInfo": "._models",
    "ObjectInfo": "._models",
    "ObjectVersion": "._models",
    "PresignedMultipartUpload": "._models",
    "PresignedPart": "._models",
    "PresignedPost": "._models",
    "TransferProgress": "._models",
    "UploadedPart": "._models",
    "UploadResult": "._models",
    "WriteOptions": "._options",
    "StoreSettings": "._settings",
    "AsyncS3Store": "._store",
    "S3EventPoller": ".events",
    "S3EventRecord": ".events",
    "parse_s3_event": ".events",
    "sqs_lambda_handler": ".events",
    "ObjectListing": ".transfer.listing",
    "ObjectStream": ".transfer.stream",
}

__all__ = [
    "AccessDenied",
    "AsyncS3Store",
    "BucketNotFound",
    "BulkItem",
    "BulkProgress",
    "BulkResult",
    "ConfigError",
    "DeleteError",
    "DeleteResult",
    "DownloadResult",
    "EventParseError",
    "IntegrityError",
    "InvalidArgument",
    "MultipartUploadInfo",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectListing",
    "ObjectNotFound",
    "ObjectStream",
    "ObjectVersion",
    "PresignedMultipartUpload",
    "PresignedPart",
    "PresignedPost",
    "S3EventPoller",
    "S3EventRecord",
    "StorageError",
    "StoreSettings",
    "TransferError",
    "TransferProgress",
    "UploadResult",
    "UploadedPart",
    "WriteOptions",
    "parse_s3_event",
    "sqs_lambda_handler",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    location = _LOCATIONS.get(name)
    if location is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__ rather than importlib.import_module: the same import, and ``-X importtime`` reports it.
    value = getattr(__import__(location.lstrip("."), globals(), None, [name], 1), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
