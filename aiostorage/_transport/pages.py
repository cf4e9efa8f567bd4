"""ListObjectsV2 pages: sent on the direct path (or by botocore), their bodies read here.

botocore's generic response parser is slow enough on a 1,000-key page to cap any listing built on it,
whatever the concurrency, and its request pipeline adds to every page. Pages go out on the direct path
(``direct.py``) while it is on; else through botocore, where a ``before-parse`` hook hands us the raw
body of our own ListObjectsV2 calls (only those made inside ``read_page``, marked by a context
variable) and gives botocore an empty one. Error responses become ``ClientError`` either way.

Keys are asked for as they are, not URL-encoded: moto and other servers spend real CPU encoding every
key, and nearly every key travels in XML unchanged. A page holding a character XML 1.0 cannot carry (a
control character, sent raw or as a character reference) is asked for again with ``EncodingType=url``,
the only way such a key travels intact.

The body is read by regular expressions when it has the plain shape S3 and every compatible server
send (no DTD, CDATA, comments or namespace prefixes), else by the C ``ElementTree``, several times
slower; ``tests/test_listing.py`` checks they agree. Either way the page is checked: a body cut short,
an error document or a ``KeyCount`` that disagrees raises ``ResponseStreamingError``, to be retried.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ResponseStreamingError
from pydantic import TypeAdapter

from .._models import ObjectInfo
from . import compat
from .direct import DirectClient

__all__ = ["KeysNeedEncoding", "ListPage", "install_listing_hooks", "parse_list_page", "read_page"]

_RAW_BODY = "_aiostorage_raw_body"
_HOOK_ID = "aiostorage-raw-list-objects-v2"
_PLAIN_HOOK_ID = "aiostorage-plain-list-objects-v2"
_wants_raw_body: ContextVar[bool] = ContextVar("aiostorage_wants_raw_body", default=False)


class KeysNeedEncoding(ValueError):
    """A page without URL encoding holds a character XML 1.0 cannot carry: ask for it URL-encoded."""


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


def _keep_keys_plain(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # botocore asks every ListObjectsV2 for URL-encoded keys unless told otherwise; ours ask for it
    # themselves, when a page needs it.
    if _wants_raw_body.get() and context.pop("encoding_type_auto_set", False):
        del params["EncodingType"]


def install_listing_hooks(client: Any) -> None:
    """Put ``_take_raw_body`` first among the client's S3 ``before-parse`` handlers."""
    events = client.meta.events
    events.register_first("before-parse.s3.*", _take_raw_body, unique_id=_HOOK_ID)
    events.register_last("before-parameter-build.s3.ListObjectsV2", _keep_keys_plain, unique_id=_PLAIN_HOOK_ID)
    # botocore's check for an error document in a 200 response parses the whole body with ElementTree
    # and runs first; moved behind ours, it sees the empty body we leave (``parse_list_page`` checks).
    compat.check_200_errors_after(events)


