"""SQL for the three-affairs disclosures: an item and its append-only revisions."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.db import Connection


@dataclass(frozen=True)
class Content:
    category: int
    title: str
    body: str
    attachments: list[tuple[str, str]]
    period: str


@dataclass(frozen=True)
class DisclosureRow:
    id: uuid.UUID
    village_id: uuid.UUID
    publisher_id: str
    revision: int
    publish_time: datetime
    update_time: datetime
    content: Content


@dataclass(frozen=True)
class RevisionRow:
    revision: int
    content: Content
    editor_id: str
    reason: str
    create_time: datetime


async def publish(
    conn: Connection, village_id: uuid.UUID, publisher_id: str, content: Content
) -> uuid.UUID:
    disclosure_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO disclosures (id, village_id, publisher_id, category)"
        " VALUES ($1, $2, $3, $4)",
        disclosure_id,
        village_id,
        publisher_id,
        content.category,
    )
    await _add_revision(conn, disclosure_id, 1, content, publisher_id, "")
    return disclosure_id


async def correct(
    conn: Connection,
    disclosure_id: uuid.UUID,
    revision: int,
    content: Content,
    editor_id: str,
    reason: str,
) -> None:
    await conn.execute(
        "UPDATE disclosures SET revision = $2, category = $3, update_time = now()"
        " WHERE id = $1",
        disclosure_id,
        revision,
        content.category,
    )
    await _add_revision(conn, disclosure_id, revision, content, editor_id, reason)


async def _add_revision(
    conn: Connection,
    disclosure_id: uuid.UUID,
    revision: int,
    content: Content,
    editor_id: str,
    reason: str,
) -> None:
    await conn.execute(
        "INSERT INTO disclosure_revisions (disclosure_id, revision, category, title,"
        " body, attachments, period, editor_id, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        disclosure_id,
        revision,
        content.category,
        content.title,
        content.body,
        json.dumps([{"name": n, "uri": u} for n, u in content.attachments]),
        content.period,
        editor_id,
        reason,
    )


_CURRENT = (
    "SELECT d.id, d.village_id, d.publisher_id, d.revision, d.publish_time,"
    " d.update_time, r.category, r.title, r.body, r.attachments, r.period"
    " FROM disclosures d JOIN disclosure_revisions r"
    " ON r.disclosure_id = d.id AND r.revision = d.revision"
)


async def get(
    conn: Connection, disclosure_id: uuid.UUID, *, for_update: bool = False
) -> DisclosureRow | None:
    lock = " FOR UPDATE OF d" if for_update else ""
    row = await conn.fetchrow(f"{_CURRENT} WHERE d.id = $1{lock}", disclosure_id)
    return _disclosure(row) if row else None


async def list_for_village(
    conn: Connection,
    village_id: uuid.UUID,
    category: int,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DisclosureRow]:
    rows = await conn.fetch(
        f"{_CURRENT} WHERE d.village_id = $1 AND ($2 = 0 OR d.category = $2)"
        " AND ($3::timestamptz IS NULL OR (d.publish_time, d.id) < ($3, $4::uuid))"
        " ORDER BY d.publish_time DESC, d.id DESC LIMIT $5",
        village_id,
        category,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_disclosure(r) for r in rows]


async def revisions(conn: Connection, disclosure_id: uuid.UUID) -> list[RevisionRow]:
    rows = await conn.fetch(
        "SELECT revision, category, title, body, attachments, period, editor_id,"
        " reason, create_time FROM disclosure_revisions WHERE disclosure_id = $1"
        " ORDER BY revision",
        disclosure_id,
    )
    return [
        RevisionRow(
            revision=r["revision"],
            content=_content(r),
            editor_id=r["editor_id"],
            reason=r["reason"],
            create_time=r["create_time"],
        )
        for r in rows
    ]


def _content(row: Any) -> Content:
    return Content(
        category=row["category"],
        title=row["title"],
        body=row["body"],
        attachments=[(a["name"], a["uri"]) for a in json.loads(row["attachments"])],
        period=row["period"],
    )


def _disclosure(row: Any) -> DisclosureRow:
    return DisclosureRow(
        id=row["id"],
        village_id=row["village_id"],
        publisher_id=row["publisher_id"],
        revision=row["revision"],
        publish_time=row["publish_time"],
        update_time=row["update_time"],
        content=_content(row),
    )
