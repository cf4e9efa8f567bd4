"""The commands that follow a queue or serve one: events and local. Imported only when one of them runs."""

from __future__ import annotations

import asyncio
import sys

import anyio
import click

from .._exceptions import ConfigError, InvalidArgument
from ._output import human_size
from ._running import CommandLineError, Invocation, stop_on_signal

__all__ = ["events", "local"]


async def events(
    invocation: Invocation, queue_url: str | None, ack: bool, limit: int | None, as_json: bool, wait_time: int
) -> int:
    from ..events import S3EventPoller

    printed = 0
    async with S3EventPoller(queue_url, settings=invocation.settings(), wait_time=wait_time) as poller:
        loop = asyncio.get_running_loop()
        # A second signal stops waiting for the long poll in flight; its messages come back later.
        stop_on_signal(lambda again: loop.create_task(poller.stop(now=again)))
        async for record in poller:
            if as_json:
                click.echo(record.model_dump_json(exclude={"extra"}))
            else:
                size = f" ({human_size(record.size)})" if record.size is not None else ""
                when = record.event_time.strftime("%Y-%m-%d %H:%M:%S")
                click.echo(f"{when} {record.event_name} s3://{record.bucket}/{record.key}{size}")
            sys.stdout.flush()
            if ack:
                await poller.ack(record)
            else:
                await poller.nack(record, delay=0)
            printed += 1
            if limit is not None and printed >= limit:
                break
    return 0


async def local(
    invocation: Invocation, bucket: str, queue: str, prefix: str, suffixes: tuple[str, ...], port: int | None
) -> int:
    from ..local import LocalServer

    try:
        server = LocalServer(port=port)
        await server.start()
    except (InvalidArgument, ConfigError) as exc:  # a port out of range, or taken
        raise CommandLineError(str(exc)) from exc
    try:
        settings = await server.provision(bucket=bucket, queue=queue, prefix=prefix, suffixes=suffixes)
        secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else ""
        stopped = anyio.Event()
        stop_on_signal(lambda again: stopped.set())
        click.echo("# aiostorage local server; paste these lines into another shell:")
        click.echo(f"export AWS_ENDPOINT_URL={settings.endpoint_url}")
        click.echo(f"export AWS_REGION={settings.region}")
        # boto3's SQS client and AWS CLI v1 read only this one.
        click.echo(f"export AWS_DEFAULT_REGION={settings.region}")
        click.echo(f"export AWS_ACCESS_KEY_ID={settings.aws_access_key_id}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY={secret}")
        click.echo(f"export AWS_S3_BUCKET_NAME={settings.bucket}")
        click.echo(f"export AWS_SQS_QUEUE_URL={settings.queue_url}")
        click.echo("# This server accepts any credentials and checks no signatures: signing is not tested here.")
        click.echo("# Ctrl-C stops the server.", nl=True)
        sys.stdout.flush()
        await stopped.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await server.stop()
    return 0
