"""An embedded S3+SQS server (moto's) for demos, tests and development without AWS.

``provision`` creates the same wiring as the Terraform modules in ``terraform/``: a private, encrypted
bucket with CORS and lifecycle rules, a queue with a dead-letter queue and redrive policy, a queue policy
that lets only this bucket send, and one notification configuration per suffix. ``WIRING`` holds the
defaults both share; a test checks them against the Terraform variables.

CORS is answered as S3 answers it, by a WSGI layer of our own in front of moto (``S3Cors``): moto's
server lets every origin in (it wraps every service in flask-cors, which answers preflights for any
origin and method, even on a bucket without a CORS configuration), so a page that works here would have
proved nothing about the bucket's rule.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote

import anyio

from ._exceptions import ConfigError, InvalidArgument, map_errors
from ._settings import StoreSettings
from ._transport import create_client

if TYPE_CHECKING:
    from werkzeug.serving import ThreadedWSGIServer

__all__ = ["WIRING", "LocalServer", "S3Cors", "Wiring", "cors_rule"]

logger = logging.getLogger("aiostorage.local")

# moto's server accepts any credentials; these make the settings work with nothing in the environment.
DUMMY_KEY_ID = "local-access-key"
DUMMY_SECRET = "local-secret-key"
MOTO_ACCOUNT_ID = "123456789012"
# Seconds provisioning waits for the s3:TestEvent that configuring notifications sends.
TEST_EVENT_WAIT = 5.0


@dataclass(frozen=True)
class Wiring:
    """The notification wiring's defaults, mirrored by the Terraform modules' variables."""

    prefix: str = "uploads/"
    """The key prefix whose objects are notified, and expire after ``retention_days``."""
    suffixes: tuple[str, ...] = (".mp4", ".mov", ".avi", ".mkv")
    """The key suffixes notified, one notification filter per suffix."""
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    """The S3 events sent to the queue."""
    max_receive_count: int = 5
    """Receives of a message before SQS moves it to the dead-letter queue."""
    visibility_timeout: int = 300
    """The queue's visibility timeout, in seconds."""
    receive_wait_time_seconds: int = 20
    """The queue's long-poll wait, in seconds."""
    retention_days: int = 30
    """Days after which a lifecycle rule deletes the objects under ``prefix``."""
    abort_incomplete_multipart_days: int = 7
    """Days after which a lifecycle rule aborts a multipart upload left open, anywhere in the bucket."""
    # No origin, no CORS configuration: browsers may not use presigned URLs until origins are given.
    cors_allowed_origins: tuple[str, ...] = ()
    """Browser origins the bucket's CORS rule allows; none (the default) writes no CORS configuration."""
    cors_max_age_seconds: int = 3000
    """How long a browser may cache a CORS preflight's answer, in seconds."""


WIRING = Wiring()
"""The defaults ``LocalServer.provision`` and the Terraform modules share; a test keeps the two in step."""


