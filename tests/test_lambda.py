"""sqs_lambda_handler: AWS's sample events, warm invocations, the deadline, and a run against moto's SQS.

The Lambda handler is synchronous (it runs its own event loop), so these tests are plain functions.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from aiostorage import (
    AsyncS3Store,
    InvalidArgument,
    S3EventRecord,
    StorageError,
    StoreSettings,
    parse_s3_event,
    sqs_lambda_handler,
)
from aiostorage.events import lambda_handler as lambda_module
from tests.conftest import ACCESS_KEY, REGION, SECRET_KEY, unique_name, wait_for
from tests.event_bodies import notification, s3_record

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = json.loads((ROOT / "tests/data/lambda_sqs_event.json").read_text())
S3_PUT, FAILS, SNS, EVENTBRIDGE, TEST_EVENT, GARBAGE = (record["messageId"] for record in SAMPLE["Records"])


class FakeContext:
    """Lambda's context object, with a clock the test controls: the remaining time is ``deadline - now``."""

    def __init__(self, remaining: float) -> None:
        self.deadline = time.monotonic() + remaining

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    def expire_in(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds


def sqs_event(*bodies: str, prefix: str = "m") -> dict[str, Any]:
    """A Lambda SQS event carrying ``bodies``, message ids ``<prefix>0``, ``<prefix>1``, ..."""
    records = [
        {
            "messageId": f"{prefix}{index}",
            "receiptHandle": f"handle-{index}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:media-events",
            "awsRegion": "us-east-1",
        }
        for index, body in enumerate(bodies)
    ]
    return {"Records": records}


def failures(result: dict[str, list[dict[str, str]]]) -> list[str]:
    return [entry["itemIdentifier"] for entry in result["batchItemFailures"]]


# --- AWS's sample shapes -------------------------------------------------------------------------------------


def test_sample_events_report_exactly_the_failing_and_the_garbage_messages(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[S3EventRecord] = []

    async def handle(record: S3EventRecord) -> None:
        seen.append(record)
        if record.key == "uploads/fails.mp4":
            raise RuntimeError("cannot transcode")

    with caplog.at_level(logging.WARNING, logger="aiostorage.events"):
        result = sqs_lambda_handler(handle)(SAMPLE, FakeContext(60))

    assert failures(result) == [FAILS, GARBAGE]
    handled = Counter((record.message_id, record.key) for record in seen)
    assert handled == {
        (S3_PUT, "uploads/HappyFace.jpg"): 1,
        (FAILS, "uploads/fails.mp4"): 1,
        (SNS, "uploads/Happy Face(1).jpg"): 1,
        (EVENTBRIDGE, "uploads/example key.mp4"): 1,
    }
    assert TEST_EVENT not in {record.message_id for record in seen}
    by_shape = {record.message_id: record for record in seen}
    assert by_shape[EVENTBRIDGE].event_name == "ObjectCreated:Put" and by_shape[EVENTBRIDGE].size == 5
    assert by_shape[SNS].raw_key == "uploads/Happy+Face%281%29.jpg"
    # One line per failure, naming the message and the key (none for a body that is not an event).
    lines = sorted(record.getMessage() for record in caplog.records)
    assert len(lines) == 2, lines
    failed, garbage = sorted(lines, key=lambda line: GARBAGE in line)
    assert FAILS in failed and "uploads/fails.mp4" in failed and "cannot transcode" in failed
    assert GARBAGE in garbage and "not an S3 event" in garbage


def test_all_good_is_an_empty_failure_list_and_a_test_event_calls_nothing() -> None:
    calls: list[S3EventRecord] = []

    async def handle(record: S3EventRecord) -> None:
        calls.append(record)

    test_event = next(r for r in SAMPLE["Records"] if r["messageId"] == TEST_EVENT)
    assert sqs_lambda_handler(handle)({"Records": [test_event]}, None) == {"batchItemFailures": []}
    assert calls == []
    assert sqs_lambda_handler(handle)({"Records": []}, None) == {"batchItemFailures": []}


def test_every_record_of_a_message_is_handled_and_one_failure_fails_the_message() -> None:
    seen: list[str] = []

    async def handle(record: S3EventRecord) -> None:
        seen.append(record.key)
        if record.key.endswith("bad.mp4"):
            raise ValueError("bad")

    event = sqs_event(
        notification(s3_record(key="uploads/a.mp4"), s3_record(key="uploads/b.mp4")),
        notification(s3_record(key="uploads/bad.mp4")),
    )
    assert failures(sqs_lambda_handler(handle, concurrency=1)(event, None)) == ["m1"]
    assert seen == ["uploads/a.mp4", "uploads/b.mp4", "uploads/bad.mp4"]


@pytest.mark.parametrize("concurrency", [1, 3, 10])
def test_records_run_concurrently_up_to_the_limit(concurrency: int) -> None:
    running = 0
    peak = 0

    async def handle(record: S3EventRecord) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1

    event = sqs_event(*(notification(s3_record(key=f"uploads/{i}.mp4")) for i in range(6)))
    assert failures(sqs_lambda_handler(handle, concurrency=concurrency)(event, None)) == []
    assert peak == min(concurrency, 6)


def test_invalid_arguments_are_refused_when_wrapping() -> None:
    async def handle(record: S3EventRecord) -> None:
        return None

    def sync_handle(record: S3EventRecord) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, record: S3EventRecord) -> None:
            return None

    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidArgument, match="concurrency"):
            sqs_lambda_handler(handle, concurrency=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="async"):
        sqs_lambda_handler(sync_handle)
    with pytest.raises(InvalidArgument, match="async"):
        sqs_lambda_handler("handle")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="margin"):
        sqs_lambda_handler(handle, margin=-1)
    assert callable(sqs_lambda_handler(AsyncCallable()))


