"""The container health probe and the migration job's CLI, against real servers."""

import asyncio
import dataclasses
import http.server
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.catalog import DEFINITIONS
from services.common import healthcheck, migrate
from services.common.config import ROOT, Settings
from services.common.server import RunningService
from services.grids import config as grids_config
from tests.conftest import free_port


async def probe(*argv: str) -> int:
    # The probe is synchronous; run it off the loop that serves the service.
    return await asyncio.to_thread(healthcheck.main, list(argv))


async def test_probe_passes_when_the_service_is_serving(
    grids_service: RunningService,
) -> None:
    address = f"127.0.0.1:{grids_service.port}"

    assert await probe(address) == 0
    assert await probe(address, "cloudark.grids.v1.GridsService") == 0


async def test_probe_fails_for_an_unknown_service_name(
    grids_service: RunningService,
) -> None:
    assert await probe(f"127.0.0.1:{grids_service.port}", "no.such.Service") == 1


async def test_probe_fails_when_nothing_listens() -> None:
    assert await probe(f"127.0.0.1:{free_port()}") == 1


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_health() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_probe_of_an_http_target_needs_a_200(http_health: str) -> None:
    assert await probe(f"{http_health}/healthz") == 0
    assert await probe(f"{http_health}/broken") == 1


def test_probe_without_a_target_is_a_usage_error() -> None:
    assert healthcheck.main([]) == 2


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own, so the job starts from nothing as in a new cluster."""
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(database_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_migrate_job_applies_every_service_and_then_nothing(
    empty_database: str, settings: Settings
) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database, "CLOUDARK_LOG_FORMAT": "text"}
    job = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.common.migrate",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, errors = await job.communicate()
    assert job.returncode == 0, errors.decode()

    conn = await asyncpg.connect(empty_database)
    try:
        versions = await conn.fetch("SELECT version FROM grids.schema_migrations")
    finally:
        await conn.close()
    expected = {p.stem for p in grids_config.MIGRATIONS.glob("*.sql")}
    assert expected <= {r["version"] for r in versions}

    again = await migrate.migrate_all(
        dataclasses.replace(settings, database_url=empty_database),
        DEFINITIONS,
    )
    assert all(done == [] for done in again.values())
    assert "grids" in again
