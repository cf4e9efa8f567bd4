"""aiobotocore clients built from StoreSettings, their HTTP session and its TLS contexts.

The store and the event poller make their clients here. Every client sends through ``HTTPSession``:
aiobotocore's, with certificate names checked, TLS contexts shared between clients, and a second way
out for the direct path's small requests (``send_direct``).
"""

from __future__ import annotations

import copy
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache, lru_cache
from typing import Any, Literal

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import get_cert_path
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError
from botocore.hooks import HierarchicalEmitter
from botocore.httpsession import create_urllib3_context
from botocore.loaders import Loader, create_loader
from yarl import URL

from .._exceptions import ConfigError
from .._settings import StoreSettings
from .compat import HookedSession, SessionSettings, builtin_handlers
from .http1 import OriginPool, Response, ResponseTooLarge

__all__ = ["HTTPSession", "create_client"]


class HTTPSession(HookedSession):
    """aiobotocore's HTTP session, checking certificate names, with a second way out for the direct path.

    botocore builds its TLS context as urllib3 does, without the name check, because urllib3 checks the
    name itself; aiohttp never does. Without the check here, any certificate a trusted CA signed, for
    any host, would be accepted (boto3 refuses it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._proxies: dict[str, str | None] = {}
        self._pools: dict[str, OriginPool] = {}

    @property
    def sends_direct(self) -> bool:
        """Whether ``send_direct`` can be used (the session is what was expected)."""
        return self.settings is not None

    def adjust_tls(self, context: ssl.SSLContext) -> ssl.SSLContext:
        context.check_hostname = True
        return context

    def connector(self, settings: SessionSettings) -> aiohttp.TCPConnector:
        # aiobotocore would load the CA bundle into a new context for every client, even for an http://
        # endpoint; the context built from the same files is shared instead.
        return aiohttp.TCPConnector(
            limit=settings.max_connections,
            ssl=self._tls(settings) if settings.verify else False,
            **settings.connector_args,
        )

    async def send_direct(
        self, method: str, url: str, headers: dict[str, str], body: bytes, *, max_body: int
    ) -> Response:
        """One request with its body in memory, answered with status, headers and a body of at most
        ``max_body`` bytes (``ResponseTooLarge`` beyond).

        ``send`` wraps the exchange in botocore's request and response classes, whose ``email``-based
        headers are costly to build and read, on top of aiohttp's own request machinery. Without a
        proxy, the request goes through a connection pool of this session's own (``http1.py``), with
        the same TLS settings; through a proxy, aiohttp sends it. Network errors are aiohttp's, which
        the retry loop treats as transient like botocore's.
        """
        settings = self.settings
        assert settings is not None, "send_direct on a session that cannot send directly"
        origin, path, proxy = self._route(url, settings)
        if proxy is None:
            pool = self._pools.get(origin) or self._open_pool(origin, settings)
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            return await pool.request(
                f"{method} /{path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1"), body, max_body=max_body
            )
        session = await self.proxied_session(proxy)
        async with session.request(
            method,
            URL(url, encoded=True),
            headers={**headers, "Accept-Encoding": "identity"},
            data=body,
            proxy=proxy,
            proxy_headers=settings.proxies.proxy_headers_for(url),
        ) as response:
            if (response.content_length or 0) > max_body:
                raise ResponseTooLarge(f"a response body of {response.content_length} bytes, more than {max_body}")
            content = bytearray()
            async for chunk in response.content.iter_any():
                content += chunk
                if len(content) > max_body:
                    raise ResponseTooLarge(f"a response body of more than {max_body} bytes")
            answer = {name.decode().lower(): value.decode() for name, value in response.raw_headers}
            return Response(response.status, answer, bytes(content))

    async def open_stream(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """A GET whose body the caller reads as it arrives, through the aiohttp session (and connection
        pool, timeouts and proxy) that botocore's requests use; the caller closes the response."""
        settings = self.settings
        assert settings is not None, "open_stream on a session that cannot send directly"
        _, _, proxy = self._route(url, settings)
        session = await self.proxied_session(proxy)
        return await session.request(
            "GET",
            URL(url, encoded=True),
            headers={**headers, "Accept-Encoding": "identity"},
            proxy=proxy,
            proxy_headers=settings.proxies.proxy_headers_for(url) if proxy else None,
        )

    def _route(self, url: str, settings: SessionSettings) -> tuple[str, str, str | None]:
        """(origin, path without its leading slash, proxy URL or None) of ``url``."""
        scheme, _, rest = url.partition("://")
        netloc, _, path = rest.partition("/")
        origin = f"{scheme}://{netloc}"
        # Proxy settings (and NO_PROXY) depend on scheme and host only: looked up once per origin.
        if origin not in self._proxies:
            self._proxies[origin] = settings.proxies.proxy_url_for(url) or None
        return origin, path, self._proxies[origin]

    def _open_pool(self, origin: str, settings: SessionSettings) -> OriginPool:
        parsed = URL(origin)
        assert parsed.host is not None and parsed.port is not None
        context = self._tls(settings) if parsed.scheme == "https" else None
        pool = OriginPool(parsed.host, parsed.port, context, max_idle=settings.max_connections)
        self._pools[origin] = pool
        return pool

    @staticmethod
    def _tls(settings: SessionSettings) -> ssl.SSLContext:
        """The TLS context aiobotocore gives its connector when no proxy is used, with the same settings."""
        verify = settings.verify
        files = (get_cert_path(verify) if verify else None, settings.cert_file, settings.key_file)
        return _tls_context(bool(verify), *files, stamps=tuple(_stamp(path) for path in files))

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        await super().close()


