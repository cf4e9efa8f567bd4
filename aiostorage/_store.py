"""AsyncS3Store, the library's front: one client for the store's life, and one method per verb.

Each method checks its arguments, resolves them against the store's own (concurrency, part size) and
hands the work to one engine in ``transfer/`` or to one request; nothing here talks to S3 itself.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio

from ._context import S3Context
from ._exceptions import ConfigError, InvalidArgument, ObjectNotFound, StorageError
from ._models import (
    BulkProgress,
    BulkResult,
    DeleteResult,
    DownloadResult,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectVersion,
    PresignedMultipartUpload,
    PresignedPost,
    TransferProgress,
    UploadedPart,
    UploadResult,
)
from ._options import WriteOptions
from ._retry import Retrying
from ._settings import MAX_OBJECT_SIZE, MAX_PRESIGN_EXPIRY, MAX_SINGLE_COPY, StoreSettings
from ._transport import Transport, create_client
from ._validate import (
    check_attributes,
    check_byte_range,
    check_key,
    check_part_size,
    check_positive,
    check_prefix,
)
from .transfer import browser_upload, bulk
from .transfer.copy import copy_key
from .transfer.delete import delete_keys
from .transfer.download import download_object
from .transfer.get import get_bytes
from .transfer.listing import ObjectListing, list_level, list_objects
from .transfer.options import resolve_options
from .transfer.presign import presign_post, presign_url
from .transfer.sources import UploadSource
from .transfer.stream import ObjectStream
from .transfer.sync import Direction, check_direction, normalise_prefix, sync
from .transfer.tags import check_tags, get_tags, put_tags
from .transfer.upload import object_attributes, put_object, upload
from .transfer.versions import list_versions

__all__ = ["AsyncS3Store"]


class AsyncS3Store:
    """An S3 bucket, used inside ``async with``; one client and connection pool for the store's life.

    ``concurrency`` sizes the connection pool and caps the requests in flight across every call made
    through the store; a transfer's own ``concurrency`` can narrow it, not widen it.
    """

    _admission: anyio.Semaphore  # set while open
    # A store from ``for_bucket``: its parent's open context and admission, or StorageError once closed.
    _borrow: Callable[[], tuple[S3Context, anyio.Semaphore]] | None = None

    def __init__(
        self,
        bucket: str | None = None,
        *,
        settings: StoreSettings | None = None,
        concurrency: int | None = None,
        part_size: int | None = None,
    ) -> None:
        """Make a store; it opens (and connects) in ``async with``.

        Args:
            bucket: The bucket; default ``settings.bucket``.
            settings: Where to connect and the defaults; default ``StoreSettings()`` (the environment).
            concurrency: Requests in flight at most; default ``settings.concurrency``.
            part_size: Part size of transfers, 5 MiB to 5 GiB; default ``settings.part_size``.

        Raises:
            ConfigError: no bucket given or set, or invalid settings in the environment.
            InvalidArgument: ``concurrency`` or ``part_size`` out of bounds.
        """
        self.settings: StoreSettings = settings if settings is not None else StoreSettings()
        """The settings: connection, retries, timeouts and write defaults."""
        resolved = bucket if bucket is not None else self.settings.bucket
        if not resolved:
            raise ConfigError("no bucket: pass one to AsyncS3Store() or set AWS_S3_BUCKET_NAME")
        self.bucket: str = resolved
        """The bucket every call works on."""
        self.concurrency: int = check_positive(
            "concurrency", concurrency if concurrency is not None else self.settings.concurrency
        )
        """Requests in flight at most across every call, and the connection pool's size; a call's own
        ``concurrency`` can only narrow it."""
        self.part_size: int = check_part_size(part_size if part_size is not None else self.settings.part_size)
        """Bytes per part of uploads, copies, downloads and streams unless a call gives its own."""
        # Whether the settings give writes defaults (encryption, storage class): else a write without
        # options skips merging them, on the small-object path where every microsecond shows.
        self._write_defaults = bool(self.settings.sse or self.settings.sse_kms_key_id or self.settings.storage_class)
        self._stack: AsyncExitStack | None = None
        self._open_ctx: S3Context | None = None

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.settings.endpoint_url!r}" if self.settings.endpoint_url else ""
        return f"AsyncS3Store(bucket={self.bucket!r}, region={self.settings.region!r}{endpoint})"

    async def __aenter__(self) -> Self:
        if self._borrow is not None:
            return self  # a store from ``for_bucket`` lives on its parent's client
        if self._stack is not None:
            raise StorageError("this AsyncS3Store is already open")
        stack = AsyncExitStack()
        client = await stack.enter_async_context(create_client("s3", self.settings, max_connections=self.concurrency))
        retrying = Retrying(
            max_attempts=self.settings.max_attempts,
            attempt_timeout=self.settings.connect_timeout + self.settings.read_timeout,
            max_connections=self.concurrency,
        )
        self._stack = stack
        # One-request calls wait here before building their request (see ``put_bytes``). Made at each
        # open: a semaphore belongs to the event loop (and async library) it is first used on, and keeps
        # the permits and waiters a loop left behind, so a store reopened under another loop (a second
        # ``asyncio.run``) needs a fresh one. ``fast_acquire`` as in ``Retrying.limiter``.
        self._admission = anyio.Semaphore(self.concurrency, fast_acquire=True)
        self._open_ctx = S3Context(transport=Transport(client, self.bucket), settings=self.settings, retrying=retrying)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and its connections; the store cannot be used afterwards.

        A store from ``for_bucket`` closes nothing: its parent owns the client.
        """
        if self._borrow is not None:
            return
        stack, self._stack, self._open_ctx = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def _ctx(self) -> S3Context:
        """The open transport and request runner; raises ``StorageError`` outside ``async with``."""
        if self._borrow is not None:
            return self._borrowed_ctx(self._borrow)
        if self._open_ctx is None:
            raise StorageError("AsyncS3Store is not open: use it inside `async with AsyncS3Store(...)`")
        return self._open_ctx

    @property
    def client(self) -> Any:
        """The underlying aiobotocore S3 client, for what the store does not cover."""
        return self._ctx.client

    # Objects

    async def put_bytes(
        self,
        key: str,
        data: bytes | bytearray | memoryview,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        options: WriteOptions | None = None,
    ) -> UploadResult:
        """Store ``data`` under ``key`` with one PutObject (CRC32-checked by S3 unless ``options`` say otherwise).

        Raises:
            InvalidArgument: a bad key, content type, metadata or ``options``, before any request.
            TypeError: ``data`` is not bytes-like.
            BucketNotFound: the bucket does not exist.
            IntegrityError: S3 found the body did not match its checksum (``BadDigest``).
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, got {type(data).__name__}")
        ctx = self._ctx
        write = resolve_options(ctx, options) if options is not None or self._write_defaults else None
        attributes = object_attributes(key, content_type, metadata, write)
        # A gather of thousands of calls runs each one up to its first wait at once: waiting here, before
        # the request is built, costs the event loop little, and the first requests go out without waiting
        # behind every other call's half-built request (and the garbage collector's passes over them).
        async with self._admission:
            return await put_object(ctx, key, memoryview(data).cast("B"), attributes=attributes)

    async def get_bytes(
        self, key: str, *, version_id: str | None = None, byte_range: tuple[int, int] | None = None
    ) -> bytes:
        """The object's bytes, or the inclusive ``byte_range=(first, last)`` of them.

        Up to 1 MiB (an object, or a range) comes on the direct path in one request; a larger object's
        first MiB does too, and botocore fetches the rest, pinned to the same ETag.

        Raises:
            InvalidArgument: a bad key or ``byte_range`` (before any request), or a range past the object's end.
            ObjectNotFound: no such key or version.
            BucketNotFound: the bucket does not exist.
            ObjectChanged: an object over 1 MiB was replaced between its first MiB and the rest.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        byte_range = check_byte_range(byte_range)
        ctx = self._ctx
        async with self._admission:  # as in ``put_bytes``
            return await get_bytes(ctx, key, version_id=version_id, byte_range=byte_range)

    async def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        """The object's size, ETag, dates, content type, metadata and the attributes ``WriteOptions`` set.

        Raises:
            InvalidArgument: a bad key, before any request.
            ObjectNotFound: no such key or version (also for a missing bucket: a HEAD's bare 404 cannot tell).
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        return await self._ctx.head(key, version_id=version_id)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists (a HEAD request; ``False`` in a missing bucket too).

        Raises:
            InvalidArgument: a bad key, before any request.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str, *, version_id: str | None = None) -> None:
        """Delete ``key`` (in a versioned bucket: add a delete marker, or remove ``version_id`` for good);
        deleting a missing key is not an error.

        Raises:
            InvalidArgument: a bad key, before any request.
            BucketNotFound: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        await self._ctx.request("DeleteObject", key=key, **extra)

    async def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        """Delete many keys in batches of 1,000 sent in parallel; S3's per-key errors are reported.

        Raises:
            InvalidArgument: a bad key, before any request.
            BucketNotFound: the bucket does not exist.
            AccessDenied: a whole batch was refused (a key refused on its own is in ``errors``).
            TransferError: a request kept failing after every retry.
        """
        checked = [check_key(key) for key in keys]
        return await delete_keys(self._ctx, checked)

    async def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        options: WriteOptions | None = None,
        multipart_threshold: int = MAX_SINGLE_COPY,
        part_size: int | None = None,
        concurrency: int | None = None,
    ) -> UploadResult:
        """Copy an object server-side into this bucket; parallel part copies above ``multipart_threshold``.

        Every request is pinned to the source's ETag, so a source replaced mid-copy raises
        ``ObjectChanged``. ``metadata`` and the content attributes and tags in ``options`` replace the
        source's; by default they are kept. Storage class and encryption come from ``options`` and settings.

        Raises:
            InvalidArgument: a bad key, metadata, ``options``, part size or concurrency, before any request.
            ObjectNotFound: no such source key.
            BucketNotFound: the destination bucket does not exist.
            ObjectChanged: the source was replaced during the copy.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(src_key)
        check_key(dst_key)
        check_positive("multipart_threshold", multipart_threshold)
        check_attributes(None, metadata)
        chosen_part_size = self._part_size(part_size)
        ctx = self._ctx
        return await copy_key(
            ctx,
            src_key,
            src_bucket or self.bucket,
            dst_key,
            metadata=metadata,
            options=resolve_options(ctx, options),
            multipart_threshold=min(multipart_threshold, MAX_SINGLE_COPY),
            part_size=chosen_part_size,
            concurrency=self._concurrency(concurrency),
        )

    # Transfers

    async def upload(
        self,
        source: UploadSource,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        part_size: int | None = None,
        concurrency: int | None = None,
        progress: Callable[[TransferProgress], None] | None = None,
        options: WriteOptions | None = None,
    ) -> UploadResult:
        """Upload a path, bytes-like, binary file (sync or async), or (async) iterable of bytes to ``key``.

        One PutObject up to ``settings.multipart_threshold``, a streaming multipart upload above it, with
        at most ``concurrency`` parts (and about ``(concurrency + 1) * part_size`` bytes) in memory. On
        any failure or cancellation the multipart upload is aborted before the error propagates.

        Raises:
            InvalidArgument: a bad key, metadata, ``options`` or part size (before any request), or a source
                larger than S3's limits (10,000 parts, 5 TiB).
            TypeError: ``source`` is none of the supported kinds.
            BucketNotFound: the bucket does not exist.
            IntegrityError: S3 found a body did not match its checksum (``BadDigest``).
            StorageError: a source file shrank while it was read.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        chosen_part_size = self._part_size(part_size)
        ctx = self._ctx
        return await upload(
            ctx,
            source,
            key,
            attributes=object_attributes(key, content_type, metadata, resolve_options(ctx, options)),
            part_size=chosen_part_size,
            explicit_part_size=part_size is not None,
            concurrency=self._concurrency(concurrency),
            progress=progress,
        )

    # Downloads

    async def download(
        self,
        key: str,
        dest: str | os.PathLike[str],
        *,
        version_id: str | None = None,
        part_size: int | None = None,
        concurrency: int | None = None,
        progress: Callable[[TransferProgress], None] | None = None,
        fsync: bool = True,
    ) -> DownloadResult:
        """Download ``key`` to the file ``dest``, atomically: complete and verified, or untouched.

        Parallel ranged GETs of ``part_size`` bytes (``concurrency`` in flight), every one pinned to the
        first response's ETag (and version), so an object replaced mid-download raises ``ObjectChanged``.
        Parent folders are created; the bytes go to a temporary file beside ``dest`` that is size- and
        checksum-checked, fsynced (unless ``fsync=False``) and renamed over ``dest``. On any failure or
        cancellation the temporary file is removed and ``dest`` keeps its old bytes, or stays missing.

        Raises:
            InvalidArgument: a bad key, ``dest``, part size or concurrency, before any request.
            ObjectNotFound: no such key or version.
            BucketNotFound: the bucket does not exist.
            ObjectChanged: the object was replaced during the download.
            IntegrityError: the bytes received do not match the object's size or checksum.
            StorageError: a local failure (a folder that cannot be created, a full disk), the ``OSError`` as its cause.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        if not isinstance(dest, str | os.PathLike):
            raise InvalidArgument(f"dest must be a path, got {type(dest).__name__}")
        path = Path(dest)
        if not path.name:
            raise InvalidArgument(f"dest must name a file, got {dest!r}")
        return await download_object(
            self._ctx,
            key,
            path,
            version_id=version_id,
            part_size=self._part_size(part_size),
            concurrency=self._concurrency(concurrency),
            progress=progress,
            fsync=fsync,
        )

    def stream(
        self,
        key: str,
        *,
        version_id: str | None = None,
        byte_range: tuple[int, int] | None = None,
        part_size: int | None = None,
        concurrency: int | None = None,
    ) -> ObjectStream:
        """The object's bytes in order, as an async iterator, fetched as parallel pinned ranges.

        Use ``async with store.stream(key) as chunks: async for chunk in chunks: ...`` for read-ahead
        (``concurrency`` ranges of ``part_size`` bytes at most) and deterministic clean-up when you
        break early; plain ``async for chunk in store.stream(key)`` fetches ``concurrency`` ranges at a
        time, in parallel, with nothing left in flight between chunks. ``byte_range=(first, last)``
        streams that inclusive slice only. An object replaced mid-stream raises ``ObjectChanged``.

        Raises:
            InvalidArgument: a bad key, ``byte_range``, part size or concurrency, at once.
            ObjectNotFound: while iterating: no such key or version.
            ObjectChanged: while iterating: the object was replaced mid-stream.
            TransferError: while iterating: a range kept failing after every retry.
        """
        check_key(key)
        byte_range = check_byte_range(byte_range)
        return ObjectStream(
            self._ctx,
            key,
            version_id=version_id,
            byte_range=byte_range,
            part_size=self._part_size(part_size),
            concurrency=self._concurrency(concurrency),
        )

    # Many objects

    async def upload_many(
        self,
        pairs: Iterable[tuple[UploadSource, str]],
        *,
        concurrency: int | None = None,
        part_size: int | None = None,
        metadata: dict[str, str] | None = None,
        progress: Callable[[BulkProgress], None] | None = None,
        fail_fast: bool = False,
        options: WriteOptions | None = None,
    ) -> BulkResult:
        """Upload every ``(source, key)`` pair under one budget of ``concurrency`` requests.

        Objects and their parts share the budget, so a huge file and thousands of small ones never exceed
        it together. One failure does not stop the others (unless ``fail_fast``): each item's result or
        error is in the returned ``BulkResult``, in the order given.

        Raises:
            InvalidArgument: a bad key, metadata, ``options``, part size or concurrency, before any request.
                Failures of single items (``BucketNotFound``, ``AccessDenied``, ...) are in the result, not raised.
        """
        items = [(source, check_key(key)) for source, key in pairs]
        check_attributes(None, metadata)
        ctx = self._ctx
        write = resolve_options(ctx, options)
        return await bulk.upload_many(
            ctx, items, self._bulk_options(concurrency, part_size, progress, fail_fast), metadata=metadata, write=write
        )

    async def download_many(
        self,
        pairs: Iterable[tuple[str | ObjectInfo, str | os.PathLike[str]]],
        *,
        concurrency: int | None = None,
        part_size: int | None = None,
        progress: Callable[[BulkProgress], None] | None = None,
        fail_fast: bool = False,
        fsync: bool = True,
    ) -> BulkResult:
        """Download every ``(key, dest)`` pair atomically, under one budget of ``concurrency`` requests.

        A key may be given as the ``ObjectInfo`` a listing returned: its size then counts in the
        progress totals. Failures are reported per item, as with ``upload_many``. A destination with a
        ``..`` part is refused (that item's ``InvalidArgument``, nothing sent): a key such as
        ``photos/../../x`` joined to a folder would otherwise land outside it. Resolve the path first if
        you mean a parent folder; to download a prefix into a folder, ``sync(direction="down")`` maps keys
        safely.

        Raises:
            InvalidArgument: a bad key, part size or concurrency, before any request. Failures of single
                items (``ObjectNotFound``, ``ObjectChanged``, ``IntegrityError``, ...) are in the result, not raised.
        """
        entries = [(entry, Path(dest)) for entry, dest in pairs]
        options = self._bulk_options(concurrency, part_size, progress, fail_fast)
        ctx = self._ctx
        items = [(*_listed(entry), dest) for entry, dest in entries]
        return await bulk.download_many(ctx, items, options, fsync=fsync)

    async def copy_many(
        self,
        pairs: Iterable[tuple[str | ObjectInfo, str]],
        *,
        src_bucket: str | None = None,
        concurrency: int | None = None,
        part_size: int | None = None,
        progress: Callable[[BulkProgress], None] | None = None,
        fail_fast: bool = False,
        options: WriteOptions | None = None,
    ) -> BulkResult:
        """Copy every ``(src_key, dst_key)`` pair server-side into this bucket, under one budget of requests.

        A source may be given as the ``ObjectInfo`` a listing returned: it is then copied as listed, with
        no HEAD first (except above 5 GiB, where the multipart copy must carry the metadata itself), and
        its listed ETag pins the copy, so a source replaced since the listing fails as ``ObjectChanged``
        (where the server checks ``x-amz-copy-source-if-match``, as S3 does; moto does not).
        Metadata is kept, and so are the other attributes ``options`` do not replace (as with ``copy``).
        Failures are reported per item, as with ``upload_many``.

        Raises:
            InvalidArgument: a bad key, ``options``, part size or concurrency, before any request. Failures of
                single items (``ObjectNotFound``, ``ObjectChanged``, ...) are in the result, not raised.
        """
        entries = [(entry, check_key(dst_key)) for entry, dst_key in pairs]
        bulk_options = self._bulk_options(concurrency, part_size, progress, fail_fast)
        ctx = self._ctx
        write = resolve_options(ctx, options)
        items = [(*_listed(entry), dst_key) for entry, dst_key in entries]
        return await bulk.copy_many(ctx, items, bulk_options, src_bucket=src_bucket or self.bucket, write=write)

    async def sync(
        self,
        local_dir: str | os.PathLike[str],
        prefix: str = "",
        *,
        direction: Direction = "up",
        delete: bool = False,
        concurrency: int | None = None,
        part_size: int | None = None,
        progress: Callable[[BulkProgress], None] | None = None,
        fail_fast: bool = False,
        follow_symlinks: bool = True,
        options: WriteOptions | None = None,
        select: Callable[[str], bool] | None = None,
        dry_run: bool = False,
    ) -> BulkResult:
        """Make the objects under ``prefix`` like ``local_dir`` (``"up"``) or the folder like them (``"down"``).

        Only what differs is transferred: a missing side, a different size, a different MD5 for files up
        to 16 MiB against single-part ETags, else a newer modification time on the source side (a
        download sets the file's mtime to the object's). ``delete=True`` removes what the source side
        lacks, and only when every item succeeded: nothing is deleted after any failure.

        Every file or folder the walk of ``local_dir`` cannot read is a failed item (a ``StorageError``
        naming the path, the ``OSError`` as its cause), and so is every key refused going down: one whose
        path parts are empty, ``.`` or ``..`` (it would land outside ``local_dir``, or on another key's
        file), that ends in ``/`` but holds data, or that other keys use as a folder. Empty ``.../``
        folder markers are passed over. Symbolic links are followed (files and folders, a link back to a
        folder above it reported as a loop); ``follow_symlinks=False`` skips every link. Going up,
        ``local_dir`` must be a folder (``InvalidArgument`` before any request otherwise).
        The result lists transfers and failures as items, and ``skipped`` (unchanged) and ``deleted``.
        ``options`` are the uploads' (going up only).

        ``select``, given a path below ``local_dir`` and ``prefix`` (``/``-separated), leaves out both
        sides of what it rejects: not transferred, not deleted. ``dry_run=True`` plans without writing:
        the items are the transfers that would run (neither ``result`` nor ``error``), ``deleted`` what
        would be deleted.

        Raises:
            InvalidArgument: a bad direction, prefix, part size or concurrency, ``options`` going down, or (going
                up) a ``local_dir`` that is not a folder, before any request.
            BucketNotFound: the bucket does not exist (its listing fails).
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        way = check_direction(direction)
        root = normalise_prefix(check_prefix(prefix))
        if options is not None and way == "down":
            raise InvalidArgument("options apply to uploads: sync(direction='down') writes no object")
        bulk_options = self._bulk_options(concurrency, part_size, progress, fail_fast)
        ctx = self._ctx
        write = resolve_options(ctx, options)
        return await sync(
            ctx,
            Path(local_dir),
            root,
            way,
            bulk_options,
            delete=delete,
            follow_symlinks=follow_symlinks,
            write=write,
            select=select,
            dry_run=dry_run,
        )

    # Listing

    def list(self, prefix: str = "", *, concurrency: int | None = None, ordered: bool = False) -> ObjectListing:
        """Every object under ``prefix`` exactly once, listed concurrently (see ``ObjectListing``).

        After two sequential pages, sub-prefixes (``Delimiter="/"``, small ones a few at a time) are listed
        in parallel, and a long flat run of keys is split into ranges listed in parallel: from 2 requests
        in flight up to ``concurrency``, as far as the server keeps answering as fast. ``ordered=True`` yields in key
        order (a depth-first merge of the concurrent sub-listings); the default yields pages as they come.
        Use ``async for info in store.list(...)``, inside ``async with store.list(...) as listing`` when a
        ``break`` must cancel the outstanding requests before the next line runs.

        Raises:
            InvalidArgument: a bad prefix or concurrency, at once.
            BucketNotFound: while iterating: the bucket does not exist.
            AccessDenied: while iterating: the credentials may not list the bucket.
            TransferError: while iterating: a page kept failing after every retry.
        """
        check_prefix(prefix)
        return list_objects(self._ctx, prefix, concurrency=self._concurrency(concurrency), ordered=ordered)

    async def list_prefixes(self, prefix: str = "", delimiter: str = "/") -> builtins.list[str]:
        """The common prefixes one level below ``prefix`` (``"a/b/"`` for keys ``a/b/...``), sorted.

        Raises:
            InvalidArgument: a bad prefix or delimiter, before any request.
            BucketNotFound: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        prefixes, _ = await self.list_level(prefix, delimiter)
        return prefixes

    async def list_level(
        self, prefix: str = "", delimiter: str = "/"
    ) -> tuple[builtins.list[str], builtins.list[ObjectInfo]]:
        """One folder's worth: the common prefixes below ``prefix`` and the objects directly in it, sorted.

        Raises:
            InvalidArgument: a bad prefix or delimiter, before any request.
            BucketNotFound: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_prefix(prefix)
        if not isinstance(delimiter, str) or not delimiter:
            raise InvalidArgument(f"delimiter must be a non-empty str, got {delimiter!r}")
        return await list_level(self._ctx, prefix, delimiter)

    # Presigned requests (signed locally, no request is sent)

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int = 3600,
        version_id: str | None = None,
        response_content_disposition: str | None = None,
        response_content_type: str | None = None,
        response_cache_control: str | None = None,
    ) -> str:
        """A URL anyone can GET the object (or its ``version_id``) with until it expires.

        The ``response_*`` arguments set the answer's headers, e.g. ``response_content_disposition=
        'attachment; filename="report.pdf"'`` for a browser to save it under that name.

        Raises:
            InvalidArgument: a bad key, or ``expires_in`` not from 1 second to 7 days.
        """
        check_key(key)
        given = {
            "VersionId": version_id,
            "ResponseContentDisposition": response_content_disposition,
            "ResponseContentType": response_content_type,
            "ResponseCacheControl": response_cache_control,
        }
        params = {name: value for name, value in given.items() if value is not None}
        return await presign_url(self._ctx, "get_object", key, self._expiry(expires_in), **params)

    async def presign_put(self, key: str, *, expires_in: int = 3600, content_type: str | None = None) -> str:
        """A URL anyone can PUT the object to; with ``content_type`` the upload must send that type.

        Raises:
            InvalidArgument: a bad key, or ``expires_in`` not from 1 second to 7 days.
        """
        check_key(key)
        params: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        return await presign_url(self._ctx, "put_object", key, self._expiry(expires_in), **params)

    async def presign_post(
        self,
        key: str,
        *,
        expires_in: int = 3600,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> PresignedPost:
        """A browser form upload; ``max_size`` caps the accepted size (content-length-range).

        Raises:
            InvalidArgument: a bad key, ``max_size``, or ``expires_in`` not from 1 second to 7 days.
        """
        check_key(key)
        self._expiry(expires_in)
        if max_size is not None:
            check_positive("max_size", max_size)
        return await presign_post(self._ctx, key, expires_in=expires_in, max_size=max_size, content_type=content_type)

    # Browser uploads: multipart uploads whose parts a browser PUTs to presigned URLs

    async def presign_multipart_upload(
        self,
        key: str,
        size: int,
        *,
        part_size: int | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        options: WriteOptions | None = None,
        expires_in: int = 3600,
    ) -> PresignedMultipartUpload:
        """Create a multipart upload of ``size`` bytes and presign one PUT URL per part (signed locally).

        The part size (the store's unless given) grows to fit ``size`` in 10,000 parts. Content type
        (guessed from the key when not given), metadata and ``options`` (over the settings' write defaults;
        a checksum algorithm is refused: the parts come without checksums) are fixed now. Nobody else's
        credentials are needed to send the parts; complete with ``complete_multipart_upload``, or abort.

        Raises:
            InvalidArgument: a bad key, ``size``, part size, metadata, ``options`` (a checksum algorithm
                among them) or ``expires_in``, before any request.
            BucketNotFound: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_OBJECT_SIZE:
            raise InvalidArgument(f"size must be an int from 1 byte to 5 TiB ({MAX_OBJECT_SIZE}), got {size!r}")
        return await browser_upload.presign_multipart(
            self._ctx,
            key,
            size,
            part_size=self._part_size(part_size),
            explicit_part_size=part_size is not None,
            attributes=browser_upload.upload_attributes(self._ctx, key, content_type, metadata, options),
            expires_in=self._expiry(expires_in),
        )

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[UploadedPart]:
        """The parts S3 holds for an open multipart upload, by part number: what a resumed upload can skip.

        Raises:
            InvalidArgument: a bad key or ``upload_id``, before any request.
            ObjectNotFound: no such open upload (``NoSuchUpload``: completed, aborted or never made).
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        return await browser_upload.list_parts(self._ctx, key, _upload_id(upload_id))

    async def complete_multipart_upload(
        self,
        key: str,
        upload_id: str,
        parts: Iterable[tuple[int, str]] | None = None,
        *,
        size: int | None = None,
    ) -> UploadResult:
        """Assemble the parts into the object: ``parts`` as ``(part_number, etag)`` pairs, or ``None`` for
        every part ListParts reports.

        Before CompleteMultipartUpload is sent, a part missing (not uploaded, or a gap in the numbers), an
        ETag that is not the uploaded part's, a part under 5 MiB other than the last, or (with ``size``) a
        total other than ``size`` raises ``InvalidArgument`` naming them; the upload stays open to be fixed.

        Raises:
            InvalidArgument: bad ``parts`` or ``size`` (before any request), or parts that do not make the
                object (missing, wrong ETags, too small, another total), before completion is sent.
            ObjectNotFound: no such open upload (``NoSuchUpload``).
            IntegrityError: S3 refused a part as not the one uploaded (``InvalidPart``).
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        if size is not None:
            check_positive("size", size)
        checked = browser_upload.checked_parts(parts)
        return await browser_upload.complete_upload(self._ctx, key, _upload_id(upload_id), checked, size=size)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Abort an open multipart upload and free its parts; one already completed or aborted is not an error.

        Raises:
            InvalidArgument: a bad key or ``upload_id``, before any request.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        await browser_upload.abort_upload(self._ctx, key, _upload_id(upload_id))

    def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[MultipartUploadInfo]:
        """Every open multipart upload under ``prefix`` (``async for``), in key order.

        Raises:
            InvalidArgument: a bad prefix, at once.
            BucketNotFound: while iterating: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_prefix(prefix)
        return browser_upload.list_uploads(self._ctx, prefix)

    # Tags, versions, other buckets

    async def get_tags(self, key: str, *, version_id: str | None = None) -> dict[str, str]:
        """The object's tags; raises ``ObjectNotFound``.

        Raises:
            InvalidArgument: a bad key, before any request.
            ObjectNotFound: no such key or version.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        return await get_tags(self._ctx, key, version_id=version_id)

    async def put_tags(self, key: str, tags: Mapping[str, str], *, version_id: str | None = None) -> None:
        """Replace the object's tags with ``tags`` (at most 10; ``{}`` removes them).

        Raises:
            InvalidArgument: a bad key, or more than 10 tags or one too long, before any request.
            ObjectNotFound: no such key or version.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_key(key)
        await put_tags(self._ctx, key, check_tags(dict(tags)) if tags else {}, version_id=version_id)

    def list_versions(self, prefix: str = "") -> AsyncIterator[ObjectVersion]:
        """Every version and delete marker under ``prefix`` (keys in order, each key's newest first).

        Raises:
            InvalidArgument: a bad prefix, at once.
            BucketNotFound: while iterating: the bucket does not exist.
            AccessDenied: the credentials may not do this.
            TransferError: a request kept failing after every retry.
        """
        check_prefix(prefix)
        return list_versions(self._ctx, prefix)

    def for_bucket(self, name: str) -> AsyncS3Store:
        """A store for the bucket ``name`` on this store's client, connection pool and request budget.

        Usable while this store is open, without ``async with``; closing it does nothing.

        Raises:
            InvalidArgument: ``name`` is not a non-empty str.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"bucket name must be a non-empty str, got {name!r}")
        lend = self._borrow if self._borrow is not None else self._lend
        return _BucketStore(name, lend, settings=self.settings, concurrency=self.concurrency, part_size=self.part_size)

    def _lend(self) -> tuple[S3Context, anyio.Semaphore]:
        """What a store from ``for_bucket`` shares: this store's open context and admission."""
        if self._open_ctx is None:
            raise StorageError(f"the store of bucket {self.bucket!r} that this store was made from is closed")
        return self._open_ctx, self._admission

    def _borrowed_ctx(self, borrow: Callable[[], tuple[S3Context, anyio.Semaphore]]) -> S3Context:
        base, admission = borrow()
        if self._open_ctx is None or self._open_ctx.retrying is not base.retrying:  # first use, or parent reopened
            self._open_ctx = replace(base, transport=Transport(base.client, self.bucket))
            self._admission = admission
        return self._open_ctx

    # Argument resolution: explicit arguments, then the store's own

    @staticmethod
    def _expiry(expires_in: int) -> int:
        check_positive("expires_in", expires_in)
        if expires_in > MAX_PRESIGN_EXPIRY:
            raise InvalidArgument(f"expires_in must be at most 7 days ({MAX_PRESIGN_EXPIRY} s), got {expires_in}")
        return expires_in

    def _part_size(self, override: int | None) -> int:
        return check_part_size(override if override is not None else self.part_size)

    def _concurrency(self, override: int | None) -> int:
        if override is None:
            return self.concurrency
        return min(check_positive("concurrency", override), self.concurrency)

    def _bulk_options(
        self,
        concurrency: int | None,
        part_size: int | None,
        progress: Callable[[BulkProgress], None] | None,
        fail_fast: bool,
    ) -> bulk.BulkOptions:
        return bulk.BulkOptions(
            concurrency=self._concurrency(concurrency),
            part_size=self._part_size(part_size),
            explicit_part_size=part_size is not None,
            progress=progress,
            fail_fast=fail_fast,
        )


def _upload_id(upload_id: object) -> str:
    if not isinstance(upload_id, str) or not upload_id:
        raise InvalidArgument(f"upload_id must be a non-empty str, got {upload_id!r}")
    return upload_id


class _BucketStore(AsyncS3Store):
    """A store for another bucket on a store's client, pool and request budget (``for_bucket``)."""

    def __init__(
        self,
        bucket: str,
        borrow: Callable[[], tuple[S3Context, anyio.Semaphore]],
        *,
        settings: StoreSettings,
        concurrency: int,
        part_size: int,
    ) -> None:
        super().__init__(bucket, settings=settings, concurrency=concurrency, part_size=part_size)
        self._borrow = borrow


def _listed(entry: str | ObjectInfo) -> tuple[str, ObjectInfo | None]:
    """A source named by its key or by the ``ObjectInfo`` a listing returned: the key, checked, and the listing."""
    if isinstance(entry, ObjectInfo):
        return check_key(entry.key), entry
    return check_key(entry), None
