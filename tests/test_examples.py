"""The bulk examples, run as a user would: with no settings (their own local server) and against a bucket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aiostorage import StoreSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MiB = 1024 * 1024
LOCAL_IS_MOTO = "with no settings the example starts aiostorage.local, which embeds moto by design"


def run(script: str, *args: str, settings: StoreSettings | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIOSTORAGE_"))}
    if settings is not None:
        assert settings.aws_secret_access_key is not None
        env |= {
            "AWS_S3_BUCKET_NAME": str(settings.bucket),
            "AWS_ENDPOINT_URL": str(settings.endpoint_url),
            "AWS_REGION": settings.region,
            "AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
            "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
        }
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=120, env=env
    )


def make_folder(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha\n", "nested/deeper/b.bin": os.urandom(300_000), "with space/c d.txt": b"spaced"}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO)
def test_bulk_upload_with_no_settings_uses_its_own_local_server(tmp_path: Path) -> None:
    make_folder(tmp_path)
    done = run("bulk_upload.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "uploaded 3 of 3 files (300,012 bytes) to s3://bulk-example/uploads/" in done.stdout
    assert "holds 3 objects under 'uploads/'" in done.stdout


def test_bulk_upload_to_a_configured_bucket(tmp_path: Path, bucket: str, settings: StoreSettings, s3: Any) -> None:
    files = make_folder(tmp_path)
    done = run(
        "bulk_upload.py", str(tmp_path), "--prefix", "in/", settings=settings.model_copy(update={"bucket": bucket})
    )
    assert done.returncode == 0, done.stderr
    stored = {
        obj["Key"]: s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]
    }
    assert stored == {f"in/{name}": data for name, data in files.items()}


def test_bulk_upload_refuses_a_missing_folder(tmp_path: Path) -> None:
    done = run("bulk_upload.py", str(tmp_path / "missing"))
    assert done.returncode == 2 and "is not a folder" in done.stderr


@pytest.mark.moto_only(reason=LOCAL_IS_MOTO)
def test_bulk_download_with_no_settings_fetches_its_samples(tmp_path: Path) -> None:
    done = run("bulk_download.py", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "downloaded 19 of 19 objects" in done.stdout
    files = sorted(
        path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*") if path.is_file()
    )
    assert len(files) == 19 and "videos/clip.mp4" in files
    assert (tmp_path / "out" / "docs" / "note-02.txt").read_bytes() == b"note 2\n" * 3
    assert (tmp_path / "out" / "videos" / "clip.mp4").stat().st_size == 24 * MiB


def test_bulk_download_from_a_bucket_keeps_inside_the_folder(
    tmp_path: Path, bucket: str, settings: StoreSettings, s3: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="in/ok/x.txt", Body=b"inside")
    s3.put_object(Bucket=bucket, Key="in/../escape.txt", Body=b"outside")
    dest = tmp_path / "dest"
    done = run(
        "bulk_download.py", str(dest), "--prefix", "in/", settings=settings.model_copy(update={"bucket": bucket})
    )
    assert done.returncode == 1  # one key was refused
    assert f"refused s3://{bucket}/in/../escape.txt" in done.stdout
    assert (dest / "ok" / "x.txt").read_bytes() == b"inside"
    assert not (tmp_path / "escape.txt").exists()
