"""`make run`: the whole stack under honcho, a Procfile process runner.

The embedded PostgreSQL and Temporal dev server start only when
DATABASE_URL / TEMPORAL_ADDRESS are unset; otherwise the same services and
worker use the servers those variables name.
"""

import os
import sys
from pathlib import Path

from services.catalog import DEFINITIONS
from services.common.config import ROOT, Settings

PROCFILE = Path(__file__).with_name("Procfile")
# Every gRPC service of the catalog, then the processes around them.
APP_PROCESSES = [
    *(definition.name for definition in DEFINITIONS),
    "gateway",
    "codec",
    "worker",
    "ready",
]


def processes(settings: Settings) -> list[str]:
    embedded = []
    if settings.database_is_embedded:
        embedded.append("postgres")
    if settings.temporal_is_embedded:
        embedded.append("temporal")
    return embedded + APP_PROCESSES


def main() -> None:
    settings = Settings.from_env()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CLOUDARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    honcho = str(Path(sys.executable).with_name("honcho"))
    argv = [honcho, "start", "--no-colour", "-f", str(PROCFILE), "-d", str(ROOT)]
    os.execv(honcho, argv + processes(settings))


if __name__ == "__main__":
    main()
