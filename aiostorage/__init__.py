"""aiostorage: the async S3 client for asyncio services."""

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
    DeleteError,
    DeleteResult,
    DownloadResult,
    ObjectInfo,
    PresignedPost,
    TransferProgress,
    UploadResult,
)
from ._settings import StoreSettings
from ._store import AsyncS3Store
from .transfer.listing import ObjectListing

__all__ = [
    "AccessDenied",
    "AsyncS3Store",
    "BucketNotFound",
    "ConfigError",
    "DeleteError",
    "DeleteResult",
    "DownloadResult",
    "EventParseError",
    "IntegrityError",
    "InvalidArgument",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectListing",
    "ObjectNotFound",
    "PresignedPost",
    "StorageError",
    "StoreSettings",
    "TransferError",
    "TransferProgress",
    "UploadResult",
]

__version__ = "0.1.0"
