"""Settings of the grids service."""

from pathlib import Path

NAME = "grids"
SCHEMA = "grids"
MIGRATIONS = Path(__file__).parent / "migrations"

AREA_NAME_MAX = 100
AREA_CODE_MAX = 32
