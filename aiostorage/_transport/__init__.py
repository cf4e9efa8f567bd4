"""How requests reach S3, below the engines: the one door from ``transfer/`` and ``events/`` to the network.

Engines make botocore calls on ``Transport.client`` and hand the rest to the transport: small PUTs and
GETs and listing pages (``put_small``, ``get_small``, ``list_page``), upload bodies with checksums
computed beforehand (``upload_args``), streaming bodies read as they arrive (``body_reader``). A
``None`` answer means botocore makes the request. Each call is one attempt: retries, deadlines and
error mapping stay with the caller (``S3Context.call``).

Inside: ``session.py`` makes clients and their HTTP session, ``http1.py`` the connection pool of the
direct path, ``signer.py`` its SigV4, ``direct.py`` its requests, ``pages.py`` reads listing pages,
``payload.py`` hooks upload bodies into botocore, and ``compat.py`` holds every use of aiobotocore's,
botocore's and aiohttp's private internals. Nothing here imports the store, its context or the engines.
"""

from __future__ import annotations

from typing import Any

from .compat import body_reader
from .direct import DIRECT_MAX, DirectClient, put_checksum_algorithms
from .http1 import Response
from .pages import ListPage, install_listing_hooks, read_page
from .payload import Body, FileBody, install_payload_hooks, request_args, signs_payload
from .session import create_client

__all__ = ["DIRECT_MAX", "Body", "FileBody", "ListPage", "Response", "Transport", "body_reader", "create_client"]


class Transport:
    """One bucket of one aiobotocore S3 client, as the engines reach it."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.signs_payload = signs_payload(client)
        self._direct = DirectClient(client, bucket)
        self._checksum_algorithms: frozenset[str] | None = None
        install_payload_hooks(client)
        install_listing_hooks(client)

    @property
    def direct(self) -> bool:
        """Whether small requests go on the direct path (until a redirect or an unknown client turns it off)."""
        return self._direct.usable

    def takes_small_put(self, size: int, attributes: dict[str, Any]) -> bool:
        """Whether ``put_small`` takes a body of ``size`` bytes with these attributes (worth reading it whole):
        botocore's PutObject parameters that travel as headers, in ASCII."""
        return self._direct.takes(size, attributes)

    async def put_small(
        self, key: str, body: bytes, attributes: dict[str, Any], checksum: str | None = None
    ) -> dict[str, Any] | None:
        """PutObject of ``body`` with ``attributes`` (botocore's parameters) on the direct path; ETag,
        VersionId and the checksum as botocore names them, or None for botocore to make the request.

        The checksum is CRC32, computed here, unless ``attributes`` name another ``ChecksumAlgorithm``,
        whose base64 value is then ``checksum``.
        """
        return await self._direct.put(key, body, attributes, checksum)

    async def get_small(self, key: str, headers: dict[str, str]) -> Response | None:
        """GetObject of ``key`` on the direct path, answered with at most ``DIRECT_MAX`` bytes of body
        (ask for a ``Range``); None for botocore to make the request."""
        return await self._direct.get(key, headers)

    async def list_page(
        self, prefix: str, *, delimiter: str | None, start_after: str | None = None, token: str | None = None
    ) -> ListPage:
        """A page of keys under ``prefix`` (after ``start_after``, or from a continuation ``token``)."""
        return await read_page(
            self.client, self.bucket, self._direct, prefix, delimiter=delimiter, start_after=start_after, token=token
        )

    def upload_args(self, part: Body, *, checksum: str, sha256: str | None, algorithm: str = "CRC32") -> dict[str, Any]:
        """The body and checksum arguments of a PutObject or UploadPart of ``part`` through botocore.

        ``checksum`` is the base64 ``algorithm`` checksum, ``sha256`` hex and needed only where
        ``signs_payload``.
        """
        return request_args(part, algorithm, checksum, sha256)

    @property
    def checksum_algorithms(self) -> frozenset[str]:
        """The checksum algorithms this client's model of PutObject accepts."""
        if self._checksum_algorithms is None:
            self._checksum_algorithms = put_checksum_algorithms(self.client)
        return self._checksum_algorithms
