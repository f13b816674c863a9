"""SQL for the care schema. Functions take a connection, so callers can run
them inside one transaction with the request_id claim."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from services.common.db import Connection

_PLAN_COLUMNS = (
    "recipient_id, squad_id, member_id, village_id, micro_grid_id, area_ids,"
    " lives_alone, visit_every_days, contact_channel, contact_from, contact_to,"
    " last_visit_time, create_time, update_time"
)
PENDING, DELIVERED, REFUSED = 1, 2, 3
NOT_AT_HOME = 2


@dataclass(frozen=True)
class NeedRow:
    kind: int
    every_days: int
    last_delivery_time: datetime | None
    create_time: datetime


@dataclass(frozen=True)
class PlanRow:
    recipient_id: uuid.UUID
    squad_id: uuid.UUID
    member_id: uuid.UUID
    village_id: uuid.UUID
    micro_grid_id: uuid.UUID
    area_ids: list[uuid.UUID]
    lives_alone: bool
    visit_every_days: int
    contact_channel: int
    contact_from: int
    contact_to: int
    last_visit_time: datetime | None
    create_time: datetime
    update_time: datetime
    needs: list[NeedRow] = field(default_factory=list)


@dataclass(frozen=True)
class Placement:
    """Where a recipient is served from, decided at assignment."""

    squad_id: uuid.UUID
    member_id: uuid.UUID
    village_id: uuid.UUID
    micro_grid_id: uuid.UUID
    area_ids: list[uuid.UUID]
    lives_alone: bool


async def _needs(
    conn: Connection, recipient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[NeedRow]]:
    records = await conn.fetch(
        "SELECT recipient_id, kind, every_days, last_delivery_time, create_time"
        " FROM regular_needs WHERE recipient_id = ANY($1::uuid[]) ORDER BY kind",
        recipient_ids,
    )
    found: dict[uuid.UUID, list[NeedRow]] = {}
    for r in records:
        row = dict(r)
        found.setdefault(row.pop("recipient_id"), []).append(NeedRow(**row))
    return found


async def _plans(records: list[asyncpg.Record], conn: Connection) -> list[PlanRow]:
    needs = await _needs(conn, [r["recipient_id"] for r in records])
    return [PlanRow(**dict(r), needs=needs.get(r["recipient_id"], [])) for r in records]


async def get_plan(
    conn: Connection, recipient_id: uuid.UUID, *, for_update: bool = False
) -> PlanRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_PLAN_COLUMNS} FROM care_plans WHERE recipient_id = $1{lock}",
        recipient_id,
    )
    if record is None:
        return None
    (plan,) = await _plans([record], conn)
    return plan


async def assign(
    conn: Connection, recipient_id: uuid.UUID, place: Placement, every_days: int
) -> PlanRow:
    """Creates the plan, or moves an existing one to the new squad and member."""
    await conn.execute(
        "INSERT INTO care_plans (recipient_id, squad_id, member_id, village_id,"
        " micro_grid_id, area_ids, lives_alone, visit_every_days)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (recipient_id) DO UPDATE SET squad_id = excluded.squad_id,"
        " member_id = excluded.member_id, village_id = excluded.village_id,"
        " micro_grid_id = excluded.micro_grid_id, area_ids = excluded.area_ids,"
        " lives_alone = excluded.lives_alone, update_time = now()",
        recipient_id,
        place.squad_id,
        place.member_id,
        place.village_id,
        place.micro_grid_id,
        place.area_ids,
        place.lives_alone,
        every_days,
    )
    plan = await get_plan(conn, recipient_id)
    assert plan is not None
    return plan


async def set_plan(
    conn: Connection,
    recipient_id: uuid.UUID,
    *,
    every_days: int,
    contact: tuple[int, int, int],
    needs: dict[int, int],
) -> PlanRow:
    """Replaces frequency, contact and needs; delivery history of kept needs stays."""
    await conn.execute(
        "UPDATE care_plans SET visit_every_days = $2, contact_channel = $3,"
        " contact_from = $4, contact_to = $5, update_time = now()"
        " WHERE recipient_id = $1",
        recipient_id,
        every_days,
        *contact,
    )
    await conn.execute(
        "DELETE FROM regular_needs WHERE recipient_id = $1 AND NOT kind = ANY($2)",
        recipient_id,
        list(needs),
    )
    await conn.executemany(
        "INSERT INTO regular_needs (recipient_id, kind, every_days)"
        " VALUES ($1, $2, $3) ON CONFLICT (recipient_id, kind)"
        " DO UPDATE SET every_days = excluded.every_days",
        [(recipient_id, kind, days) for kind, days in needs.items()],
    )
    plan = await get_plan(conn, recipient_id)
    assert plan is not None
    return plan


@dataclass(frozen=True)
class VisitRow:
    id: uuid.UUID
    recipient_id: uuid.UUID
    squad_id: uuid.UUID
    member_id: uuid.UUID
    outcome: int
    delivered_needs: list[int]
    case_id: uuid.UUID | None
    errand_id: uuid.UUID | None
    visit_time: datetime


async def insert_visit(
    conn: Connection,
    plan: PlanRow,
    *,
    visit_id: uuid.UUID,
    member_id: uuid.UUID,
    outcome: int,
    delivered: list[int],
    case_id: uuid.UUID | None,
    errand_id: uuid.UUID | None,
) -> VisitRow:
    """Records the visit; the plan's last visit and delivered needs move with it."""
    record = await conn.fetchrow(
        "INSERT INTO visits (id, recipient_id, squad_id, member_id, outcome,"
        " delivered_needs, case_id, errand_id, area_ids)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " RETURNING id, recipient_id, squad_id, member_id, outcome, delivered_needs,"
        " case_id, errand_id, visit_time",
        visit_id,
        plan.recipient_id,
        plan.squad_id,
        member_id,
        outcome,
        delivered,
        case_id,
        errand_id,
        plan.area_ids,
    )
    assert record is not None
    visit = VisitRow(**dict(record))
    if outcome == NOT_AT_HOME:
        # Nobody was seen: the visit stays due, and turns into a missed visit
        # for the grid worker if nobody gets in before the grace runs out.
        return visit
    await conn.execute(
        "UPDATE care_plans SET last_visit_time = $2 WHERE recipient_id = $1",
        plan.recipient_id,
        visit.visit_time,
    )
    await conn.execute(
        "UPDATE regular_needs SET last_delivery_time = $3"
        " WHERE recipient_id = $1 AND kind = ANY($2::smallint[])",
        plan.recipient_id,
        delivered,
        visit.visit_time,
    )
    return visit


