"""An embedded S3+SQS server (moto's) for demos, tests and development without AWS.

``provision`` creates the same wiring as the Terraform modules in ``terraform/``: a private, encrypted
bucket with CORS and lifecycle rules, a queue with a dead-letter queue and redrive policy, a queue policy
that lets only this bucket send, and one notification configuration per suffix. ``WIRING`` holds the
defaults both share; a test checks them against the Terraform variables.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio

from ._exceptions import ConfigError, InvalidArgument, map_errors
from ._settings import StoreSettings
from ._transport import create_client

if TYPE_CHECKING:
    from werkzeug.serving import ThreadedWSGIServer

__all__ = ["WIRING", "LocalServer", "Wiring"]

logger = logging.getLogger("aiostorage.local")

# moto's server accepts any credentials; these make the settings work with nothing in the environment.
DUMMY_KEY_ID = "local-access-key"
DUMMY_SECRET = "local-secret-key"
MOTO_ACCOUNT_ID = "123456789012"
# Seconds provisioning waits for the s3:TestEvent that configuring notifications sends.
TEST_EVENT_WAIT = 5.0


@dataclass(frozen=True)
class Wiring:
    """The notification wiring's defaults, mirrored by the Terraform modules' variables.

    ``prefix`` and ``suffixes`` filter the notifications (one per suffix), ``events`` names the S3 events
    sent, ``max_receive_count`` is the receives before the dead-letter queue, ``visibility_timeout`` and
    ``receive_wait_time_seconds`` are the queue's, ``retention_days`` expires uploads and
    ``abort_incomplete_multipart_days`` aborts forgotten multipart uploads.
    """

    prefix: str = "uploads/"
    suffixes: tuple[str, ...] = (".mp4", ".mov", ".avi", ".mkv")
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    max_receive_count: int = 5
    visibility_timeout: int = 300
    receive_wait_time_seconds: int = 20
    retention_days: int = 30
    abort_incomplete_multipart_days: int = 7


WIRING = Wiring()
"""The defaults ``LocalServer.provision`` and the Terraform modules share; a test keeps the two in step."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serving(port: int) -> ThreadedWSGIServer:
    """moto's WSGI app served on 127.0.0.1:``port``, not yet serving requests; ``ConfigError`` if the port
    cannot be had.

    The listening socket is ours: werkzeug, binding by itself, answers a taken port by printing to
    stderr and exiting its thread, which left ``ThreadedMotoServer.start`` waiting forever.
    """
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import ThreadedWSGIServer

    class QuietServer(ThreadedWSGIServer):
        """Each failed request in one line, not a traceback: a client cancelling an upload makes moto fail
        the part requests still in flight, and a user's window is no place for moto's internals."""

        def log(self, type: str, message: str, *args: Any) -> None:
            if type != "error":
                super().log(type, message, *args)
                return
            text = message % args if args else message
            lines = [line for line in text.splitlines() if line.strip()]
            logger.warning(
                "local server: a request failed (its client may have given up on it): %s",
                lines[-1].strip() if lines else text,
            )
            logger.debug("%s", text)

        def handle_error(self, request: Any, client_address: tuple[str, int] | str) -> None:
            logger.warning("local server: a connection from %s failed: %r", client_address, sys.exc_info()[1])

    try:
        listener = socket.create_server(("127.0.0.1", port))
    except OSError as exc:
        reason = "another program is using it" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ConfigError(f"the local server cannot listen on 127.0.0.1:{port}: {reason}") from exc
    with listener:  # werkzeug serves a duplicate of it
        return QuietServer(
            "127.0.0.1",
            port,
            werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app),
            # Older moto versions serve with werkzeug's own handler.
            getattr(werkzeug_app, "MotoRequestHandler", None),
            fd=listener.fileno(),
        )


