"""S3 event notification bodies in the shape of AWS's documentation, for the parsing and poller tests."""

from __future__ import annotations

import json
from typing import Any


def s3_record(
    event_name: str = "ObjectCreated:Put",
    key: str = "uploads/video.mp4",
    *,
    size: int | None = 1024,
    etag: str | None = "0123456789abcdef0123456789abcdef",
    version_id: str | None = None,
    sequencer: str | None = "0055AED6DCD90281E5",
    event_version: str = "2.1",
) -> dict[str, Any]:
    """A record in the shape of AWS's "Event message structure" documentation."""
    obj: dict[str, Any] = {"key": key}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": event_version,
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": "2024-05-01T12:34:56.789Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "videos",
            "bucket": {
                "name": "media",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::media",
            },
            "object": obj,
        },
    }


def notification(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})
