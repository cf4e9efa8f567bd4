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
