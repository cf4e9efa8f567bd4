"""How a command runs: signals cancel it so the library's cleanup runs, and errors become one line.

SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker stop``, systemd, CI) both cancel the command, so the
library's cleanup runs: multipart uploads in progress are aborted and temporary download files removed.
The exit code is then 128 + the signal: 130 for SIGINT, 143 for SIGTERM. A second signal during that
cleanup is reported and otherwise ignored, since cancelling again would cut the cleanup short; the
cleanup has deadlines of its own, and SIGKILL still ends the process at once, leaving the cleanup
undone. ``events`` and ``local`` run until stopped: for them a signal is the normal way to stop, which
they do gracefully, exiting 0 (a second signal makes ``events`` give up waiting for its long poll).

Errors print one line (``--debug`` shows the traceback) and the exit code is non-zero when anything
failed: 1 for failures, 2 for a command line that cannot be carried out (``local --port`` taken or out of
range). A reader of standard output that goes away (``aiostorage cat ... | head``) ends the command
quietly with 141, as SIGPIPE would.

This module is imported when a command runs, never for ``--help``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import click

from .._exceptions import StorageError
from ._filters import Filters
from ._output import Output, say

if TYPE_CHECKING:
    from .._settings import StoreSettings

__all__ = ["CommandLineError", "Invocation", "run", "stop_on_signal"]

# What a process killed by SIGPIPE exits with, as a shell reports it.
BROKEN_PIPE_EXIT = 128 + 13


@dataclass(frozen=True)
class Invocation:
    """What the global options and filters asked for; passed to every command."""

    overrides: dict[str, Any] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    quiet: bool = False
    progress: bool = True
    debug: bool = False

    def settings(self) -> StoreSettings:
        """``StoreSettings`` from the environment, with the global options given on the command line."""
        from .._settings import StoreSettings

        return StoreSettings(**self.overrides)

    @property
    def output(self) -> Output:
        return Output(quiet=self.quiet, progress=self.progress and not self.quiet)

    @classmethod
    def from_context(cls, context: click.Context) -> Invocation:
        meta = context.meta
        overrides = {
            name: meta[f"aiostorage.{name}"]
            for name in ("profile", "region", "endpoint_url", "concurrency")
            if f"aiostorage.{name}" in meta
        }
        return cls(
            overrides=overrides,
            filters=meta.get("aiostorage.filters", Filters()),
            quiet=bool(meta.get("aiostorage.quiet")),
            progress=not meta.get("aiostorage.no_progress"),
            debug=bool(meta.get("aiostorage.debug")),
        )


class CommandLineError(Exception):
    """The command line cannot be carried out as given: one line and exit code 2, as click's usage errors."""


class _Interruption:
    """What SIGINT and SIGTERM do while a command runs.

    The first one cancels the command (``scope``), unless the command asked to be stopped gracefully
    (``stop``). Later ones are reported and otherwise ignored: a second cancellation of the task would
    cut through the shielded cleanup (the abort of a multipart upload, the removal of a temporary file),
    and that cleanup has deadlines of its own.
    """

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.signum: int | None = None
        self.stop: Callable[[bool], object] | None = None

    @property
    def cancelled(self) -> bool:
        return self.signum is not None and self.stop is None

    def receive(self, signum: int) -> None:
        name = signal.Signals(signum).name
        again = self.signum is not None
        if self.stop is not None:
            self.signum = signum
            say("stopping", "yellow", f"({name} again): at once" if again else f"({name})")
            self.stop(again)
        elif again:
            say(
                "interrupted again",
                "yellow",
                f"({name}): still cleaning up, within its own deadlines; "
                "SIGKILL would stop at once and leave uploads open and temporary files behind",
            )
        else:
            self.signum = signum
            say("interrupted", "yellow", f"({name}): cleaning up before exiting")
            self.scope.cancel()


_interruption: ContextVar[_Interruption] = ContextVar("aiostorage_cli_interruption")


def stop_on_signal(stop: Callable[[bool], object]) -> None:
    """Make SIGINT and SIGTERM call ``stop(again)`` instead of cancelling the command, which then exits 0."""
    _interruption.get().stop = stop


async def _supervised(debug: bool, coroutine: Coroutine[Any, Any, int]) -> int:
    """Run the command, cancelled by SIGINT or SIGTERM (see ``_Interruption``); its exit code."""
    interruption = _Interruption()
    _interruption.set(interruption)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Where the loop cannot (Windows), asyncio's own Ctrl-C handling stays.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, interruption.receive, signum)
    code = 1
    try:
        with interruption.scope:
            code = await coroutine
    except (StorageError, OSError) as exc:
        if not interruption.cancelled:
            raise
        # Failing while stopping (an abort refused, say) is still worth its line; the signal decides the code.
        if debug:
            traceback.print_exc()
        say("error:", "red", exc)
    if interruption.cancelled and interruption.signum is not None:
        return 128 + interruption.signum
    return code


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush of a closed pipe says nothing."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run(context: click.Context, module: str, name: str, arguments: dict[str, Any]) -> None:
    """Run command ``name`` of ``module`` (``_commands`` or ``_events``); one clear line and exit code 1
    for our errors, the traceback only with --debug."""
    invocation = Invocation.from_context(context)
    debug = invocation.debug
    try:
        function = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        code = asyncio.run(_supervised(debug, function(invocation, **arguments)))
    except KeyboardInterrupt:  # Ctrl-C before the command started or after it ended: nothing to clean up
        say("interrupted", "yellow")
        sys.exit(130)
    except CommandLineError as exc:
        say("error:", "red", exc)
        sys.exit(2)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(BROKEN_PIPE_EXIT)
    except (StorageError, OSError) as exc:
        if debug:
            traceback.print_exc()
        say("error:", "red", exc)
        sys.exit(1)
    sys.exit(code)
