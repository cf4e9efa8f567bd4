"""Lean PutObject, GetObject and ListObjectsV2: botocore's credentials and session, not its pipeline.

botocore spends ~2-3 ms of CPU on every request before any byte is sent: the endpoint rule set is
evaluated afresh for every key (about a third of it), the user agent is rebuilt, the request passes
through a dozen event hooks, and the answer's headers go through its parser (dates by ``dateutil``).
For many small objects that CPU, not the network, sets the pace. This path resolves the bucket's URL
once (through botocore, by presigning a probe URL: addressing style, region and custom endpoints are
botocore's answer), then signs each request itself (``sigv4.py``; a PUT's payload SHA-256 always signed,
over HTTP and HTTPS alike) and sends it through the client's own HTTP session (``send_plain``).

A PUT carries a CRC32 checksum header for S3 to verify, as botocore would send it: every single-request
upload of up to ``LEAN_MAX`` bytes takes this path (``put_bytes``, and ``upload`` of a small file or
stream, so bulk uploads of many small files too). A GET reads at most ``LEAN_MAX`` bytes of answer: a
whole object a listing said is that small (``download_many``, with ``x-amz-checksum-mode: ENABLED``; one
that grew since goes back to botocore), or the first ``LEAN_MAX`` bytes of one (``get_bytes``). Listing
pages come this way too (``listpage.py`` reads them): botocore's ~1.4 ms of CPU a request is a tenth of
what a concurrent listing spends on a 1,000-key page. The
bucket must be a plain name on a SigV4 client (no access point ARNs, no directory buckets, no Object
Lambda), and a PUT's content type and metadata ASCII. A redirect to another region switches the path off
for good: botocore follows it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from botocore.exceptions import ClientError, NoCredentialsError, ResponseStreamingError
from zlib_ng import zlib_ng

from .._context import S3Context
from .._exceptions import error_code
from .http1 import PlainResponse, ResponseTooLarge
from .session import HTTPSession
from .signer import canonical_query, sign

__all__ = ["CONTENT_RANGE", "LEAN_MAX", "LIST_MAX", "LeanClient", "get_lean", "lean_supported", "put_lean"]

# Larger bodies are hashed off the event loop, sent from files with sendfile, or streamed to files as they
# arrive: botocore's path.
LEAN_MAX = 1024 * 1024
# A page of 1,000 keys of S3's longest (1,024 bytes, three times that URL-encoded) stays below this.
LIST_MAX = 8 * 1024 * 1024
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# SHA-256 of the empty payload, which a GET signs.
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Lower-case DNS-style names only: ARNs, directory buckets (--x-s3) and Object Lambda aliases go to botocore.
_PLAIN_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SPECIAL_SUFFIXES = ("--x-s3", "--ol-s3", "-s3alias")
# Answers meaning "ask botocore": it follows region redirects and retries with the right region.
_REDIRECT_STATUSES = frozenset({301, 307})
_REDIRECT_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
_ERROR_FIELD = re.compile(rb"<(Code|Message)>([^<]*)</\1>")


class RedirectError(Exception):
    """The bucket's URL is not one this path can use: botocore makes its requests (inside ``LeanClient``)."""


def lean_supported(client: Any, bucket: str) -> bool:
    """Whether this client and bucket can take the lean path."""
    signature = getattr(client.meta.config, "signature_version", None)
    return (
        signature in (None, "s3v4", "v4")
        and bool(_PLAIN_BUCKET.match(bucket))
        and not bucket.endswith(_SPECIAL_SUFFIXES)
    )


