"""The merchants service process: `python -m services.merchants.server`."""

from collections.abc import Sequence

import grpc
from cloudark.merchants.v1 import merchants_pb2, merchants_pb2_grpc

from services.common.server import ServiceContext, ServiceDefinition, main
from services.merchants import config
from services.merchants.clients import Neighbours
from services.merchants.servicer import MerchantsServicer
from services.residents.pii import Keyring


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    settings = context.settings
    servicer = MerchantsServicer(
        context.pool,
        Keyring.from_env(),
        Neighbours.from_settings(settings),
        temporal=context.temporal,
        task_queue=settings.temporal_task_queue,
    )
    merchants_pb2_grpc.add_MerchantsServiceServicer_to_server(servicer, server)
    return [merchants_pb2.DESCRIPTOR.services_by_name["MerchantsService"].full_name]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
    uses_temporal=True,
)

if __name__ == "__main__":
    main(DEFINITION)
