"""Loads a synthetic population into the residents schema with COPY.

    python -m services.residents.loader --city-code 3309

The micro-grids come from the grids schema (the grids service owns them):
every micro-grid of the city gets 50-80 households, the residents are
spread over those households, the key service recipients over the residents,
and one street (a town) gets a points history whose totals are exactly the
seed's: 1,453,781 points earned and 1,245,984 spent at its shops. The same
seed always gives the same city. A city is loaded once; a second run refuses.
"""

import argparse
import asyncio
import itertools
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.common import db
from services.common.config import Settings
from services.common.logs import configure_logging
from services.residents import config
from services.residents import repository as repo
from services.residents.pii import Keyring, national_id_check_char

log = logging.getLogger(__name__)

# The seed city's figures (see DOMAIN.md).
RESIDENTS = 269_000
KEY_SERVICE_RECIPIENTS = 43_687
STREET_EARNED = 1_453_781
STREET_SPENT = 1_245_984
STREET_PARTICIPATIONS = 12_914
STREET_MERCHANTS = 60

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾"
_GIVEN = "海明华建国伟芳秀英军平强丽敏静磊洋勇艳杰娟涛超霞刚桂兰玉珍德福"
_YEAR = datetime(2022, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MicroGrid:
    id: uuid.UUID
    # The city first; [1] is the town, [2] the village.
    ancestor_ids: list[uuid.UUID]


@dataclass(frozen=True)
class Population:
    residents: int = RESIDENTS
    key_service_recipients: int = KEY_SERVICE_RECIPIENTS
    street_earned: int = STREET_EARNED
    street_spent: int = STREET_SPENT
    street_participations: int = STREET_PARTICIPATIONS
    street_merchants: int = STREET_MERCHANTS


@dataclass
class LoadResult:
    households: int = 0
    residents: int = 0
    key_service_recipients: int = 0
    street_id: uuid.UUID | None = None
    street_earned: int = 0
    street_spent: int = 0
    postings: int = 0
    merchant_ids: list[uuid.UUID] = field(default_factory=list)


async def micro_grids_of_city(
    conn: db.Connection, city_id: uuid.UUID
) -> list[MicroGrid]:
    """The city's micro-grids, read from the grids schema."""
    records = await conn.fetch(
        "SELECT id, ancestor_ids FROM grids.areas"
        " WHERE kind = 5 AND ancestor_ids[1] = $1 ORDER BY code, id",
        city_id,
    )
    return [MicroGrid(r["id"], list(r["ancestor_ids"])) for r in records]


async def load(
    pool: asyncpg.Pool,
    keyring: Keyring,
    micro_grids: list[MicroGrid],
    population: Population = Population(),
    *,
    street_id: uuid.UUID | None = None,
    seed: int = 2022,
) -> LoadResult:
    """Loads households, residents, the roster and one street's points history.

    street_id is a town among the micro-grids' ancestors (the first one's town
    when None). Everything is written in one transaction.
    """
    if not micro_grids:
        raise ValueError("no micro-grids to put households in")
    rng = random.Random(seed)
    street = street_id or micro_grids[0].ancestor_ids[1]
    async with pool.acquire() as conn, conn.transaction():
        already = await conn.fetchval(
            "SELECT true FROM households WHERE micro_grid_id = ANY($1::uuid[]) LIMIT 1",
            [m.id for m in micro_grids],
        )
        if already:
            raise RuntimeError("these micro-grids already have households")
        households = _households(micro_grids, rng)
        await _copy(conn, "households", households)
        # Numbers of residents already here (an earlier load, registrations)
        # are not drawn again: one active resident per national ID.
        taken = {
            bytes(r["national_id_hash"])
            for r in await conn.fetch("SELECT national_id_hash FROM residents")
        }
        residents = _residents(households, population, keyring, rng, taken)
        await _copy(conn, "residents", residents)
        accounts = {r["id"]: uuid.uuid4() for r in residents}
        in_street = [r["id"] for r in residents if r["area_ids"][1] == street]
        result = LoadResult(
            households=len(households),
            residents=len(residents),
            key_service_recipients=population.key_service_recipients,
            street_id=street,
        )
        await _points(conn, accounts, in_street, population, rng, result)
    log.info(
        "loaded %s households, %s residents, %s postings",
        result.households,
        result.residents,
        result.postings,
    )
    return result


def _households(
    micro_grids: list[MicroGrid], rng: random.Random
) -> list[dict[str, Any]]:
    rows = []
    for grid in micro_grids:
        for number in range(1, rng.randint(50, 80) + 1):
            rows.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "micro_grid_id": grid.id,
                    "ancestor_ids": grid.ancestor_ids,
                    "address": f"No. {number} Lane {rng.randint(1, 40)}",
                }
            )
    return rows


