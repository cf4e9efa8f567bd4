"""The pipeline demo's worker as an AWS Lambda function fed by the notifications queue.

For every video created under ``uploads/`` it streams the object back, hashes it and writes
``results/<name>.json``, as ``pipeline_demo.py``'s worker does. AWS's SQS event source mapping polls the
queue and calls ``handler`` with a batch; the batch item failures it returns send only the failed
messages back to the queue (and, after ``maxReceiveCount`` receives, to the dead-letter queue).

Deploy: package this file with aiostorage and its dependencies into a zip, then point the
``sqs-lambda-worker`` Terraform module at it with ``handler = "lambda_worker.handler"``. Settings come from
the function's environment (``AWS_S3_BUCKET_NAME``; the region and credentials Lambda sets itself).

The store is opened once per process, in the first invocation, and reused by the warm invocations that
follow: ``sqs_lambda_handler`` keeps one event loop per process, the one the store's connections belong
to. Delivery is at least once, so the handler is idempotent: it writes the same result again.

Invoked locally (against ``aiostorage local``'s settings in the environment) with an event file:

    python examples/lambda_worker.py event.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

from aiostorage import AsyncS3Store, ObjectNotFound, S3EventRecord, StoreSettings, sqs_lambda_handler

logger = logging.getLogger("lambda_worker")
# Lambda's runtime logs WARNING and above by default; this worker's per-object lines are INFO.
logger.setLevel(logging.INFO)

PREFIX = "uploads/"
RESULTS = "results/"
VIDEOS = (".mp4", ".mov", ".avi", ".mkv")

# Opened in the first invocation and kept for the process's life: warm invocations reuse its connections.
_store: AsyncS3Store | None = None


async def open_store() -> AsyncS3Store:
    global _store
    if _store is None:
        store = AsyncS3Store(settings=StoreSettings())
        await store.__aenter__()
        _store = store
    return _store


async def process(record: S3EventRecord) -> None:
    """Hash one new video and write its result; returning acknowledges, raising reports it failed."""
    if not record.is_created or not record.key.startswith(PREFIX) or not record.key.endswith(VIDEOS):
        return
    store = await open_store()
    digest = hashlib.sha256()
    size = 0
    try:
        async with store.stream(record.key, version_id=record.version_id) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
    except ObjectNotFound:
        # Deleted before it was processed: no retry can bring it back, so it is acknowledged.
        logger.info("message %s: %s is gone; skipped", record.message_id, record.key)
        return
    result = {"key": record.key, "size": size, "sha256": digest.hexdigest(), "etag": record.etag}
    name = record.key.removeprefix(PREFIX)
    await store.put_bytes(f"{RESULTS}{name}.json", json.dumps(result).encode(), content_type="application/json")
    logger.info("message %s: %s, %d bytes, sha256 %s", record.message_id, record.key, size, result["sha256"])


# The function's entry point: handler = "lambda_worker.handler".
handler = sqs_lambda_handler(process, concurrency=8)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(handler(json.loads(Path(sys.argv[1]).read_text()), None)))
