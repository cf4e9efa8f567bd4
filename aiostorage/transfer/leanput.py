"""A lean PutObject for small objects: botocore's credentials and connection pool, not its pipeline.

botocore spends ~2-3 ms of CPU on every PutObject before any byte is sent: the endpoint rule set is
evaluated afresh for every key (about a third of it), the user agent is rebuilt, and the request passes
through a dozen event hooks. For many small objects that CPU, not the network, sets the pace. This path
resolves the bucket's URL once (through botocore, by presigning a probe URL: addressing style, region
and custom endpoints are botocore's answer), then signs each request itself (``sigv4.py``: the payload's
SHA-256 always signed, over HTTP and HTTPS alike) and sends it through the client's own HTTP session and
connection pool, with S3 verifying a CRC32 checksum header as botocore would send it.

Every single-request upload of up to ``LEAN_PUT_MAX`` bytes takes it (``put_bytes``, and ``upload`` of a
small file or stream, so bulk uploads of many small files too), when the bucket is a plain name on a
SigV4 client (no access point ARNs, no directory buckets, no Object Lambda) and the content type and
metadata are ASCII. A redirect to another region switches the path off for good: botocore follows it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from botocore.exceptions import ClientError, NoCredentialsError
from zlib_ng import zlib_ng

from .._client import HTTPSession
from .._context import S3Context
from .sigv4 import sign

__all__ = ["LEAN_PUT_MAX", "LeanPut", "lean_put_supported", "put_lean"]

# Larger bodies are hashed off the event loop and may be file ranges sent with sendfile: botocore's path.
LEAN_PUT_MAX = 1024 * 1024

# Lower-case DNS-style names only: ARNs, directory buckets (--x-s3) and Object Lambda aliases go to botocore.
_PLAIN_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SPECIAL_SUFFIXES = ("--x-s3", "--ol-s3", "-s3alias")
# Answers meaning "ask botocore": it follows region redirects and retries with the right region.
_REDIRECT_STATUSES = frozenset({301, 307})
_REDIRECT_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
_ERROR_FIELD = re.compile(rb"<(Code|Message)>([^<]*)</\1>")


class RedirectError(Exception):
    """The bucket answered from elsewhere: botocore should make this request."""


def lean_put_supported(client: Any, bucket: str) -> bool:
    """Whether this client and bucket can take the lean path."""
    signature = getattr(client.meta.config, "signature_version", None)
    return (
        signature in (None, "s3v4", "v4")
        and bool(_PLAIN_BUCKET.match(bucket))
        and not bucket.endswith(_SPECIAL_SUFFIXES)
    )


class LeanPut:
    """Signs and sends PutObject requests for one bucket of one client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self.usable = True
        self._base: tuple[str, str, str] | None = None
        self._resolving = asyncio.Lock()
        self._user_agent = f"aiostorage/lean-put {client.meta.config.user_agent or ''}".strip()

    def fits(self, size: int, attributes: dict[str, Any]) -> bool:
        """Whether a body of ``size`` bytes with these attributes takes this path (still usable)."""
        metadata: dict[str, str] = attributes["Metadata"]
        plain = [attributes["ContentType"], *metadata, *metadata.values()]
        return self.usable and size <= LEAN_PUT_MAX and all(map(str.isascii, plain))

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

    async def put(self, key: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """One attempt: PUT ``body`` at ``key``; the response headers (lower-case names) on success.

        Raises ``ClientError`` for an error answer (so the retry loop and the error table treat it as
        botocore's), ``RedirectError`` when botocore should take over.
        """
        client = self._client
        scheme, host, path = await self._bucket_url()
        path += quote(key, safe="/~")
        credentials = client._request_signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        checksum = base64.b64encode(zlib_ng.crc32(body).to_bytes(4, "big")).decode()
        signed = sign(
            method="PUT",
            host=host,
            path=path,
            headers={
                **headers,
                "Content-Length": str(len(body)),
                "x-amz-checksum-crc32": checksum,
                "x-amz-sdk-checksum-algorithm": "CRC32",
                "User-Agent": self._user_agent,
            },
            payload_sha256=hashlib.sha256(body).hexdigest(),
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            region=client.meta.region_name,
            now=datetime.now(UTC),
        )
        session: HTTPSession = client._endpoint.http_session
        response = await session.send_plain("PUT", urlunsplit((scheme, host, path, "", "")), signed, body)
        status, answer = response.status, response.headers
        if status < 300:
            return answer
        fields = {name.decode(): value.decode() for name, value in _ERROR_FIELD.findall(response.body)}
        code = fields.get("Code") or str(status)
        if status in _REDIRECT_STATUSES or code in _REDIRECT_CODES:
            raise RedirectError(code)
        error: dict[str, Any] = {
            "Error": {"Code": code, "Message": fields.get("Message", "")},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": answer},
        }
        raise ClientError(error, "PutObject")


async def put_lean(
    ctx: S3Context, lean: LeanPut, key: str, body: bytes, attributes: dict[str, Any]
) -> dict[str, Any] | None:
    """PutObject of ``body`` through ``lean``, with ``ctx``'s retries and budget; the response's fields.

    None when the bucket answered from elsewhere: ``lean`` is then switched off, for botocore to take over.
    """
    metadata: dict[str, str] = attributes["Metadata"]
    headers = {"Content-Type": attributes["ContentType"], **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}

    async def attempt() -> dict[str, Any] | None:
        try:
            answer = await lean.put(key, body, headers)
        except RedirectError:
            return None
        return {
            "ETag": answer.get("etag"),
            "VersionId": answer.get("x-amz-version-id"),
            "ChecksumCRC32": answer.get("x-amz-checksum-crc32"),
        }

    response = await ctx.call("PutObject", attempt, key=key, payload_bytes=len(body))
    if response is None:
        lean.usable = False
    return response
