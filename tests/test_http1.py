"""The direct path's HTTP/1.1 pool against a scripted server on loopback: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from aiostorage._transport.http1 import OriginPool, ResponseTooLarge

Answer = tuple[list[bytes], bool]  # the pieces to write, and whether to close the connection after them
Script = Callable[[int, bytes], Answer | None]


@dataclass
class ScriptedServer:
    """Answers the n-th request as ``script(n, request)`` says (None: close the connection at once)."""

    script: Script
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.script(len(self.requests), request)
                if answer is None:
                    break
                pieces, close = answer
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)  # let the pieces arrive apart
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Script], Awaitable[ScriptedServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def open_server(script: Script) -> ScriptedServer:
        scripted = ScriptedServer(script)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        scripted.port = server.sockets[0].getsockname()[1]
        return scripted

    yield open_server
    for server in servers:
        server.close()


MAX_BODY = 1024 * 1024
OK = b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 0\r\n\r\n'


def put(path: str = "/b/k", body: bytes = b"data") -> tuple[bytes, bytes]:
    return f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode(), body


async def test_requests_reuse_one_connection(serve: Serve) -> None:
    server = await serve(lambda n, request: ([OK], False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    for _ in range(5):
        response = await pool.request(*put(), max_body=MAX_BODY)
        assert (response.status, response.headers["etag"], response.body) == (200, '"abc"', b"")
    assert server.connections == 1
    assert server.requests[0].endswith(b"\r\n\r\ndata")
    pool.close()


@pytest.mark.parametrize(
    ("pieces", "body"),
    [
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo"], b"hello"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n", b"2;x=y\r\nlo\r\n0\r\n\r\n"], b"hello"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"], b"hello"),
        ([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], b"hello"),
        # A head split inside a header's name and inside its value, as a socket may deliver it.
        ([b"HTTP/1.1 200 OK\r\nCont", b"ent-Length: 5\r\nX-A: o", b"ne\r\n\r\nhello"], b"hello"),
        ([b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"], b"hello"),
    ],
)
async def test_bodies_framed_every_way_are_read_whole(serve: Serve, pieces: list[bytes], body: bytes) -> None:
    server = await serve(lambda n, request: (pieces, False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    for _ in range(2):
        response = await pool.request(*put(), max_body=MAX_BODY)
        assert (response.status, response.body) == (200, body)
    assert server.connections == 1  # each framing left the connection reusable
    pool.close()


async def test_an_unframed_body_runs_to_the_close_and_the_connection_is_not_reused(
    serve: Serve,
) -> None:
    error = b"<Error><Code>InternalError</Code></Error>"
    server = await serve(lambda n, request: ([b"HTTP/1.0 500 Oops\r\n\r\n", error], True))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    for _ in range(2):
        response = await pool.request(*put(), max_body=MAX_BODY)
        assert response.status == 500 and response.body == error
    assert server.connections == 2
    pool.close()


async def test_bytes_after_the_answer_keep_the_connection_from_reuse(serve: Serve) -> None:
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    server = await serve(lambda n, request: ([extra], False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    for _ in range(2):
        assert (await pool.request(*put(), max_body=MAX_BODY)).status == 200
    assert server.connections == 2  # a second answer to one request: its state unknown, not reused
    pool.close()


async def test_repeated_headers_are_joined(serve: Serve) -> None:
    server = await serve(
        lambda n, request: ([b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n"], False)
    )
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    assert (await pool.request(*put(), max_body=MAX_BODY)).headers["x-a"] == "1, 2"
    pool.close()


async def test_a_kept_alive_connection_closed_while_idle_is_replaced(serve: Serve) -> None:
    """The server drops the idle connection without a word: the request goes again on a new one."""
    server = await serve(lambda n, request: None if n == 2 else ([OK], False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    assert (await pool.request(*put(), max_body=MAX_BODY)).status == 200
    assert (await pool.request(*put(), max_body=MAX_BODY)).status == 200
    assert server.connections == 2 and len(server.requests) == 3
    pool.close()


async def test_a_fresh_connection_closed_before_the_answer_fails(serve: Serve) -> None:
    server = await serve(lambda n, request: None)
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await pool.request(*put(), max_body=MAX_BODY)
    assert server.connections == 1  # not sent twice: only a reused connection may have gone stale
    pool.close()


@pytest.mark.parametrize(
    "pieces",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],  # then closed
        [b"NOT HTTP\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"],  # then closed
    ],
)
async def test_broken_answers_raise_and_drop_the_connection(serve: Serve, pieces: list[bytes]) -> None:
    server = await serve(lambda n, request: (pieces, True) if n == 1 else ([OK], False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    with pytest.raises(aiohttp.ClientError):
        await pool.request(*put(), max_body=MAX_BODY)
    assert (await pool.request(*put(), max_body=MAX_BODY)).status == 200
    assert server.connections == 2
    pool.close()


async def test_a_refused_connection_raises_aiohttps_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = OriginPool("127.0.0.1", port, None, max_idle=4)
    with pytest.raises(aiohttp.ClientConnectionError, match="cannot connect"):
        await pool.request(*put(), max_body=MAX_BODY)


async def test_a_cancelled_exchange_closes_its_connection(serve: Serve) -> None:
    answered = asyncio.Event()

    def script(n: int, request: bytes) -> Answer:
        answered.set()
        return ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe"], False) if n == 1 else ([OK], False)

    server = await serve(script)
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    task = asyncio.ensure_future(pool.request(*put(), max_body=MAX_BODY))
    await asyncio.wait_for(answered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await pool.request(*put(), max_body=MAX_BODY)).status == 200
    assert server.connections == 2  # the half-answered connection was not used again
    pool.close()


@pytest.mark.parametrize(
    "pieces",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", b"hello world"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world"],
    ],
)
async def test_a_body_over_the_limit_raises_its_own_error(serve: Serve, pieces: list[bytes]) -> None:
    """Not a network failure (not retried as one): the caller asked for less and decides what to do."""
    server = await serve(lambda n, request: (pieces, True) if n == 1 else ([OK], False))
    pool = OriginPool("127.0.0.1", server.port, None, max_idle=4)
    with pytest.raises(ResponseTooLarge):
        await pool.request(*put(), max_body=10)
    assert not isinstance(ResponseTooLarge(), aiohttp.ClientError)
    assert (await pool.request(*put(), max_body=10)).status == 200
    assert server.connections == 2
    pool.close()
