"""`make web-demo`'s job without a browser: a video sent through the app's endpoints becomes a result file."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, wait_for

DEMO = Path(__file__).resolve().parents[1] / "examples" / "web_upload" / "demo.py"
MiB = 1024 * 1024


def call(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.moto_only(reason="the demo runs on aiostorage.local, which embeds moto by design")
def test_web_demo_turns_an_upload_into_an_event_and_a_result(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIOSTORAGE_"))}
    with log.open("wb") as output:
        demo = subprocess.Popen(
            [sys.executable, str(DEMO), "--port", str(port)], stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_for(
            lambda: "consuming" in log.read_text() and f"open http://127.0.0.1:{port}/" in log.read_text(), timeout=60
        )
        api = f"http://127.0.0.1:{port}/api/uploads"
        data = os.urandom(11 * MiB)
        plan = call(api, {"name": "My Video.MOV", "size": len(data), "type": "video/quicktime"})
        assert plan["mode"] == "multipart" and plan["key"].endswith(".mov")
        for part in plan["parts"]:
            start = (part["part_number"] - 1) * plan["part_size"]
            put = urllib.request.Request(part["url"], data=data[start : start + part["size"]], method="PUT")
            put.add_header("Content-Type", "application/octet-stream")
            with urllib.request.urlopen(put, timeout=30) as answer:
                assert answer.status == 200
        reference = {name: plan[name] for name in ("key", "upload_id", "size", "token")}
        assert call(f"{api}/complete", reference)["size"] == len(data)

        # The worker's log line: the event arrived, typed, and the result was written.
        line = f"{plan['key']}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"
        wait_for(lambda: line in log.read_text(), timeout=60)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    assert demo.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
