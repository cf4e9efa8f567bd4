"""The ``aiostorage`` command line: ls, cp, cat, sync, rm, du, presign, events, local.

S3 locations are written ``s3://bucket/key`` as with the AWS CLI. Settings come from the environment
(``StoreSettings``), like the library; the global options override them.

This module declares the commands and imports nothing but click, so ``--help`` and ``--version`` start at
once; each command's work is in ``_commands.py`` (the store, transfers) or ``_events.py``, imported when
the command runs. How a command runs (signals, cleanup, exit codes) is in ``_running.py``; what it prints
in ``_output.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

try:
    import click
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise SystemExit("the aiostorage command line needs its extra: pip install 'aiostorage[cli]'") from exc

from .. import __version__
from ._filters import FILTER_OPTIONS, Filters, filter_rules
from ._urls import S3Url, parse_s3_url

__all__ = ["Filters", "S3Url", "main", "parse_s3_url"]

F = TypeVar("F", bound=Callable[..., Any])


def _remember(context: click.Context, parameter: click.Parameter, value: Any) -> None:
    """Keep a global option's value where every command's context finds it: the last one given wins."""
    if value is None or value is False:
        return
    context.meta[f"aiostorage.{parameter.name}"] = value


def _global_options(function: F) -> F:
    """The options every command takes, before or after its name (``aiostorage --quiet ls`` or ``ls --quiet``)."""
    options = [
        click.option("--profile", help="AWS profile (overrides AWS_PROFILE)."),
        click.option("--region", help="AWS region (overrides AWS_REGION)."),
        click.option("--endpoint-url", help="S3 (and SQS) endpoint, e.g. a local server (overrides AWS_ENDPOINT_URL)."),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 1024),
            help="Requests in flight (overrides AIOSTORAGE_CONCURRENCY).",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors (and the data of cat and cp ... -)."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for option in reversed(options):
        function = option(function)
    for parameter in function.__click_params__:  # type: ignore[attr-defined]
        if parameter.name in {"profile", "region", "endpoint_url", "concurrency", "no_progress", "quiet", "debug"}:
            parameter.expose_value = False
            parameter.callback = _remember
    return function


def _filter_options(function: F) -> F:
    function = click.option(
        "--include",
        multiple=True,
        metavar="GLOB",
        help="Take back what an earlier --exclude left out (repeatable; see --exclude).",
    )(function)
    return click.option(
        "--exclude",
        multiple=True,
        metavar="GLOB",
        help="Leave out paths (relative to the source) matching GLOB; filters apply in order, the last match wins.",
    )(function)


def _write_options(function: F) -> F:
    """What the objects written get: the flags of ``WriteOptions``' fields, content type and metadata."""
    options = [
        click.option("--content-type", help="Content-Type of a single upload (default: guessed from the key)."),
        click.option("--metadata", multiple=True, metavar="NAME=VALUE", help="User metadata (repeatable)."),
        click.option("--cache-control", help='Cache-Control of later GETs, e.g. "max-age=3600".'),
        click.option("--content-disposition", help="Content-Disposition of later GETs, e.g. attachment."),
        click.option(
            "--storage-class", help="e.g. STANDARD_IA, INTELLIGENT_TIERING (overrides AIOSTORAGE_STORAGE_CLASS)."
        ),
        click.option(
            "--sse",
            type=click.Choice(["AES256", "aws:kms", "aws:kms:dsse"]),
            help="Server-side encryption (overrides AIOSTORAGE_SSE).",
        ),
        click.option("--sse-kms-key-id", help="KMS key of aws:kms encryption (overrides AIOSTORAGE_SSE_KMS_KEY_ID)."),
        click.option("--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Object tag (repeatable)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


class _Command(click.Command):
    """A command that keeps the order of its ``--exclude`` and ``--include`` options, which click does not."""

    def parse_args(self, context: click.Context, args: list[str]) -> list[str]:
        options = {name for parameter in self.params for name in getattr(parameter, "opts", ())}
        if options.issuperset(FILTER_OPTIONS):
            context.meta["aiostorage.filters"] = filter_rules(args)
        return super().parse_args(context, args)


class _Group(click.Group):
    command_class = _Command


def _runs(module: str, name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Make a click callback that runs ``name`` of ``module`` (imported only then) with the invocation."""

    def decorate(declaration: Callable[..., None]) -> Callable[..., None]:
        @wraps(declaration)
        @click.pass_context
        def callback(context: click.Context, /, **kwargs: Any) -> None:
            from ._running import run

            kwargs.pop("exclude", None)
            kwargs.pop("include", None)
            run(context, module, name, kwargs)

        return callback

    return decorate


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="aiostorage", message="%(prog)s %(version)s")
@_global_options
def main() -> None:
    """aiostorage: fast, honest S3 transfers and S3 events from the command line.

    Global options go before or after the command name. Ctrl-C or SIGTERM stops a command after its
    cleanup (uploads aborted, temporary files removed), with exit code 130 or 143; events and local stop
    gracefully and exit 0. Exit codes: 0 done, 1 something failed, 2 a command line that cannot be
    carried out.
    """


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("-r", "--recursive", is_flag=True, help="Copy a folder or every object under a prefix.")
@click.option("--dry-run", is_flag=True, help="With -r: print what would be copied; write nothing.")
@click.option("--no-follow-symlinks", is_flag=True, help="With -r: skip symbolic links instead of following them.")
@_filter_options
@_write_options
@_global_options
@_runs("_commands", "cp")
def cp(**_: Any) -> None:
    """Copy local -> s3://, s3:// -> local, or s3:// -> s3:// (server-side).

    SRC "-" uploads standard input (streamed, any size); DST "-" writes the object to standard output.
    """


@main.command()
@click.argument("url")
@_global_options
@_runs("_commands", "cat")
def cat(**_: Any) -> None:
    """Write an object to standard output (cp s3://bucket/key -)."""


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("--delete", is_flag=True, help="Delete what the source side does not have (filters apply).")
@click.option("--dry-run", is_flag=True, help="Print what would be transferred and deleted; write nothing.")
@click.option("--no-follow-symlinks", is_flag=True, help="Skip symbolic links instead of following them.")
@_filter_options
@_write_options
@_global_options
@_runs("_commands", "sync")
def sync(**_: Any) -> None:
    """Make DST like SRC, transferring only what differs (local folder <-> s3://bucket/prefix)."""


@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Delete every object under each prefix.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@_filter_options
@_global_options
@_runs("_commands", "rm")
def rm(**_: Any) -> None:
    """Delete objects: rm s3://bucket/key [s3://bucket/other ...], or rm -r s3://bucket/prefix."""


@main.command(name="ls")
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True, help="Every object under the prefix, not one level.")
@click.option("-l", "--long", "long_format", is_flag=True, help="Size, date and ETag too.")
@click.option("--bytes", "exact", is_flag=True, help="Sizes in bytes rather than KiB, MiB...")
@click.option("--summarize", is_flag=True, help="End with the number of objects and their total size.")
@_global_options
@_runs("_commands", "ls")
def ls(**_: Any) -> None:
    """List objects (and, without -r, the folders one level down) under s3://bucket/prefix."""


@main.command()
@click.argument("url")
@click.option("--by-prefix", is_flag=True, help="One line per folder one level down, then the total.")
@click.option("--bytes", "exact", is_flag=True, help="Sizes in bytes rather than KiB, MiB...")
@_global_options
@_runs("_commands", "du")
def du(**_: Any) -> None:
    """Total size and number of objects under s3://bucket/prefix (listed concurrently)."""


@main.command()
@click.argument("url")
@click.option("--put", is_flag=True, help="A URL to upload to (PUT) instead of download from.")
@click.option("--expires", default=3600, show_default=True, help="Seconds the URL stays valid (at most 7 days).")
@click.option("--content-type", default=None, help="With --put: the Content-Type the upload must send.")
@click.option("--filename", default=None, help="Without --put: the name a browser saves the download as.")
@_global_options
@_runs("_commands", "presign")
def presign(**_: Any) -> None:
    """Print a presigned GET (or PUT) URL for s3://bucket/key."""


@main.command()
@click.option("--queue-url", default=None, help="The queue to follow (default: AWS_SQS_QUEUE_URL).")
@click.option("--ack/--no-ack", default=True, show_default=True, help="Delete each message once printed.")
@click.option("--limit", type=int, default=None, help="Stop after this many records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line (for jq) instead of a readable line.")
@click.option(
    "--wait-time",
    type=click.IntRange(0, 20),
    default=20,
    show_default=True,
    help="Seconds each long poll waits for messages; stopping waits for the poll in flight.",
)
@_global_options
@_runs("_events", "events")
def events(**_: Any) -> None:
    """Follow the queue and print each S3 event record, until Ctrl-C or SIGTERM (exit 0).

    Stopping (a signal, or --limit reached) lets the long poll in flight finish, up to --wait-time
    seconds, and returns what it took to the queue at once; a second signal stops without waiting.
    """


@main.command()
@click.option("--bucket", default="media", show_default=True)
@click.option("--queue", default="media-events", show_default=True)
@click.option("--prefix", default="uploads/", show_default=True)
@click.option("--suffix", "suffixes", multiple=True, default=(".mp4", ".mov", ".avi", ".mkv"), show_default=True)
@click.option("--port", type=int, default=None, help="Port to listen on (default: a free one).")
@_global_options
@_runs("_events", "local")
def local(**_: Any) -> None:
    """Run an embedded S3+SQS server, provisioned like the Terraform modules, until Ctrl-C or SIGTERM.

    It accepts any credentials and checks no signatures: what works against it may still be signed wrongly.
    """
