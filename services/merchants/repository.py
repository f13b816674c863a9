"""SQL for the merchants schema. Functions take a connection so that callers
can run them inside one transaction (with the request_id claim, for example).

Contact phones arrive here already encrypted; no query carries them in
plaintext.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.db import Connection

PENDING, VERIFIED, SUSPENDED = 1, 2, 3
SOLE_TRADER, COMPANY = 1, 2
OPEN, WITHDRAWN = 1, 2
REQUESTED, ACCEPTED, DECLINED, COMPLETED, CANCELLED = 1, 2, 3, 4, 5
# Redemption states share PENDING with merchants.
COMMITTED, RELEASED = 2, 3


# ---- merchants ----


@dataclass(frozen=True)
class MerchantRow:
    id: uuid.UUID
    name: str
    village_id: uuid.UUID
    area_ids: list[uuid.UUID]
    category: int
    legal_form: int
    state: int
    accepts_points: bool
    opens: str
    closes: str
    pii_key_id: str
    phone_cipher: bytes
    create_time: datetime
    update_time: datetime


_MERCHANT = (
    "id, name, village_id, area_ids, category, legal_form, state, accepts_points,"
    " opens, closes, pii_key_id, phone_cipher, create_time, update_time"
)


def _merchant(record: Any) -> MerchantRow:
    return MerchantRow(**dict(record))


async def insert_merchant(conn: Connection, **values: Any) -> MerchantRow:
    columns = ", ".join(values)
    places = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO merchants ({columns}) VALUES ({places}) RETURNING {_MERCHANT}",
        *values.values(),
    )
    return _merchant(record)


async def get_merchant(
    conn: Connection, merchant_id: uuid.UUID, *, for_update: bool = False
) -> MerchantRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_MERCHANT} FROM merchants WHERE id = $1{lock}", merchant_id
    )
    return _merchant(record) if record else None


async def set_merchant_state(
    conn: Connection, merchant_id: uuid.UUID, state: int
) -> MerchantRow:
    record = await conn.fetchrow(
        f"UPDATE merchants SET state = $2, update_time = now() WHERE id = $1"
        f" RETURNING {_MERCHANT}",
        merchant_id,
        state,
    )
    return _merchant(record)


async def list_merchants(
    conn: Connection,
    area_id: uuid.UUID | None,
    *,
    category: int = 0,
    name_contains: str = "",
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[MerchantRow]:
    """Merchants by name then id, after the keyset cursor (name, id)."""
    records = await conn.fetch(
        f"SELECT {_MERCHANT} FROM merchants"
        " WHERE ($1::uuid IS NULL OR area_ids @> ARRAY[$1::uuid])"
        "   AND ($2 = 0 OR category = $2)"
        "   AND ($3 = '' OR strpos(lower(name), lower($3)) > 0)"
        "   AND ($4::text IS NULL OR (name, id) > ($4, $5::uuid))"
        " ORDER BY name, id LIMIT $6",
        area_id,
        category,
        name_contains,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_merchant(r) for r in records]


# ---- offers ----


@dataclass(frozen=True)
class OfferRow:
    id: uuid.UUID
    merchant_id: uuid.UUID
    title: str
    points: int
    stock: int
    state: int
    create_time: datetime
    update_time: datetime


_OFFER = "id, merchant_id, title, points, stock, state, create_time, update_time"


async def insert_offer(
    conn: Connection, merchant_id: uuid.UUID, title: str, points: int, stock: int
) -> OfferRow:
    record = await conn.fetchrow(
        f"INSERT INTO offers (id, merchant_id, title, points, stock)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_OFFER}",
        uuid.uuid4(),
        merchant_id,
        title,
        points,
        stock,
    )
    return OfferRow(**dict(record))  # type: ignore[arg-type]


async def get_offer(
    conn: Connection, offer_id: uuid.UUID, *, for_update: bool = False
) -> OfferRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_OFFER} FROM offers WHERE id = $1{lock}", offer_id
    )
    return OfferRow(**dict(record)) if record else None


async def update_offer(
    conn: Connection, offer_id: uuid.UUID, *, stock_change: int = 0, state: int = 0
) -> OfferRow:
    record = await conn.fetchrow(
        f"UPDATE offers SET stock = stock + $2,"
        f" state = CASE WHEN $3 = 0 THEN state ELSE $3 END, update_time = now()"
        f" WHERE id = $1 RETURNING {_OFFER}",
        offer_id,
        stock_change,
        state,
    )
    return OfferRow(**dict(record))  # type: ignore[arg-type]


async def take_one(conn: Connection, offer_id: uuid.UUID) -> bool:
    """Takes one item off an open offer's stock; False when none is left.

    The row lock of the UPDATE serialises tills redeeming the same offer.
    """
    taken = await conn.fetchval(
        "UPDATE offers SET stock = stock - 1, update_time = now()"
        " WHERE id = $1 AND stock > 0 AND state = 1 RETURNING true",
        offer_id,
    )
    return bool(taken)


async def list_offers(
    conn: Connection,
    *,
    merchant_id: uuid.UUID | None,
    area_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[OfferRow]:
    """Open offers, oldest first, of a merchant, or of an area's verified
    merchants that accept points (what residents may redeem)."""
    columns = ", ".join(f"o.{c.strip()}" for c in _OFFER.split(","))
    records = await conn.fetch(
        f"SELECT {columns} FROM offers o JOIN merchants m ON m.id = o.merchant_id"
        " WHERE o.state = 1"
        "   AND ($1::uuid IS NULL OR o.merchant_id = $1)"
        "   AND ($2::uuid IS NULL"
        "        OR (m.area_ids @> ARRAY[$2::uuid] AND m.state = 2"
        "            AND m.accepts_points))"
        "   AND ($3::timestamptz IS NULL OR (o.create_time, o.id) > ($3, $4::uuid))"
        " ORDER BY o.create_time, o.id LIMIT $5",
        merchant_id,
        area_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [OfferRow(**dict(r)) for r in records]


# ---- life services and bookings ----


@dataclass(frozen=True)
class LifeServiceRow:
    id: uuid.UUID
    merchant_id: uuid.UUID
    title: str
    kind: int
    create_time: datetime


_LIFE = "id, merchant_id, title, kind, create_time"


async def insert_life_service(
    conn: Connection, merchant_id: uuid.UUID, title: str, kind: int
) -> LifeServiceRow:
    record = await conn.fetchrow(
        f"INSERT INTO life_services (id, merchant_id, title, kind)"
        f" VALUES ($1, $2, $3, $4) RETURNING {_LIFE}",
        uuid.uuid4(),
        merchant_id,
        title,
        kind,
    )
    return LifeServiceRow(**dict(record))  # type: ignore[arg-type]


async def get_life_service(
    conn: Connection, life_service_id: uuid.UUID
) -> LifeServiceRow | None:
    record = await conn.fetchrow(
        f"SELECT {_LIFE} FROM life_services WHERE id = $1", life_service_id
    )
    return LifeServiceRow(**dict(record)) if record else None


async def list_life_services(
    conn: Connection,
    area_id: uuid.UUID,
    kind: int,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[LifeServiceRow]:
    """Life services of verified merchants of an area, oldest first."""
    columns = ", ".join(f"s.{c.strip()}" for c in _LIFE.split(","))
    records = await conn.fetch(
        f"SELECT {columns} FROM life_services s"
        " JOIN merchants m ON m.id = s.merchant_id"
        " WHERE m.area_ids @> ARRAY[$1::uuid] AND m.state = 2"
        "   AND ($2 = 0 OR s.kind = $2)"
        "   AND ($3::timestamptz IS NULL OR (s.create_time, s.id) > ($3, $4::uuid))"
        " ORDER BY s.create_time, s.id LIMIT $5",
        area_id,
        kind,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [LifeServiceRow(**dict(r)) for r in records]


@dataclass(frozen=True)
class BookingRow:
    id: uuid.UUID
    life_service_id: uuid.UUID
    merchant_id: uuid.UUID
    resident_id: uuid.UUID
    slot_time: datetime
    state: int
    create_time: datetime
    update_time: datetime


_BOOKING = (
    "id, life_service_id, merchant_id, resident_id, slot_time, state,"
    " create_time, update_time"
)


async def insert_booking(
    conn: Connection,
    service: LifeServiceRow,
    resident_id: uuid.UUID,
    slot_time: datetime,
) -> BookingRow:
    record = await conn.fetchrow(
        f"INSERT INTO bookings (id, life_service_id, merchant_id, resident_id,"
        f" slot_time) VALUES ($1, $2, $3, $4, $5) RETURNING {_BOOKING}",
        uuid.uuid4(),
        service.id,
        service.merchant_id,
        resident_id,
        slot_time,
    )
    return BookingRow(**dict(record))  # type: ignore[arg-type]


async def get_booking(
    conn: Connection, booking_id: uuid.UUID, *, for_update: bool = False
) -> BookingRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_BOOKING} FROM bookings WHERE id = $1{lock}", booking_id
    )
    return BookingRow(**dict(record)) if record else None


async def set_booking_state(
    conn: Connection, booking_id: uuid.UUID, state: int
) -> BookingRow:
    record = await conn.fetchrow(
        f"UPDATE bookings SET state = $2, update_time = now() WHERE id = $1"
        f" RETURNING {_BOOKING}",
        booking_id,
        state,
    )
    return BookingRow(**dict(record))  # type: ignore[arg-type]


async def list_bookings(
    conn: Connection,
    column: str,
    owner: uuid.UUID,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[BookingRow]:
    """A resident's or merchant's bookings (column names which), newest first."""
    assert column in ("resident_id", "merchant_id")
    records = await conn.fetch(
        f"SELECT {_BOOKING} FROM bookings WHERE {column} = $1"
        "   AND ($2::timestamptz IS NULL OR (create_time, id) < ($2, $3::uuid))"
        " ORDER BY create_time DESC, id DESC LIMIT $4",
        owner,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [BookingRow(**dict(r)) for r in records]


# ---- redemptions ----


@dataclass(frozen=True)
class RedemptionRow:
    id: uuid.UUID
    offer_id: uuid.UUID
    merchant_id: uuid.UUID
    resident_id: uuid.UUID
    points: int
    state: int
    release_reason: int | None
    hold_id: uuid.UUID
    code: str
    confirm_deadline: datetime
    create_time: datetime
    settle_time: datetime | None


_REDEMPTION = (
    "id, offer_id, merchant_id, resident_id, points, state, release_reason,"
    " hold_id, code, confirm_deadline, create_time, settle_time"
)


def till_code(redemption_id: uuid.UUID) -> str:
    """The six digits shown at the till, fixed by the redemption's id."""
    return f"{redemption_id.int % 10**6:06d}"