def cors_rule(origins: Iterable[str], max_age_seconds: int = WIRING.cors_max_age_seconds) -> dict[str, Any]:
    """The bucket's one CORS rule, as the Terraform bucket module writes it, for ``origins``.

    Presigned requests carry signed headers the browser must be allowed to send (``*``), and a browser
    sees a part's ETag only when it is exposed.
    """
    return {
        "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
        "AllowedOrigins": list(origins),
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": max_age_seconds,
    }


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3Cors:
    """A WSGI layer answering CORS as S3 does, from the bucket's CORS configuration.

    A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered here: 200
    with the first rule whose origins, methods and headers all match, else 403 (also when the bucket has
    no CORS configuration). Every other answer loses the headers moto's flask-cors adds and gains the
    matching rule's, or none. Path-style requests (``/bucket/key``) only: the ones a loopback endpoint gets.
    """

    def __init__(self, app: WSGIApp, rules_of: Callable[[str], list[dict[str, Any]] | None]) -> None:
        self.app = app
        """The WSGI application wrapped (moto's S3 server)."""
        self.rules_of = rules_of
        """A bucket's CORS rules by its name, as S3's API spells them (``AllowedOrigins``...), or ``None``."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        method = environ.get("REQUEST_METHOD", "GET")
        bucket = unquote(environ.get("PATH_INFO", "").lstrip("/").partition("/")[0])
        wanted = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if method == "OPTIONS" and origin and wanted and bucket:
            return self._preflight(bucket, origin, wanted, environ, start_response)
        extra = self._matching_headers(bucket, origin, method) if origin and bucket else []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if not _is_cors_header(name)]
            return start_response(status, kept + extra, exc_info)

        return self.app(environ, start)

    def _preflight(
        self, bucket: str, origin: str, wanted: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        requested = [h.strip() for h in environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").split(",") if h.strip()]
        rules = self.rules_of(bucket)
        if not rules:
            return _forbidden(start_response, "CORS is not enabled for this bucket.")
        for rule in rules:
            if (
                _origin_matches(origin, rule)
                and wanted in rule.get("AllowedMethods", [])
                and all(_header_allowed(header, rule) for header in requested)
            ):
                headers = [
                    ("Access-Control-Allow-Origin", _allowed_origin(origin, rule)),
                    ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])),
                    ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
                    ("Content-Length", "0"),
                ]
                if requested:
                    headers.append(("Access-Control-Allow-Headers", ", ".join(requested)))
                headers += _rule_headers(rule)
                start_response("200 OK", headers)
                return [b""]
        return _forbidden(
            start_response,
            "This CORS request is not allowed. This is usually because the evalution of Origin, request method / "
            "Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the "
            "resource's CORS spec.",
        )

    def _matching_headers(self, bucket: str, origin: str, method: str) -> list[tuple[str, str]]:
        for rule in self.rules_of(bucket) or []:
            if _origin_matches(origin, rule) and method in rule.get("AllowedMethods", []):
                return [
                    ("Access-Control-Allow-Origin", _allowed_origin(origin, rule)),
                    ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])),
                    ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
                    *_rule_headers(rule),
                ]
        return []


def _is_cors_header(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("access-control-") or lowered == "vary"


def _origin_matches(origin: str, rule: dict[str, Any]) -> bool:
    # S3 allows one "*" in an origin pattern (``https://*.example.com``), matched case-sensitively.
    return any(fnmatch.fnmatchcase(origin, pattern) for pattern in rule.get("AllowedOrigins", []))


def _header_allowed(header: str, rule: dict[str, Any]) -> bool:
    return any(fnmatch.fnmatchcase(header.lower(), pattern.lower()) for pattern in rule.get("AllowedHeaders", []))


def _allowed_origin(origin: str, rule: dict[str, Any]) -> str:
    return "*" if "*" in rule.get("AllowedOrigins", []) else origin


def _rule_headers(rule: dict[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if rule.get("ExposeHeaders"):
        headers.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        headers.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return headers


def _forbidden(start_response: Callable[..., Any], message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessForbidden</Code>'
        f"<Message>CORSResponse: {message}</Message><Method>OPTIONS</Method></Error>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _moto_cors_rules(bucket: str) -> list[dict[str, Any]] | None:
    """The bucket's CORS rules as S3's API spells them, read from moto's S3 backend in this process."""
    from moto.s3.models import s3_backends

    found = s3_backends[MOTO_ACCOUNT_ID]["aws"].buckets.get(bucket)
    if found is None or not found.cors:
        return None

    def listed(value: Any) -> list[str]:
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    return [
        {
            "AllowedOrigins": listed(rule.allowed_origins),
            "AllowedMethods": listed(rule.allowed_methods),
            "AllowedHeaders": listed(rule.allowed_headers),
            "ExposeHeaders": listed(rule.exposed_headers),
            "MaxAgeSeconds": rule.max_age_seconds,
        }
        for rule in found.cors
    ]


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
            S3Cors(werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app), _moto_cors_rules),
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
        cors_origins: Iterable[str] = WIRING.cors_allowed_origins,
    ) -> StoreSettings:
        """Create (or update, idempotently) the bucket, queues, policy and notifications; return settings.

        ``cors_origins`` (``"http://127.0.0.1:8080"``, ...) are the web pages allowed to use presigned
        URLs from a browser, with the Terraform module's CORS rule; none (the default) means no CORS
        configuration, and browsers are refused.
        """
        origins = [origin.rstrip("/") for origin in ([cors_origins] if isinstance(cors_origins, str) else cors_origins)]
        if self._server is None:
            raise ConfigError("LocalServer is not running: use it inside `async with LocalServer()`")
        settings = self.settings(bucket=bucket)
        async with (
            create_client("s3", settings, max_connections=4) as s3,
            create_client("sqs", settings, max_connections=4) as sqs,
        ):
            with map_errors("provision", bucket=bucket):
                await _provision_bucket(s3, bucket, prefix, origins)
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


async def _provision_bucket(s3: Any, bucket: str, prefix: str, cors_origins: list[str]) -> None:
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
    if cors_origins:
        await s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [cors_rule(cors_origins)]})
    else:
        await s3.delete_bucket_cors(Bucket=bucket)
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
