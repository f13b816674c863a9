"""CareService through real servers: plans, visits, due lists, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from cloudark.care.v1 import care_pb2 as pb
from cloudark.care.v1 import care_pb2_grpc as pb_grpc
from cloudark.errands.v1 import errands_pb2 as epb
from cloudark.grids.v1 import cases_pb2 as cpb
from cloudark.grids.v1 import cases_pb2_grpc as cpb_grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.identity import Caller, Role
from services.common.server import RunningService
from tests.care.support import (
    AS_OPERATOR,
    ILL,
    Village,
    assign,
    care_stack,
    new_area,
    recipient,
    squad,
    village,
)
from tests.helpers import bad_fields, call_error, rich_status
from tests.residents.support import household, resident
from workflows.care.workflows import squad_workflow_id


@pytest.fixture
async def care(
    care_service: RunningService,
) -> AsyncIterator[pb_grpc.CareServiceAsyncStub]:
    address = f"127.0.0.1:{care_service.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield pb_grpc.CareServiceStub(channel)


async def fresh_village(grids: grpc.aio.Channel) -> Village:
    from cloudark.grids.v1 import grids_pb2 as gpb

    city = await new_area(grids, gpb.AREA_KIND_CITY, "")
    town = await new_area(grids, gpb.AREA_KIND_TOWN, city.id)
    return await village(grids, town.id)


def precondition_subject(error: grpc.aio.AioRpcError) -> str:
    for detail in rich_status(error).details:
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            return str(failure.violations[0].subject)
    return ""


async def test_a_plan_names_squad_member_frequency_needs_and_contact(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)

    created = await assign(care, person, team, team.member_ids[0])
    reply = await care.SetCarePlan(
        pb.SetCarePlanRequest(
            recipient_id=person,
            visit_every_days=10,
            regular_needs=[pb.RegularNeed(kind=pb.NEED_KIND_MEDICINE, every_days=14)],
            contact=pb.ContactPreferences(
                channel=pb.CONTACT_CHANNEL_PHONE_CALL, from_minute=540, to_minute=1080
            ),
            request_id="plan-1",
        ),
        metadata=AS_OPERATOR,
    )
    fetched = await care.GetCarePlan(
        pb.GetCarePlanRequest(recipient_id=person), metadata=AS_OPERATOR
    )

    assert created.visit_every_days == 7
    assert created.lives_alone
    assert (created.village_id, created.micro_grid_id) == (
        place.area.id,
        place.micro_grid.id,
    )
    plan = fetched.plan
    assert plan == reply.plan
    assert (plan.squad_id, plan.member_id) == (team.id, team.member_ids[0])
    assert plan.visit_every_days == 10
    assert [(n.kind, n.every_days) for n in plan.regular_needs] == [
        (pb.NEED_KIND_MEDICINE, 14)
    ]
    assert plan.contact.channel == pb.CONTACT_CHANNEL_PHONE_CALL


async def test_due_list_holds_visits_and_deliveries_and_a_visit_moves_them(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    await assign(care, person, team, team.member_ids[0])
    await care.SetCarePlan(
        pb.SetCarePlanRequest(
            recipient_id=person,
            visit_every_days=3,
            regular_needs=[pb.RegularNeed(kind=pb.NEED_KIND_MEDICINE, every_days=2)],
        ),
        metadata=AS_OPERATOR,
    )
    until = Timestamp()
    until.FromDatetime(datetime.now(UTC) + timedelta(days=5))

    before = await care.ListDueVisits(
        pb.ListDueVisitsRequest(squad_id=team.id, until=until), metadata=AS_OPERATOR
    )
    await care.RecordVisit(
        pb.RecordVisitRequest(
            recipient_id=person,
            member_id=team.member_ids[1],
            outcome=pb.VISIT_OUTCOME_DONE,
            delivered_needs=[pb.NEED_KIND_MEDICINE],
        ),
        metadata=AS_OPERATOR,
    )
    after = await care.ListDueVisits(
        pb.ListDueVisitsRequest(squad_id=team.id, until=until), metadata=AS_OPERATOR
    )

    assert [(i.kind, i.need) for i in before.items] == [
        (pb.DUE_KIND_DELIVERY, pb.NEED_KIND_MEDICINE),
        (pb.DUE_KIND_VISIT, 0),
    ]
    assert before.area_mode.mode == 1  # peacetime
    # Visited and delivered now: both come due again two and three days on.
    moved = {(i.kind, i.need): i.due_time.ToDatetime() for i in after.items}
    for item in before.items:
        assert moved[(item.kind, item.need)] > item.due_time.ToDatetime()
    assert len(after.items) == 2


async def test_nobody_at_home_leaves_the_visit_due(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    created = await assign(care, person, team, team.member_ids[0])

    reply = await care.RecordVisit(
        pb.RecordVisitRequest(
            recipient_id=person,
            member_id=team.member_ids[0],
            outcome=pb.VISIT_OUTCOME_NOT_AT_HOME,
        ),
        metadata=AS_OPERATOR,
    )
    due = await care.ListDueVisits(
        pb.ListDueVisitsRequest(squad_id=team.id), metadata=AS_OPERATOR
    )

    assert reply.visit.outcome == pb.VISIT_OUTCOME_NOT_AT_HOME
    assert not reply.plan.HasField("last_visit_time")
    (item,) = due.items
    assert item.due_time.ToDatetime() == (
        created.create_time.ToDatetime() + timedelta(days=7)
    )


async def test_a_visit_finding_the_recipient_in_need_opens_one_case(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    await assign(care, person, team, team.member_ids[0])
    request = pb.RecordVisitRequest(
        recipient_id=person,
        member_id=team.member_ids[0],
        outcome=pb.VISIT_OUTCOME_NEEDS_HELP,
        help=pb.HelpNeeded(
            category=cpb.CASE_CATEGORY_SAFETY_FIRE,
            description="Heater cable without conduit beside the bed",
        ),
        request_id="visit-help-1",
    )

    first = await care.RecordVisit(request, metadata=AS_OPERATOR)
    again = await care.RecordVisit(request, metadata=AS_OPERATOR)
    case = await cpb_grpc.CasesServiceStub(grids_channel).GetCase(
        cpb.GetCaseRequest(id=first.visit.case_id), metadata=AS_OPERATOR
    )

    assert first.visit.case_id
    assert again == first
    assert case.case.micro_grid_id == place.micro_grid.id
    assert case.case.category == cpb.CASE_CATEGORY_SAFETY_FIRE
    assert first.plan.last_visit_time == first.visit.visit_time


async def test_recipient_not_on_the_roster_is_failed_precondition(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    stub = rpb_grpc.ResidentsServiceStub(residents_channel)
    home = await household(stub, place.micro_grid)
    neighbour = await resident(stub, home.id)

    error = await call_error(assign(care, neighbour.id, team, team.member_ids[0]))
    missing = await call_error(
        assign(care, "7a9e0c1e-0000-4000-8000-000000000000", team, team.member_ids[0])
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subject(error) == "recipient_id"
    assert "roster" in (error.details() or "")
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert "recipient_id" in (missing.details() or "")


async def test_squad_from_another_village_is_failed_precondition(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    elsewhere = await village(grids_channel, place.area.parent_id)
    team = await squad(grids_channel, elsewhere.area.id)
    person = await recipient(residents_channel, place.micro_grid, ILL)

    error = await call_error(assign(care, person, team, team.member_ids[0]))
    not_a_member = await call_error(
        care.AssignRecipient(
            pb.AssignRecipientRequest(
                recipient_id=person,
                squad_id="3d1f7a52-1111-4111-8111-111111111111",
                member_id=team.member_ids[0],
            ),
            metadata=AS_OPERATOR,
        )
    )
    plan = await call_error(
        care.GetCarePlan(
            pb.GetCarePlanRequest(recipient_id=person), metadata=AS_OPERATOR
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subject(error) == "squad_id"
    assert not_a_member.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subject(not_a_member) == "member_id"
    assert plan.code() == grpc.StatusCode.NOT_FOUND  # nothing was created


async def test_a_plan_with_zero_frequency_names_the_bad_fields(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    await assign(care, person, team, team.member_ids[0])

    error = await call_error(
        care.SetCarePlan(
            pb.SetCarePlanRequest(
                recipient_id=person,
                visit_every_days=0,
                regular_needs=[
                    pb.RegularNeed(kind=pb.NEED_KIND_MEDICINE, every_days=0),
                    pb.RegularNeed(kind=pb.NEED_KIND_MEDICINE, every_days=14),
                ],
                contact=pb.ContactPreferences(from_minute=1440),
            ),
            metadata=AS_OPERATOR,
        )
    )
    plan = await care.GetCarePlan(
        pb.GetCarePlanRequest(recipient_id=person), metadata=AS_OPERATOR
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(error)) == [
        "contact.from_minute",
        "regular_needs[0].every_days",
        "regular_needs[1].kind",
        "visit_every_days",
    ]
    assert plan.plan.visit_every_days == 7


async def test_bad_visits_name_their_fields(
    care: pb_grpc.CareServiceAsyncStub,
) -> None:
    error = await call_error(
        care.RecordVisit(
            pb.RecordVisitRequest(
                recipient_id="x",
                outcome=pb.VISIT_OUTCOME_NOT_AT_HOME,
                delivered_needs=[pb.NEED_KIND_MEALS],
                help=pb.HelpNeeded(description="?"),
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(error)) == [
        "delivered_needs",
        "help",
        "member_id",
        "recipient_id",
    ]


async def test_a_visit_finding_a_need_for_an_errand_opens_one_errand(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    async with care_stack(
        settings, grids_service, residents_service, temporal_env.client, task_queue
    ) as stack:
        place = await fresh_village(grids_channel)
        team = await squad(grids_channel, place.area.id)
        person = await recipient(residents_channel, place.micro_grid)
        await assign(stack.care, person, team, team.member_ids[0])
        request = pb.RecordVisitRequest(
            recipient_id=person,
            member_id=team.member_ids[0],
            outcome=pb.VISIT_OUTCOME_NEEDS_HELP,
            help=pb.HelpNeeded(
                errand_kind=epb.ERRAND_KIND_MEDICINE, description="fever medicine"
            ),
            request_id="visit-errand-1",
        )

        first = await stack.care.RecordVisit(request, metadata=AS_OPERATOR)
        again = await stack.care.RecordVisit(request, metadata=AS_OPERATOR)
        await stack.client.get_workflow_handle(squad_workflow_id(team.id)).terminate()

    (errand,) = stack.errands.requested.values()
    assert again == first
    assert (first.visit.errand_id, first.visit.case_id) != ("", "")
    assert first.visit.case_id == ""
    assert errand.resident_id == person
    assert errand.kind == epb.ERRAND_KIND_MEDICINE
    assert errand.request_id == f"care-visit/{first.visit.id}"


async def test_figures_count_a_years_visits_deliveries_and_help_by_area(
    care: pb_grpc.CareServiceAsyncStub,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    await assign(care, person, team, team.member_ids[0])
    await care.SetCarePlan(
        pb.SetCarePlanRequest(
            recipient_id=person,
            visit_every_days=7,
            regular_needs=[pb.RegularNeed(kind=pb.NEED_KIND_MEDICINE, every_days=14)],
        ),
        metadata=AS_OPERATOR,
    )
    outcomes = [
        (pb.VISIT_OUTCOME_DONE, [pb.NEED_KIND_MEDICINE], None),
        (pb.VISIT_OUTCOME_NOT_AT_HOME, [], None),
        (
            pb.VISIT_OUTCOME_NEEDS_HELP,
            [],
            pb.HelpNeeded(category=cpb.CASE_CATEGORY_SAFETY_FIRE, description="cable"),
        ),
    ]
    for outcome, delivered, help_needed in outcomes:
        await care.RecordVisit(
            pb.RecordVisitRequest(
                recipient_id=person,
                member_id=team.member_ids[0],
                outcome=outcome,
                delivered_needs=delivered,
                help=help_needed,
            ),
            metadata=AS_OPERATOR,
        )
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year

    town = await care.GetCareFigures(
        pb.GetCareFiguresRequest(area_id=place.area.parent_id, year=year),
        metadata=AS_OPERATOR,
    )
    last_year = await care.GetCareFigures(
        pb.GetCareFiguresRequest(area_id=place.area.id, year=year - 1),
        metadata=AS_OPERATOR,
    )
    grid = await call_error(
        care.GetCareFigures(
            pb.GetCareFiguresRequest(area_id=place.grid.id, year=year),
            metadata=AS_OPERATOR,
        )
    )

    figures = town.figures
    assert (figures.visits, figures.visits_not_at_home) == (3, 1)
    assert (figures.visits_needing_help, figures.cases_opened) == (1, 1)
    assert (figures.deliveries, figures.medicine_deliveries) == (1, 1)
    assert last_year.figures.visits == 0
    assert grid.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bad_switches_and_campaigns_get_precise_errors(
    care: pb_grpc.CareServiceAsyncStub, grids_channel: grpc.aio.Channel
) -> None:
    place = await fresh_village(grids_channel)
    past = Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    friday = Timestamp()
    friday.FromDatetime(datetime.now(UTC) + timedelta(days=3))
    resident = Caller(subject="r-1", role=Role.RESIDENT).metadata()

    bad_switch = await call_error(
        care.SwitchAreaMode(
            pb.SwitchAreaModeRequest(area_id=place.area.id), metadata=AS_OPERATOR
        )
    )
    grid_switch = await call_error(
        care.SwitchAreaMode(
            pb.SwitchAreaModeRequest(
                area_id=place.grid.id, mode=gpb.MODE_WARTIME, reason="wave"
            ),
            metadata=AS_OPERATOR,
        )
    )
    resident_switch = await call_error(
        care.SwitchAreaMode(
            pb.SwitchAreaModeRequest(
                area_id=place.area.id, mode=gpb.MODE_WARTIME, reason="wave"
            ),
            metadata=resident,
        )
    )
    bad_campaign = await call_error(
        care.StartCampaign(
            pb.StartCampaignRequest(
                village_ids=[place.area.id, place.area.id], due_time=past
            ),
            metadata=AS_OPERATOR,
        )
    )
    grid_campaign = await call_error(
        care.StartCampaign(
            pb.StartCampaignRequest(
                kind=pb.CAMPAIGN_KIND_CARE_PACKAGE,
                village_ids=[place.grid.id],
                due_time=friday,
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert bad_switch.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(bad_switch)) == ["mode", "reason"]
    assert grid_switch.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert resident_switch.code() == grpc.StatusCode.PERMISSION_DENIED
    assert bad_campaign.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(bad_campaign)) == ["due_time", "kind", "village_ids[1]"]
    assert grid_campaign.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "village_ids[0]" in (grid_campaign.details() or "")
