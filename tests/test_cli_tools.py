"""The console script as a daily tool: pipes, filters, dry runs, global options, du, ls, hints.

Each test runs the console script in subprocesses against the moto server; start-up is their cost, so
each test covers several cases of one feature with a few objects.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from aiostorage import StoreSettings
from aiostorage.cli import Filters
from aiostorage.cli._filters import filter_rules
from tests.cli_run import SCRIPT, cli, cli_env
from tests.conftest import free_port, wait_for

MiB = 1024 * 1024
PART = 5 * MiB


def _keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def _files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


# Runs a shell line and writes the peak resident size of its processes to a file. The measuring is done
# by this small process rather than the test's: a child's peak counts what it inherited when forked, and
# the test process is large.
_PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2], shell=True); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)); "
    "sys.exit(code)"
)


def _measured(
    line: str, env: dict[str, str], folder: Path, *, read_stdout: bool = False
) -> tuple[int, int, str, bytes]:
    """Run the shell ``line``: (exit code, peak RSS in bytes of its processes, SHA-256 of stdout, stderr)."""
    peak = folder / "peak"
    process = subprocess.Popen(
        [sys.executable, "-c", _PEAK_RSS, str(peak), line],
        env=env,
        stdout=subprocess.PIPE if read_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    digest = hashlib.sha256()
    if read_stdout:
        assert process.stdout is not None
        while chunk := process.stdout.read(MiB):
            digest.update(chunk)
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait(timeout=60)
    return process.returncode, int(peak.read_text()), digest.hexdigest(), stderr


def test_a_pipe_in_and_out_streams_in_bounded_memory(
    settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(48 * MiB)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    env = {**cli_env(settings), "AIOSTORAGE_PART_SIZE": str(PART), "AIOSTORAGE_MULTIPART_THRESHOLD": str(PART)}
    # What the command costs before any data: the interpreter, the libraries, an open store.
    code, baseline, _, stderr = _measured(f"echo x | {SCRIPT} --concurrency 1 cp - s3://{bucket}/tiny", env, tmp_path)
    assert code == 0, stderr
    line = f"cat {source} | {SCRIPT} --concurrency 1 cp - s3://{bucket}/piped.bin"
    code, peak_in, _, stderr = _measured(line, env, tmp_path)
    assert code == 0, stderr
    stored = s3.get_object(Bucket=bucket, Key="piped.bin")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert stored["ETag"].endswith('-10"')  # streamed as a multipart upload, size unknown

    line = f"{SCRIPT} cp --concurrency 1 s3://{bucket}/piped.bin -"
    code, peak_out, digest, stderr = _measured(line, env, tmp_path, read_stdout=True)
    assert code == 0, stderr
    assert digest == hashlib.sha256(data).hexdigest()
    assert stderr == b""  # no bar, no result line on the stream side
    # The upload holds a part in flight and the next one filling, (concurrency + 1) parts, plus the pipe's
    # read buffer; the oldest versions allowed hold about two parts more, a plateau whatever the input's
    # size. The whole 48 MiB input would be far above.
    assert peak_in - baseline < 3 * PART + 8 * MiB, (peak_in - baseline) / MiB
    assert peak_out - baseline < 3 * PART + 8 * MiB, (peak_out - baseline) / MiB

    cat = subprocess.run([SCRIPT, "cat", f"s3://{bucket}/tiny"], env=env, capture_output=True, timeout=60, check=False)
    assert (cat.returncode, cat.stdout) == (0, b"x\n")
    # A reader that goes away ends the command quietly, as SIGPIPE would.
    reader = subprocess.Popen(
        [SCRIPT, "cat", f"s3://{bucket}/piped.bin"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None
    assert len(reader.stdout.read(10)) == 10
    reader.stdout.close()
    _, stderr = reader.communicate(timeout=60)
    assert (reader.returncode, stderr) == (141, b"")


def test_sigterm_aborts_a_pipe_upload_waiting_on_its_input(settings: StoreSettings, s3: Any, bucket: str) -> None:
    env = {**cli_env(settings), "AIOSTORAGE_PART_SIZE": str(PART), "AIOSTORAGE_MULTIPART_THRESHOLD": str(PART)}
    process = subprocess.Popen(
        [SCRIPT, "cp", "-", f"s3://{bucket}/stalled.bin"], env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdin is not None
        # Past the threshold, so the multipart upload is under way; then the producer goes quiet, pipe open.
        process.stdin.write(b"x" * (2 * PART + MiB))
        process.stdin.flush()
        wait_for(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), timeout=30)
        process.send_signal(signal.SIGTERM)
        # The input stays open: a read of it that cannot be cancelled would keep the command waiting here.
        process.wait(timeout=30)
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert _keys(s3, bucket) == []


def test_filters_apply_in_order_the_last_match_winning() -> None:
    assert filter_rules(["-r", "--exclude", "*", "--include=*.jpg", "src", "--", "--exclude", "x"]) == Filters(
        ((False, "*"), (True, "*.jpg"))
    )
    keep_jpegs = Filters(((False, "*"), (True, "*.jpg")))
    assert keep_jpegs("a/b.jpg") and not keep_jpegs("a/b.png")
    nothing = Filters(((True, "*.jpg"), (False, "*")))
    assert not nothing("a/b.jpg")
    # "*" crosses "/", and the match is against the whole relative path.
    logs = Filters(((False, "*.log"), (True, "logs/keep.log")))
    assert not logs("deep/down/x.log") and logs("logs/keep.log") and logs("x.txt")
    assert not Filters(((False, "logs/*"),))("logs/a/b") and Filters(((False, "logs/*"),))("other/logs/a")
    assert Filters()("anything") and not Filters()


def test_filters_on_cp_sync_and_rm(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    for name in ("a.jpg", "b.png", "logs/x.log", "logs/keep.log", "deep/c.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())

    up = cli(settings, "cp", "-r", str(folder), f"s3://{bucket}/cp/", "--exclude", "*", "--include", "*.jpg")
    assert up.returncode == 0, up.stderr
    assert _keys(s3, bucket, "cp/") == ["cp/a.jpg", "cp/deep/c.jpg"]
    reversed_order = cli(settings, "cp", "-r", "--include=*.jpg", "--exclude=*", str(folder), f"s3://{bucket}/none/")
    assert reversed_order.returncode == 0, reversed_order.stderr
    assert _keys(s3, bucket, "none/") == []

    synced = cli(settings, "sync", str(folder), f"s3://{bucket}/sync", "--exclude", "logs/*", "--include", "*keep*")
    assert synced.returncode == 0, synced.stderr
    assert _keys(s3, bucket, "sync/") == ["sync/a.jpg", "sync/b.png", "sync/deep/c.jpg", "sync/logs/keep.log"]
    # An excluded key is not deleted by --delete either: the filters hide it on both sides.
    s3.put_object(Bucket=bucket, Key="sync/logs/remote-only.log", Body=b"r")
    s3.put_object(Bucket=bucket, Key="sync/extra.txt", Body=b"e")
    deleting = cli(settings, "sync", "--delete", "--exclude", "logs/*", str(folder), f"s3://{bucket}/sync")
    assert deleting.returncode == 0, deleting.stderr
    assert f"delete: s3://{bucket}/sync/extra.txt" in deleting.stdout
    assert "sync/logs/remote-only.log" in _keys(s3, bucket, "sync/")

    down = cli(settings, "cp", "-r", f"s3://{bucket}/sync/", str(tmp_path / "down"), "--exclude", "*.png")
    assert down.returncode == 0, down.stderr
    assert _files(tmp_path / "down") == ["a.jpg", "deep/c.jpg", "logs/keep.log", "logs/remote-only.log"]

    removed = cli(settings, "rm", "-r", f"s3://{bucket}/sync", "--exclude", "*", "--include", "logs/*")
    assert removed.returncode == 0, removed.stderr
    assert _keys(s3, bucket, "sync/") == ["sync/a.jpg", "sync/b.png", "sync/deep/c.jpg"]


def test_dry_runs_write_nothing(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "new.txt").write_bytes(b"n")
    s3.put_object(Bucket=bucket, Key="data/old.txt", Body=b"o")
    s3.put_object(Bucket=bucket, Key="data/sub/deep.txt", Body=b"d")
    before = _keys(s3, bucket)

    up = cli(settings, "sync", "--dry-run", "--delete", str(folder), f"s3://{bucket}/data")
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines() == [
        f"(dry run) upload: {folder / 'new.txt'} to s3://{bucket}/data/new.txt",
        f"(dry run) delete: s3://{bucket}/data/old.txt",
        f"(dry run) delete: s3://{bucket}/data/sub/deep.txt",
        "0 unchanged",
    ]
    down = cli(settings, "sync", "--dry-run", "--delete", f"s3://{bucket}/data", str(folder))
    assert down.returncode == 0, down.stderr
    assert f"(dry run) delete: {folder / 'new.txt'}" in down.stdout
    assert f"(dry run) download: s3://{bucket}/data/sub/deep.txt to {folder / 'sub' / 'deep.txt'}" in down.stdout
    copies = [
        ("cp", "-r", "--dry-run", str(folder), f"s3://{bucket}/up/"),
        ("cp", "-r", "--dry-run", f"s3://{bucket}/data/", str(tmp_path / "down")),
        ("cp", "-r", "--dry-run", f"s3://{bucket}/data/", f"s3://{bucket}/copy/"),
    ]
    for args in copies:
        result = cli(settings, *args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("(dry run) "), result.stdout
    assert f"(dry run) copy: s3://{bucket}/data/old.txt to s3://{bucket}/copy/old.txt" in result.stdout
    assert _keys(s3, bucket) == before
    assert _files(tmp_path) == ["src/new.txt"]


def test_global_options_override_the_environment(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="k.txt", Body=b"k")
    nowhere = {
        **cli_env(settings),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_REGION": "eu-west-3",
        "AIOSTORAGE_CONCURRENCY": "0",  # invalid: only an override makes these settings usable
        "AIOSTORAGE_CONNECT_TIMEOUT": "1",
        "AIOSTORAGE_MAX_ATTEMPTS": "1",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], env=nowhere, capture_output=True, text=True, timeout=60, check=False)

    endpoint = str(settings.endpoint_url)
    broken = run("ls", f"s3://{bucket}/")
    assert broken.returncode == 1 and "concurrency" in broken.stderr.lower()
    before = run("--endpoint-url", endpoint, "--concurrency", "2", "ls", f"s3://{bucket}/")
    after = run("ls", f"s3://{bucket}/", "--endpoint-url", endpoint, "--concurrency=2")
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert before.stdout == after.stdout == "k.txt\n"

    signed = run("presign", f"s3://{bucket}/k.txt", "--concurrency", "2", "--region", "ap-south-2")
    assert signed.returncode == 0, signed.stderr
    assert "%2Fap-south-2%2Fs3%2Faws4_request" in signed.stdout
    profile = run("--profile", "no-such-profile", "--concurrency", "2", "ls", f"s3://{bucket}/")
    assert profile.returncode == 1 and "no-such-profile" in profile.stderr

    (tmp_path / "f.txt").write_bytes(b"f")
    quiet = run(
        "cp", str(tmp_path / "f.txt"), f"s3://{bucket}/f.txt", "-q", "--endpoint-url", endpoint, "--concurrency", "1"
    )
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert s3.get_object(Bucket=bucket, Key="f.txt")["Body"].read() == b"f"
    refused = run("--concurrency", "0", "ls", f"s3://{bucket}/")
    assert refused.returncode == 2 and "--concurrency" in refused.stderr


def test_du_ls_and_hints(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    sizes = {"top.bin": 10, "a/one.bin": 2048, "a/deep/two.bin": 3 * MiB // 2, "b/three.bin": 7}
    for key, size in sizes.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    total = sum(item["Size"] for item in listed)

    du = cli(settings, "du", "--bytes", f"s3://{bucket}/")
    assert du.returncode == 0, du.stderr
    assert du.stdout.split() == [str(total), str(len(listed)), "objects", f"s3://{bucket}/"]
    by_prefix = cli(settings, "du", "--by-prefix", "--bytes", f"s3://{bucket}")
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert [line.split()[:2] for line in by_prefix.stdout.splitlines()] == [
        [str(2048 + 3 * MiB // 2), "2"],
        ["7", "1"],
        ["10", "1"],
        [str(total), "4"],
    ]
    assert by_prefix.stdout.splitlines()[0].endswith(f"s3://{bucket}/a/")
    assert cli(settings, "du", f"s3://{bucket}/a").stdout.split()[:2] == ["1.5", "MiB"]

    long = cli(settings, "ls", "-l", f"s3://{bucket}/a/")
    assert long.stdout.splitlines()[0].split() == ["PRE", "a/deep/"]
    assert long.stdout.splitlines()[1].split()[:2] == ["2.0", "KiB"]
    exact = cli(settings, "ls", "-l", "--bytes", f"s3://{bucket}/a/")
    assert exact.stdout.splitlines()[1].split()[0] == "2048"
    summary = cli(settings, "ls", "-r", "--summarize", f"s3://{bucket}/")
    assert summary.stdout.splitlines()[-2:] == ["Total Objects: 4", f"   Total Size: {total / MiB:.1f} MiB"]

    rm = cli(settings, "rm", f"s3://{bucket}/a/")
    assert rm.returncode == 1
    assert (
        rm.stderr == f"error: s3://{bucket}/a/ names a prefix, not an object: use rm -r to delete everything under it\n"
    )
    cp = cli(settings, "cp", f"s3://{bucket}/a/", str(tmp_path / "out"))
    assert cp.returncode == 1 and "use cp -r to copy everything under it" in cp.stderr
    assert len(_keys(s3, bucket)) == 4 and not (tmp_path / "out").exists()


def test_write_options_reach_the_objects(settings: StoreSettings, s3: Any, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b'{"a": 1}')
    flags = ["--cache-control", "max-age=60", "--content-disposition", "inline", "--storage-class", "STANDARD_IA"]
    flags += ["--sse", "AES256", "--tag", "env=test", "--tag", "team=media", "--metadata", "origin=cli"]
    single = cli(settings, "cp", str(source), f"s3://{bucket}/one.bin", "--content-type", "application/json", *flags)
    assert single.returncode == 0, single.stderr
    head = s3.head_object(Bucket=bucket, Key="one.bin")
    assert (head["ContentType"], head["Metadata"], head["CacheControl"], head["ContentDisposition"]) == (
        "application/json",
        {"origin": "cli"},
        "max-age=60",
        "inline",
    )
    assert (head["StorageClass"], head["ServerSideEncryption"]) == ("STANDARD_IA", "AES256")
    tags = s3.get_object_tagging(Bucket=bucket, Key="one.bin")["TagSet"]
    assert sorted((tag["Key"], tag["Value"]) for tag in tags) == [("env", "test"), ("team", "media")]

    piped = subprocess.run(
        [SCRIPT, "cp", "-", f"s3://{bucket}/piped", "--content-type", "text/csv", "--tag", "from=stdin"],
        input=b"a,b\n",
        env=cli_env(settings),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert s3.head_object(Bucket=bucket, Key="piped")["ContentType"] == "text/csv"
    synced = cli(settings, "sync", str(tmp_path), f"s3://{bucket}/synced", "--storage-class", "STANDARD_IA")
    assert synced.returncode == 0, synced.stderr
    assert s3.head_object(Bucket=bucket, Key="synced/data.bin")["StorageClass"] == "STANDARD_IA"

    # What a command cannot write is refused by its flag's name, before any request.
    for args, message in [
        (
            ("cp", f"s3://{bucket}/one.bin", str(tmp_path / "x"), "--sse", "AES256"),
            "--sse does not apply to a download",
        ),
        (("cp", "-r", str(tmp_path), f"s3://{bucket}/r/", "--content-type", "a/b"), "--content-type does not apply"),
        (("sync", f"s3://{bucket}/synced", str(tmp_path / "d"), "--tag", "a=b"), "--tag does not apply to a sync down"),
        (("cp", str(source), f"s3://{bucket}/bad", "--metadata", "novalue"), "write --metadata name=value"),
    ]:
        refused = cli(settings, *args)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert not (tmp_path / "x").exists() and _keys(s3, bucket, "r/") == [] and _keys(s3, bucket, "bad") == []

    signed = cli(settings, "presign", f"s3://{bucket}/one.bin", "--filename", "résumé 2026.json")
    assert signed.returncode == 0, signed.stderr
    with urllib.request.urlopen(signed.stdout.strip()) as answer:
        disposition = answer.headers["Content-Disposition"]
    assert disposition == "attachment; filename=\"r?sum? 2026.json\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026.json"
