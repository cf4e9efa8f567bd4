"""S3EventRecord: one S3 event, whichever way it was delivered (S3 directly, SNS, EventBridge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["S3EventRecord"]


class S3EventRecord(BaseModel):
    """One S3 event notification record, tolerant of what real events omit.

    ``key`` is decoded (S3 notifications URL-encode keys, with ``+`` for a space); ``raw_key`` is the key
    exactly as sent. ``size``, ``etag``, ``version_id`` and ``sequencer`` are absent from some events
    (deletes have no size or ETag; lifecycle transitions no sequencer) and are then ``None``. Every field
    of the record that has no attribute here is kept, as sent, in ``extra``. ``message_id`` is the id of
    the SQS message that carried the record (set by ``S3EventPoller`` and ``sqs_lambda_handler``; ``None``
    for a record parsed from a body directly).

    Records are hashable (sets, dict keys) by the fields that identify the event: ``bucket``, ``key``,
    ``version_id``, ``sequencer``, ``event_name`` and ``event_time``. Equality compares every field, so
    equal records always hash alike; two deliveries of one event that differ elsewhere (``extra``, say)
    hash alike but are not equal (two SQS messages carrying it differ in ``message_id``). To drop repeats,
    compare ``dedup_key``.
    """

    model_config = ConfigDict(frozen=True)

    event_name: str
    """What happened, without the ``s3:`` prefix, e.g. ``"ObjectCreated:Put"``, ``"ObjectRemoved:Delete"``."""
    event_time: datetime
    """When it happened (``eventTime``), timezone-aware (a time without an offset is read as UTC)."""
    region: str | None = None
    """The bucket's region (``awsRegion``), where the event names one."""
    bucket: str
    """The bucket's name."""
    key: str
    """The object's key, decoded."""
    raw_key: str
    """The key as the event sent it (URL-encoded in S3's own notifications; EventBridge's are plain)."""
    size: int | None = None
    """The object's size in bytes; ``None`` for deletes."""
    etag: str | None = None
    """The object's ETag, without quotes; ``None`` for deletes."""
    version_id: str | None = None
    """The object's version id; ``None`` in a bucket without versioning."""
    sequencer: str | None = None
    """S3's ordering token for events on one key (see ``is_newer_than``); ``None`` where absent."""
    event_version: str | None = None
    """The record format's version (``eventVersion``, e.g. ``"2.1"``)."""
    configuration_id: str | None = None
    """The notification configuration's id (``s3.configurationId``), in S3's own notifications."""
    extra: dict[str, Any] = {}
    """Every field of the event without an attribute here, as sent (``userIdentity``, ``requestParameters``...)."""
    message_id: str | None = None
    """The id of the SQS message that carried the record; ``None`` when parsed from a body directly."""

    def __hash__(self) -> int:
        # pydantic's frozen-model hash covers every field, and ``extra`` holds dicts and lists: unhashable.
        # A subset of the fields keeps the hash consistent with the all-field equality.
        return hash((self.bucket, self.key, self.version_id, self.sequencer, self.event_name, self.event_time))

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # S3 always sends UTC ("...Z"); a timestamp without an offset is read as UTC rather than rejected.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    @field_validator("etag")
    @classmethod
    def _unquoted(cls, value: str | None) -> str | None:
        return value.strip('"') if value else value

    @property
    def is_created(self) -> bool:
        """An object was created (Put, Post, Copy, CompleteMultipartUpload, ...)."""
        return self.event_name.startswith("ObjectCreated:")

    @property
    def is_removed(self) -> bool:
        """An object or version was removed, or a delete marker created (by a request or by lifecycle)."""
        return self.event_name.startswith(("ObjectRemoved:", "LifecycleExpiration:"))

    @property
    def dedup_key(self) -> tuple[str, str, str | None, str | None]:
        """``(bucket, key, version_id, sequencer)``: equal for every delivery of the same event.

        S3 delivers at least once; keep the keys seen (for as long as late duplicates matter to you) to
        drop repeats.
        """
        return (self.bucket, self.key, self.version_id, self.sequencer)

    def is_newer_than(self, other: S3EventRecord) -> bool:
        """Whether this event happened after ``other`` on the same key, by S3's sequencer.

        Sequencers are hexadecimal strings of varying length, comparable only for the same key, and only
        once the shorter is right-padded with zeros (as AWS documents). Raises ``ValueError`` if either
        record has no sequencer.
        """
        if self.sequencer is None or other.sequencer is None:
            raise ValueError("both records need a sequencer to be ordered")
        width = max(len(self.sequencer), len(other.sequencer))
        return self.sequencer.ljust(width, "0").upper() > other.sequencer.ljust(width, "0").upper()