class LeanClient:
    """Signs and sends PutObject and GetObject requests for one bucket of one client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self.usable = True
        self._base: tuple[str, str, str] | None = None
        self._resolving = asyncio.Lock()
        self._user_agent = f"aiostorage/lean {client.meta.config.user_agent or ''}".strip()

    def fits(self, size: int, attributes: dict[str, Any]) -> bool:
        """Whether a body of ``size`` bytes with these attributes takes this path (still usable)."""
        metadata: dict[str, str] = attributes["Metadata"]
        plain = [attributes["ContentType"], *metadata, *metadata.values()]
        return self.usable and size <= LEAN_MAX and all(map(str.isascii, plain))

    async def _bucket_url(self) -> tuple[str, str, str]:
        """(scheme, host, path prefix) of the bucket, as botocore resolves it."""
        if self._base is None:
            # Once, not by each of the many PUTs that start together: presigning costs ~2 ms of CPU.
            async with self._resolving:
                if self._base is None:
                    probe = "aiostorage-probe"
                    url = await self._client.generate_presigned_url(
                        "put_object", Params={"Bucket": self._bucket, "Key": probe}, ExpiresIn=60
                    )
                    parts = urlsplit(url)
                    if not parts.path.endswith("/" + probe):
                        raise RedirectError(f"unexpected presigned URL shape: {url}")
                    self._base = (parts.scheme, parts.netloc, parts.path[: -len(probe)])
        return self._base

    async def put(self, key: str, body: bytes, headers: dict[str, str]) -> dict[str, str] | None:
        """One attempt: PUT ``body`` at ``key``; the response headers (lower-case names) on success.

        Raises ``ClientError`` for an error answer (so the retry loop and the error table treat it as
        botocore's). None when botocore should make the request (see ``_send``).
        """
        checksum = base64.b64encode(zlib_ng.crc32(body).to_bytes(4, "big")).decode()
        headers = {
            **headers,
            "Content-Length": str(len(body)),
            "x-amz-checksum-crc32": checksum,
            "x-amz-sdk-checksum-algorithm": "CRC32",
        }
        response = await self._send("PUT", key, headers, body, hashlib.sha256(body).hexdigest(), "PutObject")
        return None if response is None else response.headers

    async def get(self, key: str, headers: dict[str, str]) -> PlainResponse | None:
        """One attempt: GET ``key`` with ``headers``, answered with at most ``LEAN_MAX`` bytes of body.

        Raises as ``put`` does; None when botocore should make the request (see ``_send``).
        """
        return await self._send("GET", key, headers, b"", _EMPTY_SHA256, "GetObject")

    async def list_page(self, params: dict[str, str]) -> PlainResponse | None:
        """One attempt: a ListObjectsV2 page (``params`` by their query names: ``prefix``, ``delimiter``,
        ``continuation-token``...); its body at most ``LIST_MAX`` bytes. Raises and returns as ``put``."""
        query = canonical_query({"list-type": "2", **params})
        return await self._send("GET", "", {}, b"", _EMPTY_SHA256, "ListObjectsV2", query=query, max_body=LIST_MAX)

    async def _send(
        self,
        method: str,
        key: str,
        headers: dict[str, str],
        body: bytes,
        payload_sha256: str,
        operation: str,
        *,
        query: str = "",
        max_body: int = LEAN_MAX,
    ) -> PlainResponse | None:
        """The exchange; None when botocore should make it: the bucket answered from elsewhere (this
        client is then switched off for good), or the answer is over ``max_body`` bytes."""
        client = self._client
        try:
            scheme, host, path = await self._bucket_url()
        except RedirectError:
            self.usable = False
            return None
        # The bucket itself (a listing) is ``/bucket`` path-style, ``/`` on its own host.
        path = path + quote(key, safe="/~") if key else path.rstrip("/") or "/"
        credentials = client._request_signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        signed = sign(
            method=method,
            host=host,
            path=path,
            headers={**headers, "User-Agent": self._user_agent},
            payload_sha256=payload_sha256,
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            region=client.meta.region_name,
            now=datetime.now(UTC),
            query=query,
        )
        session: HTTPSession = client._endpoint.http_session
        url = urlunsplit((scheme, host, path, query, ""))
        try:
            response = await session.send_plain(method, url, signed, body, max_body=max_body)
        except ResponseTooLarge:
            return None
        status = response.status
        if status < 300:
            return response
        fields = {name.decode(): value.decode() for name, value in _ERROR_FIELD.findall(response.body)}
        code = fields.get("Code") or str(status)
        if status in _REDIRECT_STATUSES or code in _REDIRECT_CODES:
            self.usable = False
            return None
        error: dict[str, Any] = {
            "Error": {"Code": code, "Message": fields.get("Message", "")},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": response.headers},
        }
        raise ClientError(error, operation)


async def put_lean(
    ctx: S3Context, lean: LeanClient, key: str, body: bytes, attributes: dict[str, Any]
) -> dict[str, Any] | None:
    """PutObject of ``body`` through ``lean``, with ``ctx``'s retries and budget; the response's fields.

    None when the bucket answered from elsewhere: ``lean`` is then switched off, for botocore to take over.
    """
    metadata: dict[str, str] = attributes["Metadata"]
    headers = {"Content-Type": attributes["ContentType"], **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}

    async def attempt() -> dict[str, Any] | None:
        answer = await lean.put(key, body, headers)
        if answer is None:
            return None
        return {
            "ETag": answer.get("etag"),
            "VersionId": answer.get("x-amz-version-id"),
            "ChecksumCRC32": answer.get("x-amz-checksum-crc32"),
        }

    return await ctx.call("PutObject", attempt, key=key, payload_bytes=len(body))


async def get_lean(
    ctx: S3Context, lean: LeanClient, key: str, byte_range: tuple[int, int] | None
) -> tuple[bytes, tuple[int, str] | None] | None:
    """GetObject of ``key`` (or its inclusive ``byte_range``) on the lean path, with ``ctx``'s retries.

    Asks for at most ``LEAN_MAX`` bytes: the whole object when it is no bigger, else its first
    ``LEAN_MAX`` bytes, with where the rest starts and the ETag to pin the rest to. None when botocore
    should make the request: a range over ``LEAN_MAX``, a redirect, a server that sent more than asked.
    """
    if byte_range is not None:
        first, last = byte_range
        if last - first + 1 > LEAN_MAX:
            return None
    else:
        first, last = 0, LEAN_MAX - 1

    async def attempt() -> tuple[bytes, tuple[int, str] | None] | None:
        try:
            answer = await lean.get(key, {"Range": f"bytes={first}-{last}"})
        except ClientError as exc:
            # S3 refuses any range of an empty object (416): the whole of it is no bytes.
            if byte_range is None and error_code(exc) in {"InvalidRange", "416"}:
                return b"", None
            raise
        if answer is None:
            return None
        body = answer.body
        if answer.status != 206:  # the whole object, the range ignored
            return (body if byte_range is None else body[first : last + 1]), None
        match = CONTENT_RANGE.fullmatch(answer.headers.get("content-range", "").strip())
        if match is None or int(match[1]) != first or len(body) != int(match[2]) - first + 1:
            raise ResponseStreamingError(error=f"unexpected Content-Range {answer.headers.get('content-range')!r}")
        end, total = int(match[2]), match[3]
        if byte_range is not None or total == "*" or end + 1 >= int(total):
            return body, None
        return body, (end + 1, answer.headers.get("etag", ""))

    return await ctx.call("GetObject", attempt, key=key, payload_bytes=last - first + 1)
