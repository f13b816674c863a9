"""SQL for cases, their timelines, patrols and the yearly roll-ups.

Every write that adds a case or a patrol also bumps the roll-up of its year
and micro-grid in the same transaction, so the annual report never drifts
from the rows.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.common.db import Connection
from services.grids.config import REPORT_TIME_ZONE

REPORTED = 1
# The year a time falls in, as the city counts its years.
YEAR_OF = f"extract(year FROM ($1::timestamptz) AT TIME ZONE '{REPORT_TIME_ZONE}')"

_CASE_COLUMNS = (
    "id, category, source, micro_grid_id, latitude, longitude, description,"
    " attachment_refs, reporter_id, assignee_id, status, patrol_id, report_time,"
    " update_time"
)
_PATROL_COLUMNS = "id, worker_id, micro_grid_id, household_id, kind, patrol_time, notes"
# The micro-grids of an area at any level ($1), found through the ancestor
# lists so that moved areas bring their cases along.
_IN_AREA = (
    "micro_grid_id IN (SELECT id FROM areas WHERE kind = 5"
    " AND (id = $1 OR ancestor_ids @> ARRAY[$1::uuid]))"
)


@dataclass(frozen=True)
class TimelineRow:
    status: int
    actor_id: str
    time: datetime
    note: str
    step_key: str


@dataclass(frozen=True)
class CaseRow:
    id: uuid.UUID
    category: int
    source: int
    micro_grid_id: uuid.UUID
    latitude: float | None
    longitude: float | None
    description: str
    attachment_refs: list[str]
    reporter_id: str
    assignee_id: str
    status: int
    patrol_id: uuid.UUID | None
    report_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class NewCase:
    category: int
    source: int
    micro_grid_id: uuid.UUID
    latitude: float | None
    longitude: float | None
    description: str
    attachment_refs: list[str]
    reporter_id: str
    assignee_id: str
    patrol_id: uuid.UUID | None


@dataclass(frozen=True)
class PatrolRow:
    id: uuid.UUID
    worker_id: uuid.UUID | None
    micro_grid_id: uuid.UUID
    household_id: str | None
    kind: int
    patrol_time: datetime
    notes: str


async def insert_case(conn: Connection, case: NewCase, actor_id: str) -> CaseRow:
    """A new REPORTED case with its first timeline entry, counted in its year."""
    record = await conn.fetchrow(
        f"INSERT INTO cases (id, category, source, micro_grid_id, latitude,"
        f" longitude, description, attachment_refs, reporter_id, assignee_id,"
        f" status, patrol_id, report_time)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {REPORTED}, $11, now())"
        f" RETURNING {_CASE_COLUMNS}",
        uuid.uuid4(),
        case.category,
        case.source,
        case.micro_grid_id,
        case.latitude,
        case.longitude,
        case.description,
        case.attachment_refs,
        case.reporter_id,
        case.assignee_id,
        case.patrol_id,
    )
    assert record is not None
    row = CaseRow(**dict(record))
    await conn.execute(
        "INSERT INTO case_timeline (case_id, seq, status, actor_id, time, step_key)"
        " VALUES ($1, 1, $2, $3, $4, 'reported')",
        row.id,
        REPORTED,
        actor_id,
        row.report_time,
    )
    await conn.execute(
        f"INSERT INTO case_counts (year, micro_grid_id, category, cases)"
        f" VALUES ({YEAR_OF}, $2, $3, 1) ON CONFLICT (year, micro_grid_id, category)"
        f" DO UPDATE SET cases = case_counts.cases + 1",
        row.report_time,
        row.micro_grid_id,
        row.category,
    )
    return row


async def get_case(
    conn: Connection, case_id: uuid.UUID, *, for_update: bool = False
) -> CaseRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE id = $1{lock}", case_id
    )
    return CaseRow(**dict(record)) if record is not None else None


async def timeline(conn: Connection, case_id: uuid.UUID) -> list[TimelineRow]:
    records = await conn.fetch(
        "SELECT status, actor_id, time, note, step_key FROM case_timeline"
        " WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    return [TimelineRow(**dict(r)) for r in records]


async def find_step(
    conn: Connection, case_id: uuid.UUID, step_key: str
) -> TimelineRow | None:
    record = await conn.fetchrow(
        "SELECT status, actor_id, time, note, step_key FROM case_timeline"
        " WHERE case_id = $1 AND step_key = $2",
        case_id,
        step_key,
    )
    return TimelineRow(**dict(record)) if record is not None else None


async def append_step(
    conn: Connection,
    case: CaseRow,
    *,
    step: TimelineRow,
    assignee_id: str,
) -> CaseRow:
    """Adds a timeline entry and applies its status and assignee to the case."""
    await conn.execute(
        "INSERT INTO case_timeline (case_id, seq, status, actor_id, time, note,"
        " step_key) SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, now(), $4, $5"
        " FROM case_timeline WHERE case_id = $1",
        case.id,
        step.status,
        step.actor_id,
        step.note,
        step.step_key,
    )
    record = await conn.fetchrow(
        f"UPDATE cases SET status = $2, assignee_id = $3, update_time = now()"
        f" WHERE id = $1 RETURNING {_CASE_COLUMNS}",
        case.id,
        step.status,
        assignee_id,
    )
    assert record is not None
    return CaseRow(**dict(record))


@dataclass(frozen=True)
class CaseFilter:
    area_id: uuid.UUID
    category: int
    status: int
    start_time: datetime | None
    end_time: datetime | None


async def list_cases(
    conn: Connection,
    where: CaseFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[CaseRow]:
    """Cases of an area's subtree, newest first, after a keyset cursor."""
    records = await conn.fetch(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE {_IN_AREA}"
        "   AND ($2 = 0 OR category = $2) AND ($3 = 0 OR status = $3)"
        "   AND ($4::timestamptz IS NULL OR report_time >= $4)"
        "   AND ($5::timestamptz IS NULL OR report_time < $5)"
        "   AND ($6::timestamptz IS NULL OR (report_time, id) < ($6, $7::uuid))"
        " ORDER BY report_time DESC, id DESC LIMIT $8",
        where.area_id,
        where.category,
        where.status,
        where.start_time,
        where.end_time,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [CaseRow(**dict(r)) for r in records]


async def list_reporter_cases(
    conn: Connection,
    reporter_id: str,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[CaseRow]:
    records = await conn.fetch(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE reporter_id = $1"
        "   AND ($2::timestamptz IS NULL OR (report_time, id) < ($2, $3::uuid))"
        " ORDER BY report_time DESC, id DESC LIMIT $4",
        reporter_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [CaseRow(**dict(r)) for r in records]


async def insert_patrol(
    conn: Connection,
    *,
    worker_id: uuid.UUID,
    micro_grid_id: uuid.UUID,
    household_id: str | None,
    kind: int,
    patrol_time: datetime,
    notes: str,
) -> PatrolRow:
    record = await conn.fetchrow(
        f"INSERT INTO patrols (id, worker_id, micro_grid_id, household_id, kind,"
        f" patrol_time, notes) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        f" RETURNING {_PATROL_COLUMNS}",
        uuid.uuid4(),
        worker_id,
        micro_grid_id,
        household_id,
        kind,
        patrol_time,
        notes,
    )
    await conn.execute(
        f"INSERT INTO patrol_counts (year, micro_grid_id, patrols)"
        f" VALUES ({YEAR_OF}, $2, 1) ON CONFLICT (year, micro_grid_id)"
        f" DO UPDATE SET patrols = patrol_counts.patrols + 1",
        patrol_time,
        micro_grid_id,
    )
    assert record is not None
    return PatrolRow(**dict(record))


async def get_patrol(conn: Connection, patrol_id: uuid.UUID) -> PatrolRow | None:
    record = await conn.fetchrow(
        f"SELECT {_PATROL_COLUMNS} FROM patrols WHERE id = $1", patrol_id
    )
    return PatrolRow(**dict(record)) if record is not None else None


async def patrol_case_ids(conn: Connection, patrol_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT id FROM cases WHERE patrol_id = $1 ORDER BY report_time, id",
        patrol_id,
    )
    return [r["id"] for r in rows]


async def list_patrols(
    conn: Connection,
    area_id: uuid.UUID,
    worker_id: uuid.UUID | None,
    span: tuple[datetime | None, datetime | None],
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[PatrolRow]:
    records = await conn.fetch(
        f"SELECT {_PATROL_COLUMNS} FROM patrols WHERE {_IN_AREA}"
        "   AND ($2::uuid IS NULL OR worker_id = $2)"
        "   AND ($3::timestamptz IS NULL OR patrol_time >= $3)"
        "   AND ($4::timestamptz IS NULL OR patrol_time < $4)"
        "   AND ($5::timestamptz IS NULL OR (patrol_time, id) < ($5, $6::uuid))"
        " ORDER BY patrol_time DESC, id DESC LIMIT $7",
        area_id,
        worker_id,
        span[0],
        span[1],
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [PatrolRow(**dict(r)) for r in records]


async def annual_counts(
    conn: Connection, area_id: uuid.UUID, year: int
) -> tuple[int, dict[int, int]]:
    """Patrols, and cases by category, of an area's subtree in a year."""
    in_area = (
        "JOIN areas a ON a.id = r.micro_grid_id"
        " WHERE r.year = $2 AND (a.id = $1 OR a.ancestor_ids @> ARRAY[$1::uuid])"
    )
    rows = await conn.fetch(
        f"SELECT r.category, sum(r.cases)::bigint AS cases FROM case_counts r"
        f" {in_area} GROUP BY r.category",
        area_id,
        year,
    )
    patrols = await conn.fetchval(
        f"SELECT coalesce(sum(r.patrols), 0)::bigint FROM patrol_counts r {in_area}",
        area_id,
        year,
    )
    return int(patrols), {r["category"]: int(r["cases"]) for r in rows}
