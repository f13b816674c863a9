"""Settings of the notifications service."""

from dataclasses import dataclass
from pathlib import Path

from services.common.config import env, env_int

NAME = "notifications"
SCHEMA = "notifications"
MIGRATIONS = Path(__file__).parent / "migrations"

TITLE_MAX = 200
BODY_MAX = 4000
TEMPLATE_NAME_MAX = 100
VARIABLE_MAX = 1000
REFERENCE_MAX = 200
ID_MAX = 128
# Named people in one request; areas reach the rest.
NAMED_MAX = 1000
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# Quiet hours are read in China Standard Time, as the city lives by it.
TIME_ZONE = "Asia/Shanghai"

# Deliveries one DispatchDeliveries call sends when it does not say.
DISPATCH_PAGE_DEFAULT = env_int("CLOUDARK_NOTIFICATIONS_PAGE", 1000)
DISPATCH_PAGE_MAX = 5000
# Residents and helpers asked for per page while resolving an audience.
RESOLVE_PAGE = 1000
# How long a call to the residents or grids service may take.
PEER_TIMEOUT = 30.0

DISCLOSURE_TITLE_MAX = 200
DISCLOSURE_BODY_MAX = 20000
DISCLOSURE_PERIOD_MAX = 32
DISCLOSURE_REASON_MAX = 1000
ATTACHMENTS_MAX = 20
ATTACHMENT_NAME_MAX = 200
ATTACHMENT_URI_MAX = 1000


@dataclass(frozen=True)
class ProviderSettings:
    """Where text messages, group chats and TV displays are sent.

    Without a webhook URL every external message goes to the outbox table
    (ListOutboxMessages); with one, to that HTTP gateway.
    """

    webhook_url: str
    webhook_timeout: float
    # Give a delivery up after this many failed attempts.
    max_attempts: int
    # Messages per second per channel name; 0 means no limit.
    rates: dict[str, float]

    @classmethod
    def from_env(cls) -> "ProviderSettings":
        return cls(
            webhook_url=env("CLOUDARK_NOTIFICATIONS_WEBHOOK_URL", ""),
            webhook_timeout=env_int("CLOUDARK_NOTIFICATIONS_WEBHOOK_TIMEOUT_MS", 5000)
            / 1000,
            max_attempts=env_int("CLOUDARK_NOTIFICATIONS_MAX_ATTEMPTS", 5),
            rates=parse_rates(
                env(
                    "CLOUDARK_NOTIFICATIONS_RATES",
                    "text_message=500,group_chat=20,tv=5",
                )
            ),
        )


def parse_rates(raw: str) -> dict[str, float]:
    """`text_message=500,group_chat=20` → {"text_message": 500.0, …}."""
    rates: dict[str, float] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        name, _, value = item.partition("=")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(
                f"CLOUDARK_NOTIFICATIONS_RATES: {item!r} is not channel=number"
            ) from None
    return rates
