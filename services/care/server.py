"""The care service process: `python -m services.care.server`.

A front door: it starts and signals the squad, mode and campaign workflows,
so it gets a Temporal client.
"""

from collections.abc import Sequence

import grpc
from cloudark.care.v1 import care_pb2, care_pb2_grpc

from services.care import config
from services.care.clients import Upstream
from services.care.servicer import CareServicer
from services.common.server import ServiceContext, ServiceDefinition, main


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    servicer = CareServicer(
        context.pool,
        Upstream.from_settings(context.settings),
        context.temporal,
        context.settings,
    )
    care_pb2_grpc.add_CareServiceServicer_to_server(servicer, server)
    return [care_pb2.DESCRIPTOR.services_by_name["CareService"].full_name]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
    uses_temporal=True,
)

if __name__ == "__main__":
    main(DEFINITION)
