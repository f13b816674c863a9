"""Bad input gets a precise error and changes nothing; replays act once."""

import uuid
from datetime import UTC, timedelta

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as cases_pb
from google.rpc import error_details_pb2
from temporalio.testing import WorkflowEnvironment

from services.common.identity import Caller, Role
from tests.casework.support import (
    AS_OPERATOR,
    Stack,
    patrol_report,
    scene,
    settled,
    tip_off,
    view,
)
from tests.helpers import bad_fields, call_error, rich_status

S = cases_pb


def precondition_subjects(error: grpc.aio.AioRpcError) -> list[str]:
    subjects = []
    for detail in rich_status(error).details:
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            subjects += [v.subject for v in failure.violations]
    return subjects


async def test_unknown_category_and_other_bad_fields_are_named(
    skipping_stack: Stack,
) -> None:
    request = pb.ReportCaseRequest(
        category=999,  # type: ignore[arg-type]
        source=S.CASE_SOURCE_PATROL,
        micro_grid_id="not-an-id",
        description="",
        reporter_id="worker-1",
    )

    error = await call_error(
        skipping_stack.stub.ReportCase(request, metadata=AS_OPERATOR)
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["category", "micro_grid_id", "description"]


async def test_outcome_before_a_visit_is_failed_precondition_and_moves_nothing(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await patrol_report(skipping_stack, city)
    before = await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    stub = skipping_stack.stub

    calls = [
        stub.OrderRectification(
            pb.OrderRectificationRequest(case_id=case.record.id),
            metadata=city.as_worker,
        ),
        stub.EscalateCase(
            pb.EscalateCaseRequest(
                case_id=case.record.id, department_contact_id=city.fire.id
            ),
            metadata=city.as_worker,
        ),
        stub.RecordReinspection(
            pb.RecordReinspectionRequest(case_id=case.record.id, passed=True),
            metadata=city.as_worker,
        ),
        stub.RecordDepartmentOutcome(
            pb.RecordDepartmentOutcomeRequest(case_id=case.record.id, outcome="fine"),
            metadata=AS_OPERATOR,
        ),
    ]
    errors = [await call_error(c) for c in calls]

    assert [e.code() for e in errors] == [grpc.StatusCode.FAILED_PRECONDITION] * 4
    assert "no verification visit" in (errors[0].details() or "")
    assert await view(skipping_stack, case.record.id) == before


async def test_escalation_to_a_department_that_does_not_handle_the_category(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await patrol_report(skipping_stack, city)  # a fire hazard
    await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    await skipping_stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_CONFIRMED
        ),
        metadata=city.as_worker,
    )
    before = await view(skipping_stack, case.record.id)

    error = await call_error(
        skipping_stack.stub.EscalateCase(
            pb.EscalateCaseRequest(
                case_id=case.record.id, department_contact_id=city.market.id
            ),
            metadata=city.as_worker,
        )
    )
    fraud = await call_error(
        skipping_stack.stub.RecordVisit(
            pb.RecordVisitRequest(
                case_id=case.record.id, outcome=pb.VISIT_OUTCOME_FRAUD_RECORDED
            ),
            metadata=city.as_worker,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subjects(error) == ["department_contact_id"]
    assert "does not handle SAFETY_FIRE" in (error.details() or "")
    assert fraud.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await view(skipping_stack, case.record.id) == before


async def test_callers_outside_the_case_are_refused(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await patrol_report(skipping_stack, city)
    await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    elsewhere = Caller("worker-x", Role.GRID_WORKER, (city.place.other_grid.id,))
    stranger = Caller(str(uuid.uuid4()), Role.RESIDENT)
    visit = pb.RecordVisitRequest(
        case_id=case.record.id, outcome=pb.VISIT_OUTCOME_CONFIRMED
    )

    errors = [
        await call_error(
            skipping_stack.stub.RecordVisit(visit, metadata=elsewhere.metadata())
        ),
        await call_error(
            skipping_stack.stub.GetCase(
                pb.GetCaseRequest(id=case.record.id), metadata=stranger.metadata()
            )
        ),
        await call_error(
            skipping_stack.stub.AcknowledgeEscalation(
                pb.AcknowledgeEscalationRequest(case_id=case.record.id),
                metadata=city.as_department(city.market),
            )
        ),
        await call_error(
            skipping_stack.stub.GetCase(
                pb.GetCaseRequest(id=str(uuid.uuid4())), metadata=AS_OPERATOR
            )
        ),
    ]

    assert [e.code() for e in errors] == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
    ]


async def test_report_replayed_with_its_request_id_opens_one_case(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    request = pb.ReportCaseRequest(
        category=S.CASE_CATEGORY_SAFETY_TRAFFIC,
        source=S.CASE_SOURCE_HOTLINE,
        micro_grid_id=city.place.micro_grid.id,
        description="broken traffic light",
        reporter_id=city.resident_id,
        request_id="hotline-call-1",
    )

    first = await skipping_stack.stub.ReportCase(request, metadata=AS_OPERATOR)
    again = await skipping_stack.stub.ReportCase(request, metadata=AS_OPERATOR)
    listed = await skipping_stack.stub.ListCases(
        pb.ListCasesRequest(
            area_id=city.place.micro_grid.id, category=S.CASE_CATEGORY_SAFETY_TRAFFIC
        ),
        metadata=AS_OPERATOR,
    )

    assert again == first
    assert [c.id for c in listed.cases] == [first.case.record.id]
    mine = await skipping_stack.stub.ListCases(
        pb.ListCasesRequest(), metadata=city.as_resident
    )
    assert first.case.record.id in [c.id for c in mine.cases]


async def test_operators_set_a_categorys_deadlines_for_cases_reported_afterwards(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    rule = pb.CategoryRule(
        category=S.CASE_CATEGORY_SAFETY_WORKPLACE,
        verify_hours=3,
        rectify_days=5,
        reminder_hours=12,
        acknowledge_hours=24,
        dispute_days=3,
    )
    stub = skipping_stack.stub

    await stub.SetCategoryRule(
        pb.SetCategoryRuleRequest(rule=rule), metadata=AS_OPERATOR
    )
    listed = await stub.ListCategoryRules(
        pb.ListCategoryRulesRequest(), metadata=city.as_worker
    )
    case = await tip_off(skipping_stack, city, S.CASE_CATEGORY_SAFETY_WORKPLACE)
    case = await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)

    assert rule in listed.rules
    # Workflow time is the time-skipping server's, ahead of the wall clock.
    now = await time_skipping_env.get_current_time()
    due = case.next_deadline.ToDatetime(tzinfo=UTC) - now
    assert timedelta(hours=2, minutes=55) < due <= timedelta(hours=3)
    bad = await call_error(
        stub.SetCategoryRule(
            pb.SetCategoryRuleRequest(
                rule=pb.CategoryRule(category=999, verify_hours=0)  # type: ignore[arg-type]
            ),
            metadata=AS_OPERATOR,
        )
    )
    assert bad_fields(bad) == [
        "rule.category",
        "rule.verify_hours",
        "rule.rectify_days",
        "rule.acknowledge_hours",
    ]
    denied = await call_error(
        stub.SetCategoryRule(
            pb.SetCategoryRuleRequest(rule=rule), metadata=city.as_worker
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_get_case_answers_the_record_when_the_workflow_is_gone(
    skipping_stack: Stack,
    dev_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    # Reported on the dev server: the time-skipping server never saw it, as
    # Temporal forgets a workflow past its retention.
    case = await patrol_report(dev_stack, city, S.CASE_CATEGORY_SAFETY_TRAFFIC)

    seen = await skipping_stack.stub.GetCase(
        pb.GetCaseRequest(id=case.record.id), metadata=AS_OPERATOR
    )
    step = await call_error(
        skipping_stack.stub.CloseCase(
            pb.CloseCaseRequest(case_id=case.record.id), metadata=AS_OPERATOR
        )
    )

    assert seen.case.record.id == case.record.id
    assert seen.case.stage == pb.CASE_STAGE_UNSPECIFIED
    assert step.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_retried_step_whose_answer_was_lost_gets_its_first_outcome(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await patrol_report(skipping_stack, city)
    await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    visit = pb.RecordVisitRequest(
        case_id=case.record.id,
        outcome=pb.VISIT_OUTCOME_CONFIRMED,
        request_id=f"visit-{uuid.uuid4()}",
    )
    first = await skipping_stack.stub.RecordVisit(visit, metadata=city.as_worker)
    # As if the answer had been lost before the request_id store committed.
    await skipping_stack.service.pool.execute(
        "DELETE FROM idempotency_keys WHERE request_id = $1", visit.request_id
    )

    again = await skipping_stack.stub.RecordVisit(visit, metadata=city.as_worker)
    visit.request_id = f"visit-{uuid.uuid4()}"
    other = await call_error(
        skipping_stack.stub.RecordVisit(visit, metadata=city.as_worker)
    )

    assert again.case.stage == first.case.stage == pb.CASE_STAGE_CONFIRMED
    assert len(again.case.record.timeline) == len(first.case.record.timeline)
    assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
