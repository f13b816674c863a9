"""Squad workflows on Temporal's time-skipping server, against the real
grids, residents and care services; notifications go to a stand-in server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import grpc
import pytest
from cloudark.care.v1 import care_pb2 as pb
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import staff_pb2 as spb
from cloudark.grids.v1 import staff_pb2_grpc as spb_grpc
from cloudark.notifications.v1 import notifications_pb2 as npb
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from tests.care.support import (
    AS_OPERATOR,
    CareStack,
    Squad,
    Village,
    assign,
    care_stack,
    new_area,
    recipient,
    squad,
    town,
    village,
)
from tests.conftest import start_time_skipping
from tests.histories import record
from workflows import search_attributes as sa
from workflows.care.workflows import (
    AreaModeResult,
    SquadInput,
    SquadSchedule,
    SquadScheduleQuery,
    SquadWorkflow,
    squad_workflow_id,
)


@pytest.fixture
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own: its clock starts at the wall
    clock's, as the plans' times in the care schema do."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


async def settled(client: Client, team: Squad, mode: str, visits: int) -> SquadSchedule:
    """The squad's schedule once it shows the mode and its visits (60 s at most)."""
    handle = client.get_workflow_handle(squad_workflow_id(team.id))
    view = None
    for _ in range(300):
        try:
            view = await handle.query(SquadWorkflow.schedule, SquadScheduleQuery())
        except RPCError:  # not started, or its first task not run yet
            view = None
        if view and view.mode == mode and _visits(view) == visits:
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"squad {team.id} did not reach {mode}: {view}")


async def area_mode_shown(client: Client, team: Squad) -> str | None:
    handle = client.get_workflow_handle(squad_workflow_id(team.id))
    described = await handle.describe()
    return described.typed_search_attributes.get(sa.AREA_MODE)


def _visits(view: SquadSchedule) -> int:
    return sum(1 for i in view.items if i.kind == pb.DUE_KIND_VISIT)


async def stop(client: Client, *squads: Squad) -> None:
    """Ends the squads' endless workflows, so later tests skip no time for them."""
    for team in squads:
        await client.get_workflow_handle(squad_workflow_id(team.id)).terminate()


async def switch(
    stack: CareStack, area_id: str, mode: int
) -> pb.SwitchAreaModeResponse:
    reply = await stack.care.SwitchAreaMode(
        pb.SwitchAreaModeRequest(
            area_id=area_id,
            mode=mode,  # type: ignore[arg-type]
            reason="epidemic wave",
        ),
        metadata=AS_OPERATOR,
    )
    return reply


