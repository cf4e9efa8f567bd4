"""The ``aiostorage`` command line: ls, cp, sync, rm, presign, events, local.

S3 locations are written ``s3://bucket/key`` as with the AWS CLI. Settings come from the environment
(``StoreSettings``), like the library. Errors print one line (``--debug`` shows the traceback) and the
exit code is non-zero when anything failed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

try:
    import click
    from rich.console import Console
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise SystemExit("the aiostorage command line needs its extra: pip install 'aiostorage[cli]'") from exc

from ._exceptions import InvalidArgument, StorageError
from ._settings import StoreSettings
from ._store import AsyncS3Store

__all__ = ["S3Url", "main", "parse_s3_url"]

T = TypeVar("T")

console = Console(stderr=True)


@dataclass(frozen=True)
class S3Url:
    """``s3://bucket/key``; ``key`` may be empty (the whole bucket) or end in ``/`` (a prefix)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(text: str) -> S3Url | None:
    """The S3 location ``text`` names, or ``None`` for a local path."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidArgument(f"no bucket in {text!r}: write s3://bucket/key")
    return S3Url(bucket, key)


def _require_s3(text: str) -> S3Url:
    url = parse_s3_url(text)
    if url is None:
        raise InvalidArgument(f"{text!r} is not an S3 location: write s3://bucket/key")
    return url


def _run(debug: bool, coroutine: Coroutine[Any, Any, int]) -> None:
    """Run the command; one clear line and exit code 1 for our errors, the traceback only with --debug."""
    try:
        code = asyncio.run(coroutine)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
    except (StorageError, OSError) as exc:
        if debug:
            traceback.print_exc()
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    sys.exit(code)


def _command(function: Callable[..., Coroutine[Any, Any, int]]) -> Callable[..., None]:
    """Turn an async command returning an exit code into a click callback honouring ``--debug``."""

    @wraps(function)
    @click.pass_context
    def callback(context: click.Context, /, **kwargs: Any) -> None:
        _run(bool(context.obj and context.obj.get("debug")), function(**kwargs))

    return callback


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(context: click.Context, debug: bool) -> None:
    """aiostorage: fast, honest S3 transfers and S3 events from the command line."""
    context.obj = {"debug": debug}


@main.command()
@click.argument("keys", nargs=-1, required=True)
@_command
async def rm(keys: tuple[str, ...]) -> int:
    """Delete objects: rm s3://bucket/key [s3://bucket/other ...]."""
    urls = [_require_s3(key) for key in keys]
    failed = 0
    for bucket in sorted({url.bucket for url in urls}):
        async with AsyncS3Store(bucket, settings=StoreSettings()) as store:
            result = await store.delete_many([url.key for url in urls if url.bucket == bucket])
        for key in result.deleted:
            click.echo(f"delete: s3://{bucket}/{key}")
        for error in result.errors:
            failure = f"s3://{bucket}/{error.key}: {error.code} {error.message}"
            console.print(f"[red]failed:[/red] {failure}", highlight=False)
        failed += len(result.errors)
    return 1 if failed else 0


@main.command()
@click.argument("url")
@click.option("--put", is_flag=True, help="A URL to upload to (PUT) instead of download from.")
@click.option("--expires", default=3600, show_default=True, help="Seconds the URL stays valid (at most 7 days).")
@click.option("--content-type", default=None, help="With --put: the Content-Type the upload must send.")
@_command
async def presign(url: str, put: bool, expires: int, content_type: str | None) -> int:
    """Print a presigned GET (or PUT) URL for s3://bucket/key."""
    location = _require_s3(url)
    async with AsyncS3Store(location.bucket, settings=StoreSettings()) as store:
        if put:
            signed = await store.presign_put(location.key, expires_in=expires, content_type=content_type)
        else:
            signed = await store.presign_get(location.key, expires_in=expires)
    click.echo(signed)
    return 0


@main.command()
@click.option("--bucket", default="media", show_default=True)
@click.option("--queue", default="media-events", show_default=True)
@click.option("--prefix", default="uploads/", show_default=True)
@click.option("--suffix", "suffixes", multiple=True, default=(".mp4", ".mov", ".avi", ".mkv"), show_default=True)
@click.option("--port", type=int, default=None, help="Port to listen on (default: a free one).")
@_command
async def local(bucket: str, queue: str, prefix: str, suffixes: tuple[str, ...], port: int | None) -> int:
    """Run an embedded S3+SQS server, provisioned like the Terraform modules, until Ctrl-C."""
    from .local import LocalServer

    async with LocalServer(port=port) as server:
        settings = await server.provision(bucket=bucket, queue=queue, prefix=prefix, suffixes=suffixes)
        secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else ""
        click.echo("# aiostorage local server; paste these lines into another shell:")
        click.echo(f"export AWS_ENDPOINT_URL={settings.endpoint_url}")
        click.echo(f"export AWS_REGION={settings.region}")
        click.echo(f"export AWS_ACCESS_KEY_ID={settings.aws_access_key_id}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY={secret}")
        click.echo(f"export AWS_S3_BUCKET_NAME={settings.bucket}")
        click.echo(f"export AWS_SQS_QUEUE_URL={settings.queue_url}")
        click.echo("# Ctrl-C stops the server.", nl=True)
        sys.stdout.flush()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        await stopped.wait()
    return 0
