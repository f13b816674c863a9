"""Settings of the casework front door."""

from pathlib import Path

NAME = "casework"
SCHEMA = "casework"
MIGRATIONS = Path(__file__).parent / "migrations"

PERSON_ID_MAX = 128
DESCRIPTION_MAX = 4000
NOTE_MAX = 1000
ATTACHMENTS_MAX = 20
ATTACHMENT_REF_MAX = 512
# A rectification longer than a season is a typo.
RECTIFY_DAYS_MAX = 90
# Deadlines counted in hours stay within thirty days.
HOURS_MAX = 720

# How long a call to the grids service or Temporal may take.
CALL_TIMEOUT = 10.0
