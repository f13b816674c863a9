"""Settings of the residents service."""

from pathlib import Path

from services.common.config import env_int

NAME = "residents"
SCHEMA = "residents"
MIGRATIONS = Path(__file__).parent / "migrations"

NAME_MAX = 100
ADDRESS_MAX = 200
CARE_NOTE_MAX = 500
# A single posting larger than this is a typo, not a good deed.
POINTS_MAX = 1_000_000

# Settlement rate: how many points make one yuan (10 in the seed city).
POINTS_PER_YUAN = env_int("CLOUDARK_POINTS_PER_YUAN", 10)

# How long a call to the grids service may take before we answer UNAVAILABLE.
GRIDS_TIMEOUT = 5.0
