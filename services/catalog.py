"""Every gRPC service of Cloud Ark, for tools that treat them all alike
(the migration job, the fuzz suite, the embedded stack)."""

from services.care.server import DEFINITION as CARE
from services.casework.server import DEFINITION as CASEWORK
from services.common.server import ServiceDefinition
from services.errands.server import DEFINITION as ERRANDS
from services.grids.server import DEFINITION as GRIDS
from services.merchants.server import DEFINITION as MERCHANTS
from services.notifications.server import DEFINITION as NOTIFICATIONS
from services.residents.server import DEFINITION as RESIDENTS

DEFINITIONS: list[ServiceDefinition] = [
    GRIDS,
    RESIDENTS,
    NOTIFICATIONS,
    MERCHANTS,
    ERRANDS,
    CASEWORK,
    CARE,
]