async def squad_plans(conn: Connection, squad_id: uuid.UUID) -> list[PlanRow]:
    records = await conn.fetch(
        f"SELECT {_PLAN_COLUMNS} FROM care_plans WHERE squad_id = $1"
        " ORDER BY recipient_id",
        squad_id,
    )
    return await _plans(list(records), conn)


# ---- campaigns ----


@dataclass(frozen=True)
class CampaignRow:
    id: uuid.UUID
    kind: int
    village_ids: list[uuid.UUID]
    due_time: datetime
    started_by: str
    workflow_id: str
    create_time: datetime
    enrolling: bool
    pending: int
    delivered: int
    refused: int


@dataclass(frozen=True)
class CampaignRecipientRow:
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    village_id: uuid.UUID
    micro_grid_id: uuid.UUID
    status: int
    recorded_by: str
    update_time: datetime


_RECIPIENT_COLUMNS = (
    "campaign_id, recipient_id, village_id, micro_grid_id, status, recorded_by,"
    " update_time"
)


async def insert_campaign(
    conn: Connection,
    *,
    campaign_id: uuid.UUID,
    kind: int,
    village_ids: list[uuid.UUID],
    due_time: datetime,
    started_by: str,
    workflow_id: str,
) -> CampaignRow:
    await conn.execute(
        "INSERT INTO campaigns (id, kind, village_ids, due_time, started_by,"
        " workflow_id) VALUES ($1, $2, $3, $4, $5, $6)",
        campaign_id,
        kind,
        village_ids,
        due_time,
        started_by,
        workflow_id,
    )
    await conn.executemany(
        "INSERT INTO campaign_villages (campaign_id, village_id) VALUES ($1, $2)",
        [(campaign_id, v) for v in village_ids],
    )
    campaign = await get_campaign(conn, campaign_id)
    assert campaign is not None
    return campaign


async def get_campaign(
    conn: Connection, campaign_id: uuid.UUID, *, for_update: bool = False
) -> CampaignRow | None:
    lock = " FOR UPDATE OF c" if for_update else ""
    record = await conn.fetchrow(
        "SELECT c.id, c.kind, c.village_ids, c.due_time, c.started_by,"
        " c.workflow_id, c.create_time,"
        " EXISTS (SELECT 1 FROM campaign_villages v WHERE v.campaign_id = c.id"
        "   AND NOT v.enrolled) AS enrolling,"
        " (SELECT count(*) FILTER (WHERE status = 1) FROM campaign_recipients r"
        "   WHERE r.campaign_id = c.id)::int AS pending,"
        " (SELECT count(*) FILTER (WHERE status = 2) FROM campaign_recipients r"
        "   WHERE r.campaign_id = c.id)::int AS delivered,"
        " (SELECT count(*) FILTER (WHERE status = 3) FROM campaign_recipients r"
        "   WHERE r.campaign_id = c.id)::int AS refused"
        f" FROM campaigns c WHERE c.id = $1{lock}",
        campaign_id,
    )
    return CampaignRow(**dict(record)) if record is not None else None


