"""The whole stack as `make run` starts it, on free ports, for the e2e tests.

One module-scoped stack: `python -m deploy.embedded.run` (honcho and the
Procfile) in its own process group, with a fresh state folder and every port
moved, so it never meets a `make run` or another test session. The tests
drive it as the mobile apps do: HTTP/JSON through the gateway, gRPC where no
route exists.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.config import ROOT, SERVICE_PORTS
from services.common.metrics import METRICS_PORTS
from tests.conftest import free_port

SECRET = "e2e-secret-of-at-least-thirty-two-bytes-long"
READY = "Cloud Ark is up."
START_TIMEOUT = 150.0
STOP_TIMEOUT = 30.0


@dataclass
class Stack:
    gateway: str
    ports: dict[str, int]
    env: dict[str, str]
    log: Path

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"


def stack_environment(state: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a stack of its own: embedded servers, free ports."""
    ports = {
        "pg": free_port(),
        "temporal": free_port(),
        "temporal_ui": free_port(),
        "gateway": free_port(),
        "codec": free_port(),
        **{service: free_port() for service in SERVICE_PORTS},
    }
    env = {
        key: value
        for key, value in os.environ.items()
        # The embedded servers only: nothing of the caller's own stack.
        if key not in {"DATABASE_URL", "TEMPORAL_ADDRESS", "PORT"}
        and not key.endswith("_ADDRESS")
        and not key.startswith(("CLOUDARK_", "TEMPORAL_", "OTEL_"))
    }
    env.update(
        {
            "CLOUDARK_STATE_DIR": str(state),
            "CLOUDARK_PG_PORT": str(ports["pg"]),
            "CLOUDARK_TEMPORAL_PORT": str(ports["temporal"]),
            "TEMPORAL_UI_PORT": str(ports["temporal_ui"]),
            "CLOUDARK_GATEWAY_PORT": str(ports["gateway"]),
            "CLOUDARK_CODEC_PORT": str(ports["codec"]),
            "CLOUDARK_WORKER_SDK_METRICS_PORT": "0",
            "CLOUDARK_GATEWAY_SECRET": SECRET,
            "CLOUDARK_GATEWAY_RATE": "1000",
            "CLOUDARK_GATEWAY_BURST": "1000",
            "CLOUDARK_LOG_FORMAT": "text",
            "CLOUDARK_LOG_LEVEL": "WARNING",
            "CLOUDARK_CITY": "demo",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for service in SERVICE_PORTS:
        env[f"CLOUDARK_{service.upper()}_PORT"] = str(ports[service])
    for process in METRICS_PORTS:
        env[f"CLOUDARK_{process.upper()}_METRICS_PORT"] = "0"
    return env, ports


def _follow(stream: object, log: Path, ready: threading.Event) -> None:
    """Copies the stack's output to its log file; sets ready at the banner."""
    with log.open("w") as out:
        for line in stream:  # type: ignore[attr-defined]
            out.write(line)
            out.flush()
            if READY in line:
                ready.set()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("e2e-state")
    env, ports = stack_environment(state)
    log = state / "stack.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.embedded.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    pgid = process.pid
    ready = threading.Event()
    reader = threading.Thread(
        target=_follow, args=(process.stdout, log, ready), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the stack did not come up; its output:\n{log.read_text()[-8000:]}"
                )
        yield Stack(f"http://127.0.0.1:{ports['gateway']}", ports, env, log)
    finally:
        if process.poll() is None:
            os.killpg(pgid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            process.wait()
            raise
        finally:
            reader.join(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
        # honcho is gone; nothing it started may outlive it.
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _group_alive(pgid)
        if left:
            os.killpg(pgid, signal.SIGKILL)
        assert not left, "a process of the stack outlived Ctrl-C"
