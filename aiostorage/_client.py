"""Building aiobotocore clients from StoreSettings (shared by the store and the event poller)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache
from typing import Any, Literal

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession, get_cert_path
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError
from botocore.loaders import Loader, create_loader
from yarl import URL

from ._exceptions import ConfigError
from ._http1 import OriginPool, PlainResponse, ResponseTooLarge
from ._settings import StoreSettings

__all__ = ["HTTPSession", "PlainResponse", "create_client"]


class HTTPSession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, checking certificate names, with a plain send for the lean PUT.

    botocore builds its TLS context as urllib3 does, without the name check, because urllib3 checks the
    name itself; aiohttp never does. Without the check here, any certificate a trusted CA signed, for
    any host, would be accepted (boto3 refuses it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_proxies: dict[str, str | None] = {}
        self._origin_pools: dict[str, OriginPool] = {}

    def _get_ssl_context(self) -> ssl.SSLContext:
        context: ssl.SSLContext = super()._get_ssl_context()
        context.check_hostname = True
        return context

    async def send_plain(
        self, method: str, url: str, headers: dict[str, str], body: bytes, *, max_body: int
    ) -> PlainResponse:
        """One request with its body in memory, answered with status, headers and a body of at most
        ``max_body`` bytes (``ResponseTooLarge`` beyond).

        ``send`` wraps the exchange in botocore's request and response classes, whose ``email``-based
        headers cost more CPU than the rest of a small PUT, and aiohttp's own request machinery costs
        as much again: without a proxy, the request goes through a lean pool of this session's own
        (``_http1.py``), with the same TLS settings; through a proxy, aiohttp sends it. Network errors
        are aiohttp's, which the retry loop treats as transient like botocore's.
        """
        scheme, _, rest = url.partition("://")
        netloc, _, path = rest.partition("/")
        origin = f"{scheme}://{netloc}"
        # Proxy settings (and NO_PROXY) depend on scheme and host only: looked up once per origin.
        if origin not in self._plain_proxies:
            self._plain_proxies[origin] = self._proxy_config.proxy_url_for(url) or None
        proxy = self._plain_proxies[origin]
        if proxy is None:
            pool = self._origin_pools.get(origin) or self._open_pool(origin)
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            return await pool.request(
                f"{method} /{path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1"), body, max_body=max_body
            )
        session = await self._get_session(proxy)
        async with session.request(
            method,
            URL(url, encoded=True),
            headers={**headers, "Accept-Encoding": "identity"},
            data=body,
            proxy=proxy,
            proxy_headers=self._proxy_config.proxy_headers_for(url),
        ) as response:
            if (response.content_length or 0) > max_body:
                raise ResponseTooLarge(f"a response body of {response.content_length} bytes, more than {max_body}")
            content = bytearray()
            async for chunk in response.content.iter_any():
                content += chunk
                if len(content) > max_body:
                    raise ResponseTooLarge(f"a response body of more than {max_body} bytes")
            answer = {name.decode().lower(): value.decode() for name, value in response.raw_headers}
            return PlainResponse(response.status, answer, bytes(content))

    def _open_pool(self, origin: str) -> OriginPool:
        parsed = URL(origin)
        assert parsed.host is not None and parsed.port is not None
        context = self._plain_ssl_context() if parsed.scheme == "https" else None
        pool = OriginPool(parsed.host, parsed.port, context, max_idle=self._max_pool_connections)
        self._origin_pools[origin] = pool
        return pool

    def _plain_ssl_context(self) -> ssl.SSLContext:
        """The TLS context aiobotocore gives its connector when no proxy is used, with the same settings."""
        if not self._verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        context = self._get_ssl_context()
        if self._cert_file:
            context.load_cert_chain(self._cert_file, self._key_file)
        ca_certs = get_cert_path(self._verify)
        if ca_certs:
            context.load_verify_locations(ca_certs, None, None)
        return context

    async def close(self) -> None:
        for pool in self._origin_pools.values():
            pool.close()
        self._origin_pools.clear()
        await super().close()


@cache
def _loader(data_path: str | None) -> Loader:
    """One loader per process: parsing botocore's service models costs ~0.2 s for every new session."""
    return create_loader(data_path)


def _session(settings: StoreSettings) -> aioboto3.Session:
    secret = settings.aws_secret_access_key
    token = settings.aws_session_token
    core = AioSession()
    core.register_component("data_loader", _loader(core.get_config_variable("data_path")))
    return aioboto3.Session(
        botocore_session=core,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        aws_session_token=token.get_secret_value() if token else None,
        region_name=settings.region,
        profile_name=settings.profile,
    )


@asynccontextmanager
async def create_client(
    service: Literal["s3", "sqs"], settings: StoreSettings, *, max_connections: int
) -> AsyncIterator[Any]:
    """One client with a pool of ``max_connections`` and a single attempt per call (we retry ourselves).

    A setup botocore rejects (a missing profile, a bad region, ...) raises ``ConfigError``.
    """
    addressing = settings.addressing_style
    if addressing == "auto" and settings.endpoint_url:
        # Local servers and most S3-compatible stores are reached by IP or a bare host name.
        addressing = "path"
    config = AioConfig(
        http_session_cls=HTTPSession,
        region_name=settings.region,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max_connections,
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": addressing},
        tcp_keepalive=True,
        # botocore still presigns S3 URLs with the deprecated SigV2 in us-east-1 unless told otherwise.
        signature_version="s3v4" if service == "s3" else None,
    )
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(
                _session(settings).client(service, endpoint_url=settings.endpoint_url, config=config)
            )
        except BotoCoreError as exc:
            raise ConfigError(f"cannot set up the {service} client: {exc}") from exc
        yield client
