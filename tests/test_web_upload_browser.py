"""examples/web_upload in a real browser: headless Chromium sends a video straight to S3, CORS enforced.

The page is served from one origin (the app's port) and S3 from another (the local server's port), so
every S3 request is cross-origin: Chromium sends the preflights and checks the answers as it does against
AWS (no ``--disable-web-security``, nothing proxied through the app). The local server answers CORS from
the bucket's rule as S3 does (``aiostorage.local.S3Cors``); moto alone would let any origin in.

Chromium is Debian's package (``make browser`` installs it); Playwright only drives it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import boto3
import pytest

from aiostorage import AsyncS3Store, StoreSettings, parse_s3_event
from aiostorage.local import LocalServer, cors_rule
from tests.conftest import free_port, unique_name

pytestmark = pytest.mark.moto_only(reason="the page runs against aiostorage.local, which embeds moto by design")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What works in a container, as root, offline: no sandbox, no GPU, no QUIC, nothing fetched in the background.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APP = Path(__file__).resolve().parents[1] / "examples" / "web_upload" / "app.py"
MiB = 1024 * 1024

if not os.path.exists(CHROMIUM):
    pytest.skip(
        "chromium is not installed and could not be (make browser installs Debian's package with apt-get, as root)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright is in the dev extra: make install")


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_upload_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Site:
    page_url: str
    bucket: str
    settings: StoreSettings
    s3: Any
    sqs: Any


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    app_port = free_port()
    page_url = f"http://127.0.0.1:{app_port}"
    async with LocalServer() as server:
        # moto's state is per process, not per server: names of this test's own.
        bucket = unique_name("media")
        settings = await server.provision(bucket=bucket, queue=unique_name("events"), cors_origins=[page_url])
        assert settings.aws_secret_access_key is not None
        clients = {
            name: boto3.client(
                name,
                endpoint_url=server.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
            )
            for name in ("s3", "sqs")
        }
        assert server.endpoint_url != page_url  # two origins: every S3 request is cross-origin
        async with AsyncS3Store(settings=settings) as store:
            runner = await load_app().serve(store, "127.0.0.1", app_port, max_size=64 * MiB)
            try:
                yield Site(page_url + "/", bucket, settings, clients["s3"], clients["sqs"])
            finally:
                await runner.cleanup()


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 900, "height": 640})
            page = await context.new_page()
            page.on("console", lambda message: print(f"browser console: {message.type}: {message.text}"))
            yield page
        finally:
            await browser.close()


async def throttle_uploads(page: Any, bytes_per_second: int) -> None:
    """Chromium's own network emulation: slow enough to look at (and cancel) an upload mid-way."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def video(tmp_path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / "holiday clip.mp4"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def events_for(sqs: Any, queue_url: str, key: str, deadline: float) -> list[Any]:
    """The typed S3 event records for ``key`` that reach the queue before ``deadline`` (blocking)."""
    while time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        records = [record for message in answer.get("Messages", []) for record in parse_s3_event(message["Body"])]
        found = [record for record in records if record.key == key]
        if found:
            return found
    return []


async def test_a_video_goes_from_the_browser_straight_to_s3(site: Site, browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    path, digest = video(tmp_path, 12 * MiB)
    started = time.monotonic()
    await page.goto(site.page_url)
    loaded = time.monotonic()
    await throttle_uploads(page, 8 * MiB)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url.split('?')[0]}"))

    await page.set_input_files("#file", str(path))
    await page.wait_for_function("document.querySelectorAll('#parts span.sent').length >= 1", timeout=30_000)
    screenshot = tmp_path / "web-upload-mid-upload.png"
    await page.screenshot(path=str(screenshot))
    print(f"screenshot mid-upload: {screenshot}")
    await page.wait_for_function("['done', 'failed'].includes(window.uploadPhase)", timeout=60_000)
    uploaded = time.monotonic()

    assert await page.text_content("#status") == f"Uploaded ✓ {await page.evaluate('window.uploadedKey')}"
    key = await page.evaluate("window.uploadedKey")
    assert key.startswith("uploads/") and key.endswith(".mp4") and "holiday" not in key
    stored = await anyio.to_thread.run_sync(lambda: site.s3.get_object(Bucket=site.bucket, Key=key))
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == digest
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"] == {"original-name": "holiday%20clip.mp4"}
    # The bytes went to S3's origin, part by part; the app only saw JSON calls.
    s3_origin = str(site.settings.endpoint_url)
    assert sum(request == f"PUT {s3_origin}/{site.bucket}/{key}" for request in requests) == 3
    assert not any(request.startswith(f"PUT {site.page_url}") for request in requests)

    queue_url = str(site.settings.queue_url)
    records = await anyio.to_thread.run_sync(events_for, site.sqs, queue_url, key, time.monotonic() + 20)
    assert records and all(record.is_created and record.bucket == site.bucket for record in records)
    assert {record.size for record in records} == {12 * MiB}
    print(
        f"browser upload timings: page load {loaded - started:.2f} s, 12 MiB upload {uploaded - loaded:.2f} s "
        f"(throttled to 8 MiB/s), event {time.monotonic() - uploaded:.2f} s after"
    )