def test_an_event_that_is_not_from_sqs_fails_the_whole_invocation() -> None:
    async def handle(record: S3EventRecord) -> None:
        return None

    lambda_handler = sqs_lambda_handler(handle)
    with pytest.raises(InvalidArgument, match="not an SQS event"):
        lambda_handler({"detail-type": "Scheduled Event"}, None)
    with pytest.raises(InvalidArgument, match="messageId"):
        lambda_handler({"Records": [{"body": notification(s3_record())}]}, None)


async def test_calling_the_handler_from_a_coroutine_is_refused() -> None:
    async def handle(record: S3EventRecord) -> None:
        return None

    with pytest.raises(StorageError, match="synchronous code"):
        sqs_lambda_handler(handle)(sqs_event(notification(s3_record())), None)


def test_a_message_id_given_twice_is_reported_once() -> None:
    event = sqs_event("garbage", "garbage")
    for record in event["Records"]:
        record["messageId"] = "same"

    async def handle(record: S3EventRecord) -> None:
        return None

    assert failures(sqs_lambda_handler(handle)(event, None)) == ["same"]


def test_a_cancelled_error_from_a_handler_fails_its_record_only() -> None:
    async def handle(record: S3EventRecord) -> None:
        if record.key == "uploads/cancelled.mp4":
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.cancel()
            await future

    event = sqs_event(notification(s3_record(key="uploads/cancelled.mp4")), notification(s3_record(key="uploads/ok")))
    assert failures(sqs_lambda_handler(handle, concurrency=1)(event, None)) == ["m0"]


# --- warm invocations ----------------------------------------------------------------------------------------


def test_warm_invocations_reuse_one_event_loop_and_one_store(bucket: str, settings: StoreSettings, s3: Any) -> None:
    loops: set[int] = set()
    clients: set[int] = set()
    stores: list[AsyncS3Store] = []

    async def handle(record: S3EventRecord) -> None:
        loops.add(id(asyncio.get_running_loop()))
        if not stores:
            store = AsyncS3Store(bucket, settings=settings)
            await store.__aenter__()
            stores.append(store)
        clients.add(id(stores[0].client))
        # Uses the connections opened by the first invocation: on another loop they would be unusable.
        await stores[0].put_bytes(f"results/{record.key}", b"done")

    lambda_handler = sqs_lambda_handler(handle)
    try:
        for name in ("first", "second", "third"):
            event = sqs_event(notification(s3_record(key=name)), prefix=name)
            assert lambda_handler(event, FakeContext(30)) == {"batchItemFailures": []}
    finally:
        if stores:
            lambda_module._loop_runner().run(stores[0].aclose())
    assert len(loops) == 1
    assert len(stores) == 1 and len(clients) == 1
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/")["Contents"]
    assert sorted(obj["Key"] for obj in listed) == ["results/first", "results/second", "results/third"]


# --- the deadline --------------------------------------------------------------------------------------------


def test_a_handler_outrunning_the_remaining_time_is_cancelled_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    context = FakeContext(600)
    cancelled: list[str] = []
    started: list[str] = []

    async def handle(record: S3EventRecord) -> None:
        started.append(record.key)
        if record.key == "uploads/slow.mp4":
            # The function's clock runs out: 1.2 s left, under the 1 s margin in 0.2 s.
            context.expire_in(1.2)
            try:
                await anyio.sleep(60)
            except anyio.get_cancelled_exc_class():
                cancelled.append(record.key)
                raise

    event = sqs_event(*(notification(s3_record(key=f"uploads/{name}.mp4")) for name in ("fast", "slow", "after")))
    started_at = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiostorage.events"):
        result = sqs_lambda_handler(handle, concurrency=1)(event, context)
    assert time.monotonic() - started_at < 5, "the deadline did not cut the handler short"
    # The slow one's message is reported, and so is the one the deadline kept from starting.
    assert failures(result) == ["m1", "m2"]
    assert started == ["uploads/fast.mp4", "uploads/slow.mp4"]
    assert cancelled == ["uploads/slow.mp4"]
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert "m1" in lines[0] and "uploads/slow.mp4" in lines[0] and "cancelled" in lines[0]
    assert "m2" in lines[1] and "uploads/after.mp4" in lines[1] and "not started" in lines[1]


