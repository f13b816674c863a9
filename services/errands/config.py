"""Settings of the errands service and of the ErrandWorkflows it starts."""

from dataclasses import dataclass
from pathlib import Path

from cloudark.errands.v1 import errands_pb2 as pb

from services.common.config import env_int

NAME = "errands"
SCHEMA = "errands"
MIGRATIONS = Path(__file__).parent / "migrations"

TEXT_MAX = 500
STEP_KEY_MAX = 100

# How long a call to the residents service may take before we answer UNAVAILABLE.
RESIDENTS_TIMEOUT = 5.0
# How long a front-door call waits for the workflow to take an update.
UPDATE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Promise:
    """The timings every new errand's workflow is started with."""

    # Seconds from request to delivery, per errand kind.
    due_seconds: dict[int, int]
    # Seconds an offered helper has to accept before the next is asked.
    offer_window_seconds: int
    # Helpers asked at once.
    offer_batch: int
    # Seconds an accepted errand may go without a report before it goes back
    # to dispatch.
    report_timeout_seconds: int
    # Seconds to wait before asking everyone again when every list ran out.
    redispatch_seconds: int

    @classmethod
    def from_env(cls) -> "Promise":
        return cls(
            due_seconds={
                kind: 60 * env_int(f"CLOUDARK_ERRAND_DUE_{name}", 15)
                for kind, name in (
                    (pb.ERRAND_KIND_MEDICINE, "MEDICINE"),
                    (pb.ERRAND_KIND_SHOPPING, "SHOPPING"),
                    (pb.ERRAND_KIND_OTHER, "OTHER"),
                )
            },
            offer_window_seconds=env_int("CLOUDARK_ERRAND_OFFER_WINDOW", 90),
            offer_batch=max(1, env_int("CLOUDARK_ERRAND_OFFER_BATCH", 1)),
            report_timeout_seconds=env_int("CLOUDARK_ERRAND_REPORT_TIMEOUT", 600),
            redispatch_seconds=env_int("CLOUDARK_ERRAND_REDISPATCH", 300),
        )
