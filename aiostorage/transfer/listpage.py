"""One ListObjectsV2 page: sent and signed by botocore, its body parsed by us with the C ``ElementTree``.

botocore's generic response parser spends ~0.13 s of CPU on one 1,000-key page, which caps any listing
built on it near one page per 0.13 s whatever the concurrency. A ``before-parse`` hook hands us the raw
body of our own ListObjectsV2 calls (only those made inside ``fetch_page``, marked by a context variable)
and gives botocore an empty one; error responses are left to botocore, so they become ``ClientError``
and then our exceptions as usual.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ResponseStreamingError

from .._context import S3Context
from .._models import ObjectInfo

__all__ = ["ListPage", "fetch_page", "parse_list_page"]

_RAW_BODY = "_aiostorage_raw_body"
_HOOK_ID = "aiostorage-raw-list-objects-v2"
_wants_raw_body: ContextVar[bool] = ContextVar("aiostorage_wants_raw_body", default=False)


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


def parse_list_page(body: bytes) -> ListPage:
    """A ListBucketResult document as S3 sends it (with or without its namespace, keys URL-encoded or not)."""
    root = ET.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    contents, common, key_tag, size_tag, etag_tag, modified_tag = (
        ns + "Contents",
        ns + "CommonPrefixes",
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
            fields = {child.tag: child.text or "" for child in element}
            modified = fields.get(modified_tag)
            objects.append(
                ObjectInfo.model_construct(
                    key=decode(fields[key_tag]),
                    size=int(fields.get(size_tag) or 0),
                    etag=fields.get(etag_tag, "").strip('"'),
                    last_modified=datetime.fromisoformat(modified) if modified else None,
                )
            )
        elif tag == common:
            prefixes.append(decode(element.findtext(ns + "Prefix") or ""))
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
    # Idempotent: botocore keeps one handler per unique id.
    client.meta.events.register("before-parse.s3.ListObjectsV2", _take_raw_body, unique_id=_HOOK_ID)
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
