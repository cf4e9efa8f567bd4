"""Standard input and output as streams of bytes for ``cp - s3://...`` and ``cp s3://... -``.

A pipe, socket or terminal is read and written through the event loop (``connect_read_pipe``,
``connect_write_pipe``), never by a thread: a thread blocked reading a pipe whose writer has gone quiet
cannot be cancelled, so Ctrl-C or SIGTERM could not abort the multipart upload in progress. The event
loop's reads wait on the descriptor instead, and a signal cancels them like any other await. Regular
files (``< file``, ``> file``) cannot be watched that way; their reads and writes never wait on another
program, so a thread (input) or a plain write (output) does.

Reading stops taking bytes from the pipe when ``READ_BUFFER`` is waiting unread, so the upload's own
bound (part size times concurrency) is the memory used, whatever the size of the input.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["read_stdin", "stdout_writer"]

READ_BUFFER = 1024 * 1024


def _is_stream(fd: int) -> bool:
    """Whether ``fd`` is a pipe, socket or terminal: what the event loop can wait on (not /dev/null)."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


async def read_stdin(chunk_size: int = READ_BUFFER) -> AsyncIterator[bytes]:
    """Standard input's bytes until its end, in chunks of at most ``chunk_size``."""
    fd = sys.stdin.fileno()
    loop = asyncio.get_running_loop()
    if _is_stream(fd):
        reader = asyncio.StreamReader(limit=chunk_size, loop=loop)
        blocking = os.get_blocking(fd)
        # A copy of the descriptor: the transport closes it, standard input stays open.
        pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            while chunk := await reader.read(chunk_size):
                yield chunk
        finally:
            transport.close()
            # The descriptor's non-blocking mode is shared with the shell (a terminal): put it back.
            os.set_blocking(fd, blocking)
        return
    with os.fdopen(os.dup(fd), "rb") as file:
        while chunk := await anyio.to_thread.run_sync(file.read, chunk_size):
            yield chunk


@asynccontextmanager
async def stdout_writer() -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
    """A ``write(data)`` for standard output that waits while a pipe's reader is behind.

    A reader gone away raises ``BrokenPipeError``.
    """
    sys.stdout.flush()
    fd = sys.stdout.fileno()
    if not stat.S_ISFIFO(os.fstat(fd).st_mode) and not stat.S_ISSOCK(os.fstat(fd).st_mode):

        async def write_file(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        yield write_file
        return
    loop = asyncio.get_running_loop()
    blocking = os.get_blocking(fd)
    pipe = os.fdopen(os.dup(fd), "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def write(data: bytes) -> None:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionResetError as exc:  # the transport's word for EPIPE
            raise BrokenPipeError(str(exc)) from exc

    try:
        yield write
        # Everything written is handed to the pipe before the command ends and the loop closes.
        transport.set_write_buffer_limits(high=0, low=0)
        await write(b"")
    finally:
        transport.close()
        with contextlib.suppress(OSError):
            os.set_blocking(fd, blocking)
