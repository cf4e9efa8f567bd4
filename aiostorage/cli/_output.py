"""What the command line prints: one-line messages on stderr, progress bars, and what was done.

Keys, paths and messages are printed literally: never read as markup. rich (the progress bars) is
imported only when a bar is drawn, on a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.progress import Progress

    from .._models import BulkProgress, BulkResult, DeleteResult, ObjectInfo, TransferProgress

__all__ = ["Output", "human_size", "say"]

_COLOURS = {"red": "red", "yellow": "yellow", "green": "green"}
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def say(label: str, style: str, message: object = "") -> None:
    """One line on stderr: ``label`` in ``style`` (colour on a terminal only), then ``message`` as it is.

    A message of several lines (botocore's validation errors) still gives one line, never wrapped to
    the terminal's width: a script reading stderr, or a narrow terminal, gets it whole.
    """
    line = click.style(label, fg=_COLOURS.get(style))
    if message != "":
        line += " " + " ".join(str(message).split("\n"))
    click.echo(line, err=True)


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``12.0 MiB``: powers of 1024, one decimal."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def size_text(size: int, exact: bool) -> str:
    return str(size) if exact else human_size(size)


def _failure_line(source: str, error: BaseException | None) -> str:
    """``source: error``, naming the source once when the error already names it."""
    message = str(error)
    return message if source in message else f"{source}: {message}"


class Output:
    """Where a command's lines and bars go: ``quiet`` keeps only errors, ``progress`` draws bars on a terminal."""

    def __init__(self, *, quiet: bool, progress: bool) -> None:
        self.quiet = quiet
        self.progress = progress and sys.stdout.isatty()

    def line(self, text: str) -> None:
        """A line saying what was done, on stdout; nothing with --quiet."""
        if not self.quiet:
            click.echo(text)

    @contextmanager
    def bars(self) -> Iterator[Progress | None]:
        """Progress bars on the terminal while the block runs (``None`` when there are none to draw).

        They are gone (bulk) or finished on their own line (single file) before the block's caller
        prints its result lines.
        """
        if not self.progress:
            yield None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        bars = Progress(
            TextColumn("{task.description}", markup=False),  # a key or file name, shown literally
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[objects]}"),
            TimeRemainingColumn(),
            console=Console(),
        )
        with bars:
            yield bars

    def single(self, bars: Progress | None, name: str, total: int | None) -> Callable[[TransferProgress], None] | None:
        """The bar of one file, showing its size when known; it stays, finished, on its own line."""
        if bars is None:
            return None
        task = bars.add_task(name, total=total, objects="")

        def update(event: TransferProgress) -> None:
            bars.update(task, completed=event.transferred, total=event.total if event.total is not None else total)

        return update

    def bulk(self, bars: Progress | None, name: str) -> Callable[[BulkProgress], None] | None:
        """The bar of many objects, removed when they are done (their lines say what happened)."""
        if bars is None:
            return None
        task = bars.add_task(name, total=None, objects="")

        def update(event: BulkProgress) -> None:
            bars.update(
                task,
                completed=event.bytes_done,
                total=event.bytes_total,
                objects=f"{event.objects_done}/{event.objects_total} objects",
            )
            if event.objects_total and event.objects_done == event.objects_total:
                bars.update(task, visible=False)

        return update

    def report(self, result: BulkResult, verb: str, *, dry_run: bool = False) -> int:
        """One line per item done, then a summary of failures; the exit code."""
        prefix = "(dry run) " if dry_run else ""
        for item in result.succeeded:
            self.line(f"{prefix}{verb}: {item.source} to {item.destination}")
        for path in result.deleted:
            self.line(f"{prefix}delete: {path}")
        for item in result.failed:
            say("failed:", "red", _failure_line(item.source, item.error))
        if result.failed:
            say(f"{len(result.failed)} of {len(result.items)} failed", "red")
            return 1
        return 0

    def deleted(self, bucket: str, result: DeleteResult) -> int:
        """One line per key deleted or not; how many failed."""
        for key in result.deleted:
            self.line(f"delete: s3://{bucket}/{key}")
        for error in result.errors:
            say("failed:", "red", f"s3://{bucket}/{error.key}: {error.code} {error.message}")
        return len(result.errors)

    def object(self, info: ObjectInfo, *, long_format: bool, exact: bool) -> None:
        if long_format:
            when = info.last_modified.strftime("%Y-%m-%d %H:%M:%S") if info.last_modified else ""
            click.echo(f"{size_text(info.size, exact):>10} {when} {info.etag} {info.key}")
        else:
            click.echo(info.key)

    def print(self, *args: Any) -> None:
        click.echo(" ".join(str(arg) for arg in args))
