from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from aiostorage import AsyncS3Store, ConfigError
from aiostorage.local import WIRING, LocalServer


def _clients(settings: Any) -> tuple[Any, Any]:
    kwargs = {
        "endpoint_url": settings.endpoint_url,
        "region_name": settings.region,
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
    }
    return boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_start_stop_frees_port() -> None:
    server = LocalServer()
    async with server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    assert _port_is_free(server.port)


async def test_provision_creates_terraform_wiring() -> None:
    async with LocalServer() as server:
        settings = await server.provision(bucket="media", queue="media-events", suffixes=(".mp4", ".mov"))
        assert settings.bucket == "media" and settings.queue_url and settings.endpoint_url == server.endpoint_url
        s3, sqs = _clients(settings)

        notifications = s3.get_bucket_notification_configuration(Bucket="media")["QueueConfigurations"]
        rules = sorted(
            tuple(sorted((rule["Name"].lower(), rule["Value"]) for rule in config["Filter"]["Key"]["FilterRules"]))
            for config in notifications
        )
        assert rules == [(("prefix", "uploads/"), ("suffix", ".mov")), (("prefix", "uploads/"), ("suffix", ".mp4"))]
        assert all(config["Events"] == list(WIRING.events) for config in notifications)

        attributes = sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["maxReceiveCount"] == WIRING.max_receive_count
        assert redrive["deadLetterTargetArn"].endswith(":media-events-dlq")
        assert attributes["VisibilityTimeout"] == str(WIRING.visibility_timeout)
        statement = json.loads(attributes["Policy"])["Statement"][0]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == "arn:aws:s3:::media"

        block = s3.get_public_access_block(Bucket="media")["PublicAccessBlockConfiguration"]
        assert all(block.values())
        encryption = s3.get_bucket_encryption(Bucket="media")["ServerSideEncryptionConfiguration"]
        assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

        # The TestEvent was removed: the queue starts empty.
        assert "Messages" not in sqs.receive_message(QueueUrl=settings.queue_url, WaitTimeSeconds=0)


async def test_provision_is_idempotent_and_settings_work() -> None:
    async with LocalServer() as server:
        first = await server.provision(bucket="media", queue="media-events")
        second = await server.provision(bucket="media", queue="media-events")
        assert first == second
        s3, sqs = _clients(second)
        assert len(s3.get_bucket_notification_configuration(Bucket="media")["QueueConfigurations"]) == 4
        assert len([url for url in sqs.list_queues()["QueueUrls"] if "media-events" in url]) == 2
        async with AsyncS3Store(settings=second) as store:
            await store.put_bytes("uploads/clip.mp4", b"video")
            assert await store.get_bytes("uploads/clip.mp4") == b"video"
        body = json.loads(sqs.receive_message(QueueUrl=second.queue_url, WaitTimeSeconds=5)["Messages"][0]["Body"])
        assert unquote_plus(body["Records"][0]["s3"]["object"]["key"]) == "uploads/clip.mp4"


async def test_provision_needs_a_running_server() -> None:
    with pytest.raises(ConfigError, match="not running"):
        await LocalServer().provision()
