"""The console script, run in a subprocess against the moto server."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import socket
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from aiostorage import InvalidArgument, StoreSettings
from aiostorage.cli import S3Url, parse_s3_url
from tests.cli_run import SCRIPT, cli, cli_env
from tests.conftest import WireCounter, serving, unique_name, wait_for

# S3's smallest part: a file one byte longer is the smallest multipart upload.
PART = 5 * 1024 * 1024
PIPE = asyncio.subprocess.PIPE
LOCAL_IS_MOTO = "`aiostorage local` serves aiostorage.local, which embeds moto by design"


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://b/a/b.txt") == S3Url("b", "a/b.txt")
    assert parse_s3_url("s3://b") == S3Url("b", "")
    assert parse_s3_url("./local/file") is None
    with pytest.raises(InvalidArgument):
        parse_s3_url("s3:///key")


def test_presign_and_rm(settings: StoreSettings, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"A")
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"B")
    signed = cli(settings, "presign", f"s3://{bucket}/a.txt", "--expires", "60")
    assert signed.returncode == 0, signed.stderr
    assert urllib.request.urlopen(signed.stdout.strip()).read() == b"A"

    removed = cli(settings, "rm", f"s3://{bucket}/a.txt", f"s3://{bucket}/b.txt")
    assert removed.returncode == 0, removed.stderr
    assert f"delete: s3://{bucket}/a.txt" in removed.stdout
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_errors_are_one_line_with_nonzero_exit(settings: StoreSettings) -> None:
    bad = cli(settings, "presign", "not-an-s3-url")
    assert bad.returncode == 1
    assert "error:" in bad.stderr and "Traceback" not in bad.stderr
    debug = cli(settings, "--debug", "presign", "not-an-s3-url")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


async def _exports(process: asyncio.subprocess.Process) -> dict[str, str]:
    """The ``export`` lines ``aiostorage local`` prints, once it has printed them all."""
    assert process.stdout is not None
    exports: dict[str, str] = {}
    async with asyncio.timeout(30):
        while "AWS_SQS_QUEUE_URL" not in exports:
            line = (await process.stdout.readline()).decode()
            assert line, "aiostorage local ended before printing its settings"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
    return exports


@asynccontextmanager
async def _running(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    """The console script running with ``args``; killed if the test leaves it running."""
    process = await asyncio.create_subprocess_exec(SCRIPT, *args, env=env, stdout=PIPE, stderr=PIPE)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stderr_until(process: asyncio.subprocess.Process, *texts: str) -> list[str]:
    """stderr's lines up to the first holding one of ``texts``, within a deadline."""
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while not any(text in (lines or [""])[-1] for text in texts):
            line = (await process.stderr.readline()).decode()
            assert line, f"stderr ended before any of {texts}: {lines}"
            lines.append(line)
    return lines


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_local_prints_exports_and_stops_on_a_signal(signum: signal.Signals) -> None:
    async with _running("local", "--bucket", "clibucket") as process:
        exports = await _exports(process)
        assert exports["AWS_S3_BUCKET_NAME"] == "clibucket"
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        # boto3's SQS client and AWS CLI v1 find the region only there.
        assert exports["AWS_DEFAULT_REGION"] == exports["AWS_REGION"] == "us-east-1"
        # The printed settings work as they are.
        answer = await anyio.to_thread.run_sync(urllib.request.urlopen, exports["AWS_ENDPOINT_URL"] + "/clibucket")
        assert answer.status == 200
        process.send_signal(signum)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    # Stopping is what the server is for: a signal ends it gracefully, with exit code 0.
    assert process.returncode == 0, stderr
    assert "checks no signatures" in stdout.decode()


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO)
def test_local_port_taken_fails_at_once_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([SCRIPT, "local", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the local server cannot listen on 127.0.0.1:{port}: another program is using it"
    ]


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO)
def test_local_port_out_of_range_is_named() -> None:
    result = subprocess.run([SCRIPT, "local", "--port", "80000"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: port 80000 is not a TCP port: use 1 to 65535, or leave it out for a free one"
    ]


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO + "; the failure logged is moto's")
async def test_local_reports_a_failed_request_in_one_line() -> None:
    async with _running("local", "--bucket", "clibucket") as process:
        exports = await _exports(process)
        s3 = boto3.client(
            "s3",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"total_max_attempts": 1}),
        )
        upload = s3.create_multipart_upload(Bucket="clibucket", Key="clip.mp4")["UploadId"]
        s3.abort_multipart_upload(Bucket="clibucket", Key="clip.mp4", UploadId=upload)
        # A part arriving after its upload was aborted, as when a client cancels with parts in flight:
        # moto fails it, with a traceback in werkzeug's log.
        with pytest.raises(ClientError):
            s3.upload_part(Bucket="clibucket", Key="clip.mp4", UploadId=upload, PartNumber=1, Body=b"x")
        logged = await _stderr_until(process, "request failed", "Traceback")
        process.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    stderr = "".join(logged) + rest.decode()
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "KeyError" in line] == [
        f"local server: a request failed (its client may have given up on it): KeyError: '{upload}'"
    ]


