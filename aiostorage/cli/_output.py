"""What the command line prints: one-line messages on stderr, progress bars, and what was done.

Keys, paths and messages are printed literally, never read as rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from .._models import BulkProgress, BulkResult, DeleteResult, ObjectInfo, TransferProgress

__all__ = ["bulk_bar", "echo_object", "progress_bars", "report", "report_deleted", "say", "single_bar"]

# An error or failure is one line however long: never wrapped to the terminal's (or a pipe's) width.
console = Console(stderr=True, soft_wrap=True)


def say(label: str, style: str, message: object = "") -> None:
    """One line on stderr: ``label`` in ``style``, then ``message`` exactly as it is.

    A key, a path or an error holding ``[...]`` or ``:name:`` is printed literally: as a string, rich
    would read it as markup (failing on ``[/x]``, swallowing ``[bold]``) or emoji codes.
    """
    line = Text(label, style=style)
    if message != "":
        # A message of several lines (botocore's validation errors) still gives one line.
        line.append(" " + " ".join(str(message).split("\n")))
    console.print(line)


def report_deleted(bucket: str, result: DeleteResult) -> int:
    """One line per key deleted or not; how many failed."""
    for key in result.deleted:
        click.echo(f"delete: s3://{bucket}/{key}")
    for error in result.errors:
        say("failed:", "red", f"s3://{bucket}/{error.key}: {error.code} {error.message}")
    return len(result.errors)


def progress_bars() -> Progress:
    """Bytes, objects, rate and ETA on the terminal; nothing when stdout is not a TTY."""
    return Progress(
        TextColumn("{task.description}", markup=False),  # a key or file name, shown literally
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[objects]}"),
        TimeRemainingColumn(),
        console=Console(),
        disable=not sys.stdout.isatty(),
        transient=True,
    )


def single_bar(bars: Progress, name: str) -> Callable[[TransferProgress], None]:
    task = bars.add_task(name, total=None, objects="")

    def update(event: TransferProgress) -> None:
        bars.update(task, completed=event.transferred, total=event.total)

    return update


def bulk_bar(bars: Progress, name: str) -> Callable[[BulkProgress], None]:
    task = bars.add_task(name, total=None, objects="")

    def update(event: BulkProgress) -> None:
        bars.update(
            task,
            completed=event.bytes_done,
            total=event.bytes_total,
            objects=f"{event.objects_done}/{event.objects_total} objects",
        )

    return update


def report(result: BulkResult, verb: str) -> int:
    """One line per item done, then a summary of failures; the exit code."""
    for item in result.succeeded:
        click.echo(f"{verb}: {item.source} to {item.destination}")
    for path in result.deleted:
        click.echo(f"delete: {path}")
    for item in result.failed:
        say("failed:", "red", f"{item.source}: {item.error}")
    if result.failed:
        say(f"{len(result.failed)} of {len(result.items)} failed", "red")
        return 1
    return 0


def echo_object(info: ObjectInfo, long_format: bool) -> None:
    if long_format:
        when = info.last_modified.strftime("%Y-%m-%d %H:%M:%S") if info.last_modified else ""
        click.echo(f"{info.size:>10} {when} {info.etag} {info.key}")
    else:
        click.echo(info.key)
