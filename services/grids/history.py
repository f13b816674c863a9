"""Bulk import of a legacy system's history: `python -m services.grids.history`.

A file (CSV, format in docs/history-import.md) is read in batches. Each batch
is COPYed into a staging table, checked (row shape, dates, categories, known
micro-grids, ids seen before) and, only if every row is good, moved into
cases or patrols with the yearly roll-ups, in one transaction that also
records the batch as done. A batch with a bad row imports nothing and reports
every bad row; an interrupted import resumes after its last committed batch;
a re-run of a finished import changes nothing.
"""

import argparse
import asyncio
import csv
import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from services.common.config import Settings
from services.common.db import Connection
from services.common.logs import configure_logging
from services.grids import config
from services.grids.cases_repository import YEAR_OF
from services.grids.taxonomy import (
    CATEGORIES_BY_CODE,
    PATROL_KINDS_BY_CODE,
    SOURCES_BY_CODE,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 50_000
EXTERNAL_ID_MAX = 64
CLOSED = 6
KINDS = ("cases", "patrols")
COLUMNS = {
    "cases": [
        "id",
        "reported_at",
        "micro_grid_code",
        "category",
        "source",
        "description",
    ],
    "patrols": ["id", "patrolled_at", "micro_grid_code", "kind", "notes"],
}
Staged = tuple[int, str, datetime, str, int, int, str]


@dataclass(frozen=True)
class BadRow:
    row: int
    reason: str


@dataclass
class ImportResult:
    import_id: str
    kind: str
    rows: int = 0
    imported: int = 0
    batches: int = 0
    skipped_batches: int = 0
    refused_batches: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)


