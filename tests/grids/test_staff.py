"""StaffService through a real server: helpers, squads, availability, ranking."""

from __future__ import annotations

import uuid

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as grids_pb
from cloudark.grids.v1 import grids_pb2_grpc as grids_grpc
from cloudark.grids.v1 import staff_pb2 as pb
from cloudark.grids.v1 import staff_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from tests.conftest import OPERATOR
from tests.grids.test_areas import chain, create
from tests.helpers import bad_fields, call_error

AS_OPERATOR = OPERATOR.metadata()
ON, OFF, BUSY = (
    pb.AVAILABILITY_ON_DUTY,
    pb.AVAILABILITY_OFF_DUTY,
    pb.AVAILABILITY_BUSY,
)


@pytest.fixture
def areas(grids_channel: grpc.aio.Channel) -> grids_grpc.GridsServiceAsyncStub:
    return grids_grpc.GridsServiceStub(grids_channel)


@pytest.fixture
def stub(grids_channel: grpc.aio.Channel) -> pb_grpc.StaffServiceAsyncStub:
    return pb_grpc.StaffServiceStub(grids_channel)


async def register(
    stub: pb_grpc.StaffServiceAsyncStub,
    kind: int,
    area_ids: list[str],
    availability: int = ON,
    **fields: object,
) -> pb.Helper:
    request = pb.RegisterHelperRequest(
        kind=kind,  # type: ignore[arg-type]
        person_id=f"person-{uuid.uuid4().hex[:8]}",
        area_ids=area_ids,
        availability=availability,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    response = await stub.RegisterHelper(request, metadata=AS_OPERATOR)
    return response.helper


async def squad_in(stub: pb_grpc.StaffServiceAsyncStub, village_id: str) -> pb.Squad:
    response = await stub.CreateSquad(
        pb.CreateSquadRequest(village_id=village_id, name=f"Squad {uuid.uuid4().hex}"),
        metadata=AS_OPERATOR,
    )
    return response.squad


async def test_rank_orders_by_tier_then_load(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _city, _town, village, grid, micro_grid = await chain(areas)
    other_grid = await create(areas, grids_pb.AREA_KIND_GRID, village)
    neighbour = await register(stub, pb.HELPER_KIND_GRID_WORKER, [other_grid.id])
    busy_worker = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    worker = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    loaded = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    await stub.AdjustHelperLoad(
        pb.AdjustHelperLoadRequest(id=loaded.id, delta=2, request_id="load-1"),
        metadata=AS_OPERATOR,
    )
    await stub.SetHelperAvailability(
        pb.SetHelperAvailabilityRequest(id=busy_worker.id, availability=BUSY),
        metadata=AS_OPERATOR,
    )
    volunteer = await register(stub, pb.HELPER_KIND_VOLUNTEER, [micro_grid.id])
    squad = await squad_in(stub, village.id)
    member = await register(
        stub,
        pb.HELPER_KIND_SQUAD_MEMBER,
        [],
        squad_id=squad.id,
        member_kind=pb.MEMBER_KIND_VILLAGE_DOCTOR,
    )
    await register(stub, pb.HELPER_KIND_VOLUNTEER, [micro_grid.id], availability=OFF)

    errand = await stub.RankHelpers(
        pb.RankHelpersRequest(micro_grid_id=micro_grid.id, need=pb.NEED_KIND_ERRAND),
        metadata=AS_OPERATOR,
    )
    follow_up = await stub.RankHelpers(
        pb.RankHelpersRequest(
            micro_grid_id=micro_grid.id, need=pb.NEED_KIND_CASE_FOLLOW_UP
        ),
        metadata=AS_OPERATOR,
    )

    assert [c.helper.id for c in errand.candidates] == [
        worker.id,
        loaded.id,
        volunteer.id,
        member.id,
        neighbour.id,
    ]
    assert [c.tier for c in errand.candidates] == [1, 1, 2, 3, 4]
    assert [c.helper.id for c in follow_up.candidates] == [
        worker.id,
        loaded.id,
        neighbour.id,
    ]


async def test_rank_for_a_grid_is_failed_precondition(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, _, _, grid, _ = await chain(areas)

    error = await call_error(
        stub.RankHelpers(
            pb.RankHelpersRequest(micro_grid_id=grid.id, need=pb.NEED_KIND_ERRAND),
            metadata=AS_OPERATOR,
        )
    )
    missing = await call_error(
        stub.RankHelpers(
            pb.RankHelpersRequest(
                micro_grid_id=str(uuid.uuid4()), need=pb.NEED_KIND_ERRAND
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_replayed_load_adjustment_counts_once(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, _, _, grid, _ = await chain(areas)
    worker = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    request = pb.AdjustHelperLoadRequest(id=worker.id, delta=1, request_id="r-1")

    await stub.AdjustHelperLoad(request, metadata=AS_OPERATOR)
    again = await stub.AdjustHelperLoad(request, metadata=AS_OPERATOR)
    below_zero = await call_error(
        stub.AdjustHelperLoad(
            pb.AdjustHelperLoadRequest(id=worker.id, delta=-5, request_id="r-2"),
            metadata=AS_OPERATOR,
        )
    )

    assert again.helper.load == 1
    assert below_zero.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_helper_sets_own_availability_but_not_anothers(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, _, _, grid, _ = await chain(areas)
    worker = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id], OFF)
    other = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id], OFF)
    itself = Caller(subject=worker.person_id, role=Role.GRID_WORKER).metadata()

    own = await stub.SetHelperAvailability(
        pb.SetHelperAvailabilityRequest(id=worker.id, availability=ON),
        metadata=itself,
    )
    error = await call_error(
        stub.SetHelperAvailability(
            pb.SetHelperAvailabilityRequest(id=other.id, availability=ON),
            metadata=itself,
        )
    )

    assert own.helper.availability == ON
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_deactivated_helper_is_not_listed_or_ranked(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _city, town, _, grid, micro_grid = await chain(areas)
    kept = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    gone = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    await stub.DeactivateHelper(
        pb.DeactivateHelperRequest(id=gone.id), metadata=AS_OPERATOR
    )

    listed = await stub.ListHelpers(
        pb.ListHelpersRequest(area_id=town.id), metadata=AS_OPERATOR
    )
    ranked = await stub.RankHelpers(
        pb.RankHelpersRequest(micro_grid_id=micro_grid.id, need=pb.NEED_KIND_ERRAND),
        metadata=AS_OPERATOR,
    )
    error = await call_error(
        stub.SetHelperAvailability(
            pb.SetHelperAvailabilityRequest(id=gone.id, availability=ON),
            metadata=AS_OPERATOR,
        )
    )

    assert [h.id for h in listed.helpers] == [kept.id]
    assert [c.helper.id for c in ranked.candidates] == [kept.id]
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_helpers_pages_through_an_area(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    city, _, village, grid, micro_grid = await chain(areas)
    made = {
        (await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])).id,
        (await register(stub, pb.HELPER_KIND_VOLUNTEER, [micro_grid.id])).id,
        (await register(stub, pb.HELPER_KIND_CADRE, [village.id])).id,
    }
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListHelpers(
            pb.ListHelpersRequest(area_id=city.id, page_size=2, page_token=token),
            metadata=AS_OPERATOR,
        )
        seen += [h.id for h in page.helpers]
        token = page.next_page_token
        if not token:
            break

    assert sorted(seen) == sorted(made)


async def test_update_replaces_areas_and_supervisor(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, _, village, grid, _ = await chain(areas)
    second = await create(areas, grids_pb.AREA_KIND_GRID, village)
    cadre = await register(stub, pb.HELPER_KIND_CADRE, [village.id])
    worker = await register(stub, pb.HELPER_KIND_GRID_WORKER, [grid.id])

    updated = await stub.UpdateHelper(
        pb.UpdateHelperRequest(
            id=worker.id, area_ids=[grid.id, second.id], supervisor_id=cadre.id
        ),
        metadata=AS_OPERATOR,
    )

    assert sorted(updated.helper.area_ids) == sorted([grid.id, second.id])
    assert updated.helper.supervisor_id == cadre.id


async def test_department_contact_keeps_its_categories(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, town, *_ = await chain(areas)

    contact = await register(
        stub,
        pb.HELPER_KIND_DEPARTMENT_CONTACT,
        [town.id],
        department_kind=pb.DEPARTMENT_KIND_MARKET_REGULATION,
        handled_categories=[206],
    )
    fetched = await stub.GetHelper(
        pb.GetHelperRequest(id=contact.id), metadata=AS_OPERATOR
    )

    assert list(fetched.helper.handled_categories) == [206]
    assert fetched.helper.department_kind == pb.DEPARTMENT_KIND_MARKET_REGULATION


async def test_register_names_every_bad_field(
    stub: pb_grpc.StaffServiceAsyncStub,
) -> None:
    error = await call_error(
        stub.RegisterHelper(
            pb.RegisterHelperRequest(
                kind=pb.HELPER_KIND_GRID_WORKER,
                area_ids=["not-an-id"],
                supervisor_id="x",
                department_kind=pb.DEPARTMENT_KIND_FIRE,
                member_kind=pb.MEMBER_KIND_OTHER,
                availability=9,  # type: ignore[arg-type]
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_fields(error)) == {
        "person_id",
        "area_ids[0]",
        "supervisor_id",
        "department_kind",
        "member_kind",
        "availability",
    }


async def test_grid_worker_on_a_village_is_failed_precondition(
    stub: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _, _, village, _, _ = await chain(areas)

    error = await call_error(register(stub, pb.HELPER_KIND_GRID_WORKER, [village.id]))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        ("GetHelper", pb.GetHelperRequest(id="x"), {"id"}),
        ("UpdateHelper", pb.UpdateHelperRequest(area_ids=["x"]), {"id", "area_ids[0]"}),
        ("DeactivateHelper", pb.DeactivateHelperRequest(), {"id"}),
        ("ListHelpers", pb.ListHelpersRequest(page_size=-1), {"area_id", "page_size"}),
        (
            "SetHelperAvailability",
            pb.SetHelperAvailabilityRequest(),
            {"id", "availability"},
        ),
        (
            "AdjustHelperLoad",
            pb.AdjustHelperLoadRequest(),
            {"id", "delta", "request_id"},
        ),
        (
            "RankHelpers",
            pb.RankHelpersRequest(limit=500),
            {"micro_grid_id", "need", "limit"},
        ),
        ("CreateSquad", pb.CreateSquadRequest(), {"village_id", "name"}),
        ("ListSquads", pb.ListSquadsRequest(page_token="zz"), {"village_id"}),
    ],
)
async def test_bad_input_names_the_fields(
    stub: pb_grpc.StaffServiceAsyncStub, method: str, request_: object, fields: set[str]
) -> None:
    error = await call_error(getattr(stub, method)(request_, metadata=AS_OPERATOR))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_fields(error)) == fields


async def test_residents_may_not_register_helpers(
    stub: pb_grpc.StaffServiceAsyncStub,
) -> None:
    resident = Caller(subject="r-1", role=Role.RESIDENT).metadata()

    error = await call_error(
        stub.RegisterHelper(pb.RegisterHelperRequest(), metadata=resident)
    )

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