def test_cp_ls_sync_round_trip(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "one.txt").write_bytes(b"1")
    (folder / "two.txt").write_bytes(b"22")

    up = cli(settings, "cp", "-r", str(folder), f"s3://{bucket}/data/")
    assert up.returncode == 0, up.stderr
    assert s3.get_object(Bucket=bucket, Key="data/a/one.txt")["Body"].read() == b"1"

    single = cli(settings, "cp", str(folder / "two.txt"), f"s3://{bucket}/single/")
    assert single.returncode == 0, single.stderr
    assert s3.get_object(Bucket=bucket, Key="single/two.txt")["Body"].read() == b"22"

    listed = cli(settings, "ls", f"s3://{bucket}/data/")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["data/a/", "data/two.txt"]
    recursive = cli(settings, "ls", "-r", "-l", f"s3://{bucket}/")
    assert [line.split()[-1] for line in recursive.stdout.splitlines()] == [
        "data/a/one.txt",
        "data/two.txt",
        "single/two.txt",
    ]

    down = cli(settings, "cp", "-r", f"s3://{bucket}/data/", str(tmp_path / "down"))
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "down" / "a" / "one.txt").read_bytes() == b"1"
    copied = cli(settings, "cp", f"s3://{bucket}/data/two.txt", f"s3://{bucket}/copy/two.txt")
    assert copied.returncode == 0, copied.stderr
    assert s3.get_object(Bucket=bucket, Key="copy/two.txt")["Body"].read() == b"22"

    (folder / "two.txt").write_bytes(b"changed")
    synced = cli(settings, "sync", str(folder), f"s3://{bucket}/data")
    assert synced.returncode == 0, synced.stderr
    assert "upload:" in synced.stdout and "1 unchanged" in synced.stdout
    assert s3.get_object(Bucket=bucket, Key="data/two.txt")["Body"].read() == b"changed"


def test_cp_failures_give_a_summary_and_nonzero_exit(settings: StoreSettings, bucket: str, tmp_path: Path) -> None:
    missing = cli(settings, "cp", f"s3://{bucket}/absent.txt", str(tmp_path / "x"))
    assert missing.returncode == 1
    assert "error:" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "f.txt").write_bytes(b"f")
    no_bucket = cli(settings, "cp", "-r", str(tmp_path), "s3://no-such-bucket-cli/x/")
    assert no_bucket.returncode == 1
    assert "failed" in no_bucket.stderr


EVENT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-28T07:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "media"}, "object": {"key": "uploads/my+clip.mp4", "size": 5}},
        }
    ]
}


