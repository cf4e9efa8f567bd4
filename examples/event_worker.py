"""A worker service: for every object created under ``uploads/``, compute its SHA-256 and size and write
the result as JSON under ``results/``.

Settings come from the environment (``AWS_S3_BUCKET_NAME``, ``AWS_SQS_QUEUE_URL``, ``AWS_ENDPOINT_URL``
for a local server, the usual credentials). SIGINT or SIGTERM stops it gracefully: no new work is taken,
work in flight finishes (within the poller's grace period), acknowledged messages are deleted and
prefetched ones go back to the queue at once.

    python examples/event_worker.py [--concurrency 8] [--wait-time 20]

Several copies (processes or machines) can consume the same queue: SQS hands each message to one of
them. Delivery is at least once, so the handler is idempotent: it writes the same result again. An
object deleted before its event is processed is skipped with one log line (its message acknowledged):
retrying cannot bring it back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
from datetime import UTC, datetime

import anyio

from aiostorage import AsyncS3Store, ObjectNotFound, S3EventPoller, S3EventRecord, StoreSettings

logger = logging.getLogger("event_worker")

PREFIX = "uploads/"
RESULTS = "results/"


def result_key(key: str) -> str:
    return f"{RESULTS}{key.removeprefix(PREFIX)}.json"


async def main(concurrency: int, wait_time: int) -> None:
    settings = StoreSettings()
    async with (
        AsyncS3Store(settings=settings) as store,
        S3EventPoller(settings=settings, wait_time=wait_time) as poller,
    ):

        async def process(record: S3EventRecord) -> None:
            if not record.is_created or not record.key.startswith(PREFIX):
                return  # returning acknowledges: nothing to do for this one
            if record.bucket != store.bucket:
                logger.warning("event for another bucket (%s); skipped", record.bucket)
                return
            # Streamed in parallel ranges, pinned to one version: memory stays bounded whatever the size.
            digest = hashlib.sha256()
            size = 0
            try:
                async with store.stream(record.key, version_id=record.version_id) as chunks:
                    async for chunk in chunks:
                        digest.update(chunk)
                        size += len(chunk)
            except ObjectNotFound:
                # Deleted before we got to it: no retry can bring it back, so returning acknowledges it.
                logger.info("%s is gone (deleted before it was processed); skipped", record.key)
                return
            result = {
                "bucket": record.bucket,
                "key": record.key,
                "size": size,
                "sha256": digest.hexdigest(),
                "etag": record.etag,
                "event": record.event_name,
                "event_time": record.event_time.isoformat(),
                "processed_at": datetime.now(UTC).isoformat(),
            }
            await store.put_bytes(result_key(record.key), json.dumps(result).encode(), content_type="application/json")
            logger.info("%s: %d bytes, sha256 %s", record.key, result["size"], result["sha256"])

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    logger.info("%s received: stopping", signal.Signals(signum).name)
                    await poller.stop()
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(stop_on_signal)
            logger.info("consuming %s for s3://%s/%s*", poller.queue_url, store.bucket, PREFIX)
            await poller.run(process, concurrency=concurrency)
            group.cancel_scope.cancel()
    logger.info("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8, help="objects processed at once")
    parser.add_argument(
        "--wait-time",
        type=int,
        default=20,
        help="long-poll seconds (0-20); stopping lets a poll in flight end, so it can take this long",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    anyio.run(main, args.concurrency, args.wait_time)