async def insert_redemption(
    conn: Connection,
    *,
    id: uuid.UUID,
    offer: OfferRow,
    resident_id: uuid.UUID,
    hold_id: uuid.UUID,
    confirm_deadline: datetime,
) -> RedemptionRow:
    record = await conn.fetchrow(
        f"INSERT INTO redemptions (id, offer_id, merchant_id, resident_id, points,"
        f" hold_id, code, confirm_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        f" RETURNING {_REDEMPTION}",
        id,
        offer.id,
        offer.merchant_id,
        resident_id,
        offer.points,
        hold_id,
        till_code(id),
        confirm_deadline,
    )
    return RedemptionRow(**dict(record))  # type: ignore[arg-type]


async def get_redemption(
    conn: Connection, redemption_id: uuid.UUID, *, for_update: bool = False
) -> RedemptionRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_REDEMPTION} FROM redemptions WHERE id = $1{lock}", redemption_id
    )
    return RedemptionRow(**dict(record)) if record else None


async def pending_by_code(
    conn: Connection, merchant_id: uuid.UUID, code: str
) -> list[RedemptionRow]:
    """A merchant's pending redemptions showing that code (two at most)."""
    records = await conn.fetch(
        f"SELECT {_REDEMPTION} FROM redemptions"
        " WHERE merchant_id = $1 AND code = $2 AND state = 1 LIMIT 2",
        merchant_id,
        code,
    )
    return [RedemptionRow(**dict(r)) for r in records]


