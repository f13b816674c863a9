"""The residents service process: `python -m services.residents.server`."""

from collections.abc import Sequence

import grpc
from cloudark.residents.v1 import residents_pb2, residents_pb2_grpc

from services.common.server import ServiceContext, ServiceDefinition, main
from services.residents import config
from services.residents.grids_client import GridsClient
from services.residents.pii import Keyring
from services.residents.servicer import ResidentsServicer


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    pool, settings = context.pool, context.settings
    servicer = ResidentsServicer(
        pool, Keyring.from_env(), GridsClient.from_settings(settings)
    )
    residents_pb2_grpc.add_ResidentsServiceServicer_to_server(servicer, server)
    return [residents_pb2.DESCRIPTOR.services_by_name["ResidentsService"].full_name]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
)

if __name__ == "__main__":
    main(DEFINITION)
