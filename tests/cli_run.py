"""Running the ``aiostorage`` console script in a subprocess against a test server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aiostorage import StoreSettings

SCRIPT = str(Path(sys.executable).with_name("aiostorage"))


def cli_env(settings: StoreSettings) -> dict[str, str]:
    """This process's environment, pointed at the server ``settings`` name."""
    assert settings.aws_secret_access_key is not None
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": str(settings.endpoint_url),
        "AWS_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
    }


def cli(settings: StoreSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], env=cli_env(settings), capture_output=True, text=True, timeout=60, check=False
    )
