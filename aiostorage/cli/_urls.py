"""S3 locations as the command line writes them: ``s3://bucket/key``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["S3Url", "parse_s3_url", "require_s3"]


@dataclass(frozen=True)
class S3Url:
    """``s3://bucket/key``; ``key`` may be empty (the whole bucket) or end in ``/`` (a prefix)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(text: str) -> S3Url | None:
    """The S3 location ``text`` names, or ``None`` for a local path (or ``-``)."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text.removeprefix("s3://").partition("/")
    if not bucket:
        from .._exceptions import InvalidArgument

        raise InvalidArgument(f"no bucket in {text!r}: write s3://bucket/key")
    return S3Url(bucket, key)


def require_s3(text: str) -> S3Url:
    url = parse_s3_url(text)
    if url is None:
        from .._exceptions import InvalidArgument

        raise InvalidArgument(f"{text!r} is not an S3 location: write s3://bucket/key")
    return url
