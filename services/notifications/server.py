"""The notifications service process: `python -m services.notifications.server`.

One process serves notifications (NotificationsService) and the
three-affairs disclosures (DisclosuresService), on the notifications schema.
It starts the notification workflows, so it is a front door.
"""

import asyncio
from collections.abc import Sequence

import grpc
from cloudark.notifications.v1 import notifications_pb2, notifications_pb2_grpc

from services.common.server import ServiceContext, ServiceDefinition, main
from services.notifications import config
from services.notifications.audience import AudienceResolver
from services.notifications.disclosures_servicer import DisclosuresServicer
from services.notifications.dispatch import Dispatcher
from services.notifications.providers import RateLimiter, providers_from
from services.notifications.servicer import NotificationsServicer

# Keeps the start-up resume task referenced until it is done.
_RESUMING: set[asyncio.Task[int]] = set()


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    pool, settings = context.pool, context.settings
    providers = config.ProviderSettings.from_env()
    resolver = AudienceResolver.from_settings(settings)
    dispatcher = Dispatcher(
        pool,
        providers_from(providers),
        RateLimiter(providers.rates),
        providers.max_attempts,
    )
    notifications = NotificationsServicer(
        pool,
        resolver,
        dispatcher,
        context.temporal,
        settings.temporal_task_queue,
    )
    notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(
        notifications, server
    )
    resuming = asyncio.get_running_loop().create_task(notifications.resume_sending())
    _RESUMING.add(resuming)
    resuming.add_done_callback(_RESUMING.discard)
    notifications_pb2_grpc.add_DisclosuresServiceServicer_to_server(
        DisclosuresServicer(pool, resolver), server
    )
    services = notifications_pb2.DESCRIPTOR.services_by_name
    return [
        services["NotificationsService"].full_name,
        services["DisclosuresService"].full_name,
    ]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
    uses_temporal=True,
)

if __name__ == "__main__":
    main(DEFINITION)
