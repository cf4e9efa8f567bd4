"""sync, recursive copies and download_many under broken input: nothing deleted unseen, no key escapes."""

from __future__ import annotations

import os
import subprocess
import traceback
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiostorage import AsyncS3Store, ConfigError, InvalidArgument, StorageError, StoreSettings
from tests.cli_run import SCRIPT, cli, cli_env
from tests.conftest import RequestCounter

MiB = 1024 * 1024


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def _files_below(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _without_read_override(command: list[str]) -> list[str]:
    """Run ``command`` without the capabilities that let root read any folder whatever its mode."""
    if os.geteuid() != 0:
        return command
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]


def test_sync_up_deletes_nothing_under_a_folder_it_could_not_read(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    _tree(source, {"top.txt": b"t", "locked/a.txt": b"a", "locked/b.txt": b"b", "locked/deep/c.txt": b"c"})
    first = cli(settings, "sync", str(source), f"s3://{bucket}/backup")
    assert first.returncode == 0, first.stderr
    assert len(_keys(s3, bucket)) == 4
    (source / "top.txt").unlink()  # a real deletion, which must wait for a sync that sees everything
    (source / "locked").chmod(0)
    try:
        command = [SCRIPT, "sync", "--delete", str(source), f"s3://{bucket}/backup"]
        second = subprocess.run(
            _without_read_override(command), env=cli_env(settings), capture_output=True, text=True, timeout=60
        )
    finally:
        (source / "locked").chmod(0o755)
    assert second.returncode == 1
    assert f"cannot read the folder {source / 'locked'}" in second.stderr
    assert "Traceback" not in second.stderr
    assert _keys(s3, bucket) == [
        "backup/locked/a.txt",
        "backup/locked/b.txt",
        "backup/locked/deep/c.txt",
        "backup/top.txt",
    ]


async def test_a_dangling_link_is_one_failed_item_and_blocks_deletion(
    store: AsyncS3Store, s3: Any, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    _tree(source, {"a.txt": b"a", "sub/b.txt": b"b"})
    s3.put_object(Bucket=store.bucket, Key="d/only-remote.txt", Body=b"x")
    (source / "sub" / "gone.txt").symlink_to(source / "missing.txt")
    result = await store.sync(source, "d", delete=True)
    assert sorted(item.destination for item in result.succeeded) == [
        f"s3://{store.bucket}/d/a.txt",
        f"s3://{store.bucket}/d/sub/b.txt",
    ]
    [failed] = result.failed
    assert failed.source == str(source / "sub" / "gone.txt")
    assert failed.destination == f"s3://{store.bucket}/d/sub/gone.txt"
    assert isinstance(failed.error, StorageError) and isinstance(failed.error.__cause__, FileNotFoundError)
    assert result.deleted == [] and "d/only-remote.txt" in _keys(s3, store.bucket)


async def test_special_files_are_failed_items_not_a_hang(store: AsyncS3Store, tmp_path: Path) -> None:
    source = tmp_path / "src"
    _tree(source, {"a.txt": b"a"})
    os.mkfifo(source / "pipe")
    with anyio.fail_after(30):  # reading the FIFO as a file would wait for a writer forever
        result = await store.sync(source, "fifo")
    assert [item.source for item in result.failed] == [str(source / "pipe")]
    assert isinstance(result.failed[0].error, InvalidArgument)
    assert [item.source for item in result.succeeded] == [str(source / "a.txt")]


async def test_symlinks_are_followed_by_default_and_skipped_on_request(
    store: AsyncS3Store, s3: Any, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    _tree(outside, {"shared.txt": b"shared", "folder/inner.txt": b"inner"})
    source = tmp_path / "src"
    _tree(source, {"own.txt": b"own"})
    (source / "file-link.txt").symlink_to(outside / "shared.txt")
    (source / "folder-link").symlink_to(outside / "folder")
    (source / "loop").symlink_to(source)

    followed = await store.sync(source, "follow")
    assert _keys(s3, store.bucket, "follow/") == [
        "follow/file-link.txt",
        "follow/folder-link/inner.txt",
        "follow/own.txt",
    ]
    assert s3.get_object(Bucket=store.bucket, Key="follow/file-link.txt")["Body"].read() == b"shared"
    [loop] = followed.failed  # a link to a folder above it is reported, not walked forever
    assert loop.source == str(source / "loop") and "loop" in str(loop.error)

    skipped = await store.sync(source, "nofollow", follow_symlinks=False)
    assert skipped.ok
    assert _keys(s3, store.bucket, "nofollow/") == ["nofollow/own.txt"]


async def test_sync_up_refuses_a_folder_that_is_not_there(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=store.bucket, Key="backup/precious.txt", Body=b"p")
    counter = RequestCounter(store.client)
    with pytest.raises(InvalidArgument, match="cannot read the folder"):
        await store.sync(tmp_path / "typo", "backup", delete=True)
    (tmp_path / "file.txt").write_bytes(b"f")
    with pytest.raises(InvalidArgument, match="is not a folder"):
        await store.sync(tmp_path / "file.txt", "backup", delete=True)
    assert [sent for sent in counter.sent if not sent.startswith("GET")] == []
    assert _keys(s3, store.bucket) == ["backup/precious.txt"]


async def test_download_many_refuses_a_destination_with_dotdot(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    """The idiom ``Path("out") / info.key`` with a hostile key must not write outside ``out``."""
    s3.put_object(Bucket=store.bucket, Key="photos/../../planted.txt", Body=b"evil")
    s3.put_object(Bucket=store.bucket, Key="photos/fine.jpg", Body=b"ok")
    out = tmp_path / "a" / "out"
    listed = [info async for info in store.list("photos/")]
    result = await store.download_many([(info, out / info.key) for info in listed], fsync=False)
    assert [item.ok for item in result.items] == [info.key == "photos/fine.jpg" for info in listed]
    [refused] = result.failed
    assert isinstance(refused.error, InvalidArgument) and "'..'" in str(refused.error)
    assert (out / "photos" / "fine.jpg").read_bytes() == b"ok"
    assert _files_below(tmp_path) == ["a/out/photos/fine.jpg"]


async def test_sync_down_reports_refused_keys_and_converges(store: AsyncS3Store, s3: Any, tmp_path: Path) -> None:
    bodies = {
        "data/a": b"one",
        "data/./a": b"two",  # the same file as data/a: refused, so the file never flips between them
        "data/x//y": b"empty part",
        "data/../escape.txt": b"evil",
        "data/dir": b"a file that other keys use as a folder",
        "data/dir/inner.txt": b"inner",
        "data/sub/": b"",  # a console's folder marker: passed over
        "data/bad/": b"a key ending in / that holds data",
    }
    for key, body in bodies.items():
        s3.put_object(Bucket=store.bucket, Key=key, Body=body)
    mirror = tmp_path / "mirror"
    first = await store.sync(mirror, "data", direction="down", delete=True)
    assert sorted(item.source for item in first.succeeded) == [
        f"s3://{store.bucket}/data/a",
        f"s3://{store.bucket}/data/dir/inner.txt",
    ]
    refused = {item.source.removeprefix(f"s3://{store.bucket}/"): item.error for item in first.failed}
    assert sorted(refused) == ["data/../escape.txt", "data/./a", "data/bad/", "data/dir", "data/x//y"]
    assert all(isinstance(error, InvalidArgument) for error in refused.values())
    assert (mirror / "a").read_bytes() == b"one"
    assert not (tmp_path / "escape.txt").exists()

    second = await store.sync(mirror, "data", direction="down")
    assert [item for item in second.items if item.ok] == []
    assert len(second.failed) == len(refused) and sorted(second.skipped) == ["data/a", "data/dir/inner.txt"]
    assert (mirror / "a").read_bytes() == b"one"


def test_cli_sync_and_cp_name_refused_keys_and_exit_1(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="p/fine.txt", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="p/../escape.txt", Body=b"evil")
    for command in ("sync", "cp"):
        dest = tmp_path / command
        extra = ["-r"] if command == "cp" else []
        done = cli(settings, command, *extra, f"s3://{bucket}/p", str(dest))
        assert done.returncode == 1, done.stderr
        assert f"s3://{bucket}/p/../escape.txt" in done.stderr and "refused" in done.stderr
        assert (dest / "fine.txt").read_bytes() == b"ok"
    assert not (tmp_path / "escape.txt").exists()


def test_cli_cp_recursive_uploads_the_rest_past_a_dangling_link(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    _tree(source, {"a.txt": b"a", "b/c.txt": b"c"})
    (source / "dangling").symlink_to(tmp_path / "nowhere")
    (source / "link.txt").symlink_to(source / "a.txt")
    done = cli(settings, "cp", "-r", str(source), f"s3://{bucket}/up")
    assert done.returncode == 1
    assert str(source / "dangling") in done.stderr and "Traceback" not in done.stderr
    assert _keys(s3, bucket) == ["up/a.txt", "up/b/c.txt", "up/link.txt"]
    skipped = cli(settings, "cp", "-r", "--no-follow-symlinks", str(source), f"s3://{bucket}/nolinks")
    assert skipped.returncode == 0, skipped.stderr
    assert _keys(s3, bucket, "nolinks/") == ["nolinks/a.txt", "nolinks/b/c.txt"]


def test_config_errors_never_show_secrets() -> None:
    # Built at run time, so the traceback's echo of this file's source lines cannot hold them.
    token, secret = "-".join(["SESSION", "TOKEN", "SECRET", "123"]), "/".join(["wJalrXUtnFEMI", "K7MDENG", "XYZ"])
    with pytest.raises(ConfigError) as caught:
        StoreSettings(aws_access_key_id="AKIDEXAMPLE", aws_session_token=token)
    with pytest.raises(ConfigError) as other:
        StoreSettings(aws_secret_access_key=secret, aws_session_token=token)
    for error in (caught.value, other.value):
        shown = "".join(traceback.format_exception(error))
        assert "must be given together" in shown
        for fragment in (token, token[-8:], secret, secret[-8:]):
            assert fragment not in shown


async def test_upload_version_id_is_none_on_an_unversioned_bucket(
    bucket: str, settings: StoreSettings, s3: Any
) -> None:
    async with AsyncS3Store(bucket, settings=settings, part_size=5 * MiB) as store:
        small = await store.put_bytes("small", b"x")
        large = await store.upload(os.urandom(9 * MiB), "large", part_size=5 * MiB)
        assert large.parts == 2
        assert small.version_id is None and large.version_id is None
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        versioned = await store.upload(os.urandom(9 * MiB), "large", part_size=5 * MiB)
        assert versioned.version_id and versioned.version_id != "null"
        assert versioned.version_id == s3.head_object(Bucket=bucket, Key="large")["VersionId"]
