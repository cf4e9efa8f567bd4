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
    event_time: datetime
    region: str | None = None
    bucket: str
    key: str
    raw_key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_version: str | None = None
    configuration_id: str | None = None
    extra: dict[str, Any] = {}
    message_id: str | None = None

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