def test_events_prints_typed_records(settings: StoreSettings, sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="cli-events")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(EVENT))
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(EVENT))
    followed = cli(settings, "events", "--queue-url", queue_url, "--limit", "1", "--wait-time", "1", "--json")
    assert followed.returncode == 0, followed.stderr
    [line] = followed.stdout.splitlines()  # one JSON record per line, nothing else
    record = json.loads(line)
    assert record["key"] == "uploads/my clip.mp4" and record["event_name"] == "ObjectCreated:Put"
    readable = cli(settings, "events", "--queue-url", queue_url, "--limit", "1", "--wait-time", "1")
    assert readable.returncode == 0, readable.stderr
    line = "2026-11-28 07:00:00 ObjectCreated:Put s3://media/uploads/my clip.mp4 (5 B)"
    assert readable.stdout.splitlines() == [line]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)


def test_cp_recursive_download_stays_inside_the_destination(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="data/../../escaped.txt", Body=b"evil")
    s3.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="database/other.txt", Body=b"not under data/")
    dest = tmp_path / "a" / "dest"
    result = cli(settings, "cp", "-r", f"s3://{bucket}/data", str(dest))
    assert result.returncode == 1, result.stderr  # a refused key is a failure, named on its line
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == ["a/dest/ok.txt"]
    assert f"refused s3://{bucket}/data/../../escaped.txt" in result.stderr


def test_rm_recursive_deletes_under_the_prefix_only(settings: StoreSettings, s3: Any, bucket: str) -> None:
    for key in ("data/a.txt", "data/sub/b.txt", "database/keep.txt", "other.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    dry = cli(settings, "rm", "-r", "--dry-run", f"s3://{bucket}/data")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"(dry run) delete: s3://{bucket}/data/a.txt",
        f"(dry run) delete: s3://{bucket}/data/sub/b.txt",
    ]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 4

    removed = cli(settings, "rm", "-r", f"s3://{bucket}/data")
    assert removed.returncode == 0, removed.stderr
    assert sorted(removed.stdout.splitlines()) == [
        f"delete: s3://{bucket}/data/a.txt",
        f"delete: s3://{bucket}/data/sub/b.txt",
    ]
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["database/keep.txt", "other.txt"]

    root = cli(settings, "rm", f"s3://{bucket}")
    assert root.returncode == 1 and "use rm -r" in root.stderr
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 2


def test_cp_recursive_between_s3_locations(settings: StoreSettings, s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=f"{bucket}-to")
    bodies = {"src/a.txt": b"a", "src/deep/b.txt": b"bb", "srcx/not.txt": b"no"}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"origin": key})

    copied = cli(settings, "cp", "-r", f"s3://{bucket}/src", f"s3://{bucket}-to/dst")
    assert copied.returncode == 0, copied.stderr
    listed = s3.list_objects_v2(Bucket=f"{bucket}-to")["Contents"]
    assert [item["Key"] for item in listed] == ["dst/a.txt", "dst/deep/b.txt"]
    copy = s3.get_object(Bucket=f"{bucket}-to", Key="dst/deep/b.txt")
    assert copy["Body"].read() == b"bb" and copy["Metadata"] == {"origin": "src/deep/b.txt"}


def test_usage_mistakes_get_one_unwrapped_line(settings: StoreSettings, bucket: str, tmp_path: Path) -> None:
    folder = cli(settings, "cp", str(tmp_path), f"s3://{bucket}/x")
    assert folder.returncode == 1 and folder.stderr.strip() == f"error: {tmp_path} is a folder: use cp -r to copy it"
    whole = cli(settings, "cp", f"s3://{bucket}", str(tmp_path / "x"))
    assert whole.returncode == 1 and "use cp -r" in whole.stderr
    # However long, an error is one line: a script reading stderr, or a narrow terminal, gets it whole.
    key = "a/rather/long/key/" * 8 + "absent.bin"
    missing = cli(settings, "cp", f"s3://{bucket}/{key}", str(tmp_path / "y"))
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1 and key in missing.stderr


