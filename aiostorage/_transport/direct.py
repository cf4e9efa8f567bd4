"""Small PutObject, GetObject and ListObjectsV2 requests: botocore's credentials and session, not its pipeline.

Before it sends a byte, botocore's pipeline evaluates the endpoint rule set afresh for every key,
rebuilds the user agent, passes the request through a dozen event hooks, and then parses the answer's
headers (dates by ``dateutil``): for many small objects, and for listing pages, that CPU rather than
the network sets the pace. ``DirectClient`` resolves the bucket's URL once, through botocore (by
presigning a probe URL: addressing style, region and custom endpoints are botocore's answer), then
signs each request itself (``signer.py``; a PUT's payload SHA-256 always signed, over HTTP and HTTPS
alike) and sends it through the client's own HTTP session (``HTTPSession.send_direct``).

A PUT carries a checksum header for S3 to verify (CRC32 unless told otherwise), as botocore would
send it, and every other PutObject parameter it is given as the header botocore's model names for it,
signed like the rest. A GET reads at most ``DIRECT_MAX`` bytes of answer, a listing page at most
``LIST_MAX``. The bucket must be a plain name on a SigV4 client (no access point ARNs, no directory
buckets, no Object Lambda), and a PUT's headers ASCII. A redirect to another region switches the
direct path off for good: botocore follows it. So does a client whose internals are not what ``compat.py`` expects.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from botocore.exceptions import ClientError, NoCredentialsError
from zlib_ng import zlib_ng

from . import compat
from .http1 import Response, ResponseTooLarge
from .session import HTTPSession
from .signer import canonical_query, sign

__all__ = ["DIRECT_MAX", "ERROR_MAX", "LIST_MAX", "DirectClient", "StreamedAnswer"]

# Larger bodies are hashed off the event loop, sent from files with sendfile, or streamed to files as they
# arrive: botocore's path.
DIRECT_MAX = 1024 * 1024
# A page of 1,000 keys of S3's longest (1,024 bytes, three times that URL-encoded) stays below this.
LIST_MAX = 8 * 1024 * 1024
# Of an error answer to a streamed GET, at most this much is read (S3's error documents are far smaller).
ERROR_MAX = 64 * 1024
# SHA-256 of the empty payload, which a GET signs.
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Lower-case DNS-style names only: ARNs, directory buckets (--x-s3) and Object Lambda aliases go to botocore.
_PLAIN_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SPECIAL_SUFFIXES = ("--x-s3", "--ol-s3", "-s3alias")
# Answers meaning "ask botocore": it follows region redirects and retries with the right region.
_REDIRECT_STATUSES = frozenset({301, 307})
_REDIRECT_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
_ERROR_FIELD = re.compile(rb"<(Code|Message)>([^<]*)</\1>")


# Parameters a PUT sends itself: the content type, the metadata, and the checksum it computes.
_CHECKSUM_PARAM = "ChecksumAlgorithm"
_OWN_PARAMS = frozenset({"ContentType", "Metadata", _CHECKSUM_PARAM})
_CHECKSUM_HEADERS = {"CRC32": "x-amz-checksum-crc32"}


def _put_header_params(client: Any) -> dict[str, tuple[str, str]]:
    """PutObject's parameters that travel as one header each: name -> (header, shape type), from the
    client's service model."""
    shape = client.meta.service_model.operation_model("PutObject").input_shape
    found: dict[str, tuple[str, str]] = {}
    for name, member in shape.members.items():
        if member.serialization.get("location") == "header" and name not in _OWN_PARAMS:
            found[name] = (member.serialization.get("name", name), member.type_name)
    return found


def put_checksum_algorithms(client: Any) -> frozenset[str]:
    """The checksum algorithms the client's model of PutObject accepts."""
    shape = client.meta.service_model.operation_model("PutObject").input_shape
    member = shape.members.get(_CHECKSUM_PARAM)
    return frozenset(getattr(member, "enum", None) or ())


class StreamedAnswer:
    """A successful GET's status and headers (names in lower case), its body read as it arrives.

    ``read`` gives the bytes that have arrived, empty at the end; ``close`` ends the exchange (the
    connection goes back to the pool only when the whole body was read).
    """

    __slots__ = ("_response", "headers", "read", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in response.raw_headers}
        self.read = response.content.readany

    def close(self) -> None:
        self._response.close()


class _Redirected(Exception):
    """The bucket's URL is not one this path can use: botocore makes its requests."""


