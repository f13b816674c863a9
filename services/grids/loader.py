"""Bulk loading of a whole synthetic city with COPY: hierarchy, staff, squads.

The plan comes from workflows/city/plan.py (the same seed gives the same
city), and every id is derived from the city's codes (uuid5), so a second load
of the same city changes nothing and a history generator can name the same
places. `make run` with CLOUDARK_CITY=full calls `load_city`; the demo city
still goes through the API (LoadCityWorkflow).
"""

import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.common.db import Connection
from workflows.city.plan import AreaPlan, CitySize, plan_city, spread

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6f1c1e2a-6c0b-4e55-9a53-3309c10dad00")
GRID_WORKER, VOLUNTEER, CADRE, DEPARTMENT_CONTACT, SQUAD_MEMBER = 1, 2, 3, 4, 5
ON_DUTY, OFF_DUTY, BUSY = 1, 2, 3
# Department kind → the case categories its contacts handle (cases.proto).
DEPARTMENTS: dict[int, list[int]] = {
    1: [206, 401],  # market regulation: food and drug, other
    2: [202],  # fire
    3: [201, 207, 301],  # police: disputes, public order, fraud
    4: [101, 102, 199],  # health: epidemic
    5: [204],  # emergency management: workplace
    6: [208, 205],  # city management
    7: [203],  # transport: traffic
}
SQUAD_MEMBER_KINDS = [1, 1, 2, 3, 4]  # party members twice, then one of each


@dataclass(frozen=True)
class StaffSize:
    """Staff accounts (grid workers + cadres + department contacts) and squads."""

    grid_workers: int
    cadres_per_village: int
    department_contacts: int
    squads: int
    members_per_squad: int = len(SQUAD_MEMBER_KINDS)
    volunteers_per_micro_grid: int = 1

    def staff(self, villages: int) -> int:
        return (
            self.grid_workers
            + self.cadres_per_village * villages
            + (self.department_contacts)
        )


# The seed's 3,934 staff accounts: 1,592 grid workers (every grid has one,
# the busiest two), 5 cadres in each of 407 villages, 307 department contacts.
FULL_STAFF = StaffSize(
    grid_workers=1_592, cadres_per_village=5, department_contacts=307, squads=1_225
)
DEMO_STAFF = StaffSize(
    grid_workers=12, cadres_per_village=2, department_contacts=4, squads=4
)


def area_id(code: str) -> uuid.UUID:
    """The id the loader gives the area with this code."""
    return uuid.uuid5(NAMESPACE, f"area/{code}")


def helper_id(key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"helper/{key}")


@dataclass
class CityLoad:
    """What was loaded (or found already loaded)."""

    city_id: uuid.UUID
    areas: int = 0
    staff: int = 0
    helpers: int = 0
    squads: int = 0
    created: bool = False
    plan: AreaPlan | None = field(default=None, repr=False)


# Loaders of other services' people (residents and households #4, merchants
# #6) plug in here; each gets the connection and the loaded city.
PeopleLoader = Callable[[Connection, CityLoad], Awaitable[None]]
PEOPLE_LOADERS: list[PeopleLoader] = []


async def load_city(
    conn: Connection,
    *,
    name: str,
    code: str,
    size: CitySize,
    staff: StaffSize,
    seed: int,
) -> CityLoad:
    """Loads the planned city in one transaction, unless it is there already."""
    plan = plan_city(name, code, size, seed)
    city_id = area_id(code)
    found = await conn.fetchval(
        "SELECT id FROM areas WHERE code = $1 AND kind = 1", code
    )
    if found is not None and found != city_id:
        raise RuntimeError(
            f"city {code} exists but was not bulk-loaded; load it into an empty"
            " database (rm -rf .state)"
        )
    result = CityLoad(city_id=city_id, plan=plan)
    if found is None:
        async with conn.transaction():
            await _copy_city(conn, plan, staff, seed, result)
        result.created = True
        log.info(
            "city %s loaded: %s areas, %s staff, %s helpers, %s squads",
            code,
            result.areas,
            result.staff,
            result.helpers,
            result.squads,
        )
    await load_people(conn, result)
    return result


async def load_people(conn: Connection, city: CityLoad) -> None:
    """The hook for residents, households and merchants of a loaded city."""
    # TODO(#4): residents and households load through their own service's
    # loader, registered in PEOPLE_LOADERS once it exists. Merchants
    # (services/merchants/loader.py) are registered by deploy/embedded/ready.py.
    for loader in PEOPLE_LOADERS:
        await loader(conn, city)


async def _copy_city(
    conn: Connection, plan: AreaPlan, staff: StaffSize, seed: int, out: CityLoad
) -> None:
    areas = list(_area_records(plan))
    await conn.copy_records_to_table(
        "areas",
        records=areas,
        columns=["id", "kind", "name", "parent_id", "code", "ancestor_ids"],
    )
    people = _People(plan, staff, random.Random(seed + 1))
    await conn.copy_records_to_table(
        "squads", records=people.squads, columns=["id", "village_id", "name"]
    )
    await conn.copy_records_to_table(
        "helpers",
        records=people.helpers,
        columns=[
            "id",
            "kind",
            "person_id",
            "supervisor_id",
            "department_kind",
            "handled_categories",
            "squad_id",
            "member_kind",
            "availability",
            "load",
        ],
    )
    await conn.copy_records_to_table(
        "helper_areas",
        records=people.places,
        columns=["helper_id", "area_id", "kind", "village_id"],
    )
    out.areas, out.squads = len(areas), len(people.squads)
    out.helpers, out.staff = len(people.helpers), people.staff


