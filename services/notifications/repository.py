"""SQL for the notifications schema. Functions take a connection so callers
can run them in one transaction (with the request_id claim, for example)."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common.db import Connection

QUEUED, SENT, DELIVERED, READ, FAILED, RETRYING = 1, 2, 3, 4, 5, 6
MESSAGE, FALLBACK_TEXT, GRID_WORKER_ALERT = 1, 2, 3
APP, TEXT = 1, 2
RESIDENT = 1
PENDING = (QUEUED, RETRYING)


# ---- templates ----


@dataclass(frozen=True)
class TemplateRow:
    id: uuid.UUID
    name: str
    titles: dict[str, str]
    bodies: dict[str, str]
    variables: list[str]


async def insert_template(
    conn: Connection,
    name: str,
    titles: dict[str, str],
    bodies: dict[str, str],
    variables: list[str],
) -> TemplateRow:
    template_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO templates (id, name, titles, bodies, variables)"
        " VALUES ($1, $2, $3, $4, $5)",
        template_id,
        name,
        json.dumps(titles),
        json.dumps(bodies),
        variables,
    )
    return TemplateRow(template_id, name, titles, bodies, variables)


async def get_template(conn: Connection, template_id: uuid.UUID) -> TemplateRow | None:
    row = await conn.fetchrow(
        "SELECT id, name, titles, bodies, variables FROM templates WHERE id = $1",
        template_id,
    )
    return _template(row) if row else None


async def list_templates(
    conn: Connection, after: uuid.UUID | None, limit: int
) -> list[TemplateRow]:
    rows = await conn.fetch(
        "SELECT id, name, titles, bodies, variables FROM templates"
        " WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [_template(r) for r in rows]


def _template(row: Any) -> TemplateRow:
    return TemplateRow(
        id=row["id"],
        name=row["name"],
        titles=json.loads(row["titles"]),
        bodies=json.loads(row["bodies"]),
        variables=list(row["variables"]),
    )


# ---- notifications ----


@dataclass(frozen=True)
class NotificationRow:
    id: uuid.UUID
    sender_id: str
    template_id: uuid.UUID | None
    variables: dict[str, str]
    titles: dict[str, str]
    bodies: dict[str, str]
    audience: bytes
    channels: list[int]
    urgency: int
    fallback_after_seconds: int
    alert_grid_worker: bool
    reference: str
    quiet_start_minute: int | None
    quiet_end_minute: int | None
    expire_time: datetime | None
    recipients: int
    create_time: datetime


_NOTIFICATION = (
    "id, sender_id, template_id, variables, titles, bodies, audience, channels,"
    " urgency, fallback_after_seconds, alert_grid_worker, reference,"
    " quiet_start_minute, quiet_end_minute, expire_time, recipients, create_time"
)


async def insert_notification(conn: Connection, row: NotificationRow) -> None:
    await conn.execute(
        f"INSERT INTO notifications ({_NOTIFICATION}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17)",
        row.id,
        row.sender_id,
        row.template_id,
        json.dumps(row.variables),
        json.dumps(row.titles),
        json.dumps(row.bodies),
        row.audience,
        row.channels,
        row.urgency,
        row.fallback_after_seconds,
        row.alert_grid_worker,
        row.reference,
        row.quiet_start_minute,
        row.quiet_end_minute,
        row.expire_time,
        row.recipients,
        row.create_time,
    )


async def get_notification(
    conn: Connection, notification_id: uuid.UUID
) -> NotificationRow | None:
    row = await conn.fetchrow(
        f"SELECT {_NOTIFICATION} FROM notifications WHERE id = $1", notification_id
    )
    return _notification(row) if row else None


def _notification(row: Any) -> NotificationRow:
    values = dict(row)
    for key in ("variables", "titles", "bodies"):
        values[key] = json.loads(values[key])
    values["channels"] = list(values["channels"])
    return NotificationRow(**values)


async def unstarted_candidates(
    conn: Connection, older_than: timedelta
) -> list[NotificationRow]:
    """Notifications older than that whose workflow was never seen started."""
    rows = await conn.fetch(
        f"SELECT {_NOTIFICATION} FROM notifications WHERE NOT workflow_started"
        " AND create_time < now() - $1::interval ORDER BY create_time",
        older_than,
    )
    return [_notification(r) for r in rows]


async def mark_started(conn: Connection, notification_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE notifications SET workflow_started = true"
        " WHERE id = $1 AND NOT workflow_started",
        notification_id,
    )


async def status_counts(conn: Connection, notification_id: uuid.UUID) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM deliveries"
        " WHERE notification_id = $1 GROUP BY status",
        notification_id,
    )
    return {r["status"]: r["n"] for r in rows}


# ---- deliveries ----


@dataclass(frozen=True)
class NewDelivery:
    purpose: int
    recipient_kind: int
    recipient_id: str
    person_id: str
    micro_grid_id: str
    channel: int
    language: str
    about_id: str = ""
    title: str | None = None
    body: str | None = None


_NEW_COLUMNS = [
    "id",
    "notification_id",
    "seq",
    "purpose",
    "recipient_kind",
    "recipient_id",
    "person_id",
    "about_id",
    "micro_grid_id",
    "channel",
    "language",
    "title",
    "body",
]


async def insert_deliveries(
    conn: Connection, notification_id: uuid.UUID, new: list[NewDelivery], first_seq: int
) -> None:
    """Records new deliveries with COPY; the caller makes them unique."""
    records = [
        (
            uuid.uuid4(),
            notification_id,
            first_seq + i,
            d.purpose,
            d.recipient_kind,
            d.recipient_id,
            d.person_id,
            d.about_id,
            uuid.UUID(d.micro_grid_id) if d.micro_grid_id else None,
            d.channel,
            d.language,
            d.title,
            d.body,
        )
        for i, d in enumerate(new)
    ]
    await conn.copy_records_to_table(
        "deliveries", records=records, columns=_NEW_COLUMNS
    )


async def insert_deliveries_once(
    conn: Connection, notification_id: uuid.UUID, new: list[NewDelivery]
) -> int:
    """Adds deliveries after the notification's last; ones that exist already
    (same recipient, channel, purpose and subject) are skipped. Returns how
    many were added."""
    if not new:
        return 0
    await conn.execute(
        "SELECT 1 FROM notifications WHERE id = $1 FOR UPDATE", notification_id
    )
    last = await conn.fetchval(
        "SELECT coalesce(max(seq), 0) FROM deliveries WHERE notification_id = $1",
        notification_id,
    )
    status: str = await conn.execute(
        "INSERT INTO deliveries (id, notification_id, seq, purpose, recipient_kind,"
        " recipient_id, person_id, about_id, micro_grid_id, channel, language, title,"
        " body)"
        " SELECT gen_random_uuid(), $1, $2 + row_number() OVER (), * FROM unnest("
        " $3::smallint[], $4::smallint[], $5::text[], $6::text[], $7::text[],"
        " $8::uuid[], $9::smallint[], $10::text[], $11::text[], $12::text[])"
        " ON CONFLICT DO NOTHING",
        notification_id,
        last,
        [d.purpose for d in new],
        [d.recipient_kind for d in new],
        [d.recipient_id for d in new],
        [d.person_id for d in new],
        [d.about_id for d in new],
        [uuid.UUID(d.micro_grid_id) if d.micro_grid_id else None for d in new],
        [d.channel for d in new],
        [d.language for d in new],
        [d.title for d in new],
        [d.body for d in new],
    )
    return int(status.split()[-1])


@dataclass(frozen=True)
class DeliveryRow:
    id: uuid.UUID
    notification_id: uuid.UUID
    seq: int
    purpose: int
    recipient_kind: int
    recipient_id: str
    person_id: str
    about_id: str
    micro_grid_id: uuid.UUID | None
    channel: int
    language: str
    title: str | None
    body: str | None
    status: int
    failure_reason: str
    attempts: int
    sent_time: datetime | None
    read_time: datetime | None
    update_time: datetime


_DELIVERY = (
    "id, notification_id, seq, purpose, recipient_kind, recipient_id, person_id,"
    " about_id, micro_grid_id, channel, language, title, body, status,"
    " failure_reason, attempts, sent_time, read_time, update_time"
)


async def get_delivery(
    conn: Connection, delivery_id: uuid.UUID, *, for_update: bool = False
) -> DeliveryRow | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_DELIVERY} FROM deliveries WHERE id = $1{lock}", delivery_id
    )
    return DeliveryRow(**dict(row)) if row else None


async def list_deliveries(
    conn: Connection,
    notification_id: uuid.UUID,
    status: int,
    recipient_id: str,
    after_seq: int,
    limit: int,
) -> list[DeliveryRow]:
    rows = await conn.fetch(
        f"SELECT {_DELIVERY} FROM deliveries WHERE notification_id = $1"
        " AND ($2 = 0 OR status = $2) AND ($3 = '' OR recipient_id = $3)"
        " AND seq > $4 ORDER BY seq LIMIT $5",
        notification_id,
        status,
        recipient_id,
        after_seq,
        limit,
    )
    return [DeliveryRow(**dict(r)) for r in rows]


@dataclass(frozen=True, slots=True)
class PendingRow:
    """What sending a delivery needs, and no more: pages are thousands long."""

    id: uuid.UUID
    seq: int
    channel: int
    recipient_kind: int
    recipient_id: str
    language: str
    title: str | None
    body: str | None
    attempts: int


async def pending_page(
    conn: Connection,
    notification_id: uuid.UUID,
    purpose: int,
    after_seq: int,
    limit: int,
) -> list[PendingRow]:
    """The next pending deliveries, locked; ones another sender holds are skipped."""
    rows = await conn.fetch(
        "SELECT id, seq, channel, recipient_kind, recipient_id, language, title,"
        " body, attempts FROM deliveries WHERE notification_id = $1"
        " AND purpose = $2 AND seq > $3 AND status IN (1, 6)"
        " AND (next_attempt_time IS NULL OR next_attempt_time <= now())"
        " ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED",
        notification_id,
        purpose,
        after_seq,
        limit,
    )
    return [PendingRow(*r) for r in rows]


async def count_pending(
    conn: Connection, notification_id: uuid.UUID, purpose: int
) -> tuple[int, float]:
    """Deliveries still to send, and seconds until the next of them is due."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM"
        " min(coalesce(next_attempt_time, now())) - now()), 0) AS due"
        " FROM deliveries WHERE notification_id = $1"
        " AND purpose = $2 AND status IN (1, 6)",
        notification_id,
        purpose,
    )
    assert row is not None
    return int(row["n"]), max(float(row["due"]), 0.0)


