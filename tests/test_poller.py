"""S3EventPoller against moto's server: real S3 → SQS notifications, boto3 as the oracle."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from aiohttp import web

from aiostorage import (
    AccessDenied,
    ConfigError,
    InvalidArgument,
    S3EventPoller,
    S3EventRecord,
    StorageError,
    StoreSettings,
)
from tests.conftest import WireCounter, inject_error, serving, unique_name, wait_for
from tests.event_bodies import notification, s3_record

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {"Name": "suffix", "Value": ".mp4"}


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str
    dlq_url: str


@pytest.fixture
def queue(sqs: Any) -> Queue:
    """A queue whose messages go to a dead-letter queue after 2 receives."""
    dlq_url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(
        QueueName=unique_name("events"), Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn, dlq_url)


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages on the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


async def eventually(condition: Callable[[], Any], *, within: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` (run in a thread: it may call boto3) until truthy, or fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = await anyio.to_thread.run_sync(condition)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await anyio.sleep(interval)


def send(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed")


def event_body(key: str) -> str:
    return notification(s3_record(key=key))


async def test_bucket_notification_end_to_end(
    s3: Any, sqs: Any, bucket: str, queue: Queue, settings: StoreSettings
) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "videos",
                    "QueueArn": queue.arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}, SUFFIX]}},
                }
            ]
        },
    )
    # moto sends s3:TestEvent when the notification is configured, as S3 does.
    test_event = sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)["Messages"][0]
    assert json.loads(test_event["Body"])["Event"] == "s3:TestEvent"
    s3.put_object(Bucket=bucket, Key="uploads/notes.txt", Body=b"text")
    s3.put_object(Bucket=bucket, Key="other/clip.mp4", Body=b"video")
    s3.put_object(Bucket=bucket, Key="uploads/my clip (1)+é.mp4", Body=b"0123456789")

    seen: list[S3EventRecord] = []
    async with S3EventPoller(queue.url, settings=settings, wait_time=1) as poller:
        with anyio.fail_after(10):
            async for record in poller:
                seen.append(record)
                await poller.ack(record)
                break
    assert len(seen) == 1
    [record] = seen
    assert record.key == "uploads/my clip (1)+é.mp4"
    assert record.bucket == bucket and record.is_created and record.size == 10
    assert record.raw_key != record.key  # sent URL-encoded
    assert record.event_time.tzinfo is not None
    assert record.message_id and record.message_id != test_event["MessageId"]  # the SQS message it came in
    # The TestEvent was deleted, the record's message too; nothing else was sent.
    assert await eventually(lambda: counts(sqs, queue.url) == (0, 0))
    assert counts(sqs, queue.dlq_url) == (0, 0)


async def test_garbage_goes_to_the_dlq_and_the_poller_keeps_going(
    sqs: Any, queue: Queue, settings: StoreSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiostorage.events")
    # The second body nests deeper than json.loads can recurse: hostile input must not kill the poller.
    send(sqs, queue.url, ["this is not JSON", "[" * 5000, event_body("uploads/a.mp4")])
    keys: list[str] = []
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, retry_delay=0) as poller:

        async def consume() -> None:
            async for record in poller:
                keys.append(record.key)
                await poller.ack(record)

        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            # Received twice (maxReceiveCount 2), made visible again each time, then moved by the redrive policy.
            await eventually(lambda: counts(sqs, queue.dlq_url) == (2, 0))
            send(sqs, queue.url, [event_body("uploads/b.mp4")])
            await eventually(lambda: len(keys) == 2)
            await poller.stop()
    assert keys == ["uploads/a.mp4", "uploads/b.mp4"]
    dead = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(message["Body"][:4] for message in dead) == ["[[[[", "this"]
    garbage = next(message for message in dead if message["Body"] == "this is not JSON")
    logged = [r.getMessage() for r in caplog.records if "not an S3 event" in r.getMessage()]
    assert len(logged) >= 4
    assert any(garbage["MessageId"] in line and "this is not JSON" in line for line in logged)
    assert await eventually(lambda: counts(sqs, queue.url) == (0, 0))


async def test_nack_redelivers_then_dead_letters(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body("uploads/flaky.mp4")])
    deliveries: list[float] = []
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, retry_delay=1) as poller:

        async def consume() -> None:
            async for record in poller:
                deliveries.append(time.monotonic())
                # The default delay (retry_delay, doubling per receive) first, then "at once".
                await poller.nack(record, delay=None if len(deliveries) == 1 else 0)

        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await eventually(lambda: counts(sqs, queue.dlq_url) == (1, 0))
            await poller.stop()
    assert len(deliveries) == 2
    assert deliveries[1] - deliveries[0] >= 0.9
    assert counts(sqs, queue.url) == (0, 0)


async def test_heartbeat_keeps_a_held_message_invisible(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body("uploads/long-job.mp4")])
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, visibility_timeout=2) as poller:
        with anyio.fail_after(10):
            record = await poller.__anext__()
        held_since = time.monotonic()
        # Well past the 2 s visibility timeout, nobody else can receive it.
        while time.monotonic() - held_since < 5:
            stolen = await anyio.to_thread.run_sync(
                lambda: sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=0).get("Messages", [])
            )
            assert not stolen, "the held message became visible"
            await anyio.sleep(0.25)
        await poller.ack(record)
    assert await eventually(lambda: counts(sqs, queue.url) == (0, 0))


async def test_stop_returns_prefetched_messages_at_once(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body(f"uploads/{i}.mp4") for i in range(5)])
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, max_in_flight=3) as poller:
        with anyio.fail_after(10):
            record = await poller.__anext__()
        # Back-pressure: three messages held (one yielded, two prefetched), two left on the queue.
        assert await eventually(lambda: counts(sqs, queue.url) == (2, 3))
        started = time.monotonic()
        await poller.stop()
        assert time.monotonic() - started < 2
        # The two prefetched ones are back at once (the queue's visibility timeout is 30 s).
        returned = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        assert len(returned["Messages"]) == 4
        keys = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in returned["Messages"]}
        assert record.key not in keys
        # The loop has ended; the held record can still be acknowledged.
        assert [r async for r in poller] == []
        await poller.ack(record)
    assert counts(sqs, queue.url) == (4, 0)


def count_receives(poller: S3EventPoller) -> list[float]:
    """When each ReceiveMessage the poller sends leaves for the wire."""
    sent: list[float] = []
    poller.client.meta.events.register("before-send.sqs.ReceiveMessage", lambda **_: sent.append(time.monotonic()))
    return sent


@pytest.fixture
def hiding_queue(sqs: Any) -> str:
    """A queue that hides a received message for five minutes: a lost receive cannot go unnoticed here."""
    url: str = sqs.create_queue(QueueName=unique_name("hiding"), Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    return url


@pytest.mark.parametrize("how", ["stop", "cancel run", "cancel a waiting stop", "leave the block"])
async def test_stopping_releases_what_the_long_poll_in_flight_takes(
    sqs: Any, hiding_queue: str, settings: StoreSettings, how: str
) -> None:
    # moto's server holds a long poll open until a message arrives or wait_time ends, and goes on holding
    # it when the client hangs up: a message sent meanwhile is handed to the dead request, as on SQS.
    stopping = anyio.Event()

    async def send_while_stopping() -> None:
        await stopping.wait()
        await anyio.to_thread.run_sync(send, sqs, hiding_queue, [event_body("uploads/late.mp4")])

    async def handler(record: S3EventRecord) -> None:
        raise AssertionError(f"nothing is sent before the stop, got {record.key}")

    async with anyio.create_task_group() as group:
        group.start_soon(send_while_stopping)
        with anyio.fail_after(15):
            async with S3EventPoller(hiding_queue, settings=settings, wait_time=5) as poller:
                polls = count_receives(poller)
                async with anyio.create_task_group() as runner:
                    if how == "cancel run":
                        runner.start_soon(poller.run, handler)
                    await eventually(lambda: polls)
                    if how == "stop":
                        stopping.set()
                        await poller.stop()
                    elif how == "cancel run":
                        runner.cancel_scope.cancel()
                    elif how == "cancel a waiting stop":
                        # A timeout on the stop: it ends the wait only, the block's exit waits instead.
                        with anyio.move_on_after(0.5) as waiting:
                            await poller.stop()
                        assert waiting.cancelled_caught
                # Past this point the poller is stopping (run stopped it on its way out), or about to be.
                stopping.set()
            # The poll ended with the message's arrival, well within its five seconds.
            assert len(polls) == 1
            assert time.monotonic() - polls[0] < 5

    def fresh_receive() -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=hiding_queue, WaitTimeSeconds=0, MessageSystemAttributeNames=["ApproximateReceiveCount"]
        )
        return list(response.get("Messages", []))

    # Visible again at once, not in five minutes; its second receive: the stopping poller's poll took it.
    [message] = await eventually(fresh_receive, within=5)
    assert json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"] == "uploads/late.mp4"
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_stop_waits_for_a_long_poll_and_stop_now_abandons_it(queue: Queue, settings: StoreSettings) -> None:
    async with S3EventPoller(queue.url, settings=settings, wait_time=20) as poller:
        polls = count_receives(poller)
        ended = anyio.Event()
        stopped = anyio.Event()

        async def consume() -> None:
            async for _ in poller:
                pass
            ended.set()

        async def stop_gently() -> None:
            await poller.stop()
            stopped.set()

        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await eventually(lambda: polls)
            group.start_soon(stop_gently)
            with anyio.fail_after(2):
                await ended.wait()  # the loop ends at once
            assert not stopped.is_set(), "stop returned while the 20 s poll of an empty queue was in flight"
            started = time.monotonic()
            await poller.stop(now=True)
            with anyio.fail_after(2):
                await stopped.wait()  # the gentle stop's wait ends with the abandoned poll
    assert time.monotonic() - started < 2


async def test_a_poll_left_unanswered_is_abandoned_after_wait_time(
    queue: Queue, settings: StoreSettings, endpoint_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiostorage.events")
    relay = WireCounter(endpoint_url)
    release = anyio.Event()
    held: list[float] = []

    async def hold_receives(request: web.Request) -> web.StreamResponse:
        # A server that takes the long poll and never answers it; everything else reaches moto.
        if request.headers.get("X-Amz-Target", "").endswith(".ReceiveMessage"):
            held.append(time.monotonic())
            await release.wait()
            return web.Response(status=503)
        return await relay.handle(request)

    try:
        async with serving(hold_receives) as url:
            try:
                relayed = settings.model_copy(update={"endpoint_url": url})
                async with S3EventPoller(queue.url, settings=relayed, wait_time=1) as poller:
                    await eventually(lambda: held)
                    started = time.monotonic()
                    with anyio.fail_after(10):
                        await poller.stop()
                    took = time.monotonic() - started
            finally:
                release.set()
    finally:
        await relay.aclose()
    # wait_time, a margin for the answer, then the poll is given up: stop stays bounded.
    assert 1 <= took < 5
    assert any("abandoned" in r.getMessage() for r in caplog.records)


async def test_leaving_the_block_after_break_returns_everything(
    sqs: Any, queue: Queue, settings: StoreSettings
) -> None:
    send(sqs, queue.url, [event_body(f"uploads/{i}.mp4") for i in range(4)])
    async with S3EventPoller(queue.url, settings=settings, wait_time=1) as poller:
        with anyio.fail_after(10):
            async for _record in poller:
                break  # neither acked nor nacked
        await eventually(lambda: counts(sqs, queue.url)[1] == 4)
    # The yielded one and the prefetched ones are all visible again at once.
    assert counts(sqs, queue.url) == (4, 0)


async def test_run_respects_concurrency_and_acks_or_nacks(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    keys = [f"uploads/{i}{'-fail' if i % 5 == 0 else ''}.mp4" for i in range(30)]
    send(sqs, queue.url, [event_body(key) for key in keys])
    active = 0
    most = 0
    attempts: Counter[str] = Counter()
    done: set[str] = set()

    async with S3EventPoller(queue.url, settings=settings, wait_time=1, retry_delay=0) as poller:

        async def handler(record: S3EventRecord) -> None:
            nonlocal active, most
            attempts[record.key] += 1
            active += 1
            most = max(most, active)
            try:
                await anyio.sleep(0.05)
                if record.key.endswith("-fail.mp4") and attempts[record.key] == 1:
                    raise RuntimeError("first attempt fails")
            finally:
                active -= 1
            done.add(record.key)
            if len(done) == len(keys):
                await poller.stop()

        with anyio.fail_after(20):
            await poller.run(handler, concurrency=4)
    assert done == set(keys)
    assert most == 4
    assert all(attempts[key] == (2 if key.endswith("-fail.mp4") else 1) for key in keys)
    assert counts(sqs, queue.url) == (0, 0)
    assert counts(sqs, queue.dlq_url) == (0, 0)


async def test_cancelling_run_lets_handlers_finish(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body(f"uploads/{i}.mp4") for i in range(6)])
    started: list[str] = []
    finished: list[str] = []
    async with S3EventPoller(queue.url, settings=settings, wait_time=1) as poller:

        async def handler(record: S3EventRecord) -> None:
            started.append(record.key)
            await anyio.sleep(0.5)
            finished.append(record.key)

        with anyio.move_on_after(10) as timeout:
            async with anyio.create_task_group() as group:
                group.start_soon(partial(poller.run, handler, concurrency=2))
                await eventually(lambda: len(started) == 2)
                group.cancel_scope.cancel()
        assert not timeout.cancelled_caught
        # The two handlers in flight finished (and were acked) despite the cancellation.
        assert sorted(finished) == sorted(started) and len(started) == 2
    assert await eventually(lambda: counts(sqs, queue.url) == (4, 0))


@pytest.mark.parametrize("source", ["a task cancelled elsewhere", "its own task cancelled"])
async def test_a_cancelled_error_from_a_handler_fails_that_record_not_run(
    sqs: Any, queue: Queue, settings: StoreSettings, caplog: pytest.LogCaptureFixture, source: str
) -> None:
    caplog.set_level(logging.ERROR, logger="aiostorage.events")
    send(sqs, queue.url, [event_body("uploads/victim.mp4")])
    attempts: Counter[str] = Counter()
    handled: list[str] = []
    # Pending cancellation requests of the worker task at each call: a swallowed one must not linger.
    cancelling: list[int] = []
    run_returned = False
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, retry_delay=0) as poller:

        async def handler(record: S3EventRecord) -> None:
            task = asyncio.current_task()
            assert task is not None
            cancelling.append(task.cancelling())
            attempts[record.key] += 1
            if record.key == "uploads/victim.mp4" and attempts[record.key] == 1:
                if source == "a task cancelled elsewhere":
                    # Work the handler waits on, cancelled by someone else: the await raises CancelledError
                    # although nobody cancelled the handler.
                    work = asyncio.ensure_future(asyncio.sleep(30))
                    asyncio.get_running_loop().call_soon(work.cancel)
                    await work
                else:
                    task.cancel()
                    await asyncio.sleep(30)
            handled.append(record.key)

        async def run() -> None:
            nonlocal run_returned
            await poller.run(handler, concurrency=1)
            run_returned = True

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            # Failed, nacked (back at once with retry_delay 0), delivered again and handled.
            await eventually(lambda: "uploads/victim.mp4" in handled)
            send(sqs, queue.url, [event_body("uploads/later.mp4")])
            await eventually(lambda: "uploads/later.mp4" in handled)
            assert not run_returned
            started = time.monotonic()
            group.cancel_scope.cancel()
        assert time.monotonic() - started < 2  # cancelling run itself still ends it at once
    assert not run_returned
    assert attempts == {"uploads/victim.mp4": 2, "uploads/later.mp4": 1}
    assert cancelling == [0, 0, 0]
    failures = [r for r in caplog.records if "CancelledError" in r.getMessage()]
    assert len(failures) == 1 and "uploads/victim.mp4" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert await eventually(lambda: counts(sqs, queue.url) == (0, 0))


async def test_grace_period_then_the_message_goes_back(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body("uploads/stuck.mp4")])
    entered = anyio.Event()
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, grace_period=0.3) as poller:

        async def handler(record: S3EventRecord) -> None:
            entered.set()
            await anyio.sleep_forever()

        async with anyio.create_task_group() as group:
            group.start_soon(partial(poller.run, handler, concurrency=1))
            with anyio.fail_after(10):
                await entered.wait()
            await poller.stop()
        # run returned after the grace period; the message is visible again at once.
        assert counts(sqs, queue.url) == (1, 0)


async def test_receive_errors_are_survived(
    sqs: Any, queue: Queue, endpoint_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiostorage.events")
    send(sqs, queue.url, [event_body("uploads/after-errors.mp4")])
    settings = StoreSettings(
        endpoint_url=endpoint_url,
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        max_attempts=2,
    )
    async with S3EventPoller(queue.url, settings=settings, wait_time=1) as poller:
        # Three 500s: the first call's two attempts fail, it is logged, and the receiver tries again.
        calls = inject_error(poller.client, "ReceiveMessage", "InternalError", 500, times=3)
        with anyio.fail_after(15):
            record = await poller.__anext__()
        await poller.ack(record)
    assert record.key == "uploads/after-errors.mp4"
    assert len(calls) >= 4
    assert any("receiving from" in r.getMessage() for r in caplog.records)


async def test_access_denied_is_raised_at_once(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    async with S3EventPoller(queue.url, settings=settings, wait_time=1) as poller:
        inject_error(poller.client, "ReceiveMessage", "AccessDenied", 403, times=100)
        with anyio.fail_after(5), pytest.raises(AccessDenied):
            async for _ in poller:
                pass


async def test_missing_queue_is_a_config_error(settings: StoreSettings, endpoint_url: str) -> None:
    missing = f"{endpoint_url}/123456789012/{unique_name('missing')}"
    with pytest.raises(ConfigError, match="missing"):
        async with S3EventPoller(missing, settings=settings):
            pass
    with pytest.raises(ConfigError, match="AWS_SQS_QUEUE_URL"):
        S3EventPoller(settings=settings)
    with pytest.raises(InvalidArgument):
        S3EventPoller(missing, settings=settings, batch_size=11)
    with pytest.raises(InvalidArgument):
        S3EventPoller(missing, settings=settings, wait_time=21)


async def test_queue_url_from_settings(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body("uploads/from-settings.mp4")])
    async with S3EventPoller(settings=settings.model_copy(update={"queue_url": queue.url}), wait_time=1) as poller:
        with anyio.fail_after(10):
            record = await poller.__anext__()
        await poller.ack(record)
    assert record.key == "uploads/from-settings.mp4"


def test_three_worker_processes_drain_600_events(sqs: Any, queue: Queue, endpoint_url: str, tmp_path: Path) -> None:
    workers = []
    outputs = [tmp_path / f"worker-{n}.txt" for n in range(3)]
    ready = [tmp_path / f"worker-{n}.ready" for n in range(3)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": "5"})
    try:
        for out, flag in zip(outputs, ready, strict=True):
            command = [sys.executable, "-m", "tests.poller_worker", endpoint_url, queue.url, str(out), str(flag)]
            workers.append(subprocess.Popen(command, env=env, cwd=ROOT))
        wait_for(lambda: all(flag.exists() for flag in ready), timeout=30)
        keys = [f"uploads/{n:04d} clip.mp4" for n in range(600)]
        bodies = [event_body(key.replace(" ", "+")) for key in keys]

        def handled() -> list[str]:
            return [line for out in outputs if out.exists() for line in out.read_text().splitlines()]

        # Sent concurrently, in waves of 100 once the previous wave is drained: moto's ReceiveMessage
        # costs time in proportion to the queue's depth, and its DeleteMessage is not safe against a
        # concurrent SendMessage (a message sent meanwhile can vanish). Concurrent deletes can revive a
        # deleted message: it comes back after the visibility timeout, a duplicate the files record.
        with ThreadPoolExecutor(8) as pool:
            for wave in range(0, 600, 100):
                wait_for(lambda: counts(sqs, queue.url) == (0, 0), timeout=30)
                starts = range(wave, wave + 100, 10)
                list(pool.map(lambda start: send(sqs, queue.url, bodies[start : start + 10]), starts))

        wait_for(lambda: set(handled()) >= set(keys), timeout=60)
        wait_for(lambda: counts(sqs, queue.url) == (0, 0), timeout=10)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=30) for worker in workers]
    assert codes == [0, 0, 0]
    lines = handled()
    per_key = Counter(lines)
    assert set(per_key) == set(keys)  # none lost, nothing unexpected
    duplicates = len(lines) - len(keys)
    assert duplicates == sum(n - 1 for n in per_key.values())  # every extra delivery is in the files
    assert all(out.read_text() for out in outputs), "every worker took a share"
    assert counts(sqs, queue.url) == (0, 0) and counts(sqs, queue.dlq_url) == (0, 0)


def test_example_worker(s3: Any, sqs: Any, bucket: str, queue: Queue, endpoint_url: str) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue.arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_S3_BUCKET_NAME": bucket,
        "AWS_SQS_QUEUE_URL": queue.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    # Created, then deleted before any worker runs: its event waits on the queue for an object that is gone.
    s3.put_object(Bucket=bucket, Key="uploads/gone.bin", Body=b"short-lived")
    s3.delete_object(Bucket=bucket, Key="uploads/gone.bin")
    # A short long poll: stopping lets the poll in flight end.
    command = [sys.executable, str(ROOT / "examples" / "event_worker.py"), "--wait-time", "1"]
    worker = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        data = b"hello, worker" * 1000
        s3.put_object(Bucket=bucket, Key="uploads/my file.bin", Body=data)

        def result() -> Any:
            try:
                return json.loads(s3.get_object(Bucket=bucket, Key="results/my file.bin.json")["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None

        found = wait_for(result, timeout=30)
        # Both events acknowledged, the one for the deleted object too: nothing left to retry.
        wait_for(lambda: counts(sqs, queue.url) == (0, 0), timeout=10)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, logged = worker.communicate(timeout=30)
    assert worker.returncode == 0, logged
    assert found["size"] == len(data)
    assert found["sha256"] == hashlib.sha256(data).hexdigest()
    assert found["key"] == "uploads/my file.bin"
    # The deleted object got one log line, no traceback, no result, and no trip to the dead-letter queue.
    assert "Traceback" not in logged
    gone = [line for line in logged.splitlines() if "uploads/gone.bin" in line]
    assert len(gone) == 1 and "gone" in gone[0].split("uploads/gone.bin", 1)[1], logged
    assert "results/gone.bin.json" not in {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert counts(sqs, queue.dlq_url) == (0, 0)
    # The worker's own result write (under results/) is not an upload: nothing is left on the queue.
    assert counts(sqs, queue.url) == (0, 0)


def fail_delete_entries(client: Any, code: str, times: int) -> list[int]:
    """Answer DeleteMessageBatch ``times`` times with every entry in ``Failed`` (as SQS may, per entry)."""
    calls: list[int] = []

    class Response:
        status_code = 200
        headers: ClassVar[dict[str, str]] = {}

    def hook(params: dict[str, Any], **_: Any) -> Any:
        calls.append(1)
        if len(calls) > times:
            return None
        entries = json.loads(params["body"])["Entries"]
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": code, "Message": "injected"} for e in entries]
        return Response(), {"Successful": [], "Failed": failed}

    client.meta.events.register("before-call.sqs.DeleteMessageBatch", hook)
    return calls


async def test_failed_delete_entries_are_retried(sqs: Any, queue: Queue, settings: StoreSettings) -> None:
    send(sqs, queue.url, [event_body(f"uploads/{i}.mp4") for i in range(3)])
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, delete_interval=0.05) as poller:
        calls = fail_delete_entries(poller.client, "InternalError", times=1)
        with anyio.fail_after(10):
            for _ in range(3):
                await poller.ack(await poller.__anext__())
        assert await eventually(lambda: counts(sqs, queue.url) == (0, 0))
    assert len(calls) >= 2


async def test_delete_given_up_is_logged_and_the_message_comes_back(
    sqs: Any, queue: Queue, settings: StoreSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiostorage.events")
    send(sqs, queue.url, [event_body("uploads/undeletable.mp4")])
    async with S3EventPoller(queue.url, settings=settings, wait_time=1, delete_interval=0.05) as poller:
        calls = fail_delete_entries(poller.client, "ReceiptHandleIsInvalid", times=100)
        with anyio.fail_after(10):
            record = await poller.__anext__()
        await poller.ack(record)  # never raises
        await eventually(lambda: any("could not delete" in r.getMessage() for r in caplog.records))
    assert len(calls) == 1  # an invalid receipt handle is not retried
    assert counts(sqs, queue.url) == (0, 1)  # still there: it will be delivered again


async def test_iterating_outside_the_block_raises(queue: Queue, settings: StoreSettings) -> None:
    poller = S3EventPoller(queue.url, settings=settings)
    with anyio.fail_after(5), pytest.raises(StorageError, match="not open"):
        await poller.__anext__()


async def test_short_polling_an_empty_queue_does_not_spin(queue: Queue, settings: StoreSettings) -> None:
    async with S3EventPoller(queue.url, settings=settings, wait_time=0) as poller:
        receives: list[int] = []
        poller.client.meta.events.register("before-send.sqs.ReceiveMessage", lambda **_: receives.append(1))
        async with anyio.create_task_group() as group:

            async def consume() -> None:
                async for _ in poller:
                    pass

            group.start_soon(consume)
            await eventually(lambda: len(receives) >= 2)
            started = len(receives)
            await anyio.sleep(1.5)  # a measuring window, not a wait for state
            await poller.stop()
    assert len(receives) - started <= 3
