"""HTTP/1.1 exchanges for small requests whose body is already in memory, on kept-alive connections.

aiohttp's ``ClientSession.request`` builds request and response objects, runs tracing hooks, starts a
task to write the body and handles cookies and redirects for every exchange: with many small requests
in flight on one event loop, that CPU sets the pace. ``OriginPool`` writes a request in one go on a
kept-alive connection and parses the answer in the protocol's callback: status line, headers, and a
body framed by ``Content-Length``, chunked, or the end of the connection. There are no redirects,
cookies or proxies here (``HTTPSession`` keeps aiohttp for those).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

__all__ = ["OriginPool", "Response", "ResponseTooLarge"]

MAX_HEAD = 64 * 1024
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
    """One connection: one request at a time, its answer parsed as the bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.reusable = False
        self._buffer = bytearray()
        self._answer: asyncio.Future[Response] | None = None
        self._head: tuple[int, dict[str, str]] | None = None
        self._got_bytes = False
        self._max_body = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

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
        self._buffer.clear()
        self._head = None
        self._got_bytes = False
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
            self.reusable = False
            self.close()
            return
        self._got_bytes = True
        self._buffer += data
        try:
            self._parse(eof=False)
        except (aiohttp.ClientPayloadError, ResponseTooLarge) as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost completes or fails the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        answer = self._answer
        if answer is None or answer.done():
            return
        try:
            self._parse(eof=True)
        except (aiohttp.ClientPayloadError, ResponseTooLarge) as error:
            self._fail(error)
            return
        if not answer.done():
            reason = f": {exc}" if exc else ""
            self._fail(aiohttp.ServerDisconnectedError(f"the server closed the connection before answering{reason}"))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def _parse(self, *, eof: bool) -> None:
        buffer = self._buffer
        while self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise aiohttp.ClientPayloadError("response head too large")
                return
            status, headers = _parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._head = (status, headers)
        status, headers = self._head
        keep_alive = "close" not in headers.get("connection", "").lower()
        if status in (204, 304):
            body, rest = b"", bytes(buffer)
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _dechunk(buffer, self._max_body)
            if parsed is None:
                if eof:
                    raise aiohttp.ClientPayloadError("chunked response cut short")
                return
            body, rest = parsed
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                length = -1
            if length < 0:
                raise aiohttp.ClientPayloadError(f"bad Content-Length {headers['content-length']!r}")
            if length > self._max_body:
                raise ResponseTooLarge(f"a response body of {length} bytes, more than {self._max_body}")
            if len(buffer) < length:
                if eof:
                    raise aiohttp.ClientPayloadError(f"response cut short: {len(buffer)} of {length} bytes")
                return
            body, rest = bytes(buffer[:length]), bytes(buffer[length:])
        else:
            # No framing: the body runs to the end of the connection.
            if len(buffer) > self._max_body:
                raise ResponseTooLarge(f"a response body of more than {self._max_body} bytes")
            if not eof:
                return
            body, rest, keep_alive = bytes(buffer), b"", False
        assert self._answer is not None
        self.reusable = keep_alive and not rest and not eof
        self._answer.set_result(Response(status, headers, body))


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise aiohttp.ClientPayloadError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise aiohttp.ClientPayloadError(f"malformed header line: {line[:100]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"
    return int(code), headers


def _dechunk(buffer: bytearray, max_body: int) -> tuple[bytes, bytes] | None:
    """The body of a complete chunked message at the start of ``buffer`` and what follows it; None if incomplete."""
    body = bytearray()
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_field = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise aiohttp.ClientPayloadError(f"bad chunk size {size_field[:20]!r}") from None
        position = line_end + 2
        if size == 0:
            # Trailers, if any, end with an empty line.
            trailer_end = buffer.find(b"\r\n", position)
            while trailer_end > position:
                position = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", position)
            if trailer_end < 0:
                return None
            return bytes(body), bytes(buffer[trailer_end + 2 :])
        if len(body) + size > max_body:
            raise ResponseTooLarge(f"a response body of more than {max_body} bytes")
        if len(buffer) < position + size + 2:
            return None
        body += buffer[position : position + size]
        position += size + 2


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
