"""SQL for helpers and squads. Functions take a connection, so callers can run
them inside one transaction with the request_id claim.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common.db import Connection

_HELPER_COLUMNS = (
    "h.id, h.kind, h.person_id, h.supervisor_id, h.department_kind,"
    " h.handled_categories, h.squad_id, h.member_kind, h.availability, h.load,"
    " h.active, h.create_time, h.update_time,"
    " ARRAY(SELECT ha.area_id FROM helper_areas ha WHERE ha.helper_id = h.id"
    " ORDER BY ha.area_id) AS area_ids"
)

ON_DUTY = 1
GRID_WORKER, VOLUNTEER, SQUAD_MEMBER = 1, 2, 5
WARTIME = 2


@dataclass(frozen=True)
class HelperRow:
    id: uuid.UUID
    kind: int
    person_id: str
    supervisor_id: uuid.UUID | None
    department_kind: int
    handled_categories: list[int]
    squad_id: uuid.UUID | None
    member_kind: int
    availability: int
    load: int
    active: bool
    create_time: datetime
    update_time: datetime
    area_ids: list[uuid.UUID]


@dataclass(frozen=True)
class SquadRow:
    id: uuid.UUID
    village_id: uuid.UUID
    name: str
    create_time: datetime


@dataclass(frozen=True)
class HelperPlace:
    """An area a helper serves, and the village it lies in."""

    area_id: uuid.UUID
    village_id: uuid.UUID | None


def _helper(record: asyncpg.Record | None) -> HelperRow | None:
    return HelperRow(**dict(record)) if record is not None else None


async def get_helper(
    conn: Connection, helper_id: uuid.UUID, *, for_update: bool = False
) -> HelperRow | None:
    lock = " FOR UPDATE OF h" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_HELPER_COLUMNS} FROM helpers h WHERE h.id = $1{lock}", helper_id
    )
    return _helper(record)


async def insert_helper(
    conn: Connection,
    *,
    kind: int,
    person_id: str,
    places: list[HelperPlace],
    supervisor_id: uuid.UUID | None,
    department_kind: int,
    handled_categories: list[int],
    squad_id: uuid.UUID | None,
    member_kind: int,
    availability: int,
) -> HelperRow:
    helper_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO helpers (id, kind, person_id, supervisor_id, department_kind,"
        " handled_categories, squad_id, member_kind, availability)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        helper_id,
        kind,
        person_id,
        supervisor_id,
        department_kind,
        handled_categories,
        squad_id,
        member_kind,
        availability,
    )
    await _insert_places(conn, helper_id, kind, places)
    helper = await get_helper(conn, helper_id)
    assert helper is not None
    return helper


async def _insert_places(
    conn: Connection, helper_id: uuid.UUID, kind: int, places: list[HelperPlace]
) -> None:
    await conn.executemany(
        "INSERT INTO helper_areas (helper_id, area_id, kind, village_id)"
        " VALUES ($1, $2, $3, $4)",
        [(helper_id, p.area_id, kind, p.village_id) for p in places],
    )


async def update_helper(
    conn: Connection,
    helper: HelperRow,
    *,
    places: list[HelperPlace],
    supervisor_id: uuid.UUID | None,
    handled_categories: list[int],
    member_kind: int,
) -> HelperRow:
    await conn.execute(
        "UPDATE helpers SET supervisor_id = $2, handled_categories = $3,"
        " member_kind = $4, update_time = now() WHERE id = $1",
        helper.id,
        supervisor_id,
        handled_categories,
        member_kind,
    )
    await conn.execute("DELETE FROM helper_areas WHERE helper_id = $1", helper.id)
    await _insert_places(conn, helper.id, helper.kind, places)
    updated = await get_helper(conn, helper.id)
    assert updated is not None
    return updated


async def set_helper_fields(
    conn: Connection, helper_id: uuid.UUID, **fields: object
) -> HelperRow:
    """Sets the named columns (availability, active) and returns the helper."""
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, 2))
    await conn.execute(
        f"UPDATE helpers SET {assignments}, update_time = now() WHERE id = $1",
        helper_id,
        *fields.values(),
    )
    helper = await get_helper(conn, helper_id)
    assert helper is not None
    return helper


async def adjust_load(
    conn: Connection, helper_id: uuid.UUID, delta: int
) -> HelperRow | None:
    """Adds delta to the load; None if the helper is missing or it would go negative."""
    updated = await conn.fetchval(
        "UPDATE helpers SET load = load + $2, update_time = now()"
        " WHERE id = $1 AND load + $2 >= 0 RETURNING id",
        helper_id,
        delta,
    )
    return await get_helper(conn, helper_id) if updated else None


async def list_helpers(
    conn: Connection,
    area_id: uuid.UUID,
    kind: int,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[HelperRow]:
    """Active helpers serving area_id or anything beneath it, in id order."""
    records = await conn.fetch(
        f"SELECT {_HELPER_COLUMNS} FROM helpers h"
        " WHERE h.active AND ($2 = 0 OR h.kind = $2)"
        "   AND ($3::uuid IS NULL OR h.id > $3)"
        "   AND EXISTS (SELECT 1 FROM helper_areas ha JOIN areas a ON a.id = ha.area_id"
        "     WHERE ha.helper_id = h.id"
        "       AND (a.id = $1 OR a.ancestor_ids @> ARRAY[$1::uuid]))"
        " ORDER BY h.id LIMIT $4",
        area_id,
        kind,
        after,
        limit,
    )
    return [HelperRow(**dict(r)) for r in records]


# The micro-grid's grid and village come from its ancestor list
# ([city, town, village, grid]); each tier is one index lookup on
# helper_areas, and a helper found in several tiers keeps its best. In
# wartime (the nearest switch above the micro-grid) squad members go first.
_RANK_SQL = f"""
WITH place AS (
    SELECT id AS micro_grid, ancestor_ids[4] AS grid, ancestor_ids[3] AS village,
        coalesce((
            SELECT m.mode = {WARTIME} FROM area_modes m JOIN areas s ON s.id = m.area_id
            WHERE m.area_id = ANY(areas.ancestor_ids)
            ORDER BY cardinality(s.ancestor_ids) DESC LIMIT 1
        ), false) AS wartime
    FROM areas WHERE id = $1 AND kind = 5
), tiers AS (
    SELECT ha.helper_id, 1 AS tier FROM place p JOIN helper_areas ha
        ON ha.area_id = p.grid AND ha.kind = {GRID_WORKER}
    UNION ALL
    SELECT ha.helper_id, 2 FROM place p JOIN helper_areas ha
        ON ha.area_id = p.micro_grid AND ha.kind = {VOLUNTEER} WHERE $2
    UNION ALL
    SELECT ha.helper_id, 3 FROM place p JOIN helper_areas ha
        ON ha.area_id = p.village AND ha.kind = {SQUAD_MEMBER} WHERE $2
    UNION ALL
    SELECT ha.helper_id, 4 FROM place p JOIN helper_areas ha
        ON ha.village_id = p.village AND ha.kind = {GRID_WORKER}
        AND ha.area_id <> p.grid
), best AS (
    SELECT helper_id, min(tier) AS tier FROM tiers GROUP BY helper_id
)
SELECT {_HELPER_COLUMNS}, b.tier AS rank_tier
FROM best b JOIN helpers h ON h.id = b.helper_id
WHERE h.active AND h.availability = {ON_DUTY}
ORDER BY CASE WHEN b.tier = 3 AND (SELECT wartime FROM place) THEN 0
    ELSE b.tier END, h.load, h.id
