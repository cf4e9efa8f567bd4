"""Argument checks that run before any request, so bad input never reaches the network."""

from __future__ import annotations

import mimetypes
import re
from functools import lru_cache

from ._exceptions import InvalidArgument
from ._settings import MAX_KEY_BYTES, MAX_PART_SIZE, MIN_PART_SIZE

__all__ = [
    "check_attributes",
    "check_byte_range",
    "check_key",
    "check_part_size",
    "check_positive",
    "check_prefix",
    "guess_content_type",
]

_HEADER_BREAK = re.compile("[\r\n\0]")


def check_key(key: object) -> str:
    """A key S3 will accept: a non-empty string of at most 1,024 bytes in UTF-8."""
    if not isinstance(key, str):
        raise InvalidArgument(f"key must be a str, got {type(key).__name__}")
    if not key:
        raise InvalidArgument("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"key is not valid UTF-8: {key!r}") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidArgument(f"key is {size} bytes in UTF-8; S3 allows at most {MAX_KEY_BYTES}")
    return key


def check_prefix(prefix: object) -> str:
    """A key prefix: any str of at most 1,024 bytes in UTF-8, the empty one included."""
    if not isinstance(prefix, str):
        raise InvalidArgument(f"prefix must be a str, got {type(prefix).__name__}")
    return check_key(prefix) if prefix else prefix


def check_attributes(content_type: object, metadata: object) -> None:
    """A content type and user metadata that can travel as HTTP headers (no line breaks to split them)."""
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidArgument(f"content_type must be a str, got {type(content_type).__name__}")
    if content_type and _HEADER_BREAK.search(content_type):
        raise InvalidArgument(f"a header cannot hold a line break or NUL: content_type: {content_type!r}")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict of str to str, got {type(metadata).__name__}")
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument(f"metadata must map str to str, got {name!r}: {value!r}")
        if _HEADER_BREAK.search(name) or _HEADER_BREAK.search(value):
            raise InvalidArgument(f"a header cannot hold a line break or NUL: {name!r}: {value!r}")


def check_byte_range(byte_range: tuple[int, int] | None) -> tuple[int, int] | None:
    """An inclusive ``(first, last)`` pair of byte positions, or ``None`` for the whole object."""
    if byte_range is None:
        return None
    try:
        first, last = byte_range
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"byte_range must be a (first, last) pair, got {byte_range!r}") from exc
    if not isinstance(first, int) or not isinstance(last, int):
        raise InvalidArgument(f"byte_range bounds must be ints, got {byte_range!r}")
    if first < 0 or last < first:
        raise InvalidArgument(f"byte_range must satisfy 0 <= first <= last, got {byte_range!r}")
    return first, last


def check_part_size(part_size: int) -> int:
    """A part size within S3's 5 MiB to 5 GiB."""
    if not isinstance(part_size, int) or not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise InvalidArgument(
            f"part_size must be between 5 MiB ({MIN_PART_SIZE}) and 5 GiB ({MAX_PART_SIZE}) bytes, got {part_size!r}"
        )
    return part_size


def check_positive(name: str, value: int) -> int:
    """A count that must be at least one (concurrency, expiry seconds, ...)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{name} must be a positive int, got {value!r}")
    return value


def guess_content_type(key: str) -> str:
    """The MIME type for the key's extension (``uploads/a.mp4`` is ``video/mp4``)."""
    name = key.rpartition("/")[2]
    dot = name.find(".")
    return _type_of_suffixes(name[dot:]) if dot >= 0 else "application/octet-stream"


@lru_cache(maxsize=1024)
def _type_of_suffixes(suffixes: str) -> str:
    # A name's suffixes (``.tar.gz``) are all ``mimetypes`` looks at: each is looked up once, not once
    # per object on every put.
    content_type, _ = mimetypes.guess_type("name" + suffixes, strict=False)
    return content_type or "application/octet-stream"
