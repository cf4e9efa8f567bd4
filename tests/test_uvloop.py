"""aiostorage on uvloop's event loop, which many asyncio services run instead of asyncio's own.

uvloop's transports are its own classes (not ``asyncio.Transport`` instances) and it has no
``loop.sendfile``, so each way bytes travel is exercised once on it: the direct path's own connections
(small PUT, GET, HEAD, listing), a multipart upload from a path (sendfile's fallback), a ranged download to
a file, a stream, over plain HTTP and over TLS, and the SQS poller.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiostorage import AsyncS3Store, ObjectNotFound, S3EventPoller, StoreSettings
from tests.conftest import TLSEndpoint, unique_name
from tests.event_bodies import notification, s3_record

uvloop = pytest.importorskip("uvloop")

PART = 5 * 1024 * 1024


def on_uvloop(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on a new uvloop event loop, and check it really ran there."""

    async def checked() -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        await main()

    uvloop.run(checked())


def _transfers(store_settings: StoreSettings, bucket: str, tmp_path: Path) -> Callable[[], Awaitable[None]]:
    source = tmp_path / "source.bin"
    data = os.urandom(2 * PART + 12345)  # three parts, the last one short
    source.write_bytes(data)

    async def main() -> None:
        async with AsyncS3Store(bucket, settings=store_settings, part_size=PART, concurrency=3) as store:
            # The direct path: its own HTTP/1.1 connections on the loop's transports.
            await store.put_bytes("small.txt", b"hello uvloop")
            assert await store.get_bytes("small.txt") == b"hello uvloop"
            assert (await store.head("small.txt")).size == len(b"hello uvloop")

            uploaded = await store.upload(source, "big.bin")
            assert uploaded.size == len(data)
            assert uploaded.parts == 3

            dest = tmp_path / "out" / "big.bin"
            downloaded = await store.download("big.bin", dest, part_size=PART)
            assert downloaded.size == len(data)
            assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()

            received = bytearray()
            async with store.stream("big.bin", part_size=PART) as chunks:
                async for chunk in chunks:
                    received += chunk
            assert bytes(received) == data

            keys = sorted([info.key async for info in store.list("")])
            assert keys == ["big.bin", "small.txt"]
            await store.delete("small.txt")
            with pytest.raises(ObjectNotFound):
                await store.head("small.txt")

    return main


def test_transfers_over_http(bucket: str, settings: StoreSettings, tmp_path: Path) -> None:
    on_uvloop(_transfers(settings, bucket, tmp_path))


def test_transfers_over_tls(
    bucket: str, settings: StoreSettings, tls_endpoint: TLSEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", tls_endpoint.ca_bundle)
    on_uvloop(_transfers(settings.model_copy(update={"endpoint_url": tls_endpoint.url}), bucket, tmp_path))
    # The bytes really went through the TLS proxy.
    assert tls_endpoint.proxy.heads_for(bucket)


def test_poller(sqs: Any, settings: StoreSettings) -> None:
    url = sqs.create_queue(QueueName=unique_name("uvloop"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=notification(s3_record(key="uploads/on-uvloop.mp4")))
    keys: list[str] = []

    async def main() -> None:
        async with S3EventPoller(url, settings=settings, wait_time=1) as poller:
            with anyio.fail_after(20):
                async for record in poller:
                    keys.append(record.key)
                    await poller.ack(record)
                    break

    on_uvloop(main)
    assert keys == ["uploads/on-uvloop.mp4"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
