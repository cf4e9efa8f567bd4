"""parse_s3_event: S3's own notifications, SNS envelopes and EventBridge events to S3EventRecords."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from .._exceptions import EventParseError
from .models import S3EventRecord

__all__ = ["excerpt", "parse_s3_event"]

_EXCERPT_CHARS = 200

# EventBridge names the request ("reason") where S3's notifications name the event; the deletion type
# tells a permanent delete from a delete marker.
_EVENTBRIDGE_CREATED = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
_EVENTBRIDGE_DELETION = {
    "Permanently Deleted": "Delete",
    "Delete Marker Created": "DeleteMarkerCreated",
}


def excerpt(body: object) -> str:
    """The start of a body, for error messages and logs; never raises, whatever the body."""
    if isinstance(body, bytes | bytearray):
        text = bytes(body[: _EXCERPT_CHARS * 4]).decode("utf-8", errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        # It runs while an error is being reported: a failure here would replace that error. json.dumps
        # and repr both recurse, so a mapping nested deeper than the recursion limit defeats both.
        try:
            text = json.dumps(body, default=str)
        except (TypeError, ValueError, RecursionError):
            try:
                text = repr(body)
            except Exception:
                text = f"<a {type(body).__name__} that cannot be shown>"
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def parse_s3_event(body: str | bytes | bytearray | Mapping[str, Any]) -> list[S3EventRecord]:
    """The S3 event records in a message body (``[]`` for ``s3:TestEvent``).

    Accepts S3's own notification (``{"Records": [...]}``), the same wrapped in an SNS envelope
    (``Message`` holding it as a JSON string) and EventBridge's "Object Created" / "Object Deleted"
    events. Anything else raises ``EventParseError`` with a short excerpt of the body.
    """
    try:
        return _parse(_load(body), body)
    except EventParseError:
        raise
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
        # RecursionError: json.loads on a deeply nested body (a few KB of "[[[[") is hostile input too.
        raise EventParseError(f"not an S3 event notification ({_reason(exc)}): {excerpt(body)}") from exc


def _load(body: object) -> Any:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, str | bytes | bytearray):
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise EventParseError(f"not JSON: {excerpt(body)}") from exc
    raise EventParseError(f"expected str, bytes or a mapping, got {type(body).__name__}")


def _parse(document: Any, body: object) -> list[S3EventRecord]:
    if not isinstance(document, Mapping):
        raise EventParseError(f"not an S3 event notification (not a JSON object): {excerpt(body)}")
    if document.get("Event") == "s3:TestEvent":
        return []
    if "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            raise EventParseError(f"not an S3 event notification (Records is not a list): {excerpt(body)}")
        return [_from_s3_record(record) for record in records]
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return _parse(_load(document["Message"]), body)
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return [_from_eventbridge(document)]
    raise EventParseError(f"not an S3 event notification: {excerpt(body)}")


def _from_s3_record(record: Any) -> S3EventRecord:
    if not isinstance(record, Mapping):
        raise TypeError("a record is not a JSON object")
    version = record.get("eventVersion")
    if version is not None and not str(version).startswith("2."):
        raise ValueError(f"eventVersion {version!r} is not 2.x")
    s3 = record["s3"]
    bucket = dict(s3["bucket"])
    obj = dict(s3["object"])
    raw_key = obj.pop("key")
    if not isinstance(raw_key, str):
        raise TypeError("s3.object.key is not a string")
    fields: dict[str, Any] = {
        # S3-compatible servers (MinIO) prefix event names with "s3:", AWS does not.
        "event_name": str(record["eventName"]).removeprefix("s3:"),
        "event_time": record["eventTime"],
        "region": record.get("awsRegion"),
        "bucket": bucket.pop("name"),
        "key": unquote_plus(raw_key),
        "raw_key": raw_key,
        "size": obj.pop("size", None),
        "etag": obj.pop("eTag", None),
        "version_id": obj.pop("versionId", None),
        "sequencer": obj.pop("sequencer", None),
        "event_version": version,
        "configuration_id": s3.get("configurationId"),
    }
    mapped_top = {"eventVersion", "eventTime", "eventName", "awsRegion", "s3"}
    extra = {name: value for name, value in record.items() if name not in mapped_top}
    rest_s3 = {name: value for name, value in s3.items() if name not in {"bucket", "object", "configurationId"}}
    if bucket:
        rest_s3["bucket"] = bucket
    if obj:
        rest_s3["object"] = obj
    if rest_s3:
        extra["s3"] = rest_s3
    return S3EventRecord(**fields, extra=extra)


def _from_eventbridge(event: Mapping[str, Any]) -> S3EventRecord:
    detail = dict(event["detail"])
    obj = dict(detail.pop("object"))
    bucket = dict(detail.pop("bucket"))
    key = obj.pop("key")
    if not isinstance(key, str):
        raise TypeError("detail.object.key is not a string")
    fields: dict[str, Any] = {
        "event_name": _eventbridge_name(str(event["detail-type"]), detail),
        "event_time": event["time"],
        "region": event.get("region"),
        "bucket": bucket.pop("name"),
        # EventBridge sends keys as they are, not URL-encoded.
        "key": key,
        "raw_key": key,
        "size": obj.pop("size", None),
        "etag": obj.pop("etag", None),
        "version_id": obj.pop("version-id", None),
        "sequencer": obj.pop("sequencer", None),
        "event_version": detail.get("version"),
    }
    extra = {name: value for name, value in event.items() if name not in {"detail", "time", "region"}}
    if bucket:
        detail["bucket"] = bucket
    if obj:
        detail["object"] = obj
    extra["detail"] = detail
    return S3EventRecord(**fields, extra=extra)


def _eventbridge_name(detail_type: str, detail: Mapping[str, Any]) -> str:
    reason = str(detail.get("reason") or "")
    if detail_type == "Object Created":
        return _EVENTBRIDGE_CREATED.get(reason, f"ObjectCreated:{reason.replace(' ', '') or '*'}")
    if detail_type == "Object Deleted":
        kind = _EVENTBRIDGE_DELETION.get(str(detail.get("deletion-type") or ""), "Delete")
        prefix = "LifecycleExpiration" if reason == "Lifecycle Expiration" else "ObjectRemoved"
        return f"{prefix}:{kind}"
    raise ValueError(f"EventBridge detail-type {detail_type!r} is not Object Created or Object Deleted")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc)