@dataclass(frozen=True)
class Enrolment:
    recipient_id: uuid.UUID
    micro_grid_id: uuid.UUID
    area_ids: list[uuid.UUID]


async def enroll(
    conn: Connection,
    campaign_id: uuid.UUID,
    village_id: uuid.UUID,
    recipients: list[Enrolment],
    *,
    last_page: bool,
) -> int:
    """Adds recipients not yet in the campaign; returns how many were new."""
    status: str = await conn.execute(
        "INSERT INTO campaign_recipients (campaign_id, recipient_id, village_id,"
        " micro_grid_id, area_ids)"
        " SELECT $1, r, $2, m, a::uuid[]"
        " FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS t(r, m, a)"
        " ON CONFLICT DO NOTHING",
        campaign_id,
        village_id,
        [r.recipient_id for r in recipients],
        [r.micro_grid_id for r in recipients],
        ["{" + ",".join(str(a) for a in r.area_ids) + "}" for r in recipients],
    )
    if last_page:
        await conn.execute(
            "UPDATE campaign_villages SET enrolled = true"
            " WHERE campaign_id = $1 AND village_id = $2",
            campaign_id,
            village_id,
        )
    return int(status.split()[-1])


async def get_campaign_recipient(
    conn: Connection, campaign_id: uuid.UUID, recipient_id: uuid.UUID
) -> CampaignRecipientRow | None:
    record = await conn.fetchrow(
        f"SELECT {_RECIPIENT_COLUMNS} FROM campaign_recipients"
        " WHERE campaign_id = $1 AND recipient_id = $2 FOR UPDATE",
        campaign_id,
        recipient_id,
    )
    return CampaignRecipientRow(**dict(record)) if record is not None else None


async def set_recipient_status(
    conn: Connection,
    campaign_id: uuid.UUID,
    recipient_id: uuid.UUID,
    status: int,
    recorded_by: str,
) -> CampaignRecipientRow:
    record = await conn.fetchrow(
        "UPDATE campaign_recipients SET status = $3, recorded_by = $4,"
        " update_time = now() WHERE campaign_id = $1 AND recipient_id = $2"
        f" RETURNING {_RECIPIENT_COLUMNS}",
        campaign_id,
        recipient_id,
        status,
        recorded_by,
    )
    assert record is not None
    return CampaignRecipientRow(**dict(record))


async def list_campaign_recipients(
    conn: Connection,
    campaign_id: uuid.UUID,
    status: int,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[CampaignRecipientRow]:
    records = await conn.fetch(
        f"SELECT {_RECIPIENT_COLUMNS} FROM campaign_recipients"
        " WHERE campaign_id = $1 AND ($2 = 0 OR status = $2)"
        "   AND ($3::uuid IS NULL OR recipient_id > $3)"
        " ORDER BY recipient_id LIMIT $4",
        campaign_id,
        status,
        after,
        limit,
    )
    return [CampaignRecipientRow(**dict(r)) for r in records]


# ---- figures ----


async def figures(
    conn: Connection, area_id: uuid.UUID, year: int, time_zone: str
) -> dict[str, int]:
    """A year's squad work in an area, counted in the report's time zone."""
    in_year = "extract(year FROM {} AT TIME ZONE $3) = $2"
    visits = await conn.fetchrow(
        "SELECT count(*)::int AS visits,"
        " count(*) FILTER (WHERE outcome = 2)::int AS visits_not_at_home,"
        " count(*) FILTER (WHERE outcome = 3)::int AS visits_needing_help,"
        " coalesce(sum(cardinality(delivered_needs)), 0)::int AS deliveries,"
        " count(*) FILTER (WHERE 1 = ANY(delivered_needs))::int"
        "   AS medicine_deliveries,"
        " count(case_id)::int AS cases_opened,"
        " count(errand_id)::int AS errands_opened"
        " FROM visits WHERE area_ids @> ARRAY[$1::uuid] AND "
        + in_year.format("visit_time"),
        area_id,
        year,
        time_zone,
    )
    campaign = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE c.kind = 1)::int AS care_packages,"
        " count(*)::int AS campaign_deliveries"
        " FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id"
        " WHERE r.status = 2 AND r.area_ids @> ARRAY[$1::uuid] AND "
        + in_year.format("r.update_time"),
        area_id,
        year,
        time_zone,
    )
    assert visits is not None
    assert campaign is not None
    return {**dict(visits), **dict(campaign)}
