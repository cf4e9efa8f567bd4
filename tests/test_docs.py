"""Every example in the README and the docs site runs, so the docs cannot drift from the code.

The convention, for whoever writes a page:

- ```python blocks of a page run in order in one namespace, with top-level ``await``. Predefined: ``store`` (an
  open ``AsyncS3Store`` on bucket ``"media"``), ``settings`` (its ``StoreSettings``) and, as the current
  directory, a fresh empty folder. Each page starts from an empty bucket and an empty queue.
- A ```python block holding ``asyncio.run(`` is a complete program: it runs as a script in a subprocess, in
  that folder, with the environment pointing at the server (``AWS_ENDPOINT_URL``, ``AWS_REGION``, credentials,
  ``AWS_S3_BUCKET_NAME=media``, ``AWS_SQS_QUEUE_URL`` of a provisioned queue).
- ```console blocks: each line starting with ``$ aiostorage `` runs (without ``$ ``) in a shell with that
  environment, in that folder, and must exit 0; other lines are shown output, not checked.
- ``<!-- docs-test: skip (the reason) -->`` on the line before a block (blank lines between allowed) skips it.

The server is one ``aiostorage local`` process for the module (an embedded moto with the bucket, the queue,
its dead-letter queue and the notifications provisioned), so the docs' state never mixes with the suite's.
Pages are found when the tests are collected: a page added under docs/ is tested with nothing to register.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest

import aiostorage
import aiostorage.events
import aiostorage.local
from aiostorage import AsyncS3Store, StoreSettings

pytestmark = pytest.mark.moto_only(reason="the docs run against their own embedded moto server; once is enough")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUCKET = "media"
# A block's (or a command's) time limit: examples keep their data small, so only a hang takes this long.
BLOCK_TIMEOUT = 120.0

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\b(?P<rest>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, from 1
    language: str
    code: str
    skip: str | None  # the reason, when skipped

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_program(self) -> bool:
        return self.language == "python" and "asyncio.run(" in self.code

    @property
    def commands(self) -> list[str]:
        """The ``$ aiostorage ...`` lines of a console block, without the prompt."""
        return [line[2:].strip() for line in self.code.splitlines() if line.startswith("$ aiostorage ")]


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [page for page in found if page.is_file()]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def parse_blocks(text: str, page: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the skip marker that precedes each, if any."""
    blocks: list[Block] = []
    lines = text.splitlines()
    skip: tuple[int, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _SKIP.match(line)
        if marker:
            if skip is not None:
                raise AssertionError(f"{page}:{skip[0]}: a docs-test skip marker not followed by a code block")
            reason = marker.group("rest").strip()
            if not (reason.startswith("(") and reason.endswith(")") and reason[1:-1].strip()):
                raise AssertionError(f"{page}:{index + 1}: a skip marker needs its reason: docs-test: skip (why)")
            skip = (index + 1, reason[1:-1].strip())
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            opening, indent = fence.group("fence"), len(fence.group("indent"))
            language = (fence.group("info").strip().split() or [""])[0].lower()
            body: list[str] = []
            index += 1
            while index < len(lines):
                closing = _FENCE.match(lines[index])
                if (
                    closing
                    and closing.group("fence").startswith(opening[0] * len(opening))
                    and not closing.group("info").strip()
                ):
                    break
                body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
                index += 1
            start = index - len(body)
            blocks.append(Block(page, start, language, "\n".join(body) + "\n", skip[1] if skip else None))
            skip = None
            index += 1
            continue
        if skip is not None and line.strip():
            raise AssertionError(f"{page}:{skip[0]}: a docs-test skip marker not followed by a code block")
        index += 1
    if skip is not None:
        raise AssertionError(f"{page}:{skip[0]}: a docs-test skip marker not followed by a code block")
    return blocks


def runnable(block: Block) -> bool:
    return block.language == "python" or (block.language == "console" and bool(block.commands))


def page_blocks(page: Path) -> list[Block]:
    return parse_blocks(page.read_text(encoding="utf-8"), page_id(page))


PAGES = [page for page in pages() if any(runnable(block) for block in page_blocks(page))]


# The server


@dataclass(frozen=True)
class Server:
    env: dict[str, str]  # the environment programs and commands run with
    settings: StoreSettings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``aiostorage local`` in a process of its own, provisioned; its environment lines, parsed."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "AIOSTORAGE_"))}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [_console_script(), "local", "--bucket", BUCKET, "--queue", "media-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path_factory.mktemp("local"),
    )
    try:
        assert process.stdout is not None
        exported: dict[str, str] = {}
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while "AWS_SQS_QUEUE_URL" not in exported:
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError("`aiostorage local` did not start:\n" + "".join(seen))
            seen.append(line)
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export ") :].strip().partition("=")
                exported[name] = value
        env.update(exported)
        settings = StoreSettings(
            endpoint_url=exported["AWS_ENDPOINT_URL"],
            region=exported["AWS_REGION"],
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            bucket=BUCKET,
            queue_url=exported["AWS_SQS_QUEUE_URL"],
        )
        yield Server(env=env, settings=settings)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _console_script() -> str:
    script = Path(sys.executable).parent / "aiostorage"
    return str(script) if script.exists() else shutil.which("aiostorage") or "aiostorage"