async def settle_redemption(
    conn: Connection, redemption_id: uuid.UUID, state: int, reason: int | None
) -> RedemptionRow:
    record = await conn.fetchrow(
        f"UPDATE redemptions SET state = $2, release_reason = $3,"
        f" settle_time = now() WHERE id = $1 RETURNING {_REDEMPTION}",
        redemption_id,
        state,
        reason,
    )
    return RedemptionRow(**dict(record))  # type: ignore[arg-type]


async def list_redemptions(
    conn: Connection,
    column: str,
    owner: uuid.UUID,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RedemptionRow]:
    """A resident's or merchant's redemptions (column names which), newest first."""
    assert column in ("resident_id", "merchant_id")
    records = await conn.fetch(
        f"SELECT {_REDEMPTION} FROM redemptions WHERE {column} = $1"
        "   AND ($2::timestamptz IS NULL OR (create_time, id) < ($2, $3::uuid))"
        " ORDER BY create_time DESC, id DESC LIMIT $4",
        owner,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [RedemptionRow(**dict(r)) for r in records]


@dataclass(frozen=True)
class StatementLineRow:
    offer_id: uuid.UUID
    title: str
    redemptions: int
    points: int


async def statement_lines(
    conn: Connection, merchant_id: uuid.UUID, month_start: datetime, zone: str
) -> list[StatementLineRow]:
    """Committed redemptions settled in the calendar month (in zone) per offer."""
    records = await conn.fetch(
        "SELECT r.offer_id, o.title, count(*)::int AS redemptions,"
        "       sum(r.points)::bigint AS points"
        " FROM redemptions r JOIN offers o ON o.id = r.offer_id"
        " WHERE r.merchant_id = $1 AND r.state = 2"
        "   AND r.settle_time >= ($2::timestamp AT TIME ZONE $3)"
        "   AND r.settle_time < (($2::timestamp + interval '1 month') AT TIME ZONE $3)"
        " GROUP BY r.offer_id, o.title ORDER BY o.title, r.offer_id",
        merchant_id,
        month_start,
        zone,
    )
    return [StatementLineRow(**dict(r)) for r in records]
