"""Settings of the grids service."""

from pathlib import Path

NAME = "grids"
SCHEMA = "grids"
MIGRATIONS = Path(__file__).parent / "migrations"

AREA_NAME_MAX = 100
AREA_CODE_MAX = 32

# People and free text.
PERSON_ID_MAX = 128
SQUAD_NAME_MAX = 100
DESCRIPTION_MAX = 4000
NOTE_MAX = 2000
ATTACHMENTS_MAX = 20
ATTACHMENT_REF_MAX = 512
STEP_KEY_MAX = 200
HOUSEHOLD_ID_MAX = 128

# RankHelpers answers at most this many candidates (20 when not asked).
RANK_LIMIT_DEFAULT = 20
RANK_LIMIT_MAX = 100

# Years are counted in China Standard Time, as the seed's city counts them.
REPORT_TIME_ZONE = "Asia/Shanghai"
REPORT_YEAR_MIN = 2000
REPORT_YEAR_MAX = 2100
