"""A deterministic plan of a synthetic city: towns, villages, grids, micro-grids.

The same seed and sizes always give the same plan, so a workflow can compute
it and an activity can rebuild any part of it.
"""

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CitySize:
    towns: int
    villages: int
    grids: int
    micro_grids: int


# The demo city of `make run`, and the seed city's 2022 figures.
DEMO = CitySize(towns=2, villages=4, grids=10, micro_grids=40)
FULL = CitySize(towns=39, villages=407, grids=1192, micro_grids=8205)


@dataclass
class AreaPlan:
    name: str
    code: str
    children: list["AreaPlan"] = field(default_factory=list)

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)


def spread(total: int, buckets: int, rng: random.Random) -> list[int]:
    """Splits total into buckets parts of at least one each, roughly evenly."""
    if buckets < 1 or total < buckets:
        raise ValueError(f"cannot spread {total} over {buckets}")
    counts = [1] * buckets
    for _ in range(total - buckets):
        counts[rng.randrange(buckets)] += 1
    return counts


def plan_city(name: str, code: str, size: CitySize, seed: int) -> AreaPlan:
    """Towns, each with its villages, grids and micro-grids, codes nested."""
    rng = random.Random(seed)
    villages = spread(size.villages, size.towns, rng)
    grids = spread(size.grids, size.villages, rng)
    micro_grids = spread(size.micro_grids, size.grids, rng)
    city = AreaPlan(name, code)
    village_no = grid_no = 0
    for t, village_count in enumerate(villages, start=1):
        town = AreaPlan(f"Town {t:02d}", f"{code}{t:03d}")
        city.children.append(town)
        for v in range(1, village_count + 1):
            village = AreaPlan(f"Village {t:02d}-{v:02d}", f"{town.code}{v:03d}")
            town.children.append(village)
            for g in range(1, grids[village_no] + 1):
                grid = AreaPlan(
                    f"Grid {t:02d}-{v:02d}-{g:02d}", f"{village.code}{g:02d}"
                )
                village.children.append(grid)
                grid.children = [
                    AreaPlan(
                        f"Micro-grid {grid.name[5:]}-{m:02d}", f"{grid.code}{m:02d}"
                    )
                    for m in range(1, micro_grids[grid_no] + 1)
                ]
                grid_no += 1
            village_no += 1
    return city