def _clients(settings: StoreSettings) -> tuple[Any, Any]:
    options = {
        "endpoint_url": settings.endpoint_url,
        "region_name": settings.region,
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value()
        if settings.aws_secret_access_key
        else None,
    }
    return boto3.client("s3", **options), boto3.client("sqs", **options)


def reset(settings: StoreSettings) -> None:
    """Back to the provisioned state: the bucket empty (every version, no upload in progress), other buckets
    gone, the queues empty of visible messages (a page settles what it receives), other queues gone."""
    s3, sqs = _clients(settings)
    for bucket in [entry["Name"] for entry in s3.list_buckets().get("Buckets", [])]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [
                {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        if bucket != BUCKET:
            s3.delete_bucket(Bucket=bucket)
        elif s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    provisioned = {settings.queue_url, f"{settings.queue_url}-dlq"}
    for url in sqs.list_queues().get("QueueUrls", []):
        if url not in provisioned:
            sqs.delete_queue(QueueUrl=url)
            continue
        # Received and deleted rather than purged: SQS allows one purge a minute per queue.
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


# Running a page


async def run_python(block: Block, namespace: dict[str, Any]) -> None:
    try:
        compiled = compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as error:
        raise AssertionError(f"{block.where}: the example does not compile: {error}") from error
    try:
        with anyio.fail_after(BLOCK_TIMEOUT):
            result = eval(compiled, namespace)
            if result is not None and hasattr(result, "__await__"):
                await result
    except Exception as error:
        raise AssertionError(f"{block.where}: the example raised {error!r}") from error


def run_program(block: Block, server: Server, folder: Path) -> None:
    script = folder / f"example_line_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=folder,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    finally:
        script.unlink()
    if done.returncode != 0:
        raise AssertionError(f"{block.where}: the program exited {done.returncode}\n{done.stdout}\n{done.stderr}")


def run_commands(block: Block, server: Server, folder: Path) -> None:
    for command in block.commands:
        done = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + command],
            cwd=folder,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.where}: `{command}` exited {done.returncode}\n{done.stdout}\n{done.stderr}".rstrip()
            )


@pytest.mark.parametrize("page", PAGES, ids=page_id)
async def test_examples_run(page: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [block for block in page_blocks(page) if runnable(block)]
    if all(block.skip for block in blocks):
        pytest.skip("every example on this page is marked to skip: " + "; ".join({b.skip or "" for b in blocks}))
    reset(server.settings)
    monkeypatch.chdir(tmp_path)
    ran = 0
    async with AsyncS3Store(BUCKET, settings=server.settings) as store:
        namespace: dict[str, Any] = {"__name__": "__docs__", "store": store, "settings": server.settings}
        for block in blocks:
            if block.skip:
                continue
            if block.is_program:
                run_program(block, server, tmp_path)
            elif block.language == "python":
                await run_python(block, namespace)
            else:
                run_commands(block, server, tmp_path)
            ran += 1
    assert ran > 0


def test_every_page_parses() -> None:
    """Unclosed fences and skip markers without a reason or a block fail here, naming the page and line."""
    for page in pages():
        page_blocks(page)


def test_pages_exist() -> None:
    """The collector found the README and the site's pages (a moved docs folder must not pass silently)."""
    found = {page_id(page) for page in pages()}
    assert {"README.md", "docs/index.md", "docs/guides/getting-started.md"} <= found


# The API reference


def _documented() -> set[str]:
    names: set[str] = set()
    for page in (DOCS / "reference").rglob("*.md"):
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.startswith("::: "):
                names.add(line[4:].strip())
    return names


@pytest.mark.parametrize(
    ("module", "public"),
    [
        ("aiostorage", aiostorage.__all__),
        ("aiostorage.events", aiostorage.events.__all__),
        ("aiostorage.local", aiostorage.local.__all__),
    ],
)
def test_reference_names_every_public_name(module: str, public: list[str]) -> None:
    """Each public name has its ``::: module.Name`` line under docs/reference/ (a re-export counts once)."""
    documented = _documented()
    missing = [
        name
        for name in public
        if f"{module}.{name}" not in documented
        and not (module == "aiostorage.events" and f"aiostorage.{name}" in documented)
    ]
    assert not missing, f"add a `::: {module}.<name>` line to a page under docs/reference/ for: {missing}"


def test_reference_names_only_real_objects() -> None:
    """A ``:::`` line names something importable (mkdocs would fail too, but later and less clearly)."""
    for name in sorted(_documented()):
        module, _, attribute = name.rpartition(".")
        assert hasattr(__import__(module, fromlist=[attribute]), attribute), name


def test_parser_reads_the_convention() -> None:
    text = textwrap.dedent(
        """\
        ```python
        x = 1
        ```
        <!-- docs-test: skip (needs AWS) -->

        ```console
        $ aiostorage ls s3://media/
        PRE uploads/
        ```
        ````python
        asyncio.run(main())
        ````
        """
    )
    first, second, third = parse_blocks(text, "page.md")
    assert (first.language, first.code, first.skip, first.line) == ("python", "x = 1\n", None, 1)
    assert (second.skip, second.commands) == ("needs AWS", ["aiostorage ls s3://media/"])
    assert third.is_program and not first.is_program
    with pytest.raises(AssertionError, match="needs its reason"):
        parse_blocks("<!-- docs-test: skip -->\n```python\n```\n", "page.md")
    with pytest.raises(AssertionError, match="not followed by a code block"):
        parse_blocks("<!-- docs-test: skip (why) -->\nsome prose\n", "page.md")
