"""Writes a legacy system's 2022 export for a planned city (docs/history-import.md).

The counts equal the seed's published figures exactly: 345,628 cases with the
seed's category breakdown and 300,376 patrols, spread over the city's
micro-grids and the year by a seeded generator.
"""

import csv
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.grids.taxonomy import (
    CATEGORY_CODES,
    PATROL_KIND_CODES,
    SEED_2022_CATEGORY_COUNTS,
    SEED_2022_PATROLS,
    SOURCE_CODES,
)
from workflows.city.plan import AreaPlan

CASE_COLUMNS = [
    "id",
    "reported_at",
    "micro_grid_code",
    "category",
    "source",
    "description",
]
PATROL_COLUMNS = ["id", "patrolled_at", "micro_grid_code", "kind", "notes"]
CST = timezone(timedelta(hours=8))
YEAR_START = datetime(2022, 1, 1, tzinfo=CST)
SECONDS_IN_2022 = 365 * 24 * 3600


@dataclass
class Export:
    cases_path: Path
    patrols_path: Path
    # Each town's share, by town code: what its annual report must show.
    town_cases: Counter[str]
    town_categories: dict[str, Counter[int]]
    town_patrols: Counter[str]


def micro_grids(plan: AreaPlan) -> list[tuple[str, str]]:
    """(micro-grid code, town code) of every micro-grid of a city plan."""
    return [
        (m.code, town.code)
        for town in plan.children
        for village in town.children
        for grid in village.children
        for m in grid.children
    ]


def write_2022(
    plan: AreaPlan,
    folder: Path,
    seed: int,
    *,
    category_counts: dict[int, int] | None = None,
    patrols: int = SEED_2022_PATROLS,
    id_prefix: str = "",
) -> Export:
    """Writes cases-2022.csv and patrols-2022.csv into folder.

    id_prefix keeps the legacy ids of several exports apart (benchmarks import
    one per city into the same database).
    """
    rng = random.Random(seed)
    places = micro_grids(plan)
    counts = category_counts or SEED_2022_CATEGORY_COUNTS
    categories = [c for c, n in counts.items() for _ in range(n)]
    rng.shuffle(categories)
    export = Export(
        folder / "cases-2022.csv", folder / "patrols-2022.csv", Counter(), {}, Counter()
    )
    with export.cases_path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CASE_COLUMNS)
        sources = list(SOURCE_CODES.values())
        for n, category in enumerate(categories, start=1):
            code, town = places[rng.randrange(len(places))]
            export.town_cases[town] += 1
            export.town_categories.setdefault(town, Counter())[category] += 1
            writer.writerow(
                [
                    f"{id_prefix}C2022-{n:07d}",
                    _moment(rng),
                    code,
                    CATEGORY_CODES[category],
                    sources[rng.randrange(len(sources))],
                    "",
                ]
            )
    with export.patrols_path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(PATROL_COLUMNS)
        kinds = list(PATROL_KIND_CODES.values())
        for n in range(1, patrols + 1):
            code, town = places[rng.randrange(len(places))]
            export.town_patrols[town] += 1
            writer.writerow(
                [f"{id_prefix}P2022-{n:07d}", _moment(rng), code, kinds[n % 2], ""]
            )
    return export


def _moment(rng: random.Random) -> str:
    return (YEAR_START + timedelta(seconds=rng.randrange(SECONDS_IN_2022))).isoformat()
