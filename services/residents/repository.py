"""SQL for the residents schema. Functions take a connection so that callers
can run them inside one transaction (with the request_id claim, for example).

Personal numbers arrive here already encrypted and hashed (see pii.py); no
query ever carries them in plaintext.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.db import Connection

CITY_ACCOUNT = uuid.UUID("00000000-0000-0000-0000-000000000001")
HOLDS_ACCOUNT = uuid.UUID("00000000-0000-0000-0000-000000000004")
CITY, RESIDENT, MERCHANT, HOLDS = 1, 2, 3, 4
EARN, SPEND, HOLD, COMMIT, RELEASE = 1, 2, 3, 4, 5
PENDING, COMMITTED, RELEASED = 1, 2, 3


class InsufficientPoints(Exception):
    """The debited account's balance does not cover the posting."""


# ---- households ----


@dataclass(frozen=True)
class HouseholdRow:
    id: uuid.UUID
    micro_grid_id: uuid.UUID
    ancestor_ids: list[uuid.UUID]
    address: str
    create_time: datetime
    update_time: datetime


_HOUSEHOLD = "id, micro_grid_id, ancestor_ids, address, create_time, update_time"


async def insert_household(
    conn: Connection, micro_grid_id: uuid.UUID, ancestors: list[uuid.UUID], address: str
) -> HouseholdRow:
    record = await conn.fetchrow(
        f"INSERT INTO households (id, micro_grid_id, ancestor_ids, address)"
        f" VALUES ($1, $2, $3, $4) RETURNING {_HOUSEHOLD}",
        uuid.uuid4(),
        micro_grid_id,
        ancestors,
        address,
    )
    return HouseholdRow(**dict(record))  # type: ignore[arg-type]


async def get_household(
    conn: Connection, household_id: uuid.UUID, *, for_update: bool = False
) -> HouseholdRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_HOUSEHOLD} FROM households WHERE id = $1{lock}", household_id
    )
    return HouseholdRow(**dict(record)) if record else None


async def move_household(
    conn: Connection,
    household_id: uuid.UUID,
    micro_grid_id: uuid.UUID,
    ancestors: list[uuid.UUID],
    address: str,
) -> HouseholdRow:
    """Moves the household and rewrites its residents' areas with it."""
    record = await conn.fetchrow(
        f"UPDATE households SET micro_grid_id = $2, ancestor_ids = $3, address = $4,"
        f" update_time = now() WHERE id = $1 RETURNING {_HOUSEHOLD}",
        household_id,
        micro_grid_id,
        ancestors,
        address,
    )
    await conn.execute(
        "UPDATE residents SET area_ids = $2, update_time = now()"
        " WHERE household_id = $1",
        household_id,
        [*ancestors, micro_grid_id],
    )
    return HouseholdRow(**dict(record))  # type: ignore[arg-type]


# ---- residents ----


@dataclass(frozen=True)
class ResidentRow:
    id: uuid.UUID
    household_id: uuid.UUID
    area_ids: list[uuid.UUID]
    name: str
    pii_key_id: str
    national_id_cipher: bytes
    phone_cipher: bytes
    channels: list[int]
    language: int
    verification_state: int
    verify_time: datetime | None
    active: bool
    care_reasons: list[int]
    care_needs: list[int]
    care_note: str
    squad_id: uuid.UUID | None
    care_update_time: datetime | None
    create_time: datetime
    update_time: datetime

    @property
    def micro_grid_id(self) -> uuid.UUID:
        return self.area_ids[-1]


_RESIDENT = (
    "id, household_id, area_ids, name, pii_key_id, national_id_cipher,"
    " phone_cipher, channels, language, verification_state, verify_time, active,"
    " care_reasons, care_needs, care_note, squad_id, care_update_time,"
    " create_time, update_time"
)


def _resident(record: asyncpg.Record | None) -> ResidentRow | None:
    return ResidentRow(**dict(record)) if record is not None else None


