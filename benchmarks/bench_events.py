"""Draining an SQS queue of S3 events: S3EventPoller.run vs a raw aiobotocore receive/delete-batch loop.

Each round pre-loads the same number of S3-shaped notifications into a fresh queue, then drains it (a)
with ``S3EventPoller.run`` (a no-op handler, concurrency 32) and (b) with the loop people write by hand:
receive 10, parse, delete them in one DeleteMessageBatch, repeat. Reported: messages per second (median
over rounds), the poller's overhead against the raw loop, and DeleteMessageBatch calls per message.

The server runs in a child process (its CPU is not ours): by default ``benchmarks/sqs_simulator.py``
(in-memory, O(1) per message, ``--delay`` seconds per request). ``--server moto`` uses moto's server,
whose ReceiveMessage cost grows with the queue's depth (quadratic drain): keep ``--messages`` to a few
hundred there.

    python -m benchmarks.bench_events [--messages 5000] [--rounds 5] [--concurrency 32]
                                      [--server simulator|moto] [--delay 0.0]

Targets: overhead <= 10 %, <= 0.1 delete calls per message. Both sides share the machine's cores with
moto: only the ratio, measured in one run, means anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from aiostorage import S3EventPoller, S3EventRecord, StoreSettings, parse_s3_event
from aiostorage._transport import create_client

from .servers import _wait_until_answering, child_process, free_port

REGION = "us-east-1"


@contextmanager
def server_subprocess(kind: str, delay: float) -> Iterator[str]:
    """moto's server or the simulator in a child process (request logs silenced)."""
    port = free_port()
    if kind == "moto":
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = [sys.executable, "-m", "benchmarks.sqs_simulator", "--port", str(port), "--delay", str(delay)]
    with child_process(command):
        _wait_until_answering(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"


def event_body(n: int) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2024-05-01T12:34:56.789Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": f"{n:016X}", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "uploads",
            "bucket": {"name": "media", "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::media"},
            "object": {
                "key": f"uploads/clip+{n:05d}.mp4",
                "size": 1024 * n,
                "eTag": "0123456789abcdef0123456789abcdef",
                "sequencer": f"{n:018X}",
            },
        },
    }
    return json.dumps({"Records": [record]})


async def load_queue(client: Any, count: int) -> str:
    """A fresh queue holding ``count`` messages (sent 10 a call, 8 calls in flight)."""
    url: str = (await client.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}"))["QueueUrl"]
    limiter = anyio.CapacityLimiter(8)

    async def send(start: int) -> None:
        async with limiter:
            entries = [{"Id": str(i), "MessageBody": event_body(start + i)} for i in range(min(10, count - start))]
            response = await client.send_message_batch(QueueUrl=url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]

    async with anyio.create_task_group() as group:
        for start in range(0, count, 10):
            group.start_soon(send, start)
    return url