def default_import_id(path: Path, kind: str) -> str:
    """The same file always gets the same import id, so re-runs are no-ops."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return f"{kind}-{digest}"


async def import_file(
    conn: Connection,
    path: Path,
    kind: str,
    *,
    import_id: str = "",
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Imports a cases or patrols file; see the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"kind must be cases or patrols, not {kind!r}")
    result = ImportResult(import_id or default_import_id(path, kind), kind)
    await _claim(conn, result.import_id, kind)
    done = await _done_batches(conn, result.import_id)
    seen: dict[str, int] = {}
    for number, first_row, rows in _batches(path, kind, batch_size):
        result.batches += 1
        result.rows += len(rows)
        staged, bad = _parse(rows, first_row, kind, seen)
        if number in done:
            result.skipped_batches += 1
            continue
        imported, bad = await _import_batch(
            conn, result.import_id, kind, number, (first_row, len(rows)), staged, bad
        )
        result.imported += imported
        if bad:
            result.refused_batches += 1
            result.bad_rows += bad
    log.info(
        "import %s: %s rows, %s imported, %s batches skipped, %s refused",
        result.import_id,
        result.rows,
        result.imported,
        result.skipped_batches,
        result.refused_batches,
    )
    return result


async def import_files(
    pool: asyncpg.Pool,
    files: Sequence[tuple[str, Path]],
    *,
    batch_size: int = BATCH_SIZE,
) -> list[ImportResult]:
    """Imports several (kind, file) pairs at once, one connection each.

    Index upkeep in PostgreSQL, not parsing, bounds one stream, so files in
    parallel use the database's cores.
    """

    async def one(kind: str, path: Path) -> ImportResult:
        async with pool.acquire() as conn:
            return await import_file(conn, path, kind, batch_size=batch_size)

    return list(await asyncio.gather(*(one(kind, path) for kind, path in files)))


async def _claim(conn: Connection, import_id: str, kind: str) -> None:
    found = await conn.fetchval(
        "INSERT INTO history_imports (id, record_kind) VALUES ($1, $2)"
        " ON CONFLICT (id) DO UPDATE SET record_kind = history_imports.record_kind"
        " RETURNING record_kind",
        import_id,
        kind,
    )
    if found != kind:
        raise ValueError(f"import {import_id} is an import of {found}, not {kind}")


async def _done_batches(conn: Connection, import_id: str) -> set[int]:
    rows = await conn.fetch(
        "SELECT batch FROM history_import_batches"
        " WHERE import_id = $1 AND bad_rows = '[]'",
        import_id,
    )
    return {r["batch"] for r in rows}


def _batches(
    path: Path, kind: str, size: int
) -> Iterator[tuple[int, int, list[list[str]]]]:
    """(batch number, number of its first row, rows); row 1 follows the header."""
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        header = next(reader, None)
        if header != COLUMNS[kind]:
            raise ValueError(
                f"{path.name}: the header must be {','.join(COLUMNS[kind])}"
            )
        batch: list[list[str]] = []
        number, first = 1, 1
        for row in reader:
            batch.append(row)
            if len(batch) == size:
                yield number, first, batch
                number, first, batch = number + 1, first + size, []
        if batch:
            yield number, first, batch


def _parse(
    rows: list[list[str]], first_row: int, kind: str, seen: dict[str, int]
) -> tuple[list[Staged], list[BadRow]]:
    """Checks what a row says by itself; returns the rows to stage and the bad."""
    codes = CATEGORIES_BY_CODE if kind == "cases" else PATROL_KINDS_BY_CODE
    width = len(COLUMNS[kind])
    staged: list[Staged] = []
    bad: list[BadRow] = []
    for number, row in enumerate(rows, start=first_row):
        reason, when = _row_problem(row, width, codes, kind)
        if reason is None and row[0] in seen:
            reason = f"duplicate id: already at row {seen[row[0]]}"
        if reason is not None:
            bad.append(BadRow(number, reason))
            continue
        seen[row[0]] = number
        source = SOURCES_BY_CODE[row[4]] if kind == "cases" else 0
        text = row[5] if kind == "cases" else row[4]
        assert when is not None
        staged.append((number, row[0], when, row[2], codes[row[3]], source, text))
    return staged, bad


def _row_problem(
    row: list[str], width: int, codes: dict[str, int], kind: str
) -> tuple[str | None, datetime | None]:
    """Why a row is bad (None if it is not), and its time when it has one."""
    if len(row) != width:
        return f"has {len(row)} fields, not {width}", None
    if not row[0] or len(row[0]) > EXTERNAL_ID_MAX:
        return f"bad id: must be 1 to {EXTERNAL_ID_MAX} characters", None
    try:
        when = datetime.fromisoformat(row[1])
    except ValueError:
        return "bad date: not an ISO 8601 date and time", None
    if when.tzinfo is None:
        return "bad date: has no UTC offset", None
    if row[3] not in codes:
        noun = "category" if kind == "cases" else "patrol kind"
        return f"unknown {noun}", None
    if kind == "cases" and row[4] not in SOURCES_BY_CODE:
        return "unknown source", None
    if len(row[-1]) > config.DESCRIPTION_MAX:
        return f"text longer than {config.DESCRIPTION_MAX} characters", None
    return None, when


async def _import_batch(
    conn: Connection,
    import_id: str,
    kind: str,
    number: int,
    span: tuple[int, int],
    staged: list[Staged],
    bad: list[BadRow],
) -> tuple[int, list[BadRow]]:
    """Imports one batch, or nothing of it; returns (rows imported, bad rows)."""
    async with conn.transaction():
        # Two runs of one import must not both write a batch.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1), $2)", import_id, number
        )
        if number in await _done_batches(conn, import_id):
            return 0, []
        await _stage(conn, staged)
        bad = sorted(bad + await _unknown_rows(conn, kind), key=lambda b: b.row)
        imported = 0
        if not bad:
            imported = await _move(conn, kind)
        await _record_batch(conn, import_id, number, span, imported, bad)
        await conn.execute("DROP TABLE staging")
    return imported, bad


async def _stage(conn: Connection, staged: list[Staged]) -> None:
    await conn.execute(
        "CREATE TEMP TABLE staging (row integer, external_id text,"
        " at timestamptz, micro_grid_code text, code smallint, source smallint,"
        " text text, micro_grid_id uuid) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        "staging",
        records=staged,
        columns=[
            "row",
            "external_id",
            "at",
            "micro_grid_code",
            "code",
            "source",
            "text",
        ],
    )
    await conn.execute(
        "UPDATE staging s SET micro_grid_id = a.id FROM areas a"
        " WHERE a.code = s.micro_grid_code AND a.kind = 5"
    )


async def _unknown_rows(conn: Connection, kind: str) -> list[BadRow]:
    """Rows naming a micro-grid we do not have, or an id imported before."""
    rows = await conn.fetch(
        f"SELECT row, 'unknown micro-grid' AS reason FROM staging"
        f" WHERE micro_grid_id IS NULL"
        f" UNION ALL SELECT s.row, 'duplicate id: imported before' FROM staging s"
        f" JOIN {kind} t ON t.external_id = s.external_id"
    )
    return [BadRow(r["row"], r["reason"]) for r in rows]


async def _move(conn: Connection, kind: str) -> int:
    if kind == "cases":
        status = await conn.execute(
            f"INSERT INTO cases (id, category, source, micro_grid_id, description,"
            f" status, external_id, report_time, update_time)"
            f" SELECT gen_random_uuid(), code, source, micro_grid_id, text, {CLOSED},"
            f" external_id, at, at FROM staging"
        )
        await conn.execute(
            f"INSERT INTO case_counts (year, micro_grid_id, category, cases)"
            f" SELECT {_year('at')}, micro_grid_id, code, count(*) FROM staging"
            f" GROUP BY 1, 2, 3 ON CONFLICT (year, micro_grid_id, category)"
            f" DO UPDATE SET cases = case_counts.cases + excluded.cases"
        )
    else:
        status = await conn.execute(
            "INSERT INTO patrols (id, micro_grid_id, kind, patrol_time, notes,"
            " external_id) SELECT gen_random_uuid(), micro_grid_id, code, at, text,"
            " external_id FROM staging"
        )
        await conn.execute(
            f"INSERT INTO patrol_counts (year, micro_grid_id, patrols)"
            f" SELECT {_year('at')}, micro_grid_id, count(*) FROM staging"
            f" GROUP BY 1, 2 ON CONFLICT (year, micro_grid_id)"
            f" DO UPDATE SET patrols = patrol_counts.patrols + excluded.patrols"
        )
    return int(status.split()[-1])


def _year(column: str) -> str:
    return YEAR_OF.replace("$1::timestamptz", column)


async def _record_batch(
    conn: Connection,
    import_id: str,
    number: int,
    span: tuple[int, int],
    imported: int,
    bad: list[BadRow],
) -> None:
    await conn.execute(
        "INSERT INTO history_import_batches"
        " (import_id, batch, first_row, rows, imported, bad_rows)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
        " ON CONFLICT (import_id, batch) DO UPDATE SET rows = excluded.rows,"
        " imported = excluded.imported, bad_rows = excluded.bad_rows,"
        " finish_time = now()",
        import_id,
        number,
        span[0],
        span[1],
        imported,
        json.dumps([asdict(b) for b in bad]),
    )


async def _run_cli(args: argparse.Namespace) -> int:
    pairs = list(zip(args.pairs[::2], map(Path, args.pairs[1::2]), strict=True))
    unknown = [kind for kind, _ in pairs if kind not in KINDS]
    if unknown or len(args.pairs) % 2:
        raise SystemExit("give KIND FILE pairs, KIND being cases or patrols")
    if args.import_id and len(pairs) > 1:
        raise SystemExit("--import-id names one import: give one KIND FILE pair")
    settings = Settings.from_env()
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=len(pairs),
        server_settings={"search_path": config.SCHEMA},
    )
    try:
        if args.import_id:
            async with pool.acquire() as conn:
                kind, path = pairs[0]
                results = [
                    await import_file(
                        conn,
                        path,
                        kind,
                        import_id=args.import_id,
                        batch_size=args.batch_size,
                    )
                ]
        else:
            results = await import_files(pool, pairs, batch_size=args.batch_size)
    finally:
        await pool.close()
    sys.stdout.write(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 1 if any(r.bad_rows for r in results) else 0


def _generate(args: argparse.Namespace) -> int:
    from services.grids.history_export import write_2022
    from workflows.city.plan import FULL, plan_city

    plan = plan_city(args.city_name, args.city_code, FULL, args.seed)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    export = write_2022(plan, folder, args.seed)
    sys.stdout.write(f"{export.cases_path}\n{export.patrols_path}\n")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.grids.history")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "import", help="import cases or patrols CSV files: KIND FILE [KIND FILE ...]"
    )
    run.add_argument("pairs", nargs="+", metavar="KIND FILE")
    run.add_argument("--import-id", default="", help="default: from the file's hash")
    run.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    gen = commands.add_parser("generate", help="write the full city's 2022 export")
    gen.add_argument("folder")
    gen.add_argument("--city-name", default="Zhoushan")
    gen.add_argument("--city-code", default="3309")
    gen.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args()
    configure_logging("history")
    if args.command == "generate":
        raise SystemExit(_generate(args))
    raise SystemExit(asyncio.run(_run_cli(args)))


if __name__ == "__main__":
    main()