def _stamp(path: str | None) -> tuple[int, int] | None:
    """When and how large the file was last written: a rewritten certificate file is read again."""
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None  # loading it raises the error itself
    return found.st_mtime_ns, found.st_size


@lru_cache(maxsize=16)
def _tls_context(
    verify: bool,
    ca_certs: str | None,
    cert_file: str | None,
    key_file: str | None,
    *,
    stamps: tuple[tuple[int, int] | None, ...],
) -> ssl.SSLContext:
    """One TLS context per set of certificate files (and their ``stamps``), shared by every client.

    A context is safe to share between connections, threads and event loops once set up, and nothing
    here changes it afterwards.
    """
    if not verify:
        unchecked = ssl.create_default_context()
        unchecked.check_hostname = False
        unchecked.verify_mode = ssl.CERT_NONE
        return unchecked
    context: ssl.SSLContext = create_urllib3_context()
    context.check_hostname = True
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    if ca_certs:
        context.load_verify_locations(ca_certs, None, None)
    return context


@cache
def _loader(data_path: str | None) -> Loader:
    """One loader per process: every new session would parse botocore's service models again."""
    return create_loader(data_path)


@cache
def _builtin_handlers() -> HierarchicalEmitter | None:
    """botocore's built-in handlers, registered once rather than by every new session."""
    return builtin_handlers()


def _session(settings: StoreSettings) -> AioSession:
    """A botocore session with the settings' profile, credentials and region.

    aiobotocore's own session rather than aioboto3's: aioboto3 adds resources and boto3's transfer
    methods, which the store never uses, and importing it imports boto3.
    """
    handlers = _builtin_handlers()
    if handlers is None:
        core = AioSession()
    else:
        core = AioSession(event_hooks=copy.copy(handlers), include_builtin_handlers=False)
    core.register_component("data_loader", _loader(core.get_config_variable("data_path")))
    if settings.profile is not None:
        core.set_config_variable("profile", settings.profile)
    secret = settings.aws_secret_access_key
    token = settings.aws_session_token
    if settings.aws_access_key_id or secret or token:
        core.set_credentials(
            settings.aws_access_key_id,
            secret.get_secret_value() if secret else None,
            token.get_secret_value() if token else None,
        )
    core.set_config_variable("region", settings.region)
    return core


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
                _session(settings).create_client(service, endpoint_url=settings.endpoint_url, config=config)
            )
        except BotoCoreError as exc:
            raise ConfigError(f"cannot set up the {service} client: {exc}") from exc
        yield client
