"""The migration runner against the real database."""

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.common import db
from services.common.config import Settings


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


async def test_migrations_apply_once_even_when_run_concurrently(
    settings: Settings, tmp_path: Path
) -> None:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    write(tmp_path, "0002_more.sql", "ALTER TABLE things ADD COLUMN name text;")
    pool = await db.create_pool(settings, schema)
    try:
        runs = await asyncio.gather(
            *(db.migrate(pool, schema, tmp_path) for _ in range(3))
        )
        again = await db.migrate(pool, schema, tmp_path)
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'things'",
            schema,
        )
    finally:
        await pool.close()

    applied = [version for run in runs for version in run]
    assert sorted(applied) == ["0001_things", "0002_more", "common/0001_idempotency"]
    assert again == []
    assert {c["column_name"] for c in columns} == {"id", "name"}


async def test_a_migration_edited_after_it_was_applied_stops_the_service(
    settings: Settings, tmp_path: Path
) -> None:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int);")
    pool = await db.create_pool(settings, schema)
    try:
        await db.migrate(pool, schema, tmp_path)
        write(tmp_path, "0001_things.sql", "CREATE TABLE things (id bigint);")
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await db.migrate(pool, schema, tmp_path)
    finally:
        await pool.close()


async def test_a_failing_migration_leaves_nothing_half_done(
    settings: Settings, tmp_path: Path
) -> None:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    write(tmp_path, "0001_bad.sql", "CREATE TABLE ok (id int); SELECT 1/0;")
    pool = await db.create_pool(settings, schema)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await db.migrate(pool, schema, tmp_path)
        exists = await pool.fetchval("SELECT to_regclass($1)", f"{schema}.ok")
    finally:
        await pool.close()

    assert exists is None