async def test_a_reload_mid_way_resumes_with_the_parts_left(site: Site, browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    path, digest = video(tmp_path, 12 * MiB)
    await page.goto(site.page_url)
    await throttle_uploads(page, 3 * MiB)
    await page.set_input_files("#file", str(path))
    await page.wait_for_function("document.querySelectorAll('#parts span.sent').length >= 1", timeout=30_000)

    await page.reload()  # the tab is reloaded mid-upload: the requests in flight are lost
    assert "was interrupted: choose the same file to resume it" in (await page.text_content("#resume") or "")
    await page.screenshot(path=str(tmp_path / "web-upload-after-reload.png"))
    (upload,) = await anyio.to_thread.run_sync(lambda: site.s3.list_multipart_uploads(Bucket=site.bucket)["Uploads"])
    held = await anyio.to_thread.run_sync(
        lambda: site.s3.list_parts(Bucket=site.bucket, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
    )
    assert 1 <= len(held) < 3
    await page.set_input_files("#file", str(path))
    await page.wait_for_function("window.uploadPhase !== 'idle'", timeout=30_000)
    await page.screenshot(path=str(tmp_path / "web-upload-resuming.png"))
    await page.wait_for_function("['done', 'failed'].includes(window.uploadPhase)", timeout=60_000)

    key = await page.evaluate("window.uploadedKey")
    assert key == upload["Key"]  # the same upload, finished: not a new one
    assert await page.text_content("#status") == f"Uploaded ✓ {key}"
    stored = await anyio.to_thread.run_sync(lambda: site.s3.get_object(Bucket=site.bucket, Key=key))
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == digest
    assert await page.evaluate("localStorage.getItem('aiostorage-upload')") is None


async def test_a_small_video_goes_in_one_presigned_post(site: Site, browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    path, digest = video(tmp_path, 2 * MiB + 7)
    await page.goto(site.page_url)

    await page.set_input_files("#file", str(path))
    await page.wait_for_function("['done', 'failed'].includes(window.uploadPhase)", timeout=30_000)

    key = await page.evaluate("window.uploadedKey")
    assert await page.text_content("#status") == f"Uploaded ✓ {key}"
    stored = await anyio.to_thread.run_sync(lambda: site.s3.get_object(Bucket=site.bucket, Key=key))
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == digest
    assert stored["ContentType"] == "video/mp4"


async def test_cancel_mid_way_aborts_the_multipart_upload(site: Site, browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    path, _ = video(tmp_path, 12 * MiB)
    await page.goto(site.page_url)
    await throttle_uploads(page, 2 * MiB)

    await page.set_input_files("#file", str(path))
    await page.wait_for_function("document.querySelectorAll('#parts span.sending').length >= 1", timeout=30_000)
    uploads = await anyio.to_thread.run_sync(lambda: site.s3.list_multipart_uploads(Bucket=site.bucket)["Uploads"])
    assert len(uploads) == 1
    await page.click("#cancel")
    await page.wait_for_function("['cancelled', 'failed'].includes(window.uploadPhase)", timeout=30_000)

    assert await page.text_content("#status") == "Cancelled: nothing was kept"
    left = await anyio.to_thread.run_sync(lambda: site.s3.list_multipart_uploads(Bucket=site.bucket))
    assert left.get("Uploads", []) == []
    listed = await anyio.to_thread.run_sync(lambda: site.s3.list_objects_v2(Bucket=site.bucket, Prefix="uploads/"))
    assert listed["KeyCount"] == 0, listed.get("Contents")
    assert await page.evaluate("localStorage.getItem('aiostorage-upload')") is None


async def test_a_page_from_an_origin_the_bucket_does_not_allow_is_refused(
    site: Site, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    path, _ = video(tmp_path, 12 * MiB)
    rule = cors_rule(["https://app.example.com"])  # not this page's origin
    await anyio.to_thread.run_sync(
        lambda: site.s3.put_bucket_cors(Bucket=site.bucket, CORSConfiguration={"CORSRules": [rule]})
    )
    await page.goto(site.page_url)

    await page.set_input_files("#file", str(path))
    await page.wait_for_function("['done', 'failed'].includes(window.uploadPhase)", timeout=30_000)

    # The browser refused at the preflight: no part reached S3.
    assert "refused by CORS" in (await page.text_content("#status") or "")
    (upload,) = await anyio.to_thread.run_sync(lambda: site.s3.list_multipart_uploads(Bucket=site.bucket)["Uploads"])
    parts = await anyio.to_thread.run_sync(
        lambda: site.s3.list_parts(Bucket=site.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    )
    assert parts.get("Parts", []) == []
