"""Every scenario module `make bench` runs, in order (see bench/harness.py)."""

SCENARIOS: list[str] = [
    "baselines",
    "hierarchy",
    "grids",
    "residents",
    "notifications",
    "redemptions",
    "errands",
]
