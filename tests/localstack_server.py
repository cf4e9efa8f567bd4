"""LocalStack's S3 and SQS on 127.0.0.1, without docker, for ``make test-localstack``.

    python tests/localstack_server.py python                 # prints a Python >= 3.12 to build its venv with
    python tests/localstack_server.py run VENV -- COMMAND... # runs COMMAND with LocalStack up, then stops it

``run`` starts LocalStack from the venv ``VENV`` on 127.0.0.1 (port 4566 if free, else a free one), with
its files in a scratch folder, waits for its health endpoint to show S3 and SQS running, runs the command
with ``TEST_S3_ENDPOINT_URL`` pointing at it, and stops LocalStack whatever happens (the command failing,
Ctrl-C, SIGTERM). Exits with the command's status; 1 with LocalStack's log tail if it does not come up.
Only the standard library: it runs under the project's dev venv (Python 3.11), LocalStack under its own.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import FrameType

HOST = "127.0.0.1"
STARTUP_DEADLINE = 90.0
STOP_DEADLINE = 15.0
# LocalStack's code uses Python 3.12 syntax although its metadata says 3.10.
MIN_PYTHON = (3, 12)


def find_python() -> str:
    """A Python >= 3.12: ``$LOCALSTACK_PYTHON``, pyenv's 3.12/3.13, or one on PATH; each candidate is run."""
    candidates = [os.environ.get("LOCALSTACK_PYTHON", "")]
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        roots.insert(0, found.stdout.strip())
    for root in filter(None, roots):
        for minor in ("13", "12"):
            candidates += sorted(glob.glob(f"{root}/versions/3.{minor}*/bin/python3.{minor}"), reverse=True)
    candidates += ["python3.13", "python3.12", "python3"]
    check = f"import sys; sys.exit(sys.version_info[:2] < {MIN_PYTHON!r})"
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([candidate, "-c", check], capture_output=True, timeout=30, check=False).returncode == 0:
                return candidate
        except (OSError, subprocess.TimeoutExpired):
            continue
    raise SystemExit(
        "no Python >= 3.12 found (tried LOCALSTACK_PYTHON, pyenv's versions and PATH): "
        "install one (e.g. pyenv install 3.13) or set LOCALSTACK_PYTHON"
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    if port_is_free(4566):
        return 4566
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def health(url: str) -> dict[str, str]:
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as answer:
            services: dict[str, str] = json.load(answer).get("services", {})
            return services
    except (OSError, ValueError):
        return {}


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Stop(Exception):
    """A signal asked us to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signum)


def _die_with_parent() -> None:
    """In LocalStack's process, before exec: on Linux, be sent SIGTERM if this script dies without stopping it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM LocalStack's process group (it was started in its own), SIGKILL if it is still there later."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def run(venv: Path, command: list[str]) -> int:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"localstack: no venv at {venv} (make test-localstack builds it)", file=sys.stderr)
        return 1
    port = free_port()
    url = f"http://{HOST}:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="aiostorage-localstack-"))
    (scratch / "tmp").mkdir()
    log_path = scratch / "localstack.log"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "LOCALSTACK_"))},
        "SERVICES": "s3,sqs",
        "EAGER_SERVICE_LOADING": "1",
        "PERSISTENCE": "0",
        # hypercorn binds where told; LocalStack's default server binds 0.0.0.0 whatever GATEWAY_LISTEN says.
        "GATEWAY_LISTEN": f"{HOST}:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "LOCALSTACK_HOST": f"{HOST}:{port}",
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "SQS_ENDPOINT_STRATEGY": "path",
        # Presigned URLs' signatures and expiry are checked only with this (its default skips them).
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        # This machine can look like a container to it.
        "OVERRIDE_IN_DOCKER": "0",
        # Else it writes under /etc, /usr/lib and /var/lib.
        "FILESYSTEM_ROOT": str(scratch / "fs"),
        "TMPDIR": str(scratch / "tmp"),
    }
    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        signal.signal(getattr(signal, name), _raise_stop)
    process: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(python), "-m", "localstack.runtime.main"],
                env=env,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        started = time.monotonic()
        while True:
            services = health(url)
            if services.get("s3") == "running" and services.get("sqs") == "running":
                break
            if process.poll() is not None or time.monotonic() - started > STARTUP_DEADLINE:
                why = f"exited with {process.returncode}" if process.returncode is not None else "no answer"
                print(
                    f"localstack: not up on {url} after {time.monotonic() - started:.0f} s ({why}); its log ends:\n"
                    f"{tail(log_path)}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        print(f"localstack: S3 and SQS up on {url} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        child = subprocess.Popen(command, env={**os.environ, "TEST_S3_ENDPOINT_URL": url})
        try:
            return child.wait()
        except Stop as stopped:
            # Pass the signal on and let the command clean up (pytest's teardown), within a deadline.
            child.send_signal(stopped.signum)
            try:
                child.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
    except Stop as stopped:
        print(f"localstack: {stopped}, stopping", file=sys.stderr)
        return 128 + stopped.signum
    finally:
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        if process is not None:
            stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["python"] and len(argv) == 1:
        print(find_python())
        return 0
    if argv[:1] == ["run"] and len(argv) >= 4 and argv[2] == "--":
        # Absolute, not resolved: LocalStack runs in its scratch folder, and a venv's python is a symlink.
        return run(Path(argv[1]).absolute(), argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
