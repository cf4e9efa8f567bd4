"""One ListObjectsV2 page: sent and signed by botocore, its body parsed by us with the C ``ElementTree``.

botocore's generic response parser spends ~0.13 s of CPU on one 1,000-key page, which caps any listing
built on it near one page per 0.13 s whatever the concurrency. A ``before-parse`` hook hands us the raw
body of our own ListObjectsV2 calls (only those made inside ``fetch_page``, marked by a context variable)
and gives botocore an empty one; error responses are left to botocore, so they become ``ClientError``
and then our exceptions as usual.
"""

from __future__ import annotations

import weakref
import xml.etree.ElementTree as ET
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ResponseStreamingError
from botocore.handlers import _handle_200_error

from .._context import S3Context
from .._models import ObjectInfo

__all__ = ["ListPage", "fetch_page", "parse_list_page"]

_RAW_BODY = "_aiostorage_raw_body"
_HOOK_ID = "aiostorage-raw-list-objects-v2"
_wants_raw_body: ContextVar[bool] = ContextVar("aiostorage_wants_raw_body", default=False)
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class ListPage:
    """A page's objects and common prefixes (each in key order); ``next_token`` is None on the last page."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    next_token: str | None


def _take_raw_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if _wants_raw_body.get() and response_dict["status_code"] < 300:
        customized_response_dict[_RAW_BODY] = response_dict["body"]
        response_dict["body"] = b""


def _install_hook(events: Any) -> None:
    """Put ``_take_raw_body`` first among the client's S3 ``before-parse`` handlers (once per client)."""
    if events in _hooked:
        return
    events.register_first("before-parse.s3.*", _take_raw_body, unique_id=_HOOK_ID)
    # botocore's check for an error document in a 200 response parses the whole body with ElementTree
    # and runs first; moved behind ours, it sees the empty body we leave (``parse_list_page`` checks).
    events.unregister("before-parse.s3.*", _handle_200_error)
    events.register_first("before-parse.s3.*", _handle_200_error)
    _hooked.add(events)


def parse_list_page(body: bytes) -> ListPage:
    """A ListBucketResult document as S3 sends it (with or without its namespace, keys URL-encoded or not)."""
    root = ET.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag == ns + "Error":
        # S3 can fail after sending 200 OK; botocore would retry such a response, and so do we.
        raise ValueError(f"an error document in a 200 response: {root.findtext(ns + 'Code')}")
    contents, common, prefix_tag, key_tag, size_tag, etag_tag, modified_tag = (
        ns + "Contents",
        ns + "CommonPrefixes",
        ns + "Prefix",
        ns + "Key",
        ns + "Size",
        ns + "ETag",
        ns + "LastModified",
    )
    decode = unquote_plus if root.findtext(ns + "EncodingType") == "url" else str
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    for element in root:
        tag = element.tag
        if tag == contents:
            # Validation parses the size and the date in pydantic's core, cheaper than doing it here.
            objects.append(
                ObjectInfo.model_validate(
                    {
                        "key": decode(element.findtext(key_tag) or ""),
                        "size": element.findtext(size_tag) or 0,
                        "etag": (element.findtext(etag_tag) or "").strip('"'),
                        "last_modified": element.findtext(modified_tag),
                    }
                )
            )
        elif tag == common:
            prefixes.append(decode(element.findtext(prefix_tag) or ""))
    key_count = root.findtext(ns + "KeyCount")
    if key_count is not None and int(key_count) != len(objects) + len(prefixes):
        raise ValueError(f"KeyCount {key_count} but {len(objects)} keys and {len(prefixes)} prefixes")
    truncated = root.findtext(ns + "IsTruncated") == "true"
    token = root.findtext(ns + "NextContinuationToken") if truncated else None
    if truncated and not token:
        raise ValueError("a truncated page without NextContinuationToken")
    return ListPage(objects=objects, prefixes=prefixes, next_token=token)


async def fetch_page(
    ctx: S3Context,
    prefix: str,
    *,
    delimiter: str | None,
    start_after: str | None = None,
    token: str | None = None,
) -> ListPage:
    """One page of keys under ``prefix`` (after ``start_after``, or from a continuation ``token``)."""
    client = ctx.client
    _install_hook(client.meta.events)
    # XML 1.0 cannot carry every character a key may hold: ask for URL-encoded keys.
    params: dict[str, Any] = {"Bucket": ctx.bucket, "Prefix": prefix, "EncodingType": "url"}
    if delimiter:
        params["Delimiter"] = delimiter
    if token:
        params["ContinuationToken"] = token
    elif start_after:
        params["StartAfter"] = start_after

    async def attempt() -> ListPage:
        marker = _wants_raw_body.set(True)
        try:
            response = await client.list_objects_v2(**params)
        finally:
            _wants_raw_body.reset(marker)
        try:
            return parse_list_page(response[_RAW_BODY])
        except (ET.ParseError, KeyError, ValueError) as exc:
            # A 200 whose body does not hold together was cut short or garbled on the way: retry it.
            raise ResponseStreamingError(error=exc) from exc

    return await ctx.call("ListObjectsV2", attempt)
