"""The grids service process: `python -m services.grids.server`."""

from collections.abc import Sequence

import asyncpg
import grpc
from cloudark.grids.v1 import grids_pb2, grids_pb2_grpc

from services.common.config import Settings
from services.common.server import ServiceDefinition, main
from services.grids import config
from services.grids.servicer import GridsServicer


def register(
    server: grpc.aio.Server, pool: asyncpg.Pool, settings: Settings
) -> Sequence[str]:
    grids_pb2_grpc.add_GridsServiceServicer_to_server(GridsServicer(pool), server)
    return [grids_pb2.DESCRIPTOR.services_by_name["GridsService"].full_name]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
)

if __name__ == "__main__":
    main(DEFINITION)
