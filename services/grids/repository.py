"""SQL for the grids schema. Functions take a connection so that callers can
run them inside one transaction (with the request_id claim, for example).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common.db import Connection

_AREA_COLUMNS = (
    "id, kind, name, parent_id, code, ancestor_ids, create_time, update_time"
)


@dataclass(frozen=True)
class AreaRow:
    id: uuid.UUID
    kind: int
    name: str
    parent_id: uuid.UUID | None
    code: str | None
    ancestor_ids: list[uuid.UUID]
    create_time: datetime
    update_time: datetime


def _area(record: asyncpg.Record | None) -> AreaRow | None:
    return AreaRow(**dict(record)) if record is not None else None


async def get_area(
    conn: Connection, area_id: uuid.UUID, *, for_update: bool = False
) -> AreaRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_AREA_COLUMNS} FROM areas WHERE id = $1{lock}", area_id
    )
    return _area(record)


async def insert_area(
    conn: Connection,
    *,
    kind: int,
    name: str,
    parent: AreaRow | None,
    code: str | None,
) -> AreaRow:
    ancestors = [*parent.ancestor_ids, parent.id] if parent else []
    record = await conn.fetchrow(
        f"INSERT INTO areas (id, kind, name, parent_id, code, ancestor_ids)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_AREA_COLUMNS}",
        uuid.uuid4(),
        kind,
        name,
        parent.id if parent else None,
        code,
        ancestors,
    )
    area = _area(record)
    assert area is not None
    return area


async def list_children(
    conn: Connection,
    parent_id: uuid.UUID | None,
    *,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[AreaRow]:
    """Children of parent_id (cities when None) in (name, id) order after a cursor."""
    records = await conn.fetch(
        f"SELECT {_AREA_COLUMNS} FROM areas"
        " WHERE parent_id IS NOT DISTINCT FROM $1"
        "   AND ($2::text IS NULL OR (name, id) > ($2::text, $3::uuid))"
        " ORDER BY name, id LIMIT $4",
        parent_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [AreaRow(**dict(r)) for r in records]


async def rename_area(conn: Connection, area_id: uuid.UUID, name: str) -> AreaRow:
    record = await conn.fetchrow(
        f"UPDATE areas SET name = $2, update_time = now() WHERE id = $1"
        f" RETURNING {_AREA_COLUMNS}",
        area_id,
        name,
    )
    area = _area(record)
    assert area is not None
    return area


async def move_area(conn: Connection, area: AreaRow, new_parent: AreaRow) -> AreaRow:
    """Re-parents area and rewrites the ancestor lists of its whole subtree."""
    new_ancestors = [*new_parent.ancestor_ids, new_parent.id]
    # Descendants keep what follows the area in their lists, and take the
    # area's new ancestors in front of it.
    await conn.execute(
        "UPDATE areas SET ancestor_ids = $2::uuid[] || ancestor_ids[$3:],"
        " update_time = now() WHERE ancestor_ids @> ARRAY[$1::uuid]",
        area.id,
        new_ancestors,
        len(area.ancestor_ids) + 1,
    )
    record = await conn.fetchrow(
        f"UPDATE areas SET parent_id = $2, ancestor_ids = $3, update_time = now()"
        f" WHERE id = $1 RETURNING {_AREA_COLUMNS}",
        area.id,
        new_parent.id,
        new_ancestors,
    )
    moved = _area(record)
    assert moved is not None
    return moved


@dataclass(frozen=True)
class ModeRow:
    """The switch in force on an area (see migrations/0005_area_modes.sql)."""

    area_id: uuid.UUID
    mode: int
    reason: str
    switched_by: str
    switch_time: datetime


_MODE_COLUMNS = "m.area_id, m.mode, m.reason, m.switched_by, m.switch_time"


async def set_mode(
    conn: Connection, area: AreaRow, *, mode: int, reason: str, switched_by: str
) -> ModeRow:
    """Switches area and its subtree: the rows beneath it give way to this one."""
    await conn.execute(
        "DELETE FROM area_modes m USING areas a"
        " WHERE a.id = m.area_id AND a.ancestor_ids @> ARRAY[$1::uuid]",
        area.id,
    )
    record = await conn.fetchrow(
        "INSERT INTO area_modes AS m (area_id, mode, reason, switched_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (area_id) DO UPDATE SET"
        " mode = excluded.mode, reason = excluded.reason,"
        " switched_by = excluded.switched_by, switch_time = now()"
        f" RETURNING {_MODE_COLUMNS}",
        area.id,
        mode,
        reason,
        switched_by,
    )
    assert record is not None
    await conn.execute(
        "INSERT INTO area_mode_switches (id, area_id, mode, reason, switched_by)"
        " VALUES ($1, $2, $3, $4, $5)",
        uuid.uuid4(),
        area.id,
        mode,
        reason,
        switched_by,
    )
    return ModeRow(**dict(record))


async def effective_mode(conn: Connection, area: AreaRow) -> ModeRow | None:
    """The switch in force on area: its own or its nearest switched ancestor's."""
    record = await conn.fetchrow(
        f"SELECT {_MODE_COLUMNS} FROM area_modes m JOIN areas a ON a.id = m.area_id"
        " WHERE m.area_id = ANY($1::uuid[])"
        " ORDER BY cardinality(a.ancestor_ids) DESC LIMIT 1",
        [*area.ancestor_ids, area.id],
    )
    return ModeRow(**dict(record)) if record is not None else None
