"""The grids service process: `python -m services.grids.server`.

One process serves the hierarchy (GridsService), the people on duty
(StaffService), cases and patrols (CasesService) and the annual report
(ReportsService), all on the grids schema.
"""

from collections.abc import Sequence

import grpc
from cloudark.grids.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    grids_pb2,
    grids_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    staff_pb2,
    staff_pb2_grpc,
)

from services.common.server import ServiceContext, ServiceDefinition, main
from services.grids import config
from services.grids.cases_servicer import CasesServicer
from services.grids.reports_servicer import ReportsServicer
from services.grids.servicer import GridsServicer
from services.grids.staff_servicer import StaffServicer


def register(server: grpc.aio.Server, context: ServiceContext) -> Sequence[str]:
    pool = context.pool
    grids_pb2_grpc.add_GridsServiceServicer_to_server(GridsServicer(pool), server)
    staff_pb2_grpc.add_StaffServiceServicer_to_server(StaffServicer(pool), server)
    cases_pb2_grpc.add_CasesServiceServicer_to_server(CasesServicer(pool), server)
    reports_pb2_grpc.add_ReportsServiceServicer_to_server(ReportsServicer(pool), server)
    return [
        grids_pb2.DESCRIPTOR.services_by_name["GridsService"].full_name,
        staff_pb2.DESCRIPTOR.services_by_name["StaffService"].full_name,
        cases_pb2.DESCRIPTOR.services_by_name["CasesService"].full_name,
        reports_pb2.DESCRIPTOR.services_by_name["ReportsService"].full_name,
    ]


DEFINITION = ServiceDefinition(
    name=config.NAME,
    schema=config.SCHEMA,
    migrations=config.MIGRATIONS,
    register=register,
)

if __name__ == "__main__":
    main(DEFINITION)
