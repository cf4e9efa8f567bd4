"""Direct browser uploads on an embedded local S3+SQS (what `make web-demo` runs).

Starts the local server with the bucket's CORS rule allowing the page's origin (the rule the Terraform
module sets), the web app, and the event worker (``examples/event_worker.py``) in a process of its own.
Open the printed URL, pick a video: it goes from the browser straight to the local S3, its notification
reaches the queue as a typed event, and the worker writes ``results/<key>.json``. Ctrl-C stops it all.

    python examples/web_upload/demo.py [--port 8080]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import anyio

from aiostorage import AsyncS3Store
from aiostorage.local import LocalServer

sys.path.insert(0, str(Path(__file__).parent))
from app import serve

WORKER = Path(__file__).resolve().parents[1] / "event_worker.py"
MiB = 1024 * 1024


async def run(port: int, max_size: int) -> None:
    page = f"http://127.0.0.1:{port}"
    async with LocalServer() as server:
        settings = await server.provision(bucket="media", queue="media-events", cors_origins=[page])
        assert settings.aws_secret_access_key is not None
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIOSTORAGE_"))},
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_REGION": settings.region,
            "AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
            "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
            "AWS_S3_BUCKET_NAME": str(settings.bucket),
            "AWS_SQS_QUEUE_URL": str(settings.queue_url),
        }
        # Its own process, as in production; its log lines (one per result) share this terminal.
        worker = await anyio.open_process(
            [sys.executable, str(WORKER), "--wait-time", "2"], env=env, stdout=None, stderr=None
        )
        try:
            async with AsyncS3Store(settings=settings) as store:
                runner = await serve(store, "127.0.0.1", port, max_size=max_size)
                try:
                    print(f"local S3 and SQS: {server.endpoint_url} (bucket media, CORS for {page})", flush=True)
                    print(f"open {page}/ and upload a video; results appear under results/ (Ctrl-C stops)", flush=True)
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        async for _ in signals:
                            break
                finally:
                    await runner.cleanup()
        finally:
            worker.send_signal(signal.SIGTERM)
            with anyio.CancelScope(shield=True):
                await worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="port of the web page on 127.0.0.1")
    parser.add_argument("--max-size-mib", type=int, default=5 * 1024, help="largest file accepted")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiobotocore").setLevel(logging.WARNING)
    asyncio.run(run(args.port, args.max_size_mib * MiB))


if __name__ == "__main__":
    main()