LIMIT $3
"""


async def rank_helpers(
    conn: Connection, micro_grid_id: uuid.UUID, *, everyone: bool, limit: int
) -> list[tuple[HelperRow, int]]:
    """On-duty helpers for a micro-grid in dispatch order, with their tiers.

    everyone=False ranks grid workers only (tiers 1 and 4).
    """
    records = await conn.fetch(_RANK_SQL, micro_grid_id, everyone, limit)
    ranked = []
    for record in records:
        row = dict(record)
        tier = row.pop("rank_tier")
        ranked.append((HelperRow(**row), tier))
    return ranked


async def get_squad(conn: Connection, squad_id: uuid.UUID) -> SquadRow | None:
    record = await conn.fetchrow(
        "SELECT id, village_id, name, create_time FROM squads WHERE id = $1", squad_id
    )
    return SquadRow(**dict(record)) if record is not None else None


async def insert_squad(conn: Connection, village_id: uuid.UUID, name: str) -> SquadRow:
    record = await conn.fetchrow(
        "INSERT INTO squads (id, village_id, name) VALUES ($1, $2, $3)"
        " RETURNING id, village_id, name, create_time",
        uuid.uuid4(),
        village_id,
        name,
    )
    assert record is not None
    return SquadRow(**dict(record))


async def list_squads(
    conn: Connection,
    village_id: uuid.UUID,
    *,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[SquadRow]:
    records = await conn.fetch(
        "SELECT id, village_id, name, create_time FROM squads WHERE village_id = $1"
        "   AND ($2::text IS NULL OR (name, id) > ($2::text, $3::uuid))"
        " ORDER BY name, id LIMIT $4",
        village_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [SquadRow(**dict(r)) for r in records]
