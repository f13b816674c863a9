"""Applies every service's migrations, for a job that runs before a rollout.

    python -m services.common.migrate

In production the services start with CLOUDARK_MIGRATE_ON_START=false and
this runs first (deploy/k8s/base/migrate-job.yaml), so a rollout never races
its own schema changes. It uses each service's DEFINITION, the same schema and
migration folder the service itself would apply, and the same advisory lock.
"""

import asyncio
import logging
from collections.abc import Sequence

from services.catalog import DEFINITIONS
from services.common import db
from services.common.config import Settings
from services.common.logs import configure_logging
from services.common.server import ServiceDefinition

log = logging.getLogger(__name__)


async def migrate_all(
    settings: Settings, services: Sequence[ServiceDefinition]
) -> dict[str, list[str]]:
    """Applies pending migrations of each service; returns the versions applied."""
    await db.wait_for_database(settings.database_url)
    applied = {}
    for definition in services:
        pool = await db.create_pool(settings, definition.schema)
        try:
            done = await db.migrate(pool, definition.schema, definition.migrations)
        finally:
            await pool.close()
        log.info("schema %s: %s migrations applied", definition.schema, len(done))
        applied[definition.name] = done
    return applied


def main() -> None:
    configure_logging("migrate")
    settings = Settings.from_env()
    asyncio.run(migrate_all(settings, DEFINITIONS))


if __name__ == "__main__":
    main()