def _residents(
    households: list[dict[str, Any]],
    population: Population,
    keyring: Keyring,
    rng: random.Random,
    taken: set[bytes],
) -> list[dict[str, Any]]:
    """Residents over random households; recipients over random residents.
    taken holds the lookup hashes of national IDs already in use."""
    homes = rng.choices(households, k=population.residents)
    recipients = set(
        rng.sample(range(population.residents), population.key_service_recipients)
    )
    used: set[str] = set()
    # Redraws come from a generator of their own, so that a collision leaves
    # the rest of the load (and its points totals) as the seed makes it.
    spare = random.Random(population.residents)
    rows = []
    for index, home in enumerate(homes):
        resident_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        number = _national_id(rng, used)
        while keyring.lookup_hash("national_id", number) in taken:
            number = _national_id(spare, used)
        phone = f"19{index + 100_000_000:09d}"
        row = {
            "id": resident_id,
            "household_id": home["id"],
            "area_ids": [*home["ancestor_ids"], home["micro_grid_id"]],
            "name": rng.choice(_SURNAMES)
            + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2))),
            "pii_key_id": keyring.active,
            "national_id_cipher": keyring.encrypt(number, f"{resident_id}:national_id"),
            "national_id_hash": keyring.lookup_hash("national_id", number),
            "phone_cipher": keyring.encrypt(phone, f"{resident_id}:phone"),
            "phone_hash": keyring.lookup_hash("phone", phone),
            "verification_state": 2 if rng.random() < 0.6 else 1,
        }
        if index in recipients:
            row |= {
                "care_reasons": [rng.choice((1, 1, 1, 2, 3, 3, 4))],
                "care_needs": [1] if rng.random() < 0.5 else [2],
                "care_update_time": _YEAR,
            }
        rows.append(row)
    return rows


def _national_id(rng: random.Random, used: set[str]) -> str:
    # Region 330903 (Putuo district) keeps loaded numbers apart from others.
    while True:
        birth = _YEAR - timedelta(days=rng.randint(18 * 365, 95 * 365))
        body = f"330903{birth:%Y%m%d}{rng.randrange(1000):03d}"
        number = body + national_id_check_char(body)
        if number not in used:
            used.add(number)
            return number


async def _points(
    conn: db.Connection,
    accounts: dict[uuid.UUID, uuid.UUID],
    in_street: list[uuid.UUID],
    population: Population,
    rng: random.Random,
    result: LoadResult,
) -> None:
    await _copy(
        conn,
        "accounts",
        [{"id": a, "kind": repo.RESIDENT, "owner_id": r} for r, a in accounts.items()],
    )
    if not in_street or population.street_earned == 0:
        return
    merchants = [uuid.uuid4() for _ in range(population.street_merchants)]
    merchant_accounts = {m: uuid.uuid4() for m in merchants}
    await _copy(
        conn,
        "accounts",
        [
            {"id": a, "kind": repo.MERCHANT, "owner_id": m}
            for m, a in merchant_accounts.items()
        ],
    )
    history = _History(conn, await _city_balance(conn))
    earned = history.earn(accounts, in_street, population, rng)
    history.spend(earned, accounts, list(merchant_accounts.values()), population, rng)
    await history.write()
    result.merchant_ids = merchants
    result.street_earned = population.street_earned
    result.street_spent = population.street_spent
    result.postings = len(history.postings)


async def _city_balance(conn: db.Connection) -> int:
    # Locked until the load commits, so live earnings queue behind it.
    balance: int = await conn.fetchval(
        "SELECT balance FROM accounts WHERE id = $1 FOR UPDATE", repo.CITY_ACCOUNT
    )
    return balance


