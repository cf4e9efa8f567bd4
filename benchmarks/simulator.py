"""A latency-bound S3 simulator: the benchmark instrument for what concurrency buys.

Real S3 answers each request after tens of milliseconds and serves very many at once; moto and s3rver
are the opposite (no latency, CPU-bound on the shared cores). This server keeps objects in memory (a
sorted key list searched with ``bisect``), waits a fixed delay before every answer (50 ms by default)
and overlaps any number of requests. It answers ListObjectsV2 with S3's paging (max-keys up to 1,000,
prefix, delimiter, continuation-token, start-after, encoding-type, KeyCount, IsTruncated,
CommonPrefixes; checked against moto by ``tests/test_simulator.py``), CreateBucket, HeadBucket,
PutObject, GetObject, HeadObject and DeleteObject, path-style only. It checks no signature.

It is a benchmark instrument, never a test double for correctness.

    python -m benchmarks.simulator --port 9000 --delay 0.05 --bucket bench --tree 100 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

from aiohttp import web

MAX_KEYS = 1000
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass(frozen=True, slots=True)
class _Object:
    body: bytes
    etag: str
    modified: datetime


@dataclass
class _Bucket:
    keys: list[str] = field(default_factory=list)
    objects: dict[str, _Object] = field(default_factory=dict)
    # Each key's <Contents> element, (url-encoded, plain): rendering pages must cost the server
    # next to nothing, or its CPU rather than its delay would set the pace.
    rendered: dict[tuple[str, bool], str] = field(default_factory=dict)

    def put(self, key: str, obj: _Object) -> None:
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = obj
        self.forget(key)

    def put_sorted(self, keys: list[str], obj: _Object) -> None:
        """Many keys at once (seeding): one sort instead of an insort each."""
        self.objects.update(dict.fromkeys(keys, obj))
        self.keys = sorted(self.objects)
        self.rendered.clear()

    def forget(self, key: str) -> None:
        self.rendered.pop((key, True), None)
        self.rendered.pop((key, False), None)

    def contents(self, key: str, url: bool) -> str:
        element = self.rendered.get((key, url))
        if element is None:
            obj = self.objects[key]
            name = escape(quote_plus(key, safe="/") if url else key)
            modified = obj.modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            element = self.rendered[(key, url)] = (
                f"<Contents><Key>{name}</Key><LastModified>{modified}</LastModified>"
                f"<ETag>&quot;{obj.etag}&quot;</ETag><Size>{len(obj.body)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        return element


def _make_object(body: bytes) -> _Object:
    return _Object(body=body, etag=hashlib.md5(body).hexdigest(), modified=datetime.now(UTC).replace(microsecond=0))


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (non-empty)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _token(name: str, rolled_up: bool) -> str:
    return base64.urlsafe_b64encode(f"{int(rolled_up)}{name}".encode()).decode()


def _untoken(token: str) -> tuple[str, bool]:
    raw = base64.urlsafe_b64decode(token.encode()).decode()
    return raw[1:], raw[0] == "1"


def list_page(
    keys: list[str],
    *,
    prefix: str = "",
    delimiter: str = "",
    max_keys: int = MAX_KEYS,
    start_after: str = "",
    token: str | None = None,
) -> tuple[list[str], list[str], str | None]:
    """(keys, common prefixes, next token or None) of one ListObjectsV2 page, as S3 computes it."""
    position = bisect.bisect_left(keys, prefix)
    if token is not None:
        last, rolled_up = _untoken(token)
        position = max(
            position, bisect.bisect_left(keys, _prefix_end(last)) if rolled_up else bisect.bisect_right(keys, last)
        )
    elif start_after:
        position = max(position, bisect.bisect_right(keys, start_after))
    found: list[str] = []
    prefixes: list[str] = []
    last_name, last_rolled = "", False
    count = 0
    while position < len(keys) and count < max_keys:
        key = keys[position]
        if not key.startswith(prefix):
            break
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[: cut + len(delimiter)]
            prefixes.append(common)
            last_name, last_rolled = common, True
            position = bisect.bisect_left(keys, _prefix_end(common))
        else:
            found.append(key)
            last_name, last_rolled = key, False
            position += 1
        count += 1
    more = position < len(keys) and keys[position].startswith(prefix) and count > 0
    return found, prefixes, _token(last_name, last_rolled) if more else None


def _error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def _decode_chunked(body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (chunk headers and trailers dropped)."""
    out = bytearray()
    position = 0
    while True:
        line_end = body.index(b"\r\n", position)
        size = int(body[position:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[line_end + 2 : line_end + 2 + size]
        position = line_end + 2 + size + 2


class Simulator:
    """The server's state and handlers; ``delay`` seconds pass before every answer.

    With ``serial``, one request is served at a time (the others queue), as by a server bound by its
    own CPU. ``max_in_flight`` is the most requests it has held at once, served or queued.
    """

    def __init__(self, delay: float = 0.05, *, serial: bool = False) -> None:
        self.delay = delay
        self.serial = serial
        self.buckets: dict[str, _Bucket] = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._turn: asyncio.Lock | None = None

    def seed(self, bucket: str, keys: list[str], size: int = 0) -> None:
        """Create ``bucket`` (if needed) holding ``keys``, each with ``size`` zero bytes."""
        self.buckets.setdefault(bucket, _Bucket()).put_sorted(keys, _make_object(bytes(size)))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=6 * 1024**3)
        app.router.add_route("*", "/{bucket}", self._bucket)
        app.router.add_route("*", "/{bucket}/", self._bucket)
        app.router.add_route("*", "/{bucket}/{key:.+}", self._object)
        return app

    async def _wait(self) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.serial:
                self._turn = self._turn or asyncio.Lock()
                async with self._turn:
                    await asyncio.sleep(self.delay)
            elif self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1

    async def _bucket(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        await self._wait()
        name = request.match_info["bucket"]
        if request.method == "PUT":
            self.buckets.setdefault(name, _Bucket())
            return web.Response(headers={"Location": f"/{name}"})
        bucket = self.buckets.get(name)
        if bucket is None:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist")
        if request.method == "HEAD":
            return web.Response()
        if request.method == "GET" and request.query.get("list-type") == "2":
            return self._list(name, bucket, request)
        return _error(501, "NotImplemented", f"{request.method} {request.path_qs} is not simulated")

    def _list(self, name: str, bucket: _Bucket, request: web.Request) -> web.Response:
        query = request.query
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        start_after = query.get("start-after", "")
        token = query.get("continuation-token")
        try:
            max_keys = min(int(query.get("max-keys", MAX_KEYS)), MAX_KEYS)
        except ValueError:
            return _error(400, "InvalidArgument", "max-keys must be an integer")
        url = query.get("encoding-type") == "url"

        def enc(text: str) -> str:
            return escape(quote_plus(text, safe="/") if url else text)

        keys, prefixes, next_token = list_page(
            bucket.keys, prefix=prefix, delimiter=delimiter, max_keys=max_keys, start_after=start_after, token=token
        )
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{_NS}">']
        parts.append(f"<Name>{escape(name)}</Name><Prefix>{enc(prefix)}</Prefix>")
        if token is not None:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if next_token is not None:
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        parts.append(f"<KeyCount>{len(keys) + len(prefixes)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if url:
            parts.append("<EncodingType>url</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>")
        if start_after:
            parts.append(f"<StartAfter>{enc(start_after)}</StartAfter>")
        parts.extend(bucket.contents(key, url) for key in keys)
        parts.extend(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>" for common in prefixes)
        parts.append("</ListBucketResult>")
        return web.Response(body="".join(parts).encode(), content_type="application/xml")

    async def _object(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        await self._wait()
        bucket = self.buckets.get(request.match_info["bucket"])
        if bucket is None:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist")
        key = request.match_info["key"]
        if request.method == "PUT":
            if "aws-chunked" in request.headers.get("Content-Encoding", "") or request.headers.get(
                "x-amz-content-sha256", ""
            ).startswith("STREAMING-"):
                body = _decode_chunked(body)
            obj = _make_object(body)
            bucket.put(key, obj)
            echoed = {
                name: value for name, value in request.headers.items() if name.lower().startswith("x-amz-checksum-")
            }
            return web.Response(headers={"ETag": f'"{obj.etag}"', **echoed})
        if request.method == "DELETE":
            if key in bucket.objects:
                del bucket.objects[key]
                bucket.keys.remove(key)
                bucket.forget(key)
            return web.Response(status=204)
        found = bucket.objects.get(key)
        if found is None:
            if request.method == "HEAD":
                return web.Response(status=404)
            return _error(404, "NoSuchKey", "The specified key does not exist.")
        headers = {
            "ETag": f'"{found.etag}"',
            "Last-Modified": format_datetime(found.modified, usegmt=True),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(found.body))
            return web.Response(headers=headers)
        return web.Response(body=found.body, headers=headers)


async def serve(simulator: Simulator, port: int, ready: threading.Event | None = None) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@contextmanager
def simulator_in_thread(simulator: Simulator, port: int) -> Iterator[str]:
    """Run the simulator on its own event loop in a thread; yields its endpoint URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(serve(simulator, port, ready))
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="s3-simulator", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the simulator did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(lambda: task.cancel() if task else None)
        thread.join(10)


def tree_keys(prefixes: int, per_prefix: int) -> list[str]:
    """``prefixes`` folders of ``per_prefix`` keys each (the listing benchmark's layout)."""
    return [f"dir-{p:04d}/object-{k:06d}.bin" for p in range(prefixes) for k in range(per_prefix)]


def flat_keys(count: int) -> list[str]:
    """``count`` keys under one prefix, with no delimiter below it."""
    return [f"flat/object-{k:07d}.bin" for k in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before every answer (default 0.05)")
    parser.add_argument("--serial", action="store_true", help="serve one request at a time, as a CPU-bound server")
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    parser.add_argument("--tree", nargs=2, type=int, metavar=("PREFIXES", "KEYS"), help="seed the first bucket")
    parser.add_argument("--flat", type=int, metavar="KEYS", help="seed the first bucket with flat/ keys")
    args = parser.parse_args()
    simulator = Simulator(delay=args.delay, serial=args.serial)
    for name in args.bucket:
        simulator.seed(name, [])
    if args.bucket and args.tree:
        simulator.seed(args.bucket[0], tree_keys(*args.tree))
    if args.bucket and args.flat:
        simulator.seed(args.bucket[0], flat_keys(args.flat))
    for bucket in simulator.buckets.values():  # render every listing element before the first request
        for key in bucket.keys:
            bucket.contents(key, url=True)
            bucket.contents(key, url=False)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    asyncio.run(serve(simulator, args.port))


if __name__ == "__main__":
    main()
