"""A web app for direct browser uploads: the page sends files straight to S3, never through this server.

It serves one static page (``index.html``) and four JSON endpoints that call aiostorage:

    POST /api/uploads           start: checks, chooses the key, presigns (a POST form, or one PUT per part)
    POST /api/uploads/parts     parts status: which parts S3 holds (to resume after a reload)
    POST /api/uploads/complete  complete the multipart upload (every part checked first)
    POST /api/uploads/abort     abort it (Cancel)

What the server checks, since the browser is not to be trusted: the file's suffix is a video suffix and a
claimed content type is a video one (the stored content type comes from the suffix, not the claim); the
declared size is within ``max_size``; the key is chosen here, ``uploads/<random>.<suffix>``, never from the
client's file name (which is kept, quoted, as metadata only). Every later call carries a token (an HMAC of
key, upload id and size made at start), so a client can only complete or abort an upload this server
started for it, and only with the size it declared.

With settings from the environment (``AWS_S3_BUCKET_NAME``, ``AWS_ENDPOINT_URL``, credentials...):

    python examples/web_upload/app.py [--port 8080] [--max-size-mib 5120]

The bucket's CORS rule must allow the page's origin (Terraform: ``cors_allowed_origins``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from aiostorage import AsyncS3Store, InvalidArgument, StorageError, StoreSettings
from aiostorage.local import WIRING

PAGE = Path(__file__).with_name("index.html")
MiB = 1024 * 1024
# Files up to this size go in one presigned POST; larger ones as a multipart upload, part by part.
POST_MAX = 8 * MiB
# The smallest S3 allows: the finest progress and the least to send again after an interruption; the
# library grows it for files that would need more than 10,000 parts.
PART_SIZE = 5 * MiB
# The notification's suffixes: what the worker processes.
VIDEO_SUFFIXES = WIRING.suffixes
CONTENT_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska"}
URL_LIFETIME = 3600

STORE: web.AppKey[AsyncS3Store] = web.AppKey("store", AsyncS3Store)
SECRET: web.AppKey[bytes] = web.AppKey("secret", bytes)
MAX_SIZE: web.AppKey[int] = web.AppKey("max_size", int)
PREFIX = WIRING.prefix

logger = logging.getLogger("web_upload")


def failure(kind: type[web.HTTPException], reason: str) -> web.HTTPException:
    """An HTTP error whose JSON body gives the page the reason to show."""
    return kind(text=json.dumps({"error": reason}), content_type="application/json")


def refused(reason: str) -> web.HTTPException:
    return failure(web.HTTPBadRequest, reason)


def choose_key(name: str, content_type: str, size: object, max_size: int) -> tuple[str, str, int]:
    """The key and the stored content type for a file the browser describes; refused (400) if not allowed."""
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise refused(f"only video files can be uploaded ({', '.join(VIDEO_SUFFIXES)})")
    if content_type and not content_type.startswith("video/"):
        raise refused(f"{content_type!r} is not a video content type")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise refused("the file is empty")
    if size > max_size:
        raise refused(f"the file is larger than the {max_size // MiB} MiB allowed")
    # Random and server-made: the client's name never becomes a path (no "../", no overwriting others).
    return f"{PREFIX}{uuid.uuid4().hex}{suffix}", CONTENT_TYPES[suffix], size


def sign(secret: bytes, key: str, upload_id: str, size: int) -> str:
    return hmac.new(secret, f"{key}\n{upload_id}\n{size}".encode(), hashlib.sha256).hexdigest()


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise refused("the body must be JSON") from exc
    if not isinstance(body, dict):
        raise refused("the body must be a JSON object")
    return body


async def _upload_of(request: web.Request) -> tuple[str, str, int]:
    """The key, upload id and size a later call names, once its token proves this server started it."""
    body = await _body(request)
    key, upload_id, size, token = body.get("key"), body.get("upload_id"), body.get("size"), body.get("token")
    if not (isinstance(key, str) and isinstance(upload_id, str) and isinstance(size, int) and isinstance(token, str)):
        raise refused("key, upload_id, size and token are required")
    if not key.startswith(PREFIX) or not hmac.compare_digest(sign(request.app[SECRET], key, upload_id, size), token):
        raise failure(web.HTTPForbidden, "not an upload this server started")
    return key, upload_id, size


async def start(request: web.Request) -> web.Response:
    body = await _body(request)
    name, content_type, size = body.get("name"), body.get("type") or "", body.get("size")
    if not isinstance(name, str) or not isinstance(content_type, str):
        raise refused("name and type must be strings")
    key, stored_type, size = choose_key(name, content_type, size, request.app[MAX_SIZE])
    store = request.app[STORE]
    metadata = {"original-name": quote(name[:256])}
    if size <= POST_MAX:
        post = await store.presign_post(key, expires_in=URL_LIFETIME, max_size=size, content_type=stored_type)
        # The metadata field would have to be in the POST policy too; small files go without it.
        return web.json_response({"mode": "post", "key": key, "url": post.url, "fields": post.fields})
    upload = await store.presign_multipart_upload(
        key, size, part_size=PART_SIZE, content_type=stored_type, metadata=metadata, expires_in=URL_LIFETIME
    )
    logger.info("started %s (%d bytes, %d parts) for %r", key, size, len(upload.parts), name)
    return web.json_response(
        {
            "mode": "multipart",
            "key": key,
            "upload_id": upload.upload_id,
            "size": size,
            "part_size": upload.part_size,
            "parts": [{"part_number": p.part_number, "url": p.url, "size": p.size} for p in upload.parts],
            "token": sign(request.app[SECRET], key, upload.upload_id, size),
            "expires_in": upload.expires_in,
        }
    )


async def parts(request: web.Request) -> web.Response:
    key, upload_id, _ = await _upload_of(request)
    try:
        held = await request.app[STORE].list_parts(key, upload_id)
    except StorageError as exc:  # aborted, completed, or expired by the lifecycle rule
        raise failure(web.HTTPGone, str(exc)) from exc
    return web.json_response({"parts": [{"part_number": p.part_number, "size": p.size} for p in held]})


async def complete(request: web.Request) -> web.Response:
    key, upload_id, size = await _upload_of(request)
    try:
        result = await request.app[STORE].complete_multipart_upload(key, upload_id, size=size)
    except InvalidArgument as exc:  # a part missing or short: the page can send it again
        raise failure(web.HTTPConflict, str(exc)) from exc
    logger.info("completed %s (%d bytes)", key, result.size)
    return web.json_response({"key": key, "size": result.size, "etag": result.etag})


async def abort(request: web.Request) -> web.Response:
    key, upload_id, _ = await _upload_of(request)
    await request.app[STORE].abort_multipart_upload(key, upload_id)
    logger.info("aborted %s", key)
    return web.json_response({"key": key, "aborted": True})


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


def create_app(store: AsyncS3Store, *, max_size: int = 5 * 1024 * MiB, secret: bytes | None = None) -> web.Application:
    """The page and its four endpoints, on an open ``store``."""
    app = web.Application(client_max_size=64 * 1024)  # JSON only: the files go to S3
    app[STORE] = store
    app[SECRET] = secret or secrets.token_bytes(32)
    app[MAX_SIZE] = max_size
    app.router.add_get("/", page)
    app.router.add_post("/api/uploads", start)
    app.router.add_post("/api/uploads/parts", parts)
    app.router.add_post("/api/uploads/complete", complete)
    app.router.add_post("/api/uploads/abort", abort)
    return app


async def serve(store: AsyncS3Store, host: str, port: int, *, max_size: int) -> web.AppRunner:
    """Start the app on ``host:port``; the caller cleans the returned runner up."""
    runner = web.AppRunner(create_app(store, max_size=max_size), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _main(port: int, max_size: int) -> None:
    import anyio

    async with AsyncS3Store(settings=StoreSettings()) as store:
        runner = await serve(store, "127.0.0.1", port, max_size=max_size)
        print(f"open http://127.0.0.1:{port}/", flush=True)
        try:
            await anyio.sleep_forever()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-size-mib", type=int, default=5 * 1024, help="largest file accepted")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(args.port, args.max_size_mib * MiB))