def _residents(records: list[asyncpg.Record]) -> list[ResidentRow]:
    return [ResidentRow(**dict(r)) for r in records]


async def insert_resident(conn: Connection, **values: Any) -> ResidentRow:
    """Inserts a resident (columns by name) and opens their points account."""
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO residents ({columns}) VALUES ({params}) RETURNING {_RESIDENT}",
        *values.values(),
    )
    await conn.execute(
        "INSERT INTO accounts (id, kind, owner_id) VALUES ($1, $2, $3)",
        uuid.uuid4(),
        RESIDENT,
        values["id"],
    )
    resident = _resident(record)
    assert resident is not None
    return resident


async def get_resident(
    conn: Connection, resident_id: uuid.UUID, *, for_update: bool = False
) -> ResidentRow | None:
    lock = " FOR UPDATE" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_RESIDENT} FROM residents WHERE id = $1{lock}", resident_id
    )
    return _resident(record)


async def household_members(
    conn: Connection, household_id: uuid.UUID
) -> list[ResidentRow]:
    records = await conn.fetch(
        f"SELECT {_RESIDENT} FROM residents WHERE household_id = $1 AND active"
        " ORDER BY create_time, id",
        household_id,
    )
    return _residents(records)


async def update_resident(
    conn: Connection, resident_id: uuid.UUID, **values: Any
) -> ResidentRow:
    """Sets the named columns (and update_time) of one resident."""
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
    record = await conn.fetchrow(
        f"UPDATE residents SET {sets}, update_time = now() WHERE id = $1"
        f" RETURNING {_RESIDENT}",
        resident_id,
        *values.values(),
    )
    resident = _resident(record)
    assert resident is not None
    return resident


async def national_id_in_use(conn: Connection, digest: bytes) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM residents WHERE national_id_hash = $1 AND active", digest
    )
    return bool(found)


async def list_residents(
    conn: Connection,
    area_id: uuid.UUID,
    *,
    roster_only: bool,
    after: uuid.UUID | None,
    limit: int,
) -> list[ResidentRow]:
    """Active residents of an area (or its key service recipients), by id."""
    roster = " AND care_update_time IS NOT NULL" if roster_only else ""
    records = await conn.fetch(
        f"SELECT {_RESIDENT} FROM residents"
        f" WHERE area_ids @> ARRAY[$1::uuid] AND active{roster}"
        "   AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        area_id,
        after,
        limit,
    )
    return _residents(records)


async def find_by_hash(
    conn: Connection, column: str, digest: bytes, limit: int
) -> list[ResidentRow]:
    assert column in {"phone_hash", "national_id_hash"}
    records = await conn.fetch(
        f"SELECT {_RESIDENT} FROM residents WHERE {column} = $1"
        " ORDER BY active DESC, id LIMIT $2",
        digest,
        limit,
    )
    return _residents(records)


# ---- the points ledger ----


@dataclass(frozen=True)
class AccountRow:
    id: uuid.UUID
    kind: int
    owner_id: uuid.UUID | None
    balance: int
    earned: int


_ACCOUNT = "id, kind, owner_id, balance, earned"


async def find_account(
    conn: Connection, kind: int, owner_id: uuid.UUID | None
) -> AccountRow | None:
    record = await conn.fetchrow(
        f"SELECT {_ACCOUNT} FROM accounts"
        " WHERE kind = $1 AND owner_id IS NOT DISTINCT FROM $2",
        kind,
        owner_id,
    )
    return AccountRow(**dict(record)) if record else None


async def open_account(conn: Connection, kind: int, owner_id: uuid.UUID) -> AccountRow:
    """The owner's account, opened now unless it already exists."""
    await conn.execute(
        "INSERT INTO accounts (id, kind, owner_id) VALUES ($1, $2, $3)"
        " ON CONFLICT ON CONSTRAINT accounts_owner DO NOTHING",
        uuid.uuid4(),
        kind,
        owner_id,
    )
    account = await find_account(conn, kind, owner_id)
    assert account is not None
    return account


