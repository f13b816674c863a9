"""SQL for the casework schema: category deadlines and the cases started."""

import uuid
from dataclasses import dataclass

from services.common.db import Connection
from workflows.casework.steps import CaseRules


@dataclass(frozen=True)
class CaseRow:
    id: uuid.UUID
    category: int
    source: int
    micro_grid_id: uuid.UUID
    grid_id: uuid.UUID
    village_id: uuid.UUID
    town_id: uuid.UUID
    reporter_id: str
    duplicate_of: uuid.UUID | None


async def category_rules(conn: Connection, category: int) -> CaseRules | None:
    row = await conn.fetchrow(
        "SELECT verify_hours, rectify_days, reminder_hours, acknowledge_hours,"
        " dispute_days FROM category_rules WHERE category = $1",
        category,
    )
    return None if row is None else CaseRules(**dict(row))


async def lock_micro_grid_category(
    conn: Connection, micro_grid_id: uuid.UUID, category: int
) -> None:
    """Serialises reports of one category in one micro-grid until commit, so
    two reports of the same hazard cannot both miss each other."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 8))",
        f"casework/{micro_grid_id}/{category}",
    )


async def insert_case(conn: Connection, row: CaseRow) -> None:
    await conn.execute(
        "INSERT INTO cases (id, category, source, micro_grid_id, grid_id,"
        " village_id, town_id, reporter_id, duplicate_of)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (id) DO NOTHING",
        row.id,
        row.category,
        row.source,
        row.micro_grid_id,
        row.grid_id,
        row.village_id,
        row.town_id,
        row.reporter_id,
        row.duplicate_of,
    )


async def get_case(conn: Connection, case_id: uuid.UUID) -> CaseRow | None:
    row = await conn.fetchrow(
        "SELECT id, category, source, micro_grid_id, grid_id, village_id,"
        " town_id, reporter_id, duplicate_of FROM cases WHERE id = $1",
        case_id,
    )
    return None if row is None else CaseRow(**dict(row))


async def is_duplicate(conn: Connection, case_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        "SELECT duplicate_of IS NOT NULL FROM cases WHERE id = $1", case_id
    )
    return bool(found)


async def all_category_rules(conn: Connection) -> list[tuple[int, CaseRules]]:
    rows = await conn.fetch(
        "SELECT category, verify_hours, rectify_days, reminder_hours,"
        " acknowledge_hours, dispute_days FROM category_rules ORDER BY category"
    )
    return [
        (
            row["category"],
            CaseRules(**{k: v for k, v in row.items() if k != "category"}),
        )
        for row in rows
    ]


async def set_category_rule(conn: Connection, category: int, rules: CaseRules) -> None:
    await conn.execute(
        "INSERT INTO category_rules (category, verify_hours, rectify_days,"
        " reminder_hours, acknowledge_hours, dispute_days)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (category) DO UPDATE SET verify_hours = $2,"
        " rectify_days = $3, reminder_hours = $4, acknowledge_hours = $5,"
        " dispute_days = $6, update_time = now()",
        category,
        rules.verify_hours,
        rules.rectify_days,
        rules.reminder_hours,
        rules.acknowledge_hours,
        rules.dispute_days,
    )
