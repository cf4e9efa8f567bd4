"""The progress bar and the summary that bulk_upload.py and bulk_download.py share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from aiostorage import BulkProgress, BulkResult


@contextmanager
def progress_bar(console: Console, verb: str, unit: str) -> Iterator[Callable[[BulkProgress], None]]:
    """A bar of bytes, items, rate and ETA (on a terminal only); yields the ``progress`` callback."""
    with Progress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[items]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bars:
        task = bars.add_task(verb, total=None, items="")

        def show(event: BulkProgress) -> None:
            items = f"{event.objects_done}/{event.objects_total} {unit}"
            bars.update(task, completed=event.bytes_done, total=event.bytes_total, items=items)

        yield show


def report(console: Console, result: BulkResult, done: str, where: str) -> None:
    """``done (N bytes) where``, then one line per failed item."""
    size = sum(item.result.size for item in result.succeeded if item.result is not None)
    console.print(f"{done} ({size:,} bytes) {where}")
    for item in result.failed:
        console.print(f"[red]failed[/red] {item.source}: {item.error}")
