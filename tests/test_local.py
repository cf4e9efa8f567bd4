from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from aiostorage import AsyncS3Store, ConfigError, InvalidArgument
from aiostorage.local import DUMMY_SECRET, WIRING, LocalServer, S3Cors, cors_rule
from tests.conftest import wait_for

pytestmark = pytest.mark.moto_only(reason="aiostorage.local embeds moto by design, whatever server the suite uses")


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


def test_a_taken_port_raises_config_error_at_once() -> None:
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            asyncio.run(LocalServer(port=port).start())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # In a thread of its own: a start that hangs fails the test instead of hanging it.
        starting = threading.Thread(target=start, daemon=True)
        starting.start()
        starting.join(timeout=20)
    assert outcome, "start() hung on a taken port"
    assert isinstance(outcome[0], ConfigError)
    assert str(outcome[0]) == f"the local server cannot listen on 127.0.0.1:{port}: another program is using it"


def test_a_port_out_of_range_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="port 80000 is not a TCP port"):
        LocalServer(port=80000)


async def test_a_failed_request_is_one_log_line(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING)
    async with LocalServer() as server:
        settings = server.settings()
        s3 = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=DUMMY_SECRET,
            config=Config(retries={"total_max_attempts": 1}),
        )
        s3.create_bucket(Bucket="media")
        upload = s3.create_multipart_upload(Bucket="media", Key="clip.mp4")["UploadId"]
        s3.abort_multipart_upload(Bucket="media", Key="clip.mp4", UploadId=upload)
        # A part arriving after its upload was aborted, as when a client cancels with parts in flight:
        # moto fails it, and werkzeug would log the traceback.
        with pytest.raises(ClientError):
            s3.upload_part(Bucket="media", Key="clip.mp4", UploadId=upload, PartNumber=1, Body=b"x")
        # The failure is logged once the answer has gone out.
        wait_for(lambda: any("request" in record.getMessage() for record in caplog.records))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"local server: a request failed (its client may have given up on it): KeyError: '{upload}'"]
    assert "Traceback" not in capfd.readouterr().err


def _preflight(url: str, origin: str, method: str, headers: str = "") -> tuple[int, dict[str, str]]:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    request = urllib.request.Request(url, method="OPTIONS", headers=request_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def _allowed_origin(url: str, origin: str) -> str | None:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Origin": origin}), timeout=10) as response:
        assert response.read() == b"x"
        return response.headers.get("Access-Control-Allow-Origin")


async def test_cors_is_answered_as_s3_answers_it_from_the_buckets_rule() -> None:
    page = "http://127.0.0.1:8765"
    async with LocalServer() as server:
        await server.provision(bucket="open", queue="q-open", cors_origins=[page + "/"])
        await server.provision(bucket="closed", queue="q-closed")
        s3, _ = _clients(server.settings())
        assert s3.get_bucket_cors(Bucket="open")["CORSRules"] == [cors_rule([page])]
        with pytest.raises(ClientError, match="NoSuchCORSConfiguration"):
            s3.get_bucket_cors(Bucket="closed")

        url = f"{server.endpoint_url}/open/uploads/a.mp4?partNumber=1&uploadId=x"
        status, headers = _preflight(url, page, "PUT", "content-type")
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == page
        assert headers["Access-Control-Expose-Headers"] == "ETag"
        # moto alone (flask-cors) answers 200 to each of these; S3 refuses them.
        assert _preflight(url, "http://elsewhere.example", "PUT")[0] == 403
        assert _preflight(url, page, "DELETE")[0] == 403
        assert _preflight(f"{server.endpoint_url}/closed/a.mp4", page, "PUT")[0] == 403

        # The answer to the request itself lets the page read it (and its ETag) only from the allowed origin.
        s3.put_object(Bucket="open", Key="k", Body=b"x")
        get = s3.generate_presigned_url("get_object", Params={"Bucket": "open", "Key": "k"})
        assert _allowed_origin(get, page) == page
        assert _allowed_origin(get, "http://elsewhere.example") is None


def test_cors_layer_matches_origins_methods_and_headers_as_s3_does() -> None:
    rule = {
        "AllowedOrigins": ["https://*.example.com"],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 60,
    }
    passed: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        passed.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [("Access-Control-Allow-Origin", "*"), ("ETag", '"e"')])
        return [b""]

    layer = S3Cors(app, lambda bucket: [rule] if bucket == "b" else None)

    def answer(method: str, path: str, **headers: str) -> tuple[str, dict[str, str]]:
        seen: dict[str, Any] = {}
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
        environ |= {"HTTP_" + name.upper(): value for name, value in headers.items()}
        layer(environ, lambda status, sent, exc_info=None: seen.update(status=status, headers=dict(sent)))
        return seen["status"], seen["headers"]

    def preflight(origin: str, method: str, requested: str = "", path: str = "/b/k") -> str:
        headers = {"origin": origin, "access_control_request_method": method}
        if requested:
            headers["access_control_request_headers"] = requested
        return answer("OPTIONS", path, **headers)[0]

    assert preflight("https://app.example.com", "PUT", "Content-Type, X-Amz-Date") == "200 OK"
    assert preflight("https://app.example.com", "PUT", "authorization").startswith("403")
    assert preflight("https://example.com", "PUT").startswith("403")  # the wildcard needs a subdomain
    assert preflight("https://app.example.com", "GET").startswith("403")
    assert preflight("https://app.example.com", "PUT", path="/other/k").startswith("403")  # no CORS configuration
    assert passed == []  # preflights never reach moto

    status, headers = answer("PUT", "/b/k", origin="https://app.example.com")
    assert status == "200 OK"
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Access-Control-Expose-Headers"] == "ETag" and headers["ETag"] == '"e"'
    status, headers = answer("PUT", "/b/k", origin="https://elsewhere.org")
    assert status == "200 OK"  # S3 serves it; the browser keeps the answer from the page
    assert "Access-Control-Allow-Origin" not in headers  # moto's "*" removed, none of ours added
    assert passed == ["PUT", "PUT"]