@dataclass(frozen=True)
class PostingResult:
    posting_id: uuid.UUID
    debit_balance: int
    credit_balance: int
    create_time: datetime


async def post(
    conn: Connection,
    *,
    kind: int,
    request_key: str,
    debit: uuid.UUID,
    credit: uuid.UUID,
    points: int,
    activity: int | None = None,
    hold_id: uuid.UUID | None = None,
) -> PostingResult:
    """Moves points from debit to credit as one posting of two entries.

    Concurrency: both balance rows are locked (SELECT … FOR UPDATE, in id order
    so two postings between the same accounts cannot deadlock) before the
    balance is checked. Concurrent spends from one account therefore queue on
    its row and each sees the balance the previous one left: no spend can
    overdraw, and none fails spuriously the way SERIALIZABLE would make most
    of a burst fail and retry. The CHECK on accounts.balance backs this up.
    Must run inside a transaction.
    """
    rows = await conn.fetch(
        "SELECT id, kind, balance FROM accounts WHERE id = ANY($1::uuid[])"
        " ORDER BY id FOR UPDATE",
        [debit, credit],
    )
    by_id = {r["id"]: r for r in rows}
    source = by_id[debit]
    if source["kind"] != CITY and source["balance"] < points:
        raise InsufficientPoints()
    earned = points if kind == EARN else 0
    debit_balance = await conn.fetchval(
        "UPDATE accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance",
        debit,
        points,
    )
    credit_balance = await conn.fetchval(
        "UPDATE accounts SET balance = balance + $2, earned = earned + $3"
        " WHERE id = $1 RETURNING balance",
        credit,
        points,
        earned,
    )
    posting_id = uuid.uuid4()
    create_time = await conn.fetchval(
        "INSERT INTO postings (id, kind, request_key, activity, hold_id)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING create_time",
        posting_id,
        kind,
        request_key,
        activity,
        hold_id,
    )
    await conn.executemany(
        "INSERT INTO entries (posting_id, account_id, points, balance_after)"
        " VALUES ($1, $2, $3, $4)",
        [
            (posting_id, debit, -points, debit_balance),
            (posting_id, credit, points, credit_balance),
        ],
    )
    return PostingResult(posting_id, debit_balance, credit_balance, create_time)


@dataclass(frozen=True)
class StatementRow:
    id: int
    posting_id: uuid.UUID
    kind: int
    points: int
    balance_after: int
    activity: int | None
    other_kind: int
    other_owner: uuid.UUID | None
    create_time: datetime


async def statement(
    conn: Connection, account_id: uuid.UUID, *, before: int | None, limit: int
) -> list[StatementRow]:
    """An account's entries, newest first, each with the other side's account."""
    records = await conn.fetch(
        "SELECT e.id, e.posting_id, p.kind, e.points, e.balance_after, p.activity,"
        "       a.kind AS other_kind, a.owner_id AS other_owner, e.create_time"
        " FROM entries e"
        " JOIN postings p ON p.id = e.posting_id"
        " JOIN entries o ON o.posting_id = e.posting_id AND o.id <> e.id"
        " JOIN accounts a ON a.id = o.account_id"
        " WHERE e.account_id = $1 AND ($2::bigint IS NULL OR e.id < $2)"
        " ORDER BY e.id DESC LIMIT $3",
        account_id,
        before,
        limit,
    )
    return [StatementRow(**dict(r)) for r in records]


@dataclass(frozen=True)
class LeaderRow:
    resident_id: uuid.UUID
    name: str
    earned: int


