"""ReportsService: the year-end table of an area, read from the roll-ups."""

from typing import Any

import asyncpg
from cloudark.grids.v1 import reports_pb2 as pb
from cloudark.grids.v1 import reports_pb2_grpc as pb_grpc

from services.common.identity import caller_of
from services.common.validation import Violations
from services.grids import cases_repository as repo
from services.grids import config, shared
from services.grids.taxonomy import CATEGORY_CODES, GROUPS, group_of

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.


class ReportsServicer(pb_grpc.ReportsServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def GetAnnualReport(
        self, request: pb.GetAnnualReportRequest, context: Context
    ) -> pb.GetAnnualReportResponse:
        caller_of(context).require(*shared.STAFF)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if not config.REPORT_YEAR_MIN <= request.year <= config.REPORT_YEAR_MAX:
            low, high = config.REPORT_YEAR_MIN, config.REPORT_YEAR_MAX
            v.add("year", f"must be between {low} and {high}")
        v.raise_if_any()
        assert area_id is not None

        async with self._pool.acquire() as conn:
            await shared.existing_area(conn, area_id, "area_id")
            patrols, by_category = await repo.annual_counts(conn, area_id, request.year)
        report = annual_report(request.area_id, request.year, patrols, by_category)
        return pb.GetAnnualReportResponse(report=report)


def annual_report(
    area_id: str, year: int, patrols: int, by_category: dict[int, int]
) -> pb.AnnualReport:
    """The report's table: every group and sub-category, zeros included."""
    groups = []
    for group in GROUPS:
        categories = [
            pb.CategoryCount(
                category=c,  # type: ignore[arg-type]
                cases=by_category.get(c, 0),
            )
            for c in CATEGORY_CODES
            if group_of(c) == group
        ]
        groups.append(
            pb.GroupCount(
                group=group,  # type: ignore[arg-type]
                cases=sum(c.cases for c in categories),
                categories=categories,
            )
        )
    return pb.AnnualReport(
        area_id=area_id,
        year=year,
        patrols=patrols,
        cases=sum(by_category.values()),
        groups=groups,
    )
