"""Peacetime and wartime: switched per area, inherited down the tree, and
felt by dispatch (squad members first in wartime)."""

from __future__ import annotations

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as grids_pb
from cloudark.grids.v1 import grids_pb2_grpc as grids_grpc
from cloudark.grids.v1 import staff_pb2 as pb
from cloudark.grids.v1 import staff_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from tests.conftest import OPERATOR
from tests.grids.test_areas import chain
from tests.grids.test_staff import register, squad_in
from tests.helpers import bad_fields, call_error

AS_OPERATOR = OPERATOR.metadata()
PEACE, WAR = grids_pb.MODE_PEACETIME, grids_pb.MODE_WARTIME


@pytest.fixture
def areas(grids_channel: grpc.aio.Channel) -> grids_grpc.GridsServiceAsyncStub:
    return grids_grpc.GridsServiceStub(grids_channel)


@pytest.fixture
def staff(grids_channel: grpc.aio.Channel) -> pb_grpc.StaffServiceAsyncStub:
    return pb_grpc.StaffServiceStub(grids_channel)


async def switch(
    areas: grids_grpc.GridsServiceAsyncStub, area_id: str, mode: int
) -> grids_pb.AreaMode:
    response = await areas.SetAreaMode(
        grids_pb.SetAreaModeRequest(
            area_id=area_id,
            mode=mode,  # type: ignore[arg-type]
            reason="epidemic wave",
        ),
        metadata=AS_OPERATOR,
    )
    return response.area_mode


async def mode_of(areas: grids_grpc.GridsServiceAsyncStub, area_id: str) -> int:
    response = await areas.GetAreaMode(
        grids_pb.GetAreaModeRequest(area_id=area_id), metadata=AS_OPERATOR
    )
    return response.area_mode.mode


async def test_a_town_switch_is_inherited_and_a_later_one_overrides_beneath(
    areas: grids_grpc.GridsServiceAsyncStub,
) -> None:
    city, town, village, grid, micro_grid = await chain(areas)
    assert await mode_of(areas, micro_grid.id) == PEACE

    await switch(areas, village.id, WAR)
    await switch(areas, town.id, WAR)
    inherited = await areas.GetAreaMode(
        grids_pb.GetAreaModeRequest(area_id=micro_grid.id), metadata=AS_OPERATOR
    )
    await switch(areas, town.id, PEACE)

    assert inherited.area_mode.mode == WAR
    assert inherited.area_mode.switched_area_id == town.id
    assert inherited.area_mode.reason == "epidemic wave"
    assert inherited.area_mode.switched_by == OPERATOR.subject
    # Back to peacetime for the whole town, the village's own switch included.
    assert await mode_of(areas, village.id) == PEACE
    assert await mode_of(areas, grid.id) == PEACE
    assert await mode_of(areas, city.id) == PEACE


async def test_modes_are_switched_for_cities_towns_and_villages_only(
    areas: grids_grpc.GridsServiceAsyncStub,
) -> None:
    _, _, _, grid, _ = await chain(areas)

    error = await call_error(switch(areas, grid.id, WAR))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await mode_of(areas, grid.id) == PEACE


async def test_a_bad_switch_names_every_field_and_residents_may_not_switch(
    areas: grids_grpc.GridsServiceAsyncStub,
) -> None:
    _, town, *_ = await chain(areas)
    resident = Caller(subject="r-1", role=Role.RESIDENT).metadata()

    bad = await call_error(
        areas.SetAreaMode(
            grids_pb.SetAreaModeRequest(area_id="nope", reason=" "),
            metadata=AS_OPERATOR,
        )
    )
    denied = await call_error(
        areas.SetAreaMode(
            grids_pb.SetAreaModeRequest(area_id=town.id, mode=WAR, reason="wave"),
            metadata=resident,
        )
    )

    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(bad)) == ["area_id", "mode", "reason"]
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_rank_puts_squad_members_first_in_wartime(
    staff: pb_grpc.StaffServiceAsyncStub, areas: grids_grpc.GridsServiceAsyncStub
) -> None:
    _city, town, village, grid, micro_grid = await chain(areas)
    worker = await register(staff, pb.HELPER_KIND_GRID_WORKER, [grid.id])
    volunteer = await register(staff, pb.HELPER_KIND_VOLUNTEER, [micro_grid.id])
    squad = await squad_in(staff, village.id)
    member = await register(
        staff,
        pb.HELPER_KIND_SQUAD_MEMBER,
        [],
        squad_id=squad.id,
        member_kind=pb.MEMBER_KIND_PARTY_MEMBER,
    )

    async def ranked(need: int) -> list[str]:
        response = await staff.RankHelpers(
            pb.RankHelpersRequest(micro_grid_id=micro_grid.id, need=need),  # type: ignore[arg-type]
            metadata=AS_OPERATOR,
        )
        return [c.helper.id for c in response.candidates]

    peacetime = await ranked(pb.NEED_KIND_ERRAND)
    await switch(areas, town.id, WAR)
    wartime = await ranked(pb.NEED_KIND_ERRAND)
    wartime_follow_up = await ranked(pb.NEED_KIND_CASE_FOLLOW_UP)
    await switch(areas, town.id, PEACE)
    after = await ranked(pb.NEED_KIND_ERRAND)

    assert peacetime == [worker.id, volunteer.id, member.id]
    assert wartime == [member.id, worker.id, volunteer.id]
    assert wartime_follow_up == [worker.id]
    assert after == peacetime