async def leaderboard(
    conn: Connection,
    area_id: uuid.UUID,
    *,
    after: tuple[int, uuid.UUID] | None,
    limit: int,
) -> list[LeaderRow]:
    """Active residents of an area who earned points, most first."""
    records = await conn.fetch(
        "SELECT r.id AS resident_id, r.name, a.earned FROM residents r"
        " JOIN accounts a ON a.kind = 2 AND a.owner_id = r.id"
        " WHERE r.area_ids @> ARRAY[$1::uuid] AND r.active AND a.earned > 0"
        "   AND ($2::bigint IS NULL OR (a.earned, r.id) < ($2::bigint, $3::uuid))"
        " ORDER BY a.earned DESC, r.id DESC LIMIT $4",
        area_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [LeaderRow(**dict(r)) for r in records]


async def rank_of(conn: Connection, area_id: uuid.UUID, earned: int) -> int:
    """1 + how many residents of the area earned more (ties share a rank)."""
    above = await conn.fetchval(
        "SELECT count(*) FROM residents r"
        " JOIN accounts a ON a.kind = 2 AND a.owner_id = r.id"
        " WHERE r.area_ids @> ARRAY[$1::uuid] AND r.active AND a.earned > $2",
        area_id,
        earned,
    )
    return int(above) + 1


# ---- holds ----


@dataclass(frozen=True)
class HoldRow:
    id: uuid.UUID
    resident_account: uuid.UUID
    merchant_account: uuid.UUID
    resident_id: uuid.UUID
    merchant_id: uuid.UUID
    points: int
    state: int
    create_time: datetime
    update_time: datetime


_HOLD = (
    "h.id, h.resident_account, h.merchant_account, r.owner_id AS resident_id,"
    " m.owner_id AS merchant_id, h.points, h.state, h.create_time, h.update_time"
)


async def insert_hold(
    conn: Connection,
    hold_id: uuid.UUID,
    resident_account: uuid.UUID,
    merchant_account: uuid.UUID,
    points: int,
) -> None:
    await conn.execute(
        "INSERT INTO holds (id, resident_account, merchant_account, points)"
        " VALUES ($1, $2, $3, $4)",
        hold_id,
        resident_account,
        merchant_account,
        points,
    )


async def get_hold(
    conn: Connection, hold_id: uuid.UUID, *, for_update: bool = False
) -> HoldRow | None:
    lock = " FOR UPDATE OF h" if for_update else ""
    record = await conn.fetchrow(
        f"SELECT {_HOLD} FROM holds h"
        " JOIN accounts r ON r.id = h.resident_account"
        f" JOIN accounts m ON m.id = h.merchant_account WHERE h.id = $1{lock}",
        hold_id,
    )
    return HoldRow(**dict(record)) if record else None


async def set_hold_state(conn: Connection, hold_id: uuid.UUID, state: int) -> None:
    await conn.execute(
        "UPDATE holds SET state = $2, update_time = now() WHERE id = $1",
        hold_id,
        state,
    )


# ---- earning rules ----


@dataclass(frozen=True)
class RuleRow:
    activity: int
    points: int
    update_time: datetime


async def earning_rule(conn: Connection, activity: int) -> RuleRow | None:
    record = await conn.fetchrow(
        "SELECT activity, points, update_time FROM earning_rules WHERE activity = $1",
        activity,
    )
    return RuleRow(**dict(record)) if record else None


async def earning_rules(
    conn: Connection, *, after: int | None, limit: int
) -> list[RuleRow]:
    records = await conn.fetch(
        "SELECT activity, points, update_time FROM earning_rules"
        " WHERE ($1::smallint IS NULL OR activity > $1) ORDER BY activity LIMIT $2",
        after,
        limit,
    )
    return [RuleRow(**dict(r)) for r in records]


async def set_earning_rule(conn: Connection, activity: int, points: int) -> RuleRow:
    record = await conn.fetchrow(
        "INSERT INTO earning_rules (activity, points) VALUES ($1, $2)"
        " ON CONFLICT (activity) DO UPDATE SET points = EXCLUDED.points,"
        " update_time = now() RETURNING activity, points, update_time",
        activity,
        points,
    )
    return RuleRow(**dict(record))  # type: ignore[arg-type]
