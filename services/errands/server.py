"""The errands service process: `python -m services.errands.server`."""

from collections.abc import Sequence

import grpc
from cloudark.errands.v1 import errands_pb2, errands_pb2_grpc

from services.common.server import ServiceContext, ServiceDefinition, main
from services.errands import config
from services.errands.residents_client import ResidentsClient
from services.errands.servicer import ErrandsServicer


def definition(
    promise: config.Promise | None = None, task_queue: str | None = None
) -> ServiceDefinition:
    """The service; promise overrides the timings read from the environment,
    task_queue the queue its workflows run on (TEMPORAL_TASK_QUEUE)."""

    def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
        assert context.temporal is not None, "the errands front door needs Temporal"
        servicer = ErrandsServicer(
            context.pool,
            context.temporal,
            ResidentsClient.from_settings(context.settings),
            promise or config.Promise.from_env(),
            task_queue or context.settings.temporal_task_queue,
        )
        errands_pb2_grpc.add_ErrandsServiceServicer_to_server(servicer, server)
        return [errands_pb2.DESCRIPTOR.services_by_name["ErrandsService"].full_name]

    return ServiceDefinition(
        name=config.NAME,
        schema=config.SCHEMA,
        migrations=config.MIGRATIONS,
        register=register,
        uses_temporal=True,
    )


DEFINITION = definition()

if __name__ == "__main__":
    main(DEFINITION)
