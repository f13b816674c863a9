"""Loads the synthetic city's merchants into the merchants schema with COPY.

    python -m services.merchants.loader --city-code 3309

The villages come from the grids schema (the grids service owns them); the
seed city's 2,554 merchants are spread over them, each with a category,
opening hours and an encrypted contact phone; those that accept points get
one to three offers. Their points accounts are opened in the residents
schema in the same transaction, as RegisterMerchant would through the
residents service (2,554 calls would take longer than the whole COPY). The
same seed always gives the same merchants. A city's merchants are loaded
once; a second run leaves them as they are.
"""

import argparse
import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any

from services.common import db
from services.common.config import Settings
from services.common.logs import configure_logging
from services.merchants import config
from services.merchants import repository as repo
from services.residents.pii import Keyring

log = logging.getLogger(__name__)

# The seed city's figure (see DOMAIN.md).
MERCHANTS = 2_554

# (category, share of merchants, what the shop is called)
_CATEGORIES = [
    (1, 30, "Supermarket"),
    (2, 12, "Pharmacy"),
    (3, 20, "Restaurant"),
    (4, 10, "Repairs"),
    (5, 8, "Delivery"),
    (6, 6, "Housekeeping"),
    (7, 6, "Barber"),
    (8, 8, "Shop"),
]
_GOODS = [
    ("Toothpaste", 120),
    ("Soap", 50),
    ("Towel", 80),
    ("Eggs, a dozen", 60),
    ("Laundry detergent", 150),
    ("Rice, 5 kg", 300),
    ("Cooking oil, 1 l", 400),
]
_OPENS = ["06:30", "07:00", "07:30", "08:00", "09:00"]
_CLOSES = ["18:00", "20:00", "21:00", "21:30", "22:00"]


@dataclass(frozen=True)
class Village:
    id: uuid.UUID
    name: str
    area_ids: list[uuid.UUID]


@dataclass
class LoadResult:
    merchants: int = 0
    offers: int = 0
    accounts: int = 0


async def villages_of_city(conn: db.Connection, city_id: uuid.UUID) -> list[Village]:
    """The city's villages, read from the grids schema."""
    records = await conn.fetch(
        "SELECT id, name, ancestor_ids FROM grids.areas"
        " WHERE kind = 3 AND ancestor_ids[1] = $1 ORDER BY code, id",
        city_id,
    )
    return [Village(r["id"], r["name"], [*r["ancestor_ids"], r["id"]]) for r in records]


async def load(
    conn: db.Connection,
    keyring: Keyring,
    villages: list[Village],
    *,
    count: int = MERCHANTS,
    seed: int = 2022,
) -> LoadResult:
    """Loads count merchants over the villages, in one transaction."""
    if not villages:
        raise ValueError("no villages to put merchants in")
    async with conn.transaction():
        already = await conn.fetchval(
            "SELECT true FROM merchants.merchants"
            " WHERE village_id = ANY($1::uuid[]) LIMIT 1",
            [v.id for v in villages],
        )
        if already:
            log.info("the city's merchants are loaded already")
            return LoadResult()
        rng = random.Random(seed)
        merchants = _merchants(villages, count, keyring, rng)
        await _copy(conn, "merchants", merchants)
        offers = _offers(merchants, rng)
        await _copy(conn, "offers", offers)
        opened = await _open_accounts(conn, [m["id"] for m in merchants])
    log.info("loaded %s merchants and %s offers", len(merchants), len(offers))
    return LoadResult(len(merchants), len(offers), opened)


async def load_people(conn: db.Connection, city: Any) -> None:
    """The grids loader's hook (services/grids/loader.py PEOPLE_LOADERS):
    the merchants of a city it has just loaded."""
    villages = await villages_of_city(conn, city.city_id)
    await load(conn, Keyring.from_env(), villages)


def _merchants(
    villages: list[Village], count: int, keyring: Keyring, rng: random.Random
) -> list[dict[str, Any]]:
    weights = [share for _, share, _ in _CATEGORIES]
    rows = []
    for n in range(count):
        village = villages[n % len(villages)]
        category, _, word = rng.choices(_CATEGORIES, weights)[0]
        merchant_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        # 17x numbers: residents' loader and tests use others.
        phone = f"17{rng.randrange(10**9):09d}"
        rows.append(
            {
                "id": merchant_id,
                "name": f"{village.name} {word} {n // len(villages) + 1}",
                "village_id": village.id,
                "area_ids": village.area_ids,
                "category": category,
                "legal_form": repo.SOLE_TRADER if rng.random() < 0.7 else repo.COMPANY,
                "state": repo.VERIFIED if rng.random() < 0.95 else repo.PENDING,
                "accepts_points": rng.random() < 0.8,
                "opens": rng.choice(_OPENS),
                "closes": rng.choice(_CLOSES),
                "pii_key_id": keyring.active,
                "phone_cipher": keyring.encrypt(phone, f"{merchant_id}:phone"),
            }
        )
    return rows


def _offers(
    merchants: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    rows = []
    for merchant in merchants:
        if not merchant["accepts_points"]:
            continue
        for title, points in rng.sample(_GOODS, rng.randint(1, 3)):
            rows.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "merchant_id": merchant["id"],
                    "title": title,
                    "points": points,
                    "stock": rng.randrange(10, 101),
                }
            )
    return rows


async def _copy(conn: db.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    await conn.copy_records_to_table(
        table,
        schema_name=config.SCHEMA,
        columns=columns,
        records=[tuple(row[c] for c in columns) for row in rows],
    )


async def _open_accounts(conn: db.Connection, merchant_ids: list[uuid.UUID]) -> int:
    """Opens the merchants' points accounts (kind 3) unless they exist."""
    status: str = await conn.execute(
        "INSERT INTO residents.accounts (id, kind, owner_id)"
        " SELECT gen_random_uuid(), 3, owner FROM unnest($1::uuid[]) AS owner"
        " ON CONFLICT ON CONSTRAINT accounts_owner DO NOTHING",
        merchant_ids,
    )
    return int(status.split()[-1])


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
            villages = await villages_of_city(conn, city_id)
            result = await load(
                conn, Keyring.from_env(), villages, count=args.merchants, seed=args.seed
            )
    finally:
        await pool.close()
    log.info(
        "%s merchants, %s offers, %s accounts opened",
        result.merchants,
        result.offers,
        result.accounts,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city-code", default="3309")
    parser.add_argument("--merchants", type=int, default=MERCHANTS)
    parser.add_argument("--seed", type=int, default=2022)
    configure_logging("merchants-loader")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
