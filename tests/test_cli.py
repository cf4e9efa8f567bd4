"""The console script, run in a subprocess against the moto server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aiostorage import InvalidArgument, StoreSettings
from aiostorage.cli import S3Url, parse_s3_url

SCRIPT = str(Path(sys.executable).with_name("aiostorage"))


def _env(settings: StoreSettings) -> dict[str, str]:
    assert settings.aws_secret_access_key is not None
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": str(settings.endpoint_url),
        "AWS_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
    }


def cli(settings: StoreSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=_env(settings), capture_output=True, text=True, timeout=60, check=False)


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


def test_local_prints_exports_and_stops_on_sigint() -> None:
    process = subprocess.Popen(
        [SCRIPT, "local", "--bucket", "clibucket"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        while "AWS_SQS_QUEUE_URL" not in lines:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else "no output"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                lines[name] = value
        assert lines["AWS_S3_BUCKET_NAME"] == "clibucket"
        assert lines["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        # The printed settings work as they are.
        assert urllib.request.urlopen(lines["AWS_ENDPOINT_URL"] + "/clibucket").status == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


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


def test_events_prints_typed_records(settings: StoreSettings, sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="cli-events")["QueueUrl"]
    body = {
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
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    followed = cli(settings, "events", "--queue-url", queue_url, "--limit", "1")
    assert followed.returncode == 0, followed.stderr
    record = json.loads(followed.stdout.splitlines()[0])
    assert record["key"] == "uploads/my clip.mp4" and record["event_name"] == "ObjectCreated:Put"
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)


def test_cp_recursive_download_stays_inside_the_destination(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="data/../../escaped.txt", Body=b"evil")
    s3.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="database/other.txt", Body=b"not under data/")
    dest = tmp_path / "a" / "dest"
    result = cli(settings, "cp", "-r", f"s3://{bucket}/data", str(dest))
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == ["a/dest/ok.txt"]
    assert "skipped" in result.stderr


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
