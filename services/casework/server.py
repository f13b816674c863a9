"""The casework front door process: `python -m services.casework.server`."""

from collections.abc import Sequence

import grpc
from cloudark.casework.v1 import casework_pb2, casework_pb2_grpc

from services.casework import config
from services.casework.servicer import CaseworkServicer
from services.casework.upstream import Grids
from services.common.server import ServiceContext, ServiceDefinition, main
from services.common.tls import open_channel, tls_from_env


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    settings = context.settings
    assert context.temporal is not None, "a front door gets a Temporal client"
    grids = open_channel(settings.service_address("grids"), tls_from_env())
    servicer = CaseworkServicer(
        context.pool, context.temporal, Grids(grids), settings.temporal_task_queue
    )
    casework_pb2_grpc.add_CaseworkServiceServicer_to_server(servicer, server)
    return [casework_pb2.DESCRIPTOR.services_by_name["CaseworkService"].full_name]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
    uses_temporal=True,
)

if __name__ == "__main__":
    main(DEFINITION)
