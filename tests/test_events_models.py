"""parse_s3_event and S3EventRecord on bodies shaped like AWS's documented ones (pure parsing, no server)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aiostorage import EventParseError, S3EventRecord, StorageError, parse_s3_event
from tests.event_bodies import notification, s3_record


def eventbridge(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2024-05-01T12:34:56Z",
        "region": "ca-central-1",
        "resources": ["arn:aws:s3:::media"],
        "detail": {"version": "0", "bucket": {"name": "media"}, **detail},
    }


def test_put_record() -> None:
    [record] = parse_s3_event(notification(s3_record()))
    assert record.event_name == "ObjectCreated:Put"
    assert record.event_time == datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)
    assert record.event_time.tzinfo is not None
    assert (record.region, record.bucket, record.key, record.raw_key) == (
        "us-west-2",
        "media",
        "uploads/video.mp4",
        "uploads/video.mp4",
    )
    assert (record.size, record.etag, record.sequencer, record.version_id) == (
        1024,
        "0123456789abcdef0123456789abcdef",
        "0055AED6DCD90281E5",
        None,
    )
    assert record.is_created and not record.is_removed
    assert record.configuration_id == "videos"
    assert record.event_version == "2.1"
    assert record.dedup_key == ("media", "uploads/video.mp4", None, "0055AED6DCD90281E5")
    # What has no attribute is kept as sent.
    assert record.extra["userIdentity"] == {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"}
    assert record.extra["eventSource"] == "aws:s3"
    assert record.extra["s3"]["bucket"]["arn"] == "arn:aws:s3:::media"
    assert record.extra["s3"]["s3SchemaVersion"] == "1.0"


def test_complete_multipart_upload_with_version() -> None:
    body = notification(
        s3_record("ObjectCreated:CompleteMultipartUpload", size=5 * 1024**3, etag="d41d8cd98f00b204-3", version_id="v1")
    )
    [record] = parse_s3_event(body)
    assert record.event_name == "ObjectCreated:CompleteMultipartUpload"
    assert record.is_created
    assert (record.size, record.etag, record.version_id) == (5 * 1024**3, "d41d8cd98f00b204-3", "v1")


def test_delete_without_size_or_etag() -> None:
    [record] = parse_s3_event(notification(s3_record("ObjectRemoved:Delete", size=None, etag=None)))
    assert record.is_removed and not record.is_created
    assert record.size is None and record.etag is None
    assert record.sequencer == "0055AED6DCD90281E5"


def test_delete_marker_created() -> None:
    body = notification(s3_record("ObjectRemoved:DeleteMarkerCreated", size=None, etag=None, version_id="marker-1"))
    [record] = parse_s3_event(body)
    assert record.event_name == "ObjectRemoved:DeleteMarkerCreated"
    assert record.is_removed and record.version_id == "marker-1"


def test_lifecycle_expiration_version_2_3_with_extra_data() -> None:
    raw = s3_record("LifecycleExpiration:Delete", size=None, etag=None, sequencer=None, event_version="2.3")
    raw["lifecycleEventData"] = {"transitionEventData": {"destinationStorageClass": "GLACIER"}}
    [record] = parse_s3_event(notification(raw))
    assert record.is_removed and record.sequencer is None
    assert record.extra["lifecycleEventData"]["transitionEventData"]["destinationStorageClass"] == "GLACIER"


def test_size_zero_is_kept() -> None:
    [record] = parse_s3_event(notification(s3_record(size=0)))
    assert record.size == 0


@pytest.mark.parametrize("version", ["2.0", "2.2", "2.6", "2.10"])
def test_any_2x_event_version(version: str) -> None:
    [record] = parse_s3_event(notification(s3_record(event_version=version)))
    assert record.event_version == version


def test_other_major_version_is_rejected() -> None:
    with pytest.raises(EventParseError, match="eventVersion"):
        parse_s3_event(notification(s3_record(event_version="3.0")))


def test_several_records_in_one_message() -> None:
    body = notification(s3_record(key="a.mp4"), s3_record("ObjectRemoved:Delete", key="b.mp4", size=None))
    assert [(r.key, r.is_created) for r in parse_s3_event(body)] == [("a.mp4", True), ("b.mp4", False)]


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("uploads/my+holiday+video.mp4", "uploads/my holiday video.mp4"),
        ("uploads/clip%28final%29.mp4", "uploads/clip(final).mp4"),
        ("uploads/caf%C3%A9/%E6%97%A5%E6%9C%AC.mp4", "uploads/café/日本.mp4"),
        ("uploads/a%2Bb.mp4", "uploads/a+b.mp4"),
        ("uploads%2Fnested%2Fx.mp4", "uploads/nested/x.mp4"),  # moto also encodes "/"
    ],
)
def test_keys_are_url_decoded(raw: str, decoded: str) -> None:
    [record] = parse_s3_event(notification(s3_record(key=raw)))
    assert (record.key, record.raw_key) == (decoded, raw)


def test_unknown_fields_are_kept_not_rejected() -> None:
    raw = s3_record()
    raw["brandNewField"] = {"nested": [1, 2]}
    raw["s3"]["object"]["checksumAlgorithm"] = "CRC64NVME"
    [record] = parse_s3_event(notification(raw))
    assert record.extra["brandNewField"] == {"nested": [1, 2]}
    assert record.extra["s3"]["object"] == {"checksumAlgorithm": "CRC64NVME"}


def test_body_as_bytes_str_and_dict_agree() -> None:
    text = notification(s3_record(key="x+y.mp4"))
    assert parse_s3_event(text) == parse_s3_event(text.encode()) == parse_s3_event(json.loads(text))


def test_records_are_frozen() -> None:
    [record] = parse_s3_event(notification(s3_record()))
    with pytest.raises(ValueError, match="frozen"):
        record.key = "other"  # type: ignore[misc]


def test_etag_quotes_are_stripped_and_naive_time_is_utc() -> None:
    raw = s3_record(etag='"abc"')
    raw["eventTime"] = "2024-05-01T12:00:00"
    [record] = parse_s3_event(notification(raw))
    assert record.etag == "abc"
    assert record.event_time.utcoffset() is not None


def test_minio_style_s3_prefix_is_dropped() -> None:
    [record] = parse_s3_event(notification(s3_record("s3:ObjectCreated:Put")))
    assert record.event_name == "ObjectCreated:Put"


def test_sns_envelope() -> None:
    inner = notification(s3_record(key="uploads/a+b.mp4"))
    envelope = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:s3-events",
        "Subject": "Amazon S3 Notification",
        "Message": inner,
        "Timestamp": "2024-05-01T12:34:57.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
    }
    [record] = parse_s3_event(json.dumps(envelope))
    assert record.key == "uploads/a b.mp4" and record.is_created


def test_sns_wrapped_test_event_is_empty() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-01T12:00:00.000Z", "Bucket": "m"}
    envelope = {"Type": "Notification", "MessageId": "1", "Message": json.dumps(test_event)}
    assert parse_s3_event(json.dumps(envelope)) == []


def test_test_event_is_empty() -> None:
    body = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T12:00:00.000Z",
        "Bucket": "media",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert parse_s3_event(json.dumps(body)) == []
    # moto's has no RequestId or HostId.
    assert parse_s3_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "t", "Bucket": "b"}) == []


def test_eventbridge_object_created() -> None:
    event = eventbridge(
        "Object Created",
        {
            "object": {
                "key": "uploads/my video (1).mp4",
                "size": 5,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    )
    [record] = parse_s3_event(json.dumps(event))
    assert record.event_name == "ObjectCreated:Put" and record.is_created
    # EventBridge does not URL-encode keys: kept as sent.
    assert record.key == record.raw_key == "uploads/my video (1).mp4"
    assert (record.size, record.etag, record.version_id, record.sequencer) == (
        5,
        "b1946ac92492d2347c6235b4d2611184",
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "617f08299329d189",
    )
    assert (record.region, record.bucket) == ("ca-central-1", "media")
    assert record.event_time == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert record.extra["detail"]["reason"] == "PutObject"
    assert record.extra["detail-type"] == "Object Created"


@pytest.mark.parametrize(
    ("reason", "deletion_type", "expected"),
    [
        ("DeleteObject", "Permanently Deleted", "ObjectRemoved:Delete"),
        ("DeleteObject", "Delete Marker Created", "ObjectRemoved:DeleteMarkerCreated"),
        ("Lifecycle Expiration", "Permanently Deleted", "LifecycleExpiration:Delete"),
        ("Lifecycle Expiration", "Delete Marker Created", "LifecycleExpiration:DeleteMarkerCreated"),
    ],
)
def test_eventbridge_object_deleted(reason: str, deletion_type: str, expected: str) -> None:
    event = eventbridge(
        "Object Deleted",
        {
            "object": {"key": "uploads/a+b.mp4", "version-id": "v2", "sequencer": "617f0837b476e463"},
            "reason": reason,
            "deletion-type": deletion_type,
        },
    )
    [record] = parse_s3_event(event)
    assert record.event_name == expected and record.is_removed
    assert record.key == "uploads/a+b.mp4"  # a literal "+", not a space
    assert record.size is None and record.etag is None


@pytest.mark.parametrize(
    "reason", ["POST Object", "CopyObject", "CompleteMultipartUpload"], ids=["post", "copy", "multipart"]
)
def test_eventbridge_created_reasons(reason: str) -> None:
    [record] = parse_s3_event(eventbridge("Object Created", {"object": {"key": "k", "size": 1}, "reason": reason}))
    assert record.is_created and record.event_name.startswith("ObjectCreated:")


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        b"\xff\xfe\x00garbage",
        "[1, 2, 3]",
        '{"hello": "world"}',
        '{"Records": "nope"}',
        '{"Records": [{"eventVersion": "2.1"}]}',
        json.dumps({"Records": [{**s3_record(), "eventTime": "yesterday"}]}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        json.dumps(eventbridge("Object Restore Completed", {"object": {"key": "k"}})),
        json.dumps({"Records": [{"eventSource": "aws:sqs", "body": "x"}]}),
        "",
        "[" * 5000,
        json.dumps({"Type": "Notification", "Message": "[" * 5000}),
    ],
)
def test_garbage_raises_event_parse_error(body: str | bytes) -> None:
    with pytest.raises(EventParseError) as caught:
        parse_s3_event(body)
    assert isinstance(caught.value, StorageError)
    assert len(str(caught.value)) < 400


def nested(depth: int) -> dict[str, Any]:
    """A mapping ``depth`` levels deep, built without recursion."""
    outer: dict[str, Any] = {}
    inner = outer
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return outer


DEEP_JSON = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize(
    "body",
    [
        DEEP_JSON,
        DEEP_JSON.encode(),
        nested(5000),
        {"Records": [nested(5000)]},
        {"Type": "Notification", "Message": DEEP_JSON},
    ],
    ids=["str", "bytes", "dict", "dict-record", "dict-sns"],
)
def test_deeply_nested_bodies_raise_event_parse_error(body: str | bytes | dict[str, Any]) -> None:
    # Deeper than json and repr can recurse: the error message's excerpt must not fail in turn.
    with pytest.raises(EventParseError) as caught:
        parse_s3_event(body)
    assert len(str(caught.value)) < 400


def test_records_hash_by_their_identity_fields() -> None:
    body = notification(s3_record())
    [first] = parse_s3_event(body)
    [again] = parse_s3_event(body)
    assert first.extra  # unhashable values, the reason a whole-model hash fails
    assert first == again and hash(first) == hash(again)
    assert len({first, again}) == 1 and {first: "seen"}[again] == "seen"
    # The same instant in another timezone is an equal record: its hash must be equal too.
    shifted = first.model_copy(update={"event_time": first.event_time.astimezone(timezone(timedelta(hours=2)))})
    assert shifted == first and hash(shifted) == hash(first)
    # Another delivery that differs outside the identity hashes alike but is not equal (equality is all fields).
    annotated = first.model_copy(update={"extra": {**first.extra, "note": ["x"]}})
    assert annotated != first and hash(annotated) == hash(first)
    assert len({first, annotated}) == 2
    assert first.model_copy(update={"key": "uploads/other.mp4"}) not in {first}


def test_error_carries_a_short_excerpt() -> None:
    body = "x" * 10_000
    with pytest.raises(EventParseError) as caught:
        parse_s3_event(body)
    assert "xxxx" in str(caught.value) and len(str(caught.value)) < 300


def test_sequencer_ordering_pads_before_comparing() -> None:
    older = S3EventRecord.model_validate(
        {"event_name": "ObjectCreated:Put", "event_time": "2024-01-01T00:00:00Z", "bucket": "b", "key": "k"}
        | {"raw_key": "k", "sequencer": "0055AED6DCD90281E5"}
    )
    newer = older.model_copy(update={"sequencer": "0055AED6DCD90281E6"})
    longer = older.model_copy(update={"sequencer": "0055AED6DCD90281E500"})
    assert newer.is_newer_than(older) and not older.is_newer_than(newer)
    assert not longer.is_newer_than(older) and not older.is_newer_than(longer)
    with pytest.raises(ValueError, match="sequencer"):
        older.model_copy(update={"sequencer": None}).is_newer_than(older)


def test_parse_does_not_mutate_a_dict_body() -> None:
    body = json.loads(notification(s3_record()))
    before = copy.deepcopy(body)
    parse_s3_event(body)
    assert body == before