def _supported(client: Any, bucket: str) -> bool:
    signature = getattr(client.meta.config, "signature_version", None)
    return (
        signature in (None, "s3v4", "v4")
        and bool(_PLAIN_BUCKET.match(bucket))
        and not bucket.endswith(_SPECIAL_SUFFIXES)
    )


class DirectClient:
    """Signs and sends small PutObject, GetObject and ListObjectsV2 requests for one bucket of one client.

    Each method is one attempt: retries, deadlines and the mapping of errors are the caller's. An error
    answer raises ``ClientError``, as botocore would, so the caller treats both paths alike; None means
    botocore should make the request.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self.usable = _supported(client, bucket)
        self._base: tuple[str, str, str] | None = None
        self._resolving = asyncio.Lock()
        self._put_headers: dict[str, tuple[str, str]] | None = None
        # The name on the wire predates this module's: servers' logs and tests tell the two paths by it.
        self._user_agent = f"aiostorage/direct {client.meta.config.user_agent or ''}".strip()

    def takes(self, size: int, attributes: dict[str, Any]) -> bool:
        """Whether a PUT of ``size`` bytes with these attributes (botocore's PutObject parameters: content
        type, metadata, and any other that travels as a header) goes this way: all of them in ASCII."""
        if not self.usable or size > DIRECT_MAX:
            return False
        metadata: dict[str, str] = attributes["Metadata"]
        plain = [attributes["ContentType"], *metadata, *metadata.values()]
        if len(attributes) > 2:  # more than the content type and metadata: the options' headers
            extra = self._option_headers(attributes)
            if extra is None:
                return False
            plain.extend(extra.values())
        return all(map(str.isascii, plain))

    async def put(
        self, key: str, body: bytes, attributes: dict[str, Any], checksum: str | None = None
    ) -> dict[str, Any] | None:
        """PUT ``body`` at ``key`` with a checksum: CRC32, or ``checksum`` of the ``ChecksumAlgorithm`` the
        attributes name; the answer's ETag, VersionId and checksum."""
        metadata: dict[str, str] = attributes["Metadata"]
        algorithm = "CRC32"
        if checksum is None:
            checksum = base64.b64encode(zlib_ng.crc32(body).to_bytes(4, "big")).decode()
        else:
            algorithm = attributes[_CHECKSUM_PARAM]
        checksum_header = _CHECKSUM_HEADERS.get(algorithm) or f"x-amz-checksum-{algorithm.lower()}"
        headers = {
            "Content-Type": attributes["ContentType"],
            **{f"x-amz-meta-{name}": value for name, value in metadata.items()},
            "Content-Length": str(len(body)),
            checksum_header: checksum,
            "x-amz-sdk-checksum-algorithm": algorithm,
        }
        if len(attributes) > 2:
            extra = self._option_headers(attributes)
            if extra is None:
                return None
            headers.update(extra)
        response = await self._send("PUT", key, headers, body, hashlib.sha256(body).hexdigest(), "PutObject")
        if response is None:
            return None
        return {
            "ETag": response.headers.get("etag"),
            "VersionId": response.headers.get("x-amz-version-id"),
            f"Checksum{algorithm}": response.headers.get(checksum_header),
        }

    def _option_headers(self, attributes: dict[str, Any]) -> dict[str, str] | None:
        """The headers of the attributes beyond content type, metadata and checksum, serialised as botocore
        would; None when one has no header in botocore's model of PutObject (botocore then sends it)."""
        if self._put_headers is None:
            self._put_headers = _put_header_params(self._client)
        headers: dict[str, str] = {}
        for name, value in attributes.items():
            if name in _OWN_PARAMS:
                continue
            found = self._put_headers.get(name)
            if found is None:
                return None
            header, kind = found
            if kind == "string" and isinstance(value, str):
                headers[header] = value
            elif kind == "boolean" and isinstance(value, bool):
                headers[header] = "true" if value else "false"
            elif kind == "timestamp" and isinstance(value, datetime):
                # S3's header dates: RFC 7231's IMF-fixdate, as botocore writes them.
                headers[header] = formatdate(value.timestamp(), usegmt=True)
            else:
                return None
        return headers

    async def get(self, key: str, headers: dict[str, str]) -> Response | None:
        """GET ``key`` with ``headers``; None as well when the answer is over ``DIRECT_MAX`` bytes."""
        return await self._send("GET", key, headers, b"", _EMPTY_SHA256, "GetObject")

    async def open_get(self, key: str, headers: dict[str, str], params: dict[str, str]) -> StreamedAnswer | None:
        """GET ``key`` with ``headers`` and query ``params`` (``versionId``), its body left to stream; None
        when botocore should make the request."""
        prepared = await self._prepare("GET", key, headers, _EMPTY_SHA256, canonical_query(params) if params else "")
        if prepared is None:
            return None
        url, signed, session = prepared
        response = await session.open_stream(url, signed)
        if response.status < 300:
            return StreamedAnswer(response)
        body = b""
        try:
            # read(n) gives what has arrived, up to n bytes: the error document may come in pieces.
            while len(body) < ERROR_MAX and (piece := await response.content.read(ERROR_MAX - len(body))):
                body += piece
        finally:
            response.close()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in response.raw_headers}
        self._fail(response.status, headers, body, "GetObject")
        return None

    async def list_page(self, params: dict[str, str]) -> Response | None:
        """A ListObjectsV2 page (``params`` by their query names: ``prefix``, ``delimiter``,
        ``continuation-token``...); None as well when its body is over ``LIST_MAX`` bytes."""
        query = canonical_query({"list-type": "2", **params})
        return await self._send("GET", "", {}, b"", _EMPTY_SHA256, "ListObjectsV2", query=query, max_body=LIST_MAX)

    async def _bucket_url(self) -> tuple[str, str, str]:
        """(scheme, host, path prefix) of the bucket, as botocore resolves it."""
        if self._base is None:
            # Once, not by each of the many requests that start together: presigning is costly.
            async with self._resolving:
                if self._base is None:
                    probe = "aiostorage-probe"
                    url = await self._client.generate_presigned_url(
                        "put_object", Params={"Bucket": self._bucket, "Key": probe}, ExpiresIn=60
                    )
                    parts = urlsplit(url)
                    if not parts.path.endswith("/" + probe):
                        raise _Redirected(f"unexpected presigned URL shape: {url}")
                    self._base = (parts.scheme, parts.netloc, parts.path[: -len(probe)])
        return self._base

    def _internals(self) -> tuple[Any, HTTPSession]:
        """The client's credentials and HTTP session; raises ``compat.UnknownShape``."""
        credentials = compat.request_credentials(self._client)
        session = compat.http_session(self._client)
        if not isinstance(session, HTTPSession) or not session.sends_direct:
            raise compat.UnknownShape("the client's HTTP session is not one of ours")
        return credentials, session

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
        max_body: int = DIRECT_MAX,
    ) -> Response | None:
        """The exchange; None when botocore should make it: the bucket answered from elsewhere or the
        client is not what is expected (this client is then switched off for good), or the answer is
        over ``max_body`` bytes."""
        prepared = await self._prepare(method, key, headers, payload_sha256, query)
        if prepared is None:
            return None
        url, signed, session = prepared
        try:
            response = await session.send_direct(method, url, signed, body, max_body=max_body)
        except ResponseTooLarge:
            return None
        if response.status < 300:
            return response
        self._fail(response.status, response.headers, response.body, operation)
        return None

    async def _prepare(
        self, method: str, key: str, headers: dict[str, str], payload_sha256: str, query: str
    ) -> tuple[str, dict[str, str], HTTPSession] | None:
        """The URL, the signed headers and the session of a request; None when botocore should make it."""
        if not self.usable:
            return None
        try:
            credentials, session = self._internals()
            scheme, host, path = await self._bucket_url()
        except (_Redirected, compat.UnknownShape):
            self.usable = False
            return None
        # The bucket itself (a listing) is ``/bucket`` path-style, ``/`` on its own host.
        path = path + quote(key, safe="/~") if key else path.rstrip("/") or "/"
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
            region=self._client.meta.region_name,
            now=datetime.now(UTC),
            query=query,
        )
        return urlunsplit((scheme, host, path, query, "")), signed, session

    def _fail(self, status: int, headers: dict[str, str], body: bytes, operation: str) -> None:
        """Raise an error answer as botocore would (``ClientError``); return on a redirect, which switches
        this path off for good (botocore follows it)."""
        fields = {name.decode(): value.decode() for name, value in _ERROR_FIELD.findall(body)}
        code = fields.get("Code") or str(status)
        if status in _REDIRECT_STATUSES or code in _REDIRECT_CODES:
            self.usable = False
            return
        error: dict[str, Any] = {
            "Error": {"Code": code, "Message": fields.get("Message", "")},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
        }
        raise ClientError(error, operation)
