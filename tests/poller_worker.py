"""A worker process for the scale-out test: `run`s a poller and writes each handled key to a file.

Usage: python -m tests.poller_worker ENDPOINT QUEUE_URL OUT_FILE READY_FILE. Stops gracefully on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio

from aiostorage import S3EventPoller, S3EventRecord, StoreSettings


async def main(endpoint: str, queue_url: str, out_path: Path, ready_path: Path) -> None:
    settings = StoreSettings(
        endpoint_url=endpoint, region="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with out_path.open("a", buffering=1) as out:

        async def handle(record: S3EventRecord) -> None:
            out.write(f"{record.key}\n")

        async with S3EventPoller(queue_url, settings=settings, wait_time=1) as poller:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        await poller.stop()
                        return

            async with anyio.create_task_group() as group:
                group.start_soon(stop_on_signal)
                await anyio.Path(ready_path).write_text("ready")
                await poller.run(handle, concurrency=8)
                group.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
