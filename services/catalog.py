"""Every gRPC service of Cloud Ark, for tools that treat them all alike
(the migration job, the fuzz suite, the embedded stack)."""

from services.care.server import DEFINITION as CARE
from services.common.server import ServiceDefinition
from services.grids.server import DEFINITION as GRIDS
from services.residents.server import DEFINITION as RESIDENTS

DEFINITIONS: list[ServiceDefinition] = [GRIDS, RESIDENTS, CARE]
