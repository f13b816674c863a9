"""Settings of the merchants service."""

from pathlib import Path

from services.common.config import env_int

NAME = "merchants"
SCHEMA = "merchants"
MIGRATIONS = Path(__file__).parent / "migrations"

NAME_MAX = 100
TITLE_MAX = 100
SEARCH_MAX = 50
POINTS_MAX = 1_000_000
STOCK_MAX = 1_000_000

# Settlement rate: how many points make one yuan (10 in the seed city).
POINTS_PER_YUAN = env_int("CLOUDARK_POINTS_PER_YUAN", 10)

# How long a merchant has to confirm a hand-over before the points go back.
CONFIRM_MINUTES = env_int("CLOUDARK_REDEMPTION_CONFIRM_MINUTES", 15)

# Statements are by calendar month in the city's time.
CITY_TIME_ZONE = "Asia/Shanghai"

# How long a call to another service may take before we answer UNAVAILABLE.
CALL_TIMEOUT = 5.0
# How long RedeemOffer waits for the points to be held and the item reserved,
# and a decision for the redemption to be settled, before answering UNAVAILABLE.
SAGA_TIMEOUT = 30.0