def _area_records(plan: AreaPlan) -> list[tuple[object, ...]]:
    records: list[tuple[object, ...]] = []

    def visit(node: AreaPlan, ancestors: list[uuid.UUID]) -> None:
        node_id = area_id(node.code)
        parent = ancestors[-1] if ancestors else None
        kind = len(ancestors) + 1
        records.append((node_id, kind, node.name, parent, node.code, ancestors))
        for child in node.children:
            visit(child, [*ancestors, node_id])

    visit(plan, [])
    return records


class _People:
    """The city's helpers and squads, drawn from one seeded generator."""

    def __init__(self, plan: AreaPlan, size: StaffSize, rng: random.Random) -> None:
        self.rng = rng
        self.helpers: list[tuple[object, ...]] = []
        self.places: list[tuple[object, ...]] = []
        self.squads: list[tuple[object, ...]] = []
        self.staff = 0
        villages = [v for town in plan.children for v in town.children]
        self._cadres(villages, size)
        self._grid_workers(villages, size)
        self._contacts(plan, size)
        self.staff = len(self.helpers)
        self._volunteers(villages, size)
        self._squads(villages, size)

    def _add(
        self,
        key: str,
        kind: int,
        places: list[tuple[uuid.UUID, uuid.UUID | None]],
        **extra: object,
    ) -> uuid.UUID:
        new_id = helper_id(key)
        roll = self.rng.random()
        availability = ON_DUTY if roll < 0.7 else BUSY if roll < 0.8 else OFF_DUTY
        self.helpers.append(
            (
                new_id,
                kind,
                f"{'resident' if kind in (VOLUNTEER, SQUAD_MEMBER) else 'staff'}-{key}",
                extra.get("supervisor_id"),
                extra.get("department_kind", 0),
                extra.get("handled_categories", []),
                extra.get("squad_id"),
                extra.get("member_kind", 0),
                availability,
                self.rng.randrange(4),
            )
        )
        self.places += [(new_id, a, kind, village) for a, village in places]
        return new_id

    def _cadres(self, villages: list[AreaPlan], size: StaffSize) -> None:
        for village in villages:
            vid = area_id(village.code)
            for n in range(1, size.cadres_per_village + 1):
                self._add(f"{village.code}-c{n}", CADRE, [(vid, vid)])

    def _grid_workers(self, villages: list[AreaPlan], size: StaffSize) -> None:
        grids = [(g, v) for v in villages for g in v.children]
        extra = [
            grids[self.rng.randrange(len(grids))]
            for _ in range(len(grids), size.grid_workers)
        ]
        numbers: dict[str, int] = {}
        for grid, village in grids + extra:
            numbers[grid.code] = numbers.get(grid.code, 0) + 1
            vid = area_id(village.code)
            self._add(
                f"{grid.code}-w{numbers[grid.code]}",
                GRID_WORKER,
                [(area_id(grid.code), vid)],
                supervisor_id=helper_id(f"{village.code}-c1"),
            )

    def _contacts(self, plan: AreaPlan, size: StaffSize) -> None:
        towns = plan.children
        kinds = sorted(DEPARTMENTS)
        for n in range(size.department_contacts):
            town = towns[n % len(towns)]
            kind = kinds[(n // len(towns)) % len(kinds)]
            self._add(
                f"{town.code}-d{n}",
                DEPARTMENT_CONTACT,
                [(area_id(town.code), None)],
                department_kind=kind,
                handled_categories=DEPARTMENTS[kind],
            )

    def _volunteers(self, villages: list[AreaPlan], size: StaffSize) -> None:
        for village in villages:
            vid = area_id(village.code)
            for grid in village.children:
                for micro_grid in grid.children:
                    for n in range(1, size.volunteers_per_micro_grid + 1):
                        self._add(
                            f"{micro_grid.code}-v{n}",
                            VOLUNTEER,
                            [(area_id(micro_grid.code), vid)],
                        )

    def _squads(self, villages: list[AreaPlan], size: StaffSize) -> None:
        counts = spread(size.squads, len(villages), self.rng)
        for village, count in zip(villages, counts, strict=True):
            vid = area_id(village.code)
            for s in range(1, count + 1):
                squad_id = uuid.uuid5(NAMESPACE, f"squad/{village.code}-{s}")
                self.squads.append((squad_id, vid, f"Squad {s:02d}"))
                for m in range(size.members_per_squad):
                    self._add(
                        f"{village.code}-s{s}-m{m + 1}",
                        SQUAD_MEMBER,
                        [(vid, vid)],
                        squad_id=squad_id,
                        member_kind=SQUAD_MEMBER_KINDS[m % len(SQUAD_MEMBER_KINDS)],
                    )