def test_records_not_started_before_the_deadline_are_reported() -> None:
    context = FakeContext(0.5)  # already under the margin
    calls: list[str] = []

    async def handle(record: S3EventRecord) -> None:
        calls.append(record.key)
        await anyio.sleep(60)

    event = sqs_event(*(notification(s3_record(key=f"uploads/{i}.mp4")) for i in range(3)), "garbage")
    started_at = time.monotonic()
    result = sqs_lambda_handler(handle, concurrency=1)(event, context)
    assert time.monotonic() - started_at < 5
    assert failures(result) == ["m0", "m1", "m2", "m3"]
    assert len(calls) <= 1


# --- end to end on the local server --------------------------------------------------------------------------


@pytest.fixture
def worker_module(monkeypatch: pytest.MonkeyPatch, bucket: str, settings: StoreSettings) -> Iterator[ModuleType]:
    """examples/lambda_worker.py, imported as Lambda would, with the function's environment pointing at moto."""
    assert settings.aws_secret_access_key is not None
    monkeypatch.setenv("AWS_S3_BUCKET_NAME", bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(settings.endpoint_url))
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    spec = importlib.util.spec_from_file_location(unique_name("lambda_worker"), ROOT / "examples/lambda_worker.py")
    assert spec is not None and spec.loader is not None
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    try:
        yield worker
    finally:
        if worker._store is not None:
            lambda_module._loop_runner().run(worker._store.aclose())


def packed(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Messages from ReceiveMessage in the shape Lambda's SQS event source mapping delivers them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


def test_end_to_end_failed_message_is_redelivered_then_dead_lettered(
    worker_module: ModuleType, s3: Any, sqs: Any, bucket: str
) -> None:
    dlq_url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue_url = sqs.create_queue(
        QueueName=unique_name("events"), Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "1"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    videos = {"uploads/a.mp4": b"a" * 1000, "uploads/b clip.mov": b"b" * 2000, "uploads/bad.mp4": b"x"}
    for key, data in videos.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    # Deleted before the worker gets to it: acknowledged, never retried.
    s3.put_object(Bucket=bucket, Key="uploads/gone.mp4", Body=b"gone")
    s3.delete_object(Bucket=bucket, Key="uploads/gone.mp4")

    handled: Counter[str] = Counter()

    async def flaky(record: S3EventRecord) -> None:
        handled[record.key] += 1
        if record.key == "uploads/bad.mp4":
            raise RuntimeError("corrupt video")
        await worker_module.process(record)

    lambda_handler = sqs_lambda_handler(flaky)
    reported: Counter[str] = Counter()

    def one_batch() -> bool:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            result = lambda_handler(packed(messages, queue_arn), FakeContext(30))
            failed = set(failures(result))
            reported.update(failed)
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
                assert not sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        dead = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        return dead["Attributes"]["ApproximateNumberOfMessages"] == "1"

    wait_for(one_batch, timeout=30, interval=0.05)

    # The good videos were handled once each, the deleted one acknowledged; the bad one came back once
    # and then moved to the DLQ after maxReceiveCount (2) receives.
    assert handled == {"uploads/a.mp4": 1, "uploads/b clip.mov": 1, "uploads/gone.mp4": 1, "uploads/bad.mp4": 2}
    assert len(reported) == 1 and next(iter(reported.values())) == 2
    [dead] = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert dead["MessageId"] in reported
    assert [record.key for record in parse_s3_event(dead["Body"])] == ["uploads/bad.mp4"]
    results = {
        obj["Key"]: json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix="results/").get("Contents", [])
    }
    assert {result["key"]: result["size"] for result in results.values()} == {
        "uploads/a.mp4": 1000,
        "uploads/b clip.mov": 2000,
    }
    left = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_example_runs_as_a_script_with_an_event_file(
    tmp_path: Path, bucket: str, settings: StoreSettings, s3: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="uploads/clip.mp4", Body=b"0123456789")
    record = s3_record(key="uploads/clip.mp4")
    record["s3"]["bucket"]["name"] = bucket
    event = sqs_event(notification(record), "not an event")
    (tmp_path / "event.json").write_text(json.dumps(event))
    assert settings.aws_secret_access_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIOSTORAGE_"))}
    env |= {
        "AWS_S3_BUCKET_NAME": bucket,
        "AWS_ENDPOINT_URL": str(settings.endpoint_url),
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples/lambda_worker.py"), str(tmp_path / "event.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    result = json.loads(s3.get_object(Bucket=bucket, Key="results/clip.mp4.json")["Body"].read())
    assert result["size"] == 10 and result["key"] == "uploads/clip.mp4"
