"""HTTP/1.1 exchanges for small requests whose body is already in memory, on kept-alive connections.

aiohttp's ``ClientSession.request`` builds request and response objects, runs tracing hooks, starts a
task to write the body and handles cookies and redirects for every exchange: with many small requests
in flight on one event loop, that CPU sets the pace. ``OriginPool`` writes a request in one go on a
kept-alive connection and reads the answer with llhttp (through ``httptools``, the parser uvicorn
uses) as bytes arrive: status line, headers, and a body framed by ``Content-Length``, chunked, or the
end of the connection. There are no redirects,
cookies or proxies here (``HTTPSession`` keeps aiohttp for those).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

import aiohttp
import httptools

__all__ = ["OriginPool", "Response", "ResponseTooLarge"]

# A connection idle this long may have been closed by the server (aiohttp's default keep-alive timeout).
IDLE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Response:
    """An answer read whole: status, headers (names in lower case, repeats joined with ", "), body."""

    status: int
    headers: dict[str, str]
    body: bytes


class ResponseTooLarge(Exception):
    """The answer's body is larger than the request said it would take (not a network failure)."""


class _Connection(asyncio.Protocol):
    """One connection: one request at a time, its answer parsed by llhttp (``httptools``) as bytes arrive.

    The parser calls back ``on_*`` as it reads; this class only keeps the status, the headers and the
    body, and decides whether the connection can carry another request.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._head_done = False
        self._framed = False
        self._got_bytes = False
        self._max_body = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not always an asyncio.Transport instance: uvloop's are its own classes.
        self.transport = cast(asyncio.Transport, transport)

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    @property
    def got_bytes(self) -> bool:
        """Whether any byte of the current answer has arrived (before that, a failure may be a stale connection)."""
        return self._got_bytes

    def send(self, data: bytes, max_body: int) -> asyncio.Future[Response]:
        assert self.transport is not None and (self._answer is None or self._answer.done())
        self._max_body = max_body
        self._got_bytes = False
        self._head_done = False
        self.reusable = False
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            # Bytes nobody asked for: the connection's state is unknown, so it is not used again.
            self._fail(None)
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, ResponseTooLarge) else aiohttp.ClientPayloadError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(aiohttp.ClientPayloadError(f"malformed HTTP response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost completes or fails the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._head_done and not self._framed:
            # No Content-Length and not chunked: the body ran to the end of the connection.
            self._complete(self._parser.get_status_code())
            return
        reason = f": {exc}" if exc else ""
        if self._head_done:
            self._fail(aiohttp.ClientPayloadError(f"response cut short after {len(self._body)} body bytes{reason}"))
        else:
            self._fail(aiohttp.ServerDisconnectedError(f"the server closed the connection before answering{reason}"))

    def _fail(self, exc: Exception | None) -> None:
        self.reusable = False
        if exc is not None and self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def _complete(self, status: int) -> None:
        assert self._answer is not None
        self._answer.set_result(Response(status, self._headers, bytes(self._body)))

    # The parser's callbacks.

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():
            self._fail(None)  # a second answer to one request: the connection's state is unknown
            return
        self._headers = {}
        self._body = bytearray()
        self._head_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1").strip()
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        headers = self._headers
        self._head_done = True
        self._framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise ResponseTooLarge(f"a response body of {length} bytes, more than {self._max_body}")

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._max_body:
            raise ResponseTooLarge(f"a response body of more than {self._max_body} bytes")

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._head_done = False  # an interim answer (100 Continue): the real one follows
            return
        self.reusable = self._parser.should_keep_alive()
        self._complete(status)


class OriginPool:
    """Kept-alive connections to one origin (scheme, host, port), one request on each at a time.

    For PUT and GET: the answer to a HEAD announces a ``Content-Length`` whose body never comes.
    """

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, *, max_idle: int) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._idle: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()

    async def request(self, head: bytes, body: bytes, *, max_body: int) -> Response:
        """Send ``head`` (request line and headers, ending in an empty line) and ``body``; the answer.

        An answer whose body is over ``max_body`` bytes raises ``ResponseTooLarge`` (its connection is
        closed, the rest unread).

        A kept-alive connection the server closed while idle fails before any byte of the answer
        arrives: the request then goes once more on a new connection (safe for the idempotent PUTs
        sent here). Network failures raise aiohttp's exceptions, as aiohttp would.
        """
        message = head + body
        connection = self._take_idle()
        if connection is not None:
            try:
                return await self._exchange(connection, message, max_body)
            except aiohttp.ClientConnectionError:
                if connection.got_bytes:
                    raise
        return await self._exchange(await self._connect(), message, max_body)

    def close(self) -> None:
        """Close every connection, idle or busy."""
        for connection in [*self._idle, *self._busy]:
            connection.close()
        self._idle.clear()
        self._busy.clear()

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()

        def fresh(connection: _Connection) -> bool:
            return connection.open and now - connection.idle_since < IDLE_SECONDS

        # The oldest sit on the left: those left over from a burst expire there instead of piling up.
        while self._idle and not fresh(self._idle[0]):
            self._idle.popleft().close()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely to have been closed
            if fresh(connection):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None
            )
        except ssl.SSLCertVerificationError:
            raise  # a setup matter, told apart by the caller
        except OSError as exc:
            raise aiohttp.ClientConnectionError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        return connection

    async def _exchange(self, connection: _Connection, message: bytes, max_body: int) -> Response:
        self._busy.add(connection)
        try:
            response = await connection.send(message, max_body)
        except BaseException:
            connection.close()  # cancelled or failed mid-exchange: its state is unknown
            raise
        finally:
            self._busy.discard(connection)
        if connection.reusable and connection.open and len(self._idle) < self._max_idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return response