def _cli_in(settings: StoreSettings, *args: str) -> subprocess.CompletedProcess[str]:
    result = cli(settings, *args)
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    return result


def test_names_and_errors_with_brackets_are_printed_literally(
    settings: StoreSettings, bucket: str, tmp_path: Path
) -> None:
    # Rich would read these as markup: a closing tag that matches nothing, a style it would swallow.
    bad_bucket = _cli_in(settings, "ls", "s3://Bad_Bucket!")
    assert bad_bucket.returncode == 1
    assert len(bad_bucket.stderr.splitlines()) == 1
    assert 'Invalid bucket name "Bad_Bucket!"' in bad_bucket.stderr and "[a-zA-Z0-9.\\-_]" in bad_bucket.stderr
    for name in ("report[/x].txt", "no[bold]file.txt"):
        missing = _cli_in(settings, "cp", str(tmp_path / name), f"s3://{bucket}/x")
        assert missing.returncode == 1
        assert missing.stderr.splitlines() == [f"error: [Errno 2] No such file or directory: '{tmp_path / name}'"]

    # Nor are emoji codes replaced.
    nothing = _cli_in(settings, "rm", "-r", f"s3://{bucket}/[red]gone:smile:")
    assert nothing.returncode == 0
    assert nothing.stderr.splitlines() == [f"nothing under s3://{bucket}/[red]gone:smile:/"]
    folder = tmp_path / "up"
    (folder / "report[").mkdir(parents=True)
    (folder / "report[" / "x].txt").write_bytes(b"x")
    failed = _cli_in(settings, "cp", "-r", str(folder), "s3://no-such-bucket-cli/x/")
    assert failed.returncode == 1
    assert f"failed: {folder / 'report[/x].txt'}: " in failed.stderr