class _History:
    """Postings and entries in time order, with running balances."""

    def __init__(self, conn: db.Connection, city_balance: int) -> None:
        self.conn = conn
        self.postings: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.balances: dict[uuid.UUID, int] = {repo.CITY_ACCOUNT: city_balance}
        self.earned: dict[uuid.UUID, int] = {}
        self.city_start = city_balance

    def post(
        self,
        kind: int,
        debit: uuid.UUID,
        credit: uuid.UUID,
        points: int,
        when: datetime,
        activity: int | None = None,
    ) -> None:
        posting_id = uuid.uuid4()
        self.postings.append(
            {
                "id": posting_id,
                "kind": kind,
                "request_key": f"loader/{posting_id}",
                "activity": activity,
                "create_time": when,
            }
        )
        for account, amount in ((debit, -points), (credit, points)):
            balance = self.balances.get(account, 0) + amount
            self.balances[account] = balance
            self.entries.append(
                {
                    "posting_id": posting_id,
                    "account_id": account,
                    "points": amount,
                    "balance_after": balance,
                    "create_time": when,
                }
            )
        if kind == repo.EARN:
            self.earned[credit] = self.earned.get(credit, 0) + points

    def earn(
        self,
        accounts: dict[uuid.UUID, uuid.UUID],
        in_street: list[uuid.UUID],
        population: Population,
        rng: random.Random,
    ) -> dict[uuid.UUID, int]:
        """Spreads the street's earnings over its participations; returns them
        by resident."""
        count = min(population.street_participations, population.street_earned)
        amounts = _split(population.street_earned, count, rng)
        times = sorted(
            _YEAR + timedelta(seconds=rng.randrange(300 * 86400)) for _ in amounts
        )
        per_resident: dict[uuid.UUID, int] = {}
        for amount, when in zip(amounts, times, strict=True):
            resident = rng.choice(in_street)
            per_resident[resident] = per_resident.get(resident, 0) + amount
            self.post(
                repo.EARN,
                repo.CITY_ACCOUNT,
                accounts[resident],
                amount,
                when,
                activity=rng.randint(1, 6),
            )
        return per_resident

    def spend(
        self,
        earned: dict[uuid.UUID, int],
        accounts: dict[uuid.UUID, uuid.UUID],
        merchants: list[uuid.UUID],
        population: Population,
        rng: random.Random,
    ) -> None:
        """Each resident spends the same share of what they earned, in the last
        two months, so no balance ever goes below zero."""
        share = population.street_spent / population.street_earned
        budgets = {r: int(e * share) for r, e in earned.items()}
        shortfall = population.street_spent - sum(budgets.values())
        for resident in sorted(
            earned, key=lambda r: earned[r] - budgets[r], reverse=True
        ):
            if shortfall == 0:
                break
            extra = min(shortfall, earned[resident] - budgets[resident])
            budgets[resident] += extra
            shortfall -= extra
        spends = []
        for resident, budget in budgets.items():
            if budget > 0:
                parts = _split(budget, min(budget, rng.randint(1, 3)), rng)
                spends += [(resident, part) for part in parts]
        times = sorted(
            _YEAR + timedelta(seconds=rng.randrange(300 * 86400, 360 * 86400))
            for _ in spends
        )
        rng.shuffle(spends)
        for (resident, points), when in zip(spends, times, strict=True):
            self.post(
                repo.SPEND, accounts[resident], rng.choice(merchants), points, when
            )

    async def write(self) -> None:
        await _copy(self.conn, "postings", self.postings)
        await _copy(self.conn, "entries", self.entries)
        owned = {a: b for a, b in self.balances.items() if a != repo.CITY_ACCOUNT}
        await self.conn.executemany(
            "UPDATE accounts SET balance = $2, earned = $3 WHERE id = $1",
            [(a, b, self.earned.get(a, 0)) for a, b in owned.items()],
        )
        await self.conn.execute(
            "UPDATE accounts SET balance = $2 WHERE id = $1",
            repo.CITY_ACCOUNT,
            self.balances[repo.CITY_ACCOUNT],
        )


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """total as parts positive whole numbers, at random."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(edges)]


async def _copy(conn: db.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = sorted({key for row in rows for key in row})
    await conn.copy_records_to_table(
        table,
        schema_name=config.SCHEMA,
        columns=columns,
        records=[tuple(row.get(c, _DEFAULTS.get(c)) for c in columns) for row in rows],
    )


# Values for columns some rows of a COPY leave out.
_DEFAULTS: dict[str, Any] = {
    "channels": [],
    "language": 1,
    "verification_state": 1,
    "active": True,
    "care_reasons": [],
    "care_needs": [],
    "care_note": "",
    "care_update_time": None,
    "activity": None,
}


async def street_totals(conn: db.Connection, street_id: uuid.UUID) -> tuple[int, int]:
    """Points earned and spent by the residents of one town."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(e.points) FILTER (WHERE p.kind = 1), 0) AS earned,"
        "       coalesce(-sum(e.points) FILTER (WHERE p.kind = 2), 0) AS spent"
        " FROM residents r JOIN accounts a ON a.kind = 2 AND a.owner_id = r.id"
        " JOIN entries e ON e.account_id = a.id JOIN postings p ON p.id = e.posting_id"
        " WHERE r.area_ids[2] = $1",
        street_id,
    )
    assert row is not None
    return int(row["earned"]), int(row["spent"])


async def _main(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    pool = await db.create_pool(settings, config.SCHEMA)
    try:
        async with pool.acquire() as conn:
            city_id = await conn.fetchval(
                "SELECT id FROM grids.areas WHERE kind = 1 AND code = $1",
                args.city_code,
            )
            if city_id is None:
                raise SystemExit(
                    f"no city with code {args.city_code} in the grids schema"
                )
            micro_grids = await micro_grids_of_city(conn, city_id)
        population = Population(
            residents=args.residents, key_service_recipients=args.recipients
        )
        result = await load(
            pool, Keyring.from_env(), micro_grids, population, seed=args.seed
        )
        async with pool.acquire() as conn:
            earned, spent = await street_totals(conn, result.street_id)  # type: ignore[arg-type]
    finally:
        await pool.close()
    log.info("street %s: %s points earned, %s spent", result.street_id, earned, spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city-code", default="3309")
    parser.add_argument("--residents", type=int, default=RESIDENTS)
    parser.add_argument("--recipients", type=int, default=KEY_SERVICE_RECIPIENTS)
    parser.add_argument("--seed", type=int, default=2022)
    configure_logging("residents-loader")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
