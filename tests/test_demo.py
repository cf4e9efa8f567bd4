"""`make demo`'s job, run small: every video gets exactly one correct result, other files no event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "pipeline_demo.py"


@pytest.mark.moto_only(reason="the demo runs on aiostorage.local, which embeds moto by design")
def test_pipeline_demo_end_to_end() -> None:
    completed = subprocess.run(
        [sys.executable, str(DEMO), "--large", "2", "--large-mib", "9", "--small", "4", "--others", "2"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    summary_line = next(line for line in completed.stderr.splitlines() if line.startswith("summary: "))
    counts = json.loads(summary_line.removeprefix("summary: "))
    assert counts["videos"] == 6
    assert counts["results"] == 6 and counts["matching"] == 6
    # Non-video files triggered nothing; every event beyond one per video was a duplicate delivery.
    assert counts["skipped"] == 0
    assert counts["events"] == counts["videos"] + counts["duplicates"]
    assert "X-Amz-Signature=" in completed.stdout
