"""PostgreSQL access: one asyncpg pool per service, each in its own schema,
and the versioned SQL migrations of that schema.
"""

import asyncio
import hashlib
import logging
import time
from pathlib import Path

import asyncpg

from services.common.config import Settings

log = logging.getLogger(__name__)

# A connection, whether opened alone or borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

COMMON_MIGRATIONS = Path(__file__).parent / "migrations"


async def wait_for_database(dsn: str, timeout: float = 60.0) -> None:
    """Waits until the database accepts connections (it may still be starting)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError) as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"database not reachable: {error}") from error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            await conn.close()
            return


async def create_pool(settings: Settings, schema: str) -> asyncpg.Pool:
    """A pool whose connections see the service's schema first."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        server_settings={
            "search_path": schema,
            "application_name": f"cloudark-{schema}",
        },
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Returns a connection to the pool without asyncpg's reset query.

    asyncpg still rolls back a transaction left open. Our code sets no session
    state (settings are SET LOCAL, the migration lock is released in a
    finally, nothing LISTENs), so the default RESET ALL and friends would
    only cost every call one more round trip to the server.
    """


async def migrate(pool: asyncpg.Pool, schema: str, folder: Path) -> list[str]:
    """Applies the schema's pending migrations in order; returns their versions.

    Safe to run from several processes at once: an advisory lock per schema
    serialises them, and each migration commits with its version row.
    """
    lock_key = _lock_key(schema)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            return await _apply_pending(conn, schema, folder)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)


async def _apply_pending(conn: Connection, schema: str, folder: Path) -> list[str]:
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
        " version text PRIMARY KEY, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = await conn.fetch(
        f'SELECT version, checksum FROM "{schema}".schema_migrations'
    )
    applied = {r["version"]: r["checksum"] for r in rows}
    done = []
    for version, path in _migration_files(folder):
        sql = path.read_text()
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        if version in applied:
            if applied[version] != checksum:
                raise RuntimeError(
                    f"migration {version} of {schema} changed after it was applied"
                )
            continue
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(sql)
            await conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, checksum)'
                " VALUES ($1, $2)",
                version,
                checksum,
            )
        log.info("applied migration %s to schema %s", version, schema)
        done.append(version)
    return done


def _migration_files(folder: Path) -> list[tuple[str, Path]]:
    # The shared tables come first in every schema, under their own prefix.
    files = [(f"common/{p.stem}", p) for p in sorted(COMMON_MIGRATIONS.glob("*.sql"))]
    files += [(p.stem, p) for p in sorted(folder.glob("*.sql"))]
    return files


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"cloudark.migrate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
