"""Stories 2-5 through the casework gRPC API against the real grids and
residents services, on the Temporal dev server (as in `make run`) and on
the time-skipping server."""

from datetime import timedelta

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as cases_pb
from cloudark.residents.v1 import residents_pb2 as residents_pb
from cloudark.residents.v1 import residents_pb2_grpc as residents_grpc
from temporalio.testing import WorkflowEnvironment

from tests.casework.support import (
    AS_OPERATOR,
    Stack,
    patrol_report,
    scene,
    settled,
    tip_off,
    view,
)
from tests.histories import record
from workflows.casework.workflows import CaseWorkflow

FIRE = cases_pb.CASE_CATEGORY_SAFETY_FIRE
S = cases_pb


def notes(case: pb.CaseView) -> list[str]:
    return [step.note for step in case.record.timeline]


async def test_story_2_hazard_stays_open_until_fixed_and_checked(
    stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    stub = stack.stub
    case = await patrol_report(stack, city)
    case = await settled(stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    assert case.record.assignee_id == city.worker_person
    await stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id,
            outcome=pb.VISIT_OUTCOME_CONFIRMED,
            note="fresh cable laid without conduit; danger explained",
        ),
        metadata=city.as_worker,
    )

    ordered = await stub.OrderRectification(
        pb.OrderRectificationRequest(
            case_id=case.record.id, note="electrician to lay conduit"
        ),
        metadata=city.as_worker,
    )
    assert ordered.case.stage == pb.CASE_STAGE_RECTIFYING
    assert ordered.case.deadline_kind == pb.DEADLINE_KIND_RECTIFICATION
    await stub.RecordRectified(
        pb.RecordRectifiedRequest(case_id=case.record.id, note="conduit laid"),
        metadata=city.as_worker,
    )
    passed = await stub.RecordReinspection(
        pb.RecordReinspectionRequest(case_id=case.record.id, passed=True),
        metadata=city.as_worker,
    )

    assert passed.case.stage == pb.CASE_STAGE_RESOLVED
    assert passed.case.record.status == S.CASE_STATUS_RESOLVED
    timeline = passed.case.record.timeline
    assert [s.actor_id for s in timeline][-4:] == [city.worker_person] * 4
    assert any("hazard confirmed" in n for n in notes(passed.case))
    handle = stack.client.get_workflow_handle(f"case-{case.record.id}")
    if stack.server == "time-skipping":
        await record(handle, "CaseWorkflow", "story-2-rectified")


async def test_story_3_tip_off_resolved_on_the_spot_earns_points_once(
    stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    stub = stack.stub
    case = await tip_off(stack, city, S.CASE_CATEGORY_SAFETY_DISPUTE)
    case = await settled(stack, case.record.id, pb.CASE_STAGE_VERIFYING)

    visit = pb.RecordVisitRequest(
        case_id=case.record.id,
        outcome=pb.VISIT_OUTCOME_RESOLVED_ON_SPOT,
        note="neighbours separated; agreed where the waste water goes",
        request_id="visit-1",
    )
    first = await stub.RecordVisit(visit, metadata=city.as_worker)
    again = await stub.RecordVisit(visit, metadata=city.as_worker)

    assert first == again
    assert first.case.stage == pb.CASE_STAGE_RESOLVED
    assert first.case.deadline_kind == pb.DEADLINE_KIND_DISPUTE_WINDOW
    balance = await residents_grpc.ResidentsServiceStub(residents_channel).GetBalance(
        residents_pb.GetBalanceRequest(
            account=residents_pb.AccountRef(
                kind=residents_pb.ACCOUNT_KIND_RESIDENT, owner_id=city.resident_id
            )
        ),
        metadata=AS_OPERATOR,
    )
    assert balance.earned == 50
    told = stack.outbox.about(case.record.id)
    assert all(m.resident_ids == [city.resident_id] for m in told if m.resident_ids)
    assert any("resolved" in m.body for m in told)


async def test_story_4_escalation_to_the_department_that_fines_the_shop(
    stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    stub = stack.stub
    case = await patrol_report(stack, city, S.CASE_CATEGORY_SAFETY_FOOD_AND_DRUG)
    case = await settled(stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    await stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_CONFIRMED
        ),
        metadata=city.as_worker,
    )

    escalated = await stub.EscalateCase(
        pb.EscalateCaseRequest(
            case_id=case.record.id,
            department_contact_id=city.market.id,
            note="health product advertised as a cure; photos attached",
        ),
        metadata=city.as_worker,
    )
    assert escalated.case.stage == pb.CASE_STAGE_ESCALATED
    assert escalated.case.record.status == S.CASE_STATUS_ESCALATED
    market = city.as_department(city.market)
    await stub.AcknowledgeEscalation(
        pb.AcknowledgeEscalationRequest(case_id=case.record.id, note="inspector sent"),
        metadata=market,
    )
    done = await stub.RecordDepartmentOutcome(
        pb.RecordDepartmentOutcomeRequest(
            case_id=case.record.id, outcome="inspected; shop fined"
        ),
        metadata=market,
    )

    assert done.case.stage == pb.CASE_STAGE_RESOLVED
    last = done.case.record.timeline[-1]
    assert (last.actor_id, last.status) == (
        city.market.person_id,
        S.CASE_STATUS_RESOLVED,
    )
    assert "shop fined" in last.note
    handle = stack.client.get_workflow_handle(f"case-{case.record.id}")
    if stack.server == "time-skipping":
        await record(handle, "CaseWorkflow", "story-4-department")


async def test_story_5_fraud_prevention_event_is_recorded(
    stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    # A resident shows the worker a phishing text; she reports it herself.
    tip = await patrol_report(stack, city, S.CASE_CATEGORY_FRAUD_PREVENTION)
    await settled(stack, tip.record.id, pb.CASE_STAGE_VERIFYING)
    recorded = await stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=tip.record.id,
            outcome=pb.VISIT_OUTCOME_FRAUD_RECORDED,
            note="phishing text confirmed with the insurance office",
        ),
        metadata=city.as_worker,
    )

    assert recorded.case.stage == pb.CASE_STAGE_RESOLVED
    assert recorded.case.record.category == S.CASE_CATEGORY_FRAUD_PREVENTION
    assert "fraud prevention event" in recorded.case.record.timeline[-1].note


async def test_resolved_case_closes_when_the_dispute_window_ends(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await tip_off(skipping_stack, city, S.CASE_CATEGORY_SAFETY_DISPUTE)
    await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    await skipping_stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_RESOLVED_ON_SPOT
        ),
        metadata=city.as_worker,
    )

    handle = skipping_stack.client.get_workflow_handle(f"case-{case.record.id}")
    await time_skipping_env.sleep(timedelta(days=6))
    still = await view(skipping_stack, case.record.id)
    await time_skipping_env.sleep(timedelta(days=1, hours=1))
    closed = await view(skipping_stack, case.record.id)

    assert still.stage == pb.CASE_STAGE_RESOLVED
    assert closed.stage == pb.CASE_STAGE_CLOSED
    assert closed.record.status == S.CASE_STATUS_CLOSED
    assert (await handle.query(CaseWorkflow.state)).deadline is None
    await record(handle, "CaseWorkflow", "story-3-closed")
