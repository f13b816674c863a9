"""SQL for the errands schema. Functions take a connection so callers can run
them inside one transaction with the request_id claim."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudark.errands.v1 import errands_pb2 as pb

from services.common.db import Connection


@dataclass(frozen=True)
class ErrandRow:
    id: uuid.UUID
    resident_id: uuid.UUID
    kind: int
    details: str
    source_reference: str
    micro_grid_id: uuid.UUID
    area_ids: list[uuid.UUID]
    status: int
    due_time: datetime
    breached: bool
    offered_helper_ids: list[uuid.UUID]
    helper_id: uuid.UUID | None
    delivery_note: str
    photo_ref: str
    rating: int
    rating_comment: str
    create_time: datetime
    update_time: datetime
    accept_time: datetime | None
    pick_up_time: datetime | None
    deliver_time: datetime | None
    cancel_time: datetime | None

    @property
    def ancestor_ids(self) -> list[uuid.UUID]:
        """City, town, village, grid: the areas above the micro-grid."""
        return self.area_ids[:-1]


@dataclass(frozen=True)
class StepRow:
    kind: int
    helper_id: uuid.UUID | None
    note: str
    create_time: datetime


_COLUMNS = ", ".join(ErrandRow.__dataclass_fields__)

# The timestamp each step kind sets on the errand, first time only.
_STEP_TIMES: dict[int, str] = {
    pb.STEP_KIND_ACCEPTED: "accept_time",
    pb.STEP_KIND_PICKED_UP: "pick_up_time",
    pb.STEP_KIND_DELIVERED: "deliver_time",
    pb.STEP_KIND_CANCELLED: "cancel_time",
}


def _row(record: Any) -> ErrandRow:
    return ErrandRow(**dict(record))


async def insert_errand(
    conn: Connection,
    *,
    id: uuid.UUID,
    resident_id: uuid.UUID,
    kind: int,
    details: str,
    source_reference: str,
    area_ids: list[uuid.UUID],
    create_time: datetime,
    due_time: datetime,
) -> ErrandRow:
    record = await conn.fetchrow(
        f"INSERT INTO errands (id, resident_id, kind, details, source_reference,"
        f" micro_grid_id, area_ids, status, due_time, create_time, update_time)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
        f" RETURNING {_COLUMNS}",
        id,
        resident_id,
        kind,
        details,
        source_reference,
        area_ids[-1],
        area_ids,
        pb.ERRAND_STATUS_WAITING_FOR_HELPER,
        due_time,
        create_time,
    )
    await insert_step(conn, id, "request", pb.STEP_KIND_REQUESTED, None, "")
    return _row(record)


async def get_errand(
    conn: Connection, errand_id: uuid.UUID, *, for_update: bool = False
) -> ErrandRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM errands WHERE id = $1{lock}", errand_id
    )
    return _row(record) if record else None


async def insert_step(
    conn: Connection,
    errand_id: uuid.UUID,
    step_key: str,
    kind: int,
    helper_id: uuid.UUID | None,
    note: str,
) -> bool:
    """Appends a step; False (and nothing written) when its key is recorded."""
    inserted = await conn.fetchval(
        "INSERT INTO errand_steps (errand_id, step_key, kind, helper_id, note)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (errand_id, step_key) DO NOTHING RETURNING true",
        errand_id,
        step_key,
        kind,
        helper_id,
        note,
    )
    return bool(inserted)


async def list_steps(conn: Connection, errand_id: uuid.UUID) -> list[StepRow]:
    records = await conn.fetch(
        "SELECT kind, helper_id, note, create_time FROM errand_steps"
        " WHERE errand_id = $1 ORDER BY id",
        errand_id,
    )
    return [StepRow(**dict(r)) for r in records]


async def apply_step(
    conn: Connection,
    errand_id: uuid.UUID,
    *,
    kind: int,
    status: int,
    offered_helper_ids: list[uuid.UUID],
    helper_id: uuid.UUID | None,
    breached: bool,
    delivery_note: str,
    photo_ref: str,
) -> ErrandRow:
    """Sets the errand's state as the workflow sees it after a step."""
    stamp = _STEP_TIMES.get(kind)
    stamp_sql = f", {stamp} = coalesce({stamp}, now())" if stamp else ""
    record = await conn.fetchrow(
        f"UPDATE errands SET status = $2, offered_helper_ids = $3, helper_id = $4,"
        f" breached = breached OR $5,"
        f" delivery_note = CASE WHEN $6 = '' THEN delivery_note ELSE $6 END,"
        f" photo_ref = CASE WHEN $7 = '' THEN photo_ref ELSE $7 END,"
        f" update_time = now(){stamp_sql}"
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        errand_id,
        status,
        offered_helper_ids,
        helper_id,
        breached,
        delivery_note,
        photo_ref,
    )
    return _row(record)


async def rate_errand(
    conn: Connection, errand_id: uuid.UUID, rating: int, comment: str
) -> ErrandRow:
    record = await conn.fetchrow(
        f"UPDATE errands SET rating = $2, rating_comment = $3, update_time = now()"
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        errand_id,
        rating,
        comment,
    )
    await insert_step(conn, errand_id, "rate", pb.STEP_KIND_RATED, None, "")
    return _row(record)


@dataclass(frozen=True)
class ErrandFilter:
    resident_id: uuid.UUID | None = None
    helper_id: uuid.UUID | None = None
    area_id: uuid.UUID | None = None
    status: int = 0
    # Staff scope: errands in these areas, or offered to / taken by scope_helper.
    scope_area_ids: Sequence[uuid.UUID] | None = None
    scope_helper_id: uuid.UUID | None = None


async def list_errands(
    conn: Connection, where: ErrandFilter, after: list[Any] | None, limit: int
) -> list[ErrandRow]:
    """Newest first, keyset-paged on (create_time, id)."""
    clauses, args = _filter_sql(where)
    if after is not None:
        args += [datetime.fromisoformat(after[0]), uuid.UUID(after[1])]
        clauses.append(f"(create_time, id) < (${len(args) - 1}, ${len(args)})")
    sql = f"SELECT {_COLUMNS} FROM errands"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    args.append(limit)
    sql += f" ORDER BY create_time DESC, id DESC LIMIT ${len(args)}"
    return [_row(r) for r in await conn.fetch(sql, *args)]


def _filter_sql(where: ErrandFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if where.resident_id is not None:
        clauses.append(f"resident_id = {arg(where.resident_id)}")
    if where.helper_id is not None:
        helper = arg(where.helper_id)
        clauses.append(f"(helper_id = {helper} OR {helper} = ANY(offered_helper_ids))")
    if where.area_id is not None:
        clauses.append(f"{arg(where.area_id)} = ANY(area_ids)")
    if where.status:
        clauses.append(f"status = {arg(where.status)}")
    if where.scope_area_ids is not None:
        scope = [f"area_ids && {arg(list(where.scope_area_ids))}::uuid[]"]
        if where.scope_helper_id is not None:
            helper = arg(where.scope_helper_id)
            scope.append(f"helper_id = {helper} OR {helper} = ANY(offered_helper_ids)")
        clauses.append("(" + " OR ".join(scope) + ")")
    return clauses, args