# A row of one <Contents>: Key, Size, ETag, LastModified, as the document's text.
_Row = tuple[str, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class _Scanned:
    rows: list[_Row]
    prefixes: list[str]
    key_count: str | None
    truncated: bool
    token: str | None
    url_encoded: bool


# The plain shape every S3 implementation we know sends: no DTD, CDATA, comments or namespace prefixes.
# Anything else is read by ElementTree.
_PLAIN_START = re.compile(rb'\s*(?:<\?xml[^>]*\?>\s*)?<ListBucketResult(?:\s+xmlns="[^"]*")?\s*>')
_NOT_PLAIN = re.compile(rb"<!|<\?xml[^>]*encoding=.(?!(?i:utf-8))")
# A whole <Contents> in S3's own element order, read in one match; other orders go field by field.
_S3_ROW = re.compile(
    rb"<Contents>\s*<Key>([^<]*)</Key>\s*<LastModified>([^<]*)</LastModified>\s*<ETag>([^<]*)</ETag>\s*"
    rb"(?:<(Checksum\w*)>[^<]*</\4>\s*)*<Size>([^<]*)</Size>"
)
_ROW_FIELD = re.compile(rb"<(Contents|Key|Size|ETag|LastModified)>(?:([^<]*)</\1>)?")
_COMMON_PREFIX = re.compile(rb"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>\s*</CommonPrefixes>")
_TOP_FIELDS = {
    name: re.compile(rb"<%s>([^<]*)</%s>" % (name.encode(), name.encode()))
    for name in ("KeyCount", "IsTruncated", "NextContinuationToken", "EncodingType")
}
# What XML 1.0 cannot hold raw (``\r`` it can, but a parser reads it as ``\n``), and character references.
_RAW_CONTROL = bytes(range(0x09)) + bytes(range(0x0B, 0x20))
_CHAR_REF = re.compile(rb"&#(x[0-9a-fA-F]+|[0-9]+);")
# Characters XML 1.0 cannot carry, or a server may send as references ``html.unescape`` misreads.
_ECHO_NEEDS_ENCODING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_FIELD_INDEX = {b"Key": 0, b"Size": 1, b"ETag": 2, b"LastModified": 3}
# botocore's parameter names as the request's query names.
_QUERY_NAMES = {
    "Prefix": "prefix",
    "Delimiter": "delimiter",
    "ContinuationToken": "continuation-token",
    "StartAfter": "start-after",
    "EncodingType": "encoding-type",
}


def _text(raw: bytes) -> str:
    text = raw.decode()
    if "&" not in text:
        return text
    quotes = text.count("&quot;")  # an ETag's quotes, as S3 writes them, or as Go's encoder does (MinIO)
    if text.count("&") == quotes:
        return text.replace("&quot;", '"')
    if text.count("&") == quotes + text.count("&#34;"):
        return text.replace("&quot;", '"').replace("&#34;", '"')
    # Well-formed XML without a DTD only holds the predefined and numeric references, which
    # ``html.unescape`` decodes exactly.
    return html.unescape(text)


def _carried_exactly(body: bytes) -> bool:
    """Whether every character of the document reads back as itself: no raw control character, and no
    reference to one XML 1.0 forbids or ``html.unescape`` decodes otherwise (it maps 0x80-0x9F as cp1252)."""
    if len(body.translate(None, _RAW_CONTROL)) != len(body):  # far cheaper than a regular expression
        return False
    if b"&#" not in body:
        return True
    # Each distinct reference once: Go's XML encoder (MinIO) writes every ETag's quotes as ``&#34;``.
    for ref in set(_CHAR_REF.findall(body)):
        point = int(ref[1:], 16) if ref.startswith(b"x") else int(ref)
        if point > 0x10FFFF or html.unescape(f"&#{ref.decode()};") != chr(point):
            return False
    return True


def _rows(body: bytes) -> list[_Row] | None:
    """Every <Contents> as (Key, Size, ETag, LastModified), or None if one lacks its Key."""
    expected = body.count(b"<Contents>")
    found = _S3_ROW.findall(body)
    if len(found) == expected:
        return [(_text(key), _text(size), _text(etag), _text(modified)) for key, modified, etag, _, size in found]
    rows: list[list[str | None]] = []
    for match in _ROW_FIELD.finditer(body):
        tag, value = match.groups()
        if tag == b"Contents":
            rows.append([None, None, None, None])
        elif rows and value is not None:
            rows[-1][_FIELD_INDEX[tag]] = _text(value)
    if any(row[0] is None for row in rows):
        return None
    return [(row[0] or "", row[1], row[2], row[3]) for row in rows]


def _scan(body: bytes) -> _Scanned | None:
    """The page read with regular expressions (cheaper than a tree), or None if it is not plain."""
    if not _PLAIN_START.match(body) or _NOT_PLAIN.search(body) or not body.rstrip().endswith(b"</ListBucketResult>"):
        return None
    rows = _rows(body)
    prefixes = [_text(value) for value in _COMMON_PREFIX.findall(body)]
    if rows is None or body.count(b"<CommonPrefixes>") != len(prefixes):
        return None
    top = {name: pattern.search(body) for name, pattern in _TOP_FIELDS.items()}
    values = {name: _text(found.group(1)) if found else None for name, found in top.items()}
    return _Scanned(
        rows=rows,
        prefixes=prefixes,
        key_count=values["KeyCount"],
        truncated=values["IsTruncated"] == "true",
        token=values["NextContinuationToken"],
        url_encoded=values["EncodingType"] == "url",
    )


def _read_tree(body: bytes) -> _Scanned:
    """The page read with the C ElementTree: any well-formed document."""
    root = ET.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag == ns + "Error":
        # S3 can fail after sending 200 OK; botocore would retry such a response, and so do we.
        raise ValueError(f"an error document in a 200 response: {root.findtext(ns + 'Code')}")
    rows: list[_Row] = [
        (
            element.findtext(ns + "Key") or "",
            element.findtext(ns + "Size"),
            element.findtext(ns + "ETag"),
            element.findtext(ns + "LastModified"),
        )
        for element in root.iterfind(ns + "Contents")
    ]
    prefixes = [element.findtext(ns + "Prefix") or "" for element in root.iterfind(ns + "CommonPrefixes")]
    return _Scanned(
        rows=rows,
        prefixes=prefixes,
        key_count=root.findtext(ns + "KeyCount"),
        truncated=root.findtext(ns + "IsTruncated") == "true",
        token=root.findtext(ns + "NextContinuationToken"),
        url_encoded=root.findtext(ns + "EncodingType") == "url",
    )


_OBJECTS = TypeAdapter(list[ObjectInfo])


def parse_list_page(body: bytes) -> ListPage:
    """A ListBucketResult document as S3 sends it (with or without its namespace, keys URL-encoded or not)."""
    page = _scan(body) or _read_tree(body)
    if not page.url_encoded and not _carried_exactly(body):
        raise KeysNeedEncoding("a key holds a character XML 1.0 cannot carry")
    decode = unquote_plus if page.url_encoded else str
    # Validation parses the size and the date in pydantic's core, cheaper than doing it here, and a
    # whole page in one call is cheaper than an object at a time.
    objects = _OBJECTS.validate_python(
        [
            {"key": decode(key), "size": size or 0, "etag": (etag or "").strip('"'), "last_modified": modified}
            for key, size, etag, modified in page.rows
        ]
    )
    prefixes = [decode(prefix) for prefix in page.prefixes]
    # S3 and moto count keys and common prefixes; s3rver counts keys only.
    if page.key_count is not None and int(page.key_count) not in (len(objects) + len(prefixes), len(objects)):
        raise ValueError(f"KeyCount {page.key_count} but {len(objects)} keys and {len(prefixes)} prefixes")
    token = page.token if page.truncated else None
    if page.truncated and not token:
        raise ValueError("a truncated page without NextContinuationToken")
    return ListPage(objects=objects, prefixes=prefixes, next_token=token)


async def read_page(
    client: Any,
    bucket: str,
    direct: DirectClient,
    prefix: str,
    *,
    delimiter: str | None,
    start_after: str | None = None,
    token: str | None = None,
) -> ListPage:
    """One attempt at a page of keys under ``prefix`` (after ``start_after``, or from a continuation
    ``token``); a body that does not hold together raises ``ResponseStreamingError``."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        params["Delimiter"] = delimiter
    if token:
        params["ContinuationToken"] = token
    elif start_after:
        params["StartAfter"] = start_after
    if _ECHO_NEEDS_ENCODING.search(prefix + (delimiter or "") + (start_after or "")):
        # The page echoes these: every page would hold such a character, so ask for encoding at once.
        params["EncodingType"] = "url"

    async def read(params: dict[str, Any]) -> ListPage:
        answer = await direct.list_page(
            {_QUERY_NAMES[name]: value for name, value in params.items() if name != "Bucket"}
        )
        if answer is not None:
            return parse_list_page(answer.body)
        marker = _wants_raw_body.set(True)
        try:
            response = await client.list_objects_v2(**params)
        finally:
            _wants_raw_body.reset(marker)
        return parse_list_page(response[_RAW_BODY])

    try:
        try:
            return await read(params)
        except (KeysNeedEncoding, ET.ParseError):
            # A key XML 1.0 cannot carry (a raw U+FFFE fails the parse): only URL-encoded keys travel.
            return await read({**params, "EncodingType": "url"})
    except (ET.ParseError, KeyError, ValueError) as exc:
        # A 200 whose body does not hold together was cut short or garbled on the way: retry it.
        raise ResponseStreamingError(error=exc) from exc