class LocalServer:
    """moto's server on 127.0.0.1 and a free port, for the life of an ``async with`` block.

    It accepts any credentials and checks no signatures: requests signed wrongly succeed here.
    ``port`` (default: a free one) must be free when the server starts (``ConfigError`` otherwise);
    ``region`` is the one the settings it gives name. Needs the ``local`` extra (moto's server).
    """

    def __init__(self, *, port: int | None = None, region: str = "us-east-1") -> None:
        if port is not None and not 0 <= port <= 65535:
            raise InvalidArgument(f"port {port} is not a TCP port: use 1 to 65535, or leave it out for a free one")
        self.port = port or _free_port()
        """The TCP port the server listens on, on 127.0.0.1."""
        self.region = region
        """The region the settings from ``settings()`` and ``provision()`` name."""
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``, for S3 and SQS alike."""
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **values: Any) -> StoreSettings:
        """Settings pointing at this server, with dummy credentials; ``values`` add or override fields."""
        return StoreSettings(
            endpoint_url=self.endpoint_url,
            region=self.region,
            aws_access_key_id=DUMMY_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET,
            **values,
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server; it answers once this returns. ``ConfigError`` if the port is taken."""
        if self._server is not None:
            raise ConfigError("LocalServer is already running")
        # moto's server logs every request through werkzeug; a demo's output is not the place for it.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = await anyio.to_thread.run_sync(_serving, self.port)
        # The socket listens already: connections wait in its backlog until the thread serves them.
        self._thread = threading.Thread(target=server.serve_forever, name="aiostorage-local", daemon=True)
        self._thread.start()
        self._server = server

    async def stop(self) -> None:
        """Stop the server and free its port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            # serve_forever closes the listening socket as it returns.
            await anyio.to_thread.run_sync(server.shutdown)
        if thread is not None:
            await anyio.to_thread.run_sync(thread.join)

    async def provision(
        self,
        *,
        bucket: str = "media",
        queue: str = "media-events",
        prefix: str = WIRING.prefix,
        suffixes: tuple[str, ...] = WIRING.suffixes,
        events: tuple[str, ...] = WIRING.events,
        max_receive_count: int = WIRING.max_receive_count,
        visibility_timeout: int = WIRING.visibility_timeout,
    ) -> StoreSettings:
        """Create (or update, idempotently) the bucket, queues, policy and notifications; return settings."""
        if self._server is None:
            raise ConfigError("LocalServer is not running: use it inside `async with LocalServer()`")
        settings = self.settings(bucket=bucket)
        async with (
            create_client("s3", settings, max_connections=4) as s3,
            create_client("sqs", settings, max_connections=4) as sqs,
        ):
            with map_errors("provision", bucket=bucket):
                await _provision_bucket(s3, bucket, prefix)
                queue_url = await _provision_queues(
                    sqs, bucket, queue, max_receive_count=max_receive_count, visibility_timeout=visibility_timeout
                )
                queue_arn = await _queue_arn(sqs, queue_url)
                await s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={
                        "QueueConfigurations": [
                            {
                                "Id": f"{queue}-{suffix.lstrip('.') or 'all'}",
                                "QueueArn": queue_arn,
                                "Events": list(events),
                                "Filter": {
                                    "Key": {
                                        "FilterRules": [
                                            {"Name": "prefix", "Value": prefix},
                                            {"Name": "suffix", "Value": suffix},
                                        ]
                                    }
                                },
                            }
                            for suffix in suffixes
                        ]
                    },
                )
                await _drain_test_events(sqs, queue_url)
        return settings.model_copy(update={"queue_url": queue_url})


async def _provision_bucket(s3: Any, bucket: str, prefix: str) -> None:
    existing = await s3.list_buckets()
    if bucket not in {item["Name"] for item in existing.get("Buckets", [])}:
        await s3.create_bucket(Bucket=bucket)
    await s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    await s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
        },
    )
    await s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
                    "AllowedOrigins": ["*"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )
    await s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": prefix},
                    "Expiration": {"Days": WIRING.retention_days},
                },
                {
                    "ID": "abort-incomplete-multipart-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": WIRING.abort_incomplete_multipart_days},
                },
            ]
        },
    )


async def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return arn


async def _provision_queues(
    sqs: Any, bucket: str, queue: str, *, max_receive_count: int, visibility_timeout: int
) -> str:
    dlq_url = (await sqs.create_queue(QueueName=f"{queue}-dlq"))["QueueUrl"]
    await sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})
    dlq_arn = await _queue_arn(sqs, dlq_url)
    queue_url: str = (await sqs.create_queue(QueueName=queue))["QueueUrl"]
    queue_arn = await _queue_arn(sqs, queue_url)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": MOTO_ACCOUNT_ID},
                },
            }
        ],
    }
    await sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(WIRING.receive_wait_time_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
            "Policy": json.dumps(policy),
        },
    )
    await sqs.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]})},
    )
    return queue_url


async def _drain_test_events(sqs: Any, queue_url: str) -> None:
    """Delete the s3:TestEvent that configuring notifications sends, so the queue starts clean.

    Anything else received meanwhile is made visible again at once: provisioning an existing stack must
    not eat its messages.
    """
    with anyio.move_on_after(TEST_EVENT_WAIT):
        while True:
            response = await sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
            )
            found_test_event = False
            for message in response.get("Messages", []):
                if _is_test_event(message.get("Body", "")):
                    found_test_event = True
                    await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    await sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            if found_test_event:
                return
    logger.warning("no s3:TestEvent arrived on %s within %.0fs", queue_url, TEST_EVENT_WAIT)


def _is_test_event(body: str) -> bool:
    try:
        return bool(json.loads(body).get("Event") == "s3:TestEvent")
    except (ValueError, AttributeError):
        return False
