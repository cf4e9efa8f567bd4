"""Every use of a private internal of aiobotocore, botocore or aiohttp, each behind a check of its shape.

The transport needs a few things these libraries keep to themselves: a client's credentials and HTTP
session, the session's settings and its TLS and connector hooks, botocore's built-in event handlers,
its check for errors in 200 answers, its S3 signer's payload decisions, the aiohttp response under a
botocore streaming body and aiohttp's request writer. This module is the only place that reaches them.
Where one is not what this module expects (a library changed it), the request is left to botocore's
own path, which is slower but complete, and one warning says what was not found: a changed library
never breaks a request here.
"""

from __future__ import annotations

import inspect
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiohttp
import botocore.auth
import botocore.handlers
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.hooks import HierarchicalEmitter

__all__ = [
    "DIGEST_CONTEXT_KEY",
    "HookedSession",
    "SessionSettings",
    "UnknownShape",
    "body_reader",
    "builtin_handlers",
    "check_200_errors_after",
    "http_session",
    "plain_socket_for_body",
    "register_precomputed_signer",
    "request_credentials",
]

# Where the payload hooks leave a body's precomputed SHA-256 in a request's context, for the signer.
DIGEST_CONTEXT_KEY = "aiostorage_payload_sha256"
# What a streaming body is read in when its aiohttp response cannot be reached.
_FALLBACK_READ = 1024 * 1024
_reported: set[str] = set()


class UnknownShape(Exception):
    """A private internal of aiobotocore, botocore or aiohttp is not what this module expects."""


def _versions() -> str:
    found = []
    for name in ("aiobotocore", "botocore", "aiohttp"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} ?")
    return ", ".join(found)


def _unknown(what: str, consequence: str) -> UnknownShape:
    """An ``UnknownShape`` for ``what``; the first one for ``what`` in this process is also a warning."""
    if what not in _reported:
        _reported.add(what)
        warnings.warn(
            f"aiostorage: {what} is not what this version of aiostorage expects ({_versions()}): {consequence}",
            RuntimeWarning,
            stacklevel=3,
        )
    return UnknownShape(what)


def _takes(function: Any, *names: str) -> bool:
    """Whether ``function`` is callable with exactly these parameters (``self`` included)."""
    if not callable(function):
        return False
    try:
        return tuple(inspect.signature(function).parameters) == names
    except (TypeError, ValueError):
        return False


# Clients