def test_progress_bars_show_keys_literally(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="a[/b].txt", Body=b"a")
    # Progress bars are drawn only on a terminal; a bar is named after its key.
    terminal, attached = pty.openpty()
    try:
        result = subprocess.run(
            [SCRIPT, "cp", f"s3://{bucket}/a[/b].txt", str(tmp_path / "a.txt")],
            env=cli_env(settings),
            stdout=attached,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(attached)
        os.close(terminal)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"a"


class Holding:
    """A relay in front of the moto server that holds some requests, so a transfer is caught midway.

    An UploadPart is read and never answered; a GET of an object gets its headers and half its body, then
    nothing more; with ``hold_aborts``, an AbortMultipartUpload waits for ``let_aborts_through``. Every
    other request goes through. ``closing`` lets the held ones end when the test does.
    """

    def __init__(self, upstream: str) -> None:
        self.relay = WireCounter(upstream)
        self.part_held = asyncio.Event()
        self.get_held = asyncio.Event()
        self.abort_held = asyncio.Event()
        self.hold_aborts = False
        self.let_aborts_through = asyncio.Event()
        self.closing = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        names_object = len(request.path.strip("/").split("/", 1)) == 2
        if request.method == "PUT" and "partNumber" in request.query:
            await request.read()
            self.part_held.set()
            await self.closing.wait()
            raise web.HTTPServiceUnavailable()
        if request.method == "GET" and names_object:
            answer = await self.relay.handle(request)
            assert isinstance(answer.body, bytes)
            response = web.StreamResponse(status=answer.status, headers=answer.headers)
            response.content_length = len(answer.body)
            await response.prepare(request)
            await response.write(answer.body[: len(answer.body) // 2])
            self.get_held.set()
            await self.closing.wait()
            raise web.HTTPServiceUnavailable()
        if request.method == "DELETE" and "uploadId" in request.query and self.hold_aborts:
            self.abort_held.set()
            await self.let_aborts_through.wait()
            if request.transport is None or request.transport.is_closing():
                raise web.HTTPServiceUnavailable()  # its client gave up on it: S3 would never see it whole
        return await self.relay.handle(request)


@asynccontextmanager
async def _holding(settings: StoreSettings, endpoint_url: str) -> AsyncIterator[tuple[Holding, dict[str, str]]]:
    """A ``Holding`` relay, and the console script's environment reaching moto through it."""
    holding = Holding(endpoint_url)
    try:
        async with serving(holding.handle) as url:
            env = {
                **cli_env(settings),
                "AWS_ENDPOINT_URL": url,
                "AIOSTORAGE_PART_SIZE": str(PART),
                "AIOSTORAGE_MULTIPART_THRESHOLD": str(PART),
            }
            try:
                yield holding, env
            finally:
                holding.closing.set()
    finally:
        await holding.relay.aclose()


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _uploads(s3: Any, bucket: str) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.mark.parametrize("command", ["cp", "cp -r", "sync"])
async def test_sigterm_aborts_the_upload_in_progress(
    command: str, settings: StoreSettings, endpoint_url: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"x" * (PART + 1))
    args = {
        "cp": ["cp", str(folder / "big.bin"), f"s3://{bucket}/up/big.bin"],
        "cp -r": ["cp", "-r", str(folder), f"s3://{bucket}/up/"],
        "sync": ["sync", str(folder), f"s3://{bucket}/up"],
    }[command]
    async with _holding(settings, endpoint_url) as (holding, env), _running(*args, env=env) as process:
        await asyncio.wait_for(holding.part_held.wait(), 30)
        assert await anyio.to_thread.run_sync(lambda: wait_for(lambda: _uploads(s3, bucket))) == ["up/big.bin"]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 143, stderr
    assert stderr.decode().splitlines() == ["interrupted (SIGTERM): cleaning up before exiting"]
    assert _uploads(s3, bucket) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("command", ["cp", "cp -r", "sync"])
async def test_sigterm_removes_the_partial_download(
    command: str, settings: StoreSettings, endpoint_url: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="down/big.bin", Body=b"x" * (PART + 1))
    dest = tmp_path / "down"
    args = {
        "cp": ["cp", f"s3://{bucket}/down/big.bin", str(dest / "big.bin")],
        "cp -r": ["cp", "-r", f"s3://{bucket}/down/", str(dest)],
        "sync": ["sync", f"s3://{bucket}/down", str(dest)],
    }[command]
    async with _holding(settings, endpoint_url) as (holding, env), _running(*args, env=env) as process:
        await asyncio.wait_for(holding.get_held.wait(), 30)
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: list(tmp_path.rglob("*.aiostorage-part"))))
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr.decode()
    assert await anyio.to_thread.run_sync(_files, tmp_path) == []


async def test_a_second_signal_does_not_cut_the_cleanup_short(
    settings: StoreSettings, endpoint_url: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (PART + 1))
    async with _holding(settings, endpoint_url) as (holding, env):
        holding.hold_aborts = True
        async with _running("cp", str(source), f"s3://{bucket}/big.bin", env=env) as process:
            await asyncio.wait_for(holding.part_held.wait(), 30)
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(holding.abort_held.wait(), 30)
            # The abort is on its way when the impatient second signal comes.
            assert _uploads(s3, bucket) == ["big.bin"]
            process.send_signal(signal.SIGINT)
            logged = await _stderr_until(process, "interrupted again")
            holding.let_aborts_through.set()
            _, rest = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 143
    assert "SIGKILL would stop at once" in logged[-1] and "Traceback" not in rest.decode()
    assert _uploads(s3, bucket) == []


async def test_events_stops_gracefully_on_sigterm(settings: StoreSettings, sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName=unique_name("cli-events"))["QueueUrl"]
    async with _running("events", "--json", "--queue-url", queue_url, env=cli_env(settings)) as process:
        assert process.stdout is not None
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(EVENT))
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert json.loads(line)["key"] == "uploads/my clip.mp4"
        process.send_signal(signal.SIGTERM)
        await _stderr_until(process, "stopping (SIGTERM)")
        # A second signal stops without waiting for the long poll in flight.
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
