"""CasesService and ReportsService through a real server."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

import grpc
import pytest
from cloudark.grids.v1 import cases_pb2 as pb
from cloudark.grids.v1 import cases_pb2_grpc as pb_grpc
from cloudark.grids.v1 import grids_pb2_grpc as grids_grpc
from cloudark.grids.v1 import reports_pb2 as reports_pb
from cloudark.grids.v1 import reports_pb2_grpc as reports_grpc
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.identity import Caller, Role
from services.grids.config import REPORT_TIME_ZONE
from tests.conftest import OPERATOR
from tests.grids.test_areas import chain
from tests.helpers import bad_fields, call_error

AS_OPERATOR = OPERATOR.metadata()
FIRE = pb.CASE_CATEGORY_SAFETY_FIRE


@pytest.fixture
def areas(grids_channel: grpc.aio.Channel) -> grids_grpc.GridsServiceAsyncStub:
    return grids_grpc.GridsServiceStub(grids_channel)


@pytest.fixture
def stub(grids_channel: grpc.aio.Channel) -> pb_grpc.CasesServiceAsyncStub:
    return pb_grpc.CasesServiceStub(grids_channel)


@pytest.fixture
def staff(grids_channel: grpc.aio.Channel) -> staff_grpc.StaffServiceAsyncStub:
    return staff_grpc.StaffServiceStub(grids_channel)


@pytest.fixture
def reports(grids_channel: grpc.aio.Channel) -> reports_grpc.ReportsServiceAsyncStub:
    return reports_grpc.ReportsServiceStub(grids_channel)


async def report_case(
    stub: pb_grpc.CasesServiceAsyncStub,
    micro_grid_id: str,
    category: int = FIRE,
    reporter_id: str = "resident-1",
    **fields: object,
) -> pb.Case:
    request = pb.CreateCaseRequest(
        category=category,  # type: ignore[arg-type]
        source=pb.CASE_SOURCE_RESIDENT_TIP_OFF,
        micro_grid_id=micro_grid_id,
        description="cable laid without conduit",
        reporter_id=reporter_id,
        **fields,  # type: ignore[arg-type]
    )
    response = await stub.CreateCase(request, metadata=AS_OPERATOR)
    return response.case


async def test_created_case_starts_reported_with_one_timeline_entry(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    *_, micro_grid = await chain(areas)

    case = await report_case(
        stub,
        micro_grid.id,
        coordinates=pb.Coordinates(latitude=30.0, longitude=122.1),
        attachment_refs=["photos/1.jpg"],
    )
    fetched = await stub.GetCase(pb.GetCaseRequest(id=case.id), metadata=AS_OPERATOR)

    assert fetched.case == case
    assert case.status == pb.CASE_STATUS_REPORTED
    assert [e.status for e in case.timeline] == [pb.CASE_STATUS_REPORTED]
    assert case.coordinates.longitude == pytest.approx(122.1)


async def test_replaying_a_create_with_its_request_id_creates_one_case(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    *_, micro_grid = await chain(areas)
    request_id = f"wf-{uuid.uuid4()}/create"

    first = await report_case(stub, micro_grid.id, request_id=request_id)
    again = await report_case(stub, micro_grid.id, request_id=request_id)

    assert first.id == again.id


async def test_replaying_a_step_changes_nothing(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    *_, micro_grid = await chain(areas)
    case = await report_case(stub, micro_grid.id)
    step = pb.AppendCaseStepRequest(
        case_id=case.id,
        step_key="wf-1/assign",
        status=pb.CASE_STATUS_ASSIGNED,
        assignee_id="worker-7",
        note="sent to the grid worker",
    )

    first = await stub.AppendCaseStep(step, metadata=AS_OPERATOR)
    again = await stub.AppendCaseStep(step, metadata=AS_OPERATOR)
    reused = await call_error(
        stub.AppendCaseStep(
            pb.AppendCaseStepRequest(case_id=case.id, step_key="wf-1/assign", note="x"),
            metadata=AS_OPERATOR,
        )
    )

    assert again.case == first.case
    assert first.case.status == pb.CASE_STATUS_ASSIGNED
    assert first.case.assignee_id == "worker-7"
    assert len(first.case.timeline) == 2
    assert reused.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_closed_case_takes_no_more_steps(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    *_, micro_grid = await chain(areas)
    case = await report_case(stub, micro_grid.id)
    await stub.AppendCaseStep(
        pb.AppendCaseStepRequest(
            case_id=case.id, step_key="close", status=pb.CASE_STATUS_CLOSED
        ),
        metadata=AS_OPERATOR,
    )

    error = await call_error(
        stub.AppendCaseStep(
            pb.AppendCaseStepRequest(case_id=case.id, step_key="reopen", note="?"),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_cases_of_a_town_filters_and_pages(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, town, *_, micro_grid = await chain(areas)
    fires = [await report_case(stub, micro_grid.id) for _ in range(3)]
    await report_case(stub, micro_grid.id, category=pb.CASE_CATEGORY_OTHER)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListCases(
            pb.ListCasesRequest(
                area_id=town.id, category=FIRE, page_size=2, page_token=token
            ),
            metadata=AS_OPERATOR,
        )
        seen += [c.id for c in page.cases]
        token = page.next_page_token
        if not token:
            break
    later = Timestamp()
    later.GetCurrentTime()
    later.seconds += 3600
    none_later = await stub.ListCases(
        pb.ListCasesRequest(area_id=town.id, start_time=later), metadata=AS_OPERATOR
    )

    assert seen == [c.id for c in reversed(fires)]
    assert list(none_later.cases) == []


async def test_resident_sees_only_own_cases(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    *_, micro_grid = await chain(areas)
    reporter = f"resident-{uuid.uuid4().hex[:8]}"
    mine = await report_case(stub, micro_grid.id, reporter_id=reporter)
    other = await report_case(stub, micro_grid.id)
    as_resident = Caller(subject=reporter, role=Role.RESIDENT).metadata()

    own = await stub.ListReporterCases(
        pb.ListReporterCasesRequest(reporter_id=reporter), metadata=as_resident
    )
    denied = await call_error(
        stub.GetCase(pb.GetCaseRequest(id=other.id), metadata=as_resident)
    )
    as_someone_else = await call_error(
        stub.CreateCase(
            pb.CreateCaseRequest(
                category=FIRE,
                source=pb.CASE_SOURCE_RESIDENT_TIP_OFF,
                micro_grid_id=micro_grid.id,
                description="x",
                reporter_id="someone-else",
            ),
            metadata=as_resident,
        )
    )

    assert [c.id for c in own.cases] == [mine.id]
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert as_someone_else.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_grid_workers_and_cadres_reach_only_cases_of_their_own_areas(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    city, _, village, grid, micro_grid = await chain(areas)
    *_, other_grid, other_micro_grid = await chain(areas)
    case = await report_case(stub, micro_grid.id)
    far_case = await report_case(stub, other_micro_grid.id)
    worker = Caller("worker-1", Role.GRID_WORKER, (grid.id,)).metadata()
    cadre = Caller("cadre-1", Role.CADRE, (village.id,)).metadata()
    unscoped = Caller("worker-2", Role.GRID_WORKER).metadata()

    own = await stub.GetCase(pb.GetCaseRequest(id=case.id), metadata=worker)
    listed = await stub.ListCases(
        pb.ListCasesRequest(area_id=village.id), metadata=cadre
    )
    refused = [
        await call_error(stub.GetCase(pb.GetCaseRequest(id=far_case.id), metadata=m))
        for m in (worker, cadre, unscoped)
    ]
    refused.append(
        await call_error(
            stub.ListCases(pb.ListCasesRequest(area_id=city.id), metadata=cadre)
        )
    )
    refused.append(
        await call_error(
            stub.AppendCaseStep(
                pb.AppendCaseStepRequest(
                    case_id=far_case.id,
                    step_key="visit",
                    status=pb.CASE_STATUS_IN_PROGRESS,
                ),
                metadata=worker,
            )
        )
    )
    refused.append(
        await call_error(
            stub.ListCases(pb.ListCasesRequest(area_id=other_grid.id), metadata=worker)
        )
    )
    untouched = await stub.GetCase(
        pb.GetCaseRequest(id=far_case.id), metadata=AS_OPERATOR
    )

    assert own.case.id == case.id
    assert [c.id for c in listed.cases] == [case.id]
    assert {e.code() for e in refused} == {grpc.StatusCode.PERMISSION_DENIED}
    assert len(untouched.case.timeline) == 1


async def test_patrol_lists_the_cases_opened_from_it_and_counts_in_the_report(
    stub: pb_grpc.CasesServiceAsyncStub,
    staff: staff_grpc.StaffServiceAsyncStub,
    reports: reports_grpc.ReportsServiceAsyncStub,
    areas: grids_grpc.GridsServiceAsyncStub,
) -> None:
    city, _, _, grid, micro_grid = await chain(areas)
    worker = (
        await staff.RegisterHelper(
            staff_pb.RegisterHelperRequest(
                kind=staff_pb.HELPER_KIND_GRID_WORKER,
                person_id="worker-p",
                area_ids=[grid.id],
            ),
            metadata=AS_OPERATOR,
        )
    ).helper
    patrol = (
        await stub.RecordPatrol(
            pb.RecordPatrolRequest(
                worker_id=worker.id,
                micro_grid_id=micro_grid.id,
                kind=pb.PATROL_KIND_HOME_VISIT,
                household_id="household-9",
            ),
            metadata=AS_OPERATOR,
        )
    ).patrol
    case = await report_case(stub, micro_grid.id, patrol_id=patrol.id)

    fetched = await stub.GetPatrol(
        pb.GetPatrolRequest(id=patrol.id), metadata=AS_OPERATOR
    )
    listed = await stub.ListPatrols(
        pb.ListPatrolsRequest(area_id=city.id, worker_id=worker.id),
        metadata=AS_OPERATOR,
    )
    # The report counts years in China Standard Time.
    year = fetched.patrol.patrol_time.ToDatetime(tzinfo=ZoneInfo(REPORT_TIME_ZONE)).year
    table = (
        await reports.GetAnnualReport(
            reports_pb.GetAnnualReportRequest(area_id=city.id, year=year),
            metadata=AS_OPERATOR,
        )
    ).report

    assert list(fetched.patrol.case_ids) == [case.id]
    assert [p.id for p in listed.patrols] == [patrol.id]
    assert (table.patrols, table.cases) == (1, 1)


async def test_patrol_outside_the_workers_grids_is_failed_precondition(
    stub: pb_grpc.CasesServiceAsyncStub,
    staff: staff_grpc.StaffServiceAsyncStub,
    areas: grids_grpc.GridsServiceAsyncStub,
) -> None:
    *_, grid, _ = await chain(areas)
    *_, elsewhere = await chain(areas)
    worker = (
        await staff.RegisterHelper(
            staff_pb.RegisterHelperRequest(
                kind=staff_pb.HELPER_KIND_GRID_WORKER,
                person_id="worker-q",
                area_ids=[grid.id],
            ),
            metadata=AS_OPERATOR,
        )
    ).helper

    error = await call_error(
        stub.RecordPatrol(
            pb.RecordPatrolRequest(
                worker_id=worker.id,
                micro_grid_id=elsewhere.id,
                kind=pb.PATROL_KIND_PATROL,
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_case_in_a_town_is_failed_precondition(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, town, *_ = await chain(areas)

    error = await call_error(report_case(stub, town.id))
    missing = await call_error(report_case(stub, str(uuid.uuid4())))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert missing.code() == grpc.StatusCode.NOT_FOUND


FUTURE = Timestamp(seconds=4_000_000_000)


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        (
            "CreateCase",
            pb.CreateCaseRequest(
                coordinates=pb.Coordinates(latitude=91, longitude=-181),
                attachment_refs=[""],
                patrol_id="x",
            ),
            {
                "category",
                "source",
                "micro_grid_id",
                "coordinates.latitude",
                "coordinates.longitude",
                "description",
                "attachment_refs[0]",
                "reporter_id",
                "patrol_id",
            },
        ),
        ("GetCase", pb.GetCaseRequest(id="x"), {"id"}),
        (
            "AppendCaseStep",
            pb.AppendCaseStepRequest(status=pb.CASE_STATUS_REPORTED),
            {"case_id", "step_key", "status"},
        ),
        (
            "ListCases",
            pb.ListCasesRequest(
                category=99,  # type: ignore[arg-type]
                status=42,  # type: ignore[arg-type]
                start_time=FUTURE,
                end_time=Timestamp(seconds=1),
                page_size=-1,
            ),
            {"area_id", "category", "status", "end_time", "page_size"},
        ),
        ("ListReporterCases", pb.ListReporterCasesRequest(), {"reporter_id"}),
        (
            "RecordPatrol",
            pb.RecordPatrolRequest(patrol_time=FUTURE),
            {"worker_id", "micro_grid_id", "kind", "patrol_time"},
        ),
        ("GetPatrol", pb.GetPatrolRequest(), {"id"}),
        ("ListPatrols", pb.ListPatrolsRequest(worker_id="x"), {"area_id", "worker_id"}),
    ],
)
async def test_bad_input_names_the_fields(
    stub: pb_grpc.CasesServiceAsyncStub, method: str, request_: object, fields: set[str]
) -> None:
    error = await call_error(getattr(stub, method)(request_, metadata=AS_OPERATOR))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_fields(error)) == fields


async def test_bad_report_request_names_the_fields(
    reports: reports_grpc.ReportsServiceAsyncStub,
) -> None:
    error = await call_error(
        reports.GetAnnualReport(
            reports_pb.GetAnnualReportRequest(area_id="x", year=1999),
            metadata=AS_OPERATOR,
        )
    )
    missing = await call_error(
        reports.GetAnnualReport(
            reports_pb.GetAnnualReportRequest(area_id=str(uuid.uuid4()), year=2022),
            metadata=AS_OPERATOR,
        )
    )

    assert set(bad_fields(error)) == {"area_id", "year"}
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_a_token_from_another_query_is_refused(
    stub: pb_grpc.CasesServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    city, town, *_, micro_grid = await chain(areas)
    for _ in range(2):
        await report_case(stub, micro_grid.id)
    page = await stub.ListCases(
        pb.ListCasesRequest(area_id=city.id, page_size=1), metadata=AS_OPERATOR
    )

    error = await call_error(
        stub.ListCases(
            pb.ListCasesRequest(area_id=town.id, page_token=page.next_page_token),
            metadata=AS_OPERATOR,
        )
    )

    assert bad_fields(error) == ["page_token"]