def request_credentials(client: Any) -> Any:
    """The credentials botocore signs ``client``'s requests with (None when it has none).

    Raises ``UnknownShape`` when they cannot be found.
    """
    signer = getattr(client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", UnknownShape)
    if credentials is UnknownShape or not (
        credentials is None or callable(getattr(credentials, "get_frozen_credentials", None))
    ):
        raise _unknown("a client's credentials (client._request_signer._credentials)", "small requests go by botocore")
    return credentials


def http_session(client: Any) -> Any:
    """The HTTP session ``client`` sends its requests through; raises ``UnknownShape`` when not found."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if session is None:
        raise _unknown("a client's HTTP session (client._endpoint.http_session)", "small requests go by botocore")
    return session


# Sessions


def builtin_handlers() -> HierarchicalEmitter | None:
    """botocore's built-in event handlers as a new session registers them; None when they cannot be read."""
    handlers = getattr(AioSession(), "_original_handler", None)
    if not isinstance(handlers, HierarchicalEmitter):
        _unknown("a session's built-in handlers (AioSession._original_handler)", "each session registers its own")
        return None
    return handlers


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How aiobotocore set up an HTTP session: certificate checks and files, pool size, connector, proxies."""

    verify: bool | str
    cert_file: str | None
    key_file: str | None
    max_connections: int
    connector_args: dict[str, Any]
    proxies: Any  # botocore's ProxyConfiguration


_SESSION_HOOKS = (
    _takes(getattr(AIOHTTPSession, "_get_ssl_context", None), "self")
    and _takes(getattr(AIOHTTPSession, "_create_connector", None), "self", "proxy_url")
    and _takes(getattr(AIOHTTPSession, "_get_session", None), "self", "proxy_url")
)


class HookedSession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, its private hooks and settings under names of ours.

    A subclass adjusts every TLS context aiobotocore makes (``adjust_tls``) and makes the connector
    for requests sent without a proxy (``connector``). ``settings`` is None when the session is not
    what is expected: aiobotocore's own connector is then used and the direct path stays off.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self._read_settings()

    def _read_settings(self) -> SessionSettings | None:
        names = ("_verify", "_cert_file", "_key_file", "_max_pool_connections", "_connector_args", "_proxy_config")
        found: dict[str, Any] = {name: getattr(self, name, UnknownShape) for name in names}
        if not _SESSION_HOOKS or UnknownShape in found.values():
            # Without the TLS hook, aiobotocore's contexts would skip the host name check.
            _unknown(
                "aiobotocore's HTTP session (AIOHTTPSession's hooks and settings)",
                "small requests go by botocore, and certificate host names may go unchecked",
            )
            return None
        return SessionSettings(
            verify=found["_verify"],
            cert_file=found["_cert_file"],
            key_file=found["_key_file"],
            max_connections=found["_max_pool_connections"],
            connector_args=found["_connector_args"],
            proxies=found["_proxy_config"],
        )

    def adjust_tls(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """A TLS context aiobotocore made, as it is to be used."""
        return context

    def connector(self, settings: SessionSettings) -> aiohttp.TCPConnector:
        """The connector for requests sent without a proxy."""
        raise NotImplementedError

    async def proxied_session(self, proxy_url: str | None) -> aiohttp.ClientSession:
        """aiobotocore's aiohttp session for requests through ``proxy_url`` (None: without a proxy)."""
        session: aiohttp.ClientSession = await self._get_session(proxy_url)
        return session

    def _get_ssl_context(self) -> ssl.SSLContext:
        return self.adjust_tls(super()._get_ssl_context())

    def _create_connector(self, proxy_url: str | None) -> aiohttp.TCPConnector:
        if proxy_url or self.settings is None:
            connector: aiohttp.TCPConnector = super()._create_connector(proxy_url)
            return connector
        return self.connector(self.settings)


# Answers


def body_reader(body: Any) -> Callable[[], Awaitable[bytes]]:
    """A read of the bytes of ``body`` (a botocore streaming body) that have arrived, empty at its end.

    It reads the aiohttp response under ``body`` (``readany``): whole buffered chunks, no slicing or
    joining copies, and none of botocore's wrappers, since the caller checks length and checksum. When
    that response cannot be reached, ``body.read`` of at most a chunk.
    """
    content = getattr(body, "content", None)
    if isinstance(content, aiohttp.StreamReader):
        return content.readany
    _unknown("the aiohttp response under a streaming body (StreamingBody.content)", "bodies are read through botocore")
    return partial(body.read, _FALLBACK_READ)


# botocore's check for an error document in a 200 answer, as its built-in handlers register it.
_CHECK_200 = getattr(botocore.handlers, "_handle_200_error", None)
_CHECK_200_KNOWN = (
    "before-parse.s3.*",
    _CHECK_200,
    botocore.handlers.REGISTER_FIRST,
) in getattr(botocore.handlers, "BUILTIN_HANDLERS", ())


def check_200_errors_after(events: Any) -> None:
    """Move botocore's check for an error document in a 200 answer from S3 behind the ``before-parse``
    handlers ``events`` already runs first; left where it is (it then reads every body) when not found."""
    if not _CHECK_200_KNOWN:
        _unknown(
            "botocore's check for errors in 200 answers (handlers._handle_200_error)",
            "it parses every listing page first",
        )
        return
    events.unregister("before-parse.s3.*", _CHECK_200)
    events.register_first("before-parse.s3.*", _CHECK_200)


# Signing


class _PrecomputedPayloadAuth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    """S3's SigV4 signer, using the payload's precomputed SHA-256 instead of hashing it again."""

    def _should_sha256_sign_payload(self, request: Any) -> bool:
        # botocore leaves the payload unsigned over TLS when a checksum header protects a streaming
        # body, but only recognises a checksum it computed itself; ours is just as present.
        s3_config = getattr(request.context.get("client_config"), "s3", None) or {}
        if (
            s3_config.get("payload_signing_enabled") is None
            and request.url.startswith("https")
            and request.context.get("has_streaming_input", False)
            and any(name.lower().startswith("x-amz-checksum-") for name in request.headers)
        ):
            return False
        result: bool = super()._should_sha256_sign_payload(request)
        return result

    def payload(self, request: Any) -> str:
        digest = request.context.get(DIGEST_CONTEXT_KEY)
        if digest and not self._is_streaming_checksum_payload(request) and self._should_sha256_sign_payload(request):
            return str(digest)
        result: str = super().payload(request)
        return result


_SIGNER_KNOWN = (
    isinstance(getattr(botocore.auth, "AUTH_TYPE_MAPS", None), dict)
    and _takes(getattr(botocore.auth.S3SigV4Auth, "_should_sha256_sign_payload", None), "self", "request")
    and _takes(getattr(botocore.auth.S3SigV4Auth, "_is_streaming_checksum_payload", None), "self", "request")
    and _takes(getattr(botocore.auth.S3SigV4Auth, "payload", None), "self", "request")
)


def register_precomputed_signer(name: str) -> bool:
    """Make ``name`` a signature version that signs with the SHA-256 left under ``DIGEST_CONTEXT_KEY``.

    botocore looks signature versions up in one table for the whole process; a name of our own
    changes nothing for anyone else. False when the signer cannot be built: botocore then hashes.
    """
    if not _SIGNER_KNOWN:
        _unknown("botocore's S3 signer (S3SigV4Auth's payload methods)", "botocore hashes request payloads itself")
        return False
    botocore.auth.AUTH_TYPE_MAPS.setdefault(name, _PrecomputedPayloadAuth)
    return True


# aiohttp's request writer


def plain_socket_for_body(writer: Any) -> Any:
    """The plain TCP transport under aiohttp's request ``writer``, the request's headers sent, for the
    body to follow by ``sendfile``; None over TLS, or when the writer is not what is expected (the body
    then goes through the writer)."""
    transport = getattr(writer, "transport", None)
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    send_headers: Any = getattr(writer, "send_headers", None)
    if not _takes(send_headers):
        _unknown("aiohttp's request writer (StreamWriter.send_headers)", "file bodies are sent without sendfile")
        return None
    send_headers()
    return transport