async def queue_counts(client: Any, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


async def drain_with_poller(settings: StoreSettings, url: str, count: int, concurrency: int) -> tuple[float, int]:
    """Seconds to drain the queue with ``run`` and a no-op handler; DeleteMessageBatch calls made."""
    handled = 0
    delete_calls = 0

    def count_delete(**_: Any) -> None:
        nonlocal delete_calls
        delete_calls += 1

    started = time.perf_counter()
    async with S3EventPoller(url, settings=settings, wait_time=1) as poller:
        poller.client.meta.events.register("before-call.sqs.DeleteMessageBatch", count_delete)

        async def handler(record: S3EventRecord) -> None:
            nonlocal handled
            handled += 1
            if handled == count:
                # now=True: the queue is empty, so the long poll in flight can take nothing, and waiting
                # for it to end (up to wait_time, what a graceful stop does) is shutdown, not draining.
                await poller.stop(now=True)

        await poller.run(handler, concurrency=concurrency)
    return time.perf_counter() - started, delete_calls


async def drain_raw(settings: StoreSettings, url: str, count: int) -> tuple[float, int]:
    """The hand-written loop: receive 10, parse them into the same typed records, delete them in one batch."""
    deleted = 0
    delete_calls = 0
    started = time.perf_counter()
    async with create_client("sqs", settings, max_connections=10) as client:
        while deleted < count:
            response = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = response.get("Messages", [])
            if not messages:
                continue
            for message in messages:
                parse_s3_event(message["Body"])
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            result = await client.delete_message_batch(QueueUrl=url, Entries=entries)
            delete_calls += 1
            deleted += len(result.get("Successful", []))
    return time.perf_counter() - started, delete_calls


async def bench(messages: int, rounds: int, concurrency: int, server: str, delay: float) -> None:
    with server_subprocess(server, delay) as endpoint:
        settings = StoreSettings(
            endpoint_url=endpoint, region=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        rates: dict[str, list[float]] = {"poller": [], "raw": []}
        deletes: dict[str, list[float]] = {"poller": [], "raw": []}
        cpu: dict[str, list[float]] = {"poller": [], "raw": []}
        async with create_client("sqs", settings, max_connections=10) as admin:
            for number in range(1, rounds + 1):
                # Alternate which side goes first, so drift on a shared machine hits both alike.
                order = ["poller", "raw"] if number % 2 else ["raw", "poller"]
                for side in order:
                    url = await load_queue(admin, messages)
                    cpu_before = time.process_time()
                    if side == "poller":
                        seconds, calls = await drain_with_poller(settings, url, messages, concurrency)
                    else:
                        seconds, calls = await drain_raw(settings, url, messages)
                    cpu[side].append((time.process_time() - cpu_before) / messages * 1000)
                    rates[side].append(messages / seconds)
                    deletes[side].append(calls / messages)
                    left = await queue_counts(admin, url)
                    assert left == (0, 0), f"{side} left messages behind: {left}"
                    await admin.delete_queue(QueueUrl=url)
                    print(
                        f"round {number} {side:>6}: {messages / seconds:8.0f} msg/s, {calls} delete calls, "
                        f"{cpu[side][-1] * 1000:.0f} ms client CPU per 1,000 messages"
                    )
    poller_rate, raw_rate = statistics.median(rates["poller"]), statistics.median(rates["raw"])
    poller_cpu, raw_cpu = statistics.median(cpu["poller"]), statistics.median(cpu["raw"])
    overhead = (raw_rate - poller_rate) / raw_rate * 100
    print()
    where = "moto's server" if server == "moto" else f"the SQS simulator ({delay * 1000:.0f} ms per request)"
    print(f"{messages} messages per drain, {rounds} rounds, {where} in a child process")
    print(f"{'consumer':<40}{'msg/s (median)':>16}{'delete calls/msg':>18}{'CPU ms/1k msgs':>16}")
    label = f"S3EventPoller.run (concurrency {concurrency})"
    for name, side in ((label, "poller"), ("raw receive/parse/delete-batch loop", "raw")):
        rate, calls = statistics.median(rates[side]), statistics.median(deletes[side])
        print(f"{name:<40}{rate:>16.0f}{calls:>18.3f}{statistics.median(cpu[side]) * 1000:>16.0f}")
    ratio = poller_rate / raw_rate
    print(f"poller throughput overhead vs raw: {overhead:+.1f} % (negative: faster; target <= 10 %)")
    print(f"poller/raw = {ratio:.2f}x")
    print(f"poller client-CPU overhead vs raw: {(poller_cpu - raw_cpu) / raw_cpu * 100:+.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--server", choices=["simulator", "moto"], default="simulator")
    parser.add_argument("--delay", type=float, default=0.0, help="simulator: seconds per request")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.pop("AWS_PROFILE", None)
    anyio.run(bench, args.messages, args.rounds, args.concurrency, args.server, args.delay)


if __name__ == "__main__":
    main()