async def record_outcomes(
    conn: Connection,
    ids: list[uuid.UUID],
    statuses: list[int],
    reasons: list[str],
    delays: list[float],
) -> None:
    """Sets each delivery's status, counts the attempt, and schedules the
    next one delay seconds from now for those retrying."""
    await conn.execute(
        "UPDATE deliveries d SET status = u.status, failure_reason = u.reason,"
        " attempts = d.attempts + 1, update_time = now(),"
        " next_attempt_time = now() + make_interval(secs => u.delay),"
        " sent_time = CASE WHEN u.status IN (2, 3) THEN now() ELSE d.sent_time END"
        " FROM unnest($1::uuid[], $2::smallint[], $3::text[], $4::float8[])"
        " AS u(id, status, reason, delay)"
        " WHERE d.id = u.id",
        ids,
        statuses,
        reasons,
        delays,
    )


async def expire_pending(
    conn: Connection, notification_id: uuid.UUID, purpose: int
) -> int:
    status: str = await conn.execute(
        "UPDATE deliveries SET status = 5, update_time = now(),"
        " failure_reason = 'expired before it could be sent'"
        " WHERE notification_id = $1 AND purpose = $2 AND status IN (1, 6)",
        notification_id,
        purpose,
    )
    return int(status.split()[-1])


