"""Settings of the care service."""

from datetime import timedelta
from pathlib import Path

NAME = "care"
SCHEMA = "care"
MIGRATIONS = Path(__file__).parent / "migrations"

# A new plan's visit interval until SetCarePlan says otherwise.
DEFAULT_VISIT_EVERY_DAYS = 7
EVERY_DAYS_MAX = 365
DESCRIPTION_MAX = 2000
# The errands service takes at most this much detail.
ERRAND_DETAILS_MAX = 500
REASON_MAX = 500
CAMPAIGN_VILLAGES_MAX = 100
# ListDueVisits without `until` looks this far ahead.
DUE_HORIZON = timedelta(days=7)

# Wartime: recipients living alone are contacted daily, everyone else at
# least every WARTIME_VISIT_EVERY_DAYS, counted from the switch at the latest.
WARTIME_VISIT_EVERY_DAYS = 3

# Roster page read per EnrollCampaignRecipients call.
ENROLL_PAGE = 500

# How long a call to grids or residents may take before we answer UNAVAILABLE.
CALL_TIMEOUT = 5.0

REPORT_TIME_ZONE = "Asia/Shanghai"
REPORT_YEAR_MIN = 2000
REPORT_YEAR_MAX = 2100