async def test_switching_a_town_into_wartime_changes_every_squad_and_back(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    client = skipping_env.client
    async with (
        care_stack(
            settings, grids_service, residents_service, client, task_queue
        ) as stack,
        stack.worker(),
    ):
        place = await town(grids_channel, residents_channel, stack.care, squads=2)
        peacetime = [await settled(client, s, "peacetime", 2) for s in place.squads]

        war = await switch(stack, place.town.id, gpb.MODE_WARTIME)
        told = await client.get_workflow_handle(
            war.workflow_id, result_type=AreaModeResult
        ).result()
        wartime = [await settled(client, s, "wartime", 2) for s in place.squads]
        shown = [await area_mode_shown(client, s) for s in place.squads]

        peace = await switch(stack, place.town.id, gpb.MODE_PEACETIME)
        await client.get_workflow_handle(peace.workflow_id).result()
        back = [await settled(client, s, "peacetime", 2) for s in place.squads]
        handle = client.get_workflow_handle(squad_workflow_id(place.squads[0].id))
        await record(handle, "SquadWorkflow", "wartime-and-back")
        await record(
            client.get_workflow_handle(war.workflow_id), "AreaModeWorkflow", "town"
        )
        await stop(client, *place.squads)

    switched_at = war.area_mode.switch_time.ToDatetime(tzinfo=UTC)
    assert (told.villages, told.squads) == (2, 4)
    # What operators filter on: AreaMode = 'wartime'.
    assert shown == ["wartime"] * 4
    for before, during, after in zip(peacetime, wartime, back, strict=True):
        alone = {i.recipient_id: i for i in during.items if i.kind == pb.DUE_KIND_VISIT}
        for item in alone.values():
            if item.lives_alone:
                # Daily contact, first in the list.
                assert item.due_time <= switched_at + timedelta(days=1, minutes=1)
                assert item.priority == 1
            else:
                assert item.due_time <= switched_at + timedelta(days=3, minutes=1)
                assert item.priority == 2
        assert during.items[0].lives_alone
        before_due = sorted(i.due_time for i in before.items)
        assert before_due[0] > max(i.due_time for i in during.items)
        assert sorted(i.due_time for i in after.items) == before_due


async def test_a_missed_visit_alerts_the_grid_worker_exactly_once(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    client = skipping_env.client
    async with (
        care_stack(
            settings, grids_service, residents_service, client, task_queue
        ) as stack,
        stack.worker(),
    ):
        place = await _village(grids_channel)
        team = await squad(grids_channel, place.area.id)
        person = await recipient(residents_channel, place.micro_grid)
        await assign(stack.care, person, team, team.member_ids[0])
        await stack.care.SetCarePlan(
            pb.SetCarePlanRequest(recipient_id=person, visit_every_days=2),
            metadata=AS_OPERATOR,
        )
        await settled(client, team, "peacetime", 1)

        await skipping_env.sleep(timedelta(days=3, hours=6))
        await settled(client, team, "peacetime", 1)
        first = stack.notifications.titled("Care visit missed")
        await skipping_env.sleep(timedelta(days=4))
        await settled(client, team, "peacetime", 1)
        handle = client.get_workflow_handle(squad_workflow_id(team.id))
        await record(handle, "SquadWorkflow", "missed-visit")
        await stop(client, team)

    missed = stack.notifications.titled("Care visit missed")
    reminders = stack.notifications.titled("Care visits due")
    assert len(first) == 1
    assert missed == first
    assert list(missed[0].audience.area_ids) == [place.grid.id]
    assert list(missed[0].audience.tags) == [npb.AUDIENCE_TAG_GRID_WORKERS]
    assert missed[0].variables["about_resident_id"] == person
    assert missed[0].urgency == npb.URGENCY_URGENT
    assert [list(r.audience.staff_ids) for r in reminders] == [[team.member_ids[0]]]


async def test_a_member_off_duty_is_replaced_before_the_reminder(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    client = skipping_env.client
    staff = spb_grpc.StaffServiceStub(grids_channel)
    async with (
        care_stack(
            settings, grids_service, residents_service, client, task_queue
        ) as stack,
        stack.worker(),
    ):
        place = await _village(grids_channel)
        team = await squad(grids_channel, place.area.id, members=3)
        person = await recipient(residents_channel, place.micro_grid)
        await assign(stack.care, person, team, team.member_ids[0])
        await staff.SetHelperAvailability(
            spb.SetHelperAvailabilityRequest(
                id=team.member_ids[0], availability=spb.AVAILABILITY_OFF_DUTY
            ),
            metadata=AS_OPERATOR,
        )
        await staff.AdjustHelperLoad(
            spb.AdjustHelperLoadRequest(
                id=team.member_ids[1], delta=3, request_id="busy-member"
            ),
            metadata=AS_OPERATOR,
        )
        await settled(client, team, "peacetime", 1)

        await skipping_env.sleep(timedelta(days=6, hours=12))
        await settled(client, team, "peacetime", 1)
        plan = await stack.care.GetCarePlan(
            pb.GetCarePlanRequest(recipient_id=person), metadata=AS_OPERATOR
        )
        await stop(client, team)

    reminders = stack.notifications.titled("Care visits due")
    # The least-loaded member on duty takes over and hears of the visit.
    assert plan.plan.member_id == team.member_ids[2]
    assert [list(r.audience.staff_ids) for r in reminders] == [[team.member_ids[2]]]
    assert stack.notifications.titled("Care visit missed") == []


async def _village(grids: grpc.aio.Channel) -> Village:
    city = await new_area(grids, gpb.AREA_KIND_CITY, "")
    town_area = await new_area(grids, gpb.AREA_KIND_TOWN, city.id)
    return await village(grids, town_area.id)


async def test_a_squad_continues_as_new_and_still_alerts_once(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    client = skipping_env.client
    async with (
        care_stack(
            settings, grids_service, residents_service, client, task_queue
        ) as stack,
        stack.worker(),
    ):
        place = await _village(grids_channel)
        team = await squad(grids_channel, place.area.id)
        # A tiny budget, so a few rounds make it continue as new.
        first = await client.start_workflow(
            SquadWorkflow.run,
            SquadInput(team.id, place.area.id, rounds_max=3),
            id=squad_workflow_id(team.id),
            task_queue=task_queue,
        )
        person = await recipient(residents_channel, place.micro_grid)
        await assign(stack.care, person, team, team.member_ids[0])
        await stack.care.SetCarePlan(
            pb.SetCarePlanRequest(recipient_id=person, visit_every_days=1),
            metadata=AS_OPERATOR,
        )
        await settled(client, team, "peacetime", 1)

        for _ in range(4):
            await skipping_env.sleep(timedelta(days=1))
            await settled(client, team, "peacetime", 1)
        latest = await client.get_workflow_handle(squad_workflow_id(team.id)).describe()
        await stop(client, team)

    assert latest.run_id != first.first_execution_run_id
    assert len(stack.notifications.titled("Care visit missed")) == 1