async def inbox(
    conn: Connection,
    person_id: str,
    unread_only: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DeliveryRow]:
    """A person's in-app messages, newest first."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY} FROM deliveries WHERE person_id = $1 AND channel = 1"
        " AND sent_time IS NOT NULL AND (NOT $2 OR read_time IS NULL)"
        " AND ($3::timestamptz IS NULL OR (sent_time, id) < ($3, $4::uuid))"
        " ORDER BY sent_time DESC, id DESC LIMIT $5",
        person_id,
        unread_only,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [DeliveryRow(**dict(r)) for r in rows]


async def mark_read(conn: Connection, delivery_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 4, read_time = now(), update_time = now()"
        " WHERE id = $1 AND read_time IS NULL",
        delivery_id,
    )


# ---- fallback ----


async def unread_app_residents(
    conn: Connection, notification_id: uuid.UUID
) -> list[DeliveryRow]:
    """In-app messages to residents that were delivered but are still unread."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY} FROM deliveries WHERE notification_id = $1"
        " AND purpose = 1 AND channel = 1 AND recipient_kind = 1"
        " AND status IN (2, 3) AND read_time IS NULL ORDER BY seq",
        notification_id,
    )
    return [DeliveryRow(**dict(r)) for r in rows]


async def failed_fallback_texts(
    conn: Connection, notification_id: uuid.UUID
) -> list[DeliveryRow]:
    rows = await conn.fetch(
        f"SELECT {_DELIVERY} FROM deliveries WHERE notification_id = $1"
        " AND purpose = 2 AND status = 5 ORDER BY seq",
        notification_id,
    )
    return [DeliveryRow(**dict(r)) for r in rows]


# ---- outbox ----


@dataclass(frozen=True)
class OutboxRow:
    id: uuid.UUID
    delivery_id: uuid.UUID
    channel: int
    address: str
    title: str
    body: str
    create_time: datetime


async def list_outbox(
    conn: Connection,
    notification_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[OutboxRow]:
    rows = await conn.fetch(
        "SELECT id, delivery_id, channel, address, title, body, create_time"
        " FROM outbox_messages WHERE ($1::uuid IS NULL OR notification_id = $1)"
        " AND ($2::timestamptz IS NULL OR (create_time, id) > ($2, $3::uuid))"
        " ORDER BY create_time, id LIMIT $4",
        notification_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [OutboxRow(**dict(r)) for r in rows]
