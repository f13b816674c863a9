"""Deadlines and the paths off the happy one, with time skipping, through
the casework gRPC API against the real grids and residents services."""

import asyncio
import uuid
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as cases_pb
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.grids.v1 import reports_pb2 as reports_pb
from cloudark.grids.v1 import reports_pb2_grpc as reports_grpc
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from cloudark.residents.v1 import residents_pb2 as residents_pb
from cloudark.residents.v1 import residents_pb2_grpc as residents_grpc
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from tests.casework.support import (
    AS_OPERATOR,
    Scene,
    Stack,
    casework_stack,
    patrol_report,
    scene,
    settled,
    tip_off,
    view,
)
from tests.helpers import call_error
from tests.histories import record

S = cases_pb


async def confirmed_case(stack: Stack, city: Scene) -> str:
    case = await patrol_report(stack, city)
    await settled(stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    await stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_CONFIRMED
        ),
        metadata=city.as_worker,
    )
    return case.record.id


def messages_to(stack: Stack, case_id: str, person: str, title: str) -> int:
    return sum(
        1
        for m in stack.outbox.about(case_id)
        if person in m.staff_ids + m.resident_ids and m.title == title
    )


async def test_missed_verification_deadline_escalates_to_the_supervisor(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await tip_off(skipping_stack, city)  # fire: verify within 24 hours
    case = await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    assert case.deadline_kind == pb.DEADLINE_KIND_VERIFICATION

    await time_skipping_env.sleep(timedelta(hours=23))
    early = await view(skipping_stack, case.record.id)
    await time_skipping_env.sleep(timedelta(hours=2))
    late = await view(skipping_stack, case.record.id)

    assert (early.overdue, early.record.assignee_id) == (False, city.worker_person)
    assert late.overdue
    assert late.record.assignee_id == city.supervisor_person
    assert "supervisor" in late.record.timeline[-1].note
    title = "Verification overdue"
    assert messages_to(skipping_stack, case.record.id, city.supervisor_helper, title)
    handle = skipping_stack.client.get_workflow_handle(f"case-{case.record.id}")
    await record(handle, "CaseWorkflow", "verification-missed")


async def test_rectification_failed_twice_goes_back_each_time_with_a_new_deadline(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case_id = await confirmed_case(skipping_stack, city)
    stub = skipping_stack.stub
    await stub.OrderRectification(
        pb.OrderRectificationRequest(case_id=case_id, days=3), metadata=city.as_worker
    )

    for attempt in ("still no conduit", "conduit but bare joints"):
        await stub.RecordRectified(
            pb.RecordRectifiedRequest(case_id=case_id), metadata=city.as_worker
        )
        failed = await stub.RecordReinspection(
            pb.RecordReinspectionRequest(case_id=case_id, passed=False, note=attempt),
            metadata=city.as_worker,
        )
        assert failed.case.stage == pb.CASE_STAGE_RECTIFYING
    passed = await stub.RecordReinspection(
        pb.RecordReinspectionRequest(case_id=case_id, passed=True),
        metadata=city.as_worker,
    )

    assert failed.case.rectification_round == 3
    failures = [n for n in passed.case.record.timeline if "failed" in n.note]
    assert len(failures) == 2
    assert passed.case.stage == pb.CASE_STAGE_RESOLVED


async def test_duplicate_report_is_linked_and_its_reporter_told(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    original = await patrol_report(skipping_stack, city)
    await settled(skipping_stack, original.record.id, pb.CASE_STAGE_VERIFYING)

    again = await tip_off(skipping_stack, city)
    other_kind = await tip_off(skipping_stack, city, S.CASE_CATEGORY_SAFETY_TRAFFIC)

    assert again.duplicate_of == original.record.id
    assert other_kind.duplicate_of == ""
    linked = await settled(skipping_stack, again.record.id, pb.CASE_STAGE_REJECTED)
    assert linked.record.status == S.CASE_STATUS_REJECTED
    told = [m.body for m in skipping_stack.outbox.about(again.record.id)]
    assert any(original.record.id in body for body in told)
    first = await view(skipping_stack, original.record.id)
    assert list(first.duplicate_ids) == [again.record.id]
    # Later changes of the original reach the duplicate's reporter too.
    await skipping_stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=original.record.id, outcome=pb.VISIT_OUTCOME_CONFIRMED
        ),
        metadata=city.as_worker,
    )
    copies = [
        m
        for m in skipping_stack.outbox.about(original.record.id)
        if f"linked-{again.record.id}" in m.reference
    ]
    assert copies
    assert copies[-1].resident_ids == [city.resident_id]


async def test_disputed_outcome_reopens_the_case_for_a_new_visit(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await tip_off(skipping_stack, city, S.CASE_CATEGORY_SAFETY_DISPUTE)
    await settled(skipping_stack, case.record.id, pb.CASE_STAGE_VERIFYING)
    stub = skipping_stack.stub
    await stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_RESOLVED_ON_SPOT
        ),
        metadata=city.as_worker,
    )
    await time_skipping_env.sleep(timedelta(days=3))

    reopened = await stub.DisputeOutcome(
        pb.DisputeOutcomeRequest(case_id=case.record.id, reason="still quarrelling"),
        metadata=city.as_resident,
    )

    assert reopened.case.stage == pb.CASE_STAGE_VERIFYING
    assert reopened.case.record.status == S.CASE_STATUS_IN_PROGRESS
    assert reopened.case.record.timeline[-1].actor_id == city.resident_id
    assert "disputed" in reopened.case.record.timeline[-1].note
    # Mediated again: still one award for the tip-off.
    await stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id, outcome=pb.VISIT_OUTCOME_RESOLVED_ON_SPOT
        ),
        metadata=city.as_worker,
    )
    balance = await residents_grpc.ResidentsServiceStub(residents_channel).GetBalance(
        residents_pb.GetBalanceRequest(
            account=residents_pb.AccountRef(
                kind=residents_pb.ACCOUNT_KIND_RESIDENT, owner_id=city.resident_id
            )
        ),
        metadata=AS_OPERATOR,
    )
    assert balance.earned == 50
    handle = skipping_stack.client.get_workflow_handle(f"case-{case.record.id}")
    # Past the dispute window the case closes and a dispute comes too late.
    await time_skipping_env.sleep(timedelta(days=8))
    too_late = await call_error(
        stub.DisputeOutcome(
            pb.DisputeOutcomeRequest(case_id=case.record.id, reason="again"),
            metadata=city.as_resident,
        )
    )
    assert too_late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in (too_late.details() or "")
    await record(handle, "CaseWorkflow", "disputed")


async def test_department_that_never_acknowledges_is_flagged_and_chased(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case_id = await confirmed_case(skipping_stack, city)
    await skipping_stack.stub.EscalateCase(
        pb.EscalateCaseRequest(case_id=case_id, department_contact_id=city.fire.id),
        metadata=city.as_worker,
    )

    await time_skipping_env.sleep(timedelta(hours=49))
    late = await view(skipping_stack, case_id)

    assert late.stage == pb.CASE_STAGE_ESCALATED
    assert late.overdue
    assert "did not acknowledge" in late.record.timeline[-1].note
    fire = city.fire.id
    assert messages_to(skipping_stack, case_id, fire, "Acknowledgement overdue") == 1
    title = "Department has not acknowledged"
    assert messages_to(skipping_stack, case_id, city.worker_helper, title) == 1


async def test_restarted_worker_sends_the_reminder_and_reinspection_once(
    skipping_stack: Stack,  # registers the search attributes
    settings: Settings,
    grids_service: RunningService,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    async with casework_stack(
        settings,
        grids_service.port,
        time_skipping_env.client,
        grids_channel,
        residents_channel,
        with_worker=False,
    ) as stack:
        city = await scene(grids_channel, residents_channel)
        async with stack.worker(cached=False):
            case_id = await confirmed_case(stack, city)
            await stack.stub.OrderRectification(
                pb.OrderRectificationRequest(case_id=case_id),  # fire: 7 days
                metadata=city.as_worker,
            )
            await time_skipping_env.sleep(timedelta(days=2))
        # The worker is gone for days; a new one takes over.
        async with stack.worker():
            await time_skipping_env.sleep(timedelta(days=6))
            after = await view(stack, case_id)

    worker = city.worker_helper
    assert messages_to(stack, case_id, worker, "Rectification due soon") == 1
    assert messages_to(stack, case_id, worker, "Re-inspection due") == 1
    assert after.stage == pb.CASE_STAGE_REINSPECTING
    notes = [step.note for step in after.record.timeline]
    assert sum("reminder" in n for n in notes) == 1
    assert sum("deadline passed" in n for n in notes) == 1


async def test_cases_opened_by_the_workflow_count_in_the_annual_report(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    fire = await patrol_report(skipping_stack, city)
    fraud = await tip_off(skipping_stack, city, S.CASE_CATEGORY_FRAUD_PREVENTION)
    await settled(skipping_stack, fraud.record.id, pb.CASE_STAGE_VERIFYING)
    cst = ZoneInfo("Asia/Shanghai")
    year = fire.record.report_time.ToDatetime(tzinfo=UTC).astimezone(cst).year

    report = await reports_grpc.ReportsServiceStub(grids_channel).GetAnnualReport(
        reports_pb.GetAnnualReportRequest(area_id=city.place.village.id, year=year),
        metadata=AS_OPERATOR,
    )

    counts = {c.category: c.cases for g in report.report.groups for c in g.categories}
    assert counts[S.CASE_CATEGORY_SAFETY_FIRE] == 1
    assert counts[S.CASE_CATEGORY_FRAUD_PREVENTION] == 1


async def test_case_in_a_grid_without_workers_waits_until_assigned_by_hand(
    skipping_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    areas = gpb_grpc.GridsServiceStub(grids_channel)
    grid = await areas.CreateArea(
        gpb.CreateAreaRequest(
            kind=gpb.AREA_KIND_GRID, name="empty grid", parent_id=city.place.village.id
        ),
        metadata=AS_OPERATOR,
    )
    micro = await areas.CreateArea(
        gpb.CreateAreaRequest(
            kind=gpb.AREA_KIND_MICRO_GRID, name="mg", parent_id=grid.area.id
        ),
        metadata=AS_OPERATOR,
    )
    case = await tip_off(skipping_stack, city, micro_grid=micro.area)
    waiting = await view(skipping_stack, case.record.id)
    for _ in range(600):
        if len(waiting.record.timeline) > 1:
            break
        await asyncio.sleep(0.05)
        waiting = await view(skipping_stack, case.record.id)
    newcomer = await staff_grpc.StaffServiceStub(grids_channel).RegisterHelper(
        staff_pb.RegisterHelperRequest(
            kind=staff_pb.HELPER_KIND_GRID_WORKER,
            person_id=f"staff-{uuid.uuid4().hex[:8]}",
            area_ids=[grid.area.id],
        ),
        metadata=AS_OPERATOR,
    )
    stub = skipping_stack.stub

    wrong = await call_error(
        stub.AssignCase(
            pb.AssignCaseRequest(case_id=case.record.id, helper_id=city.worker_helper),
            metadata=AS_OPERATOR,
        )
    )
    assigned = await stub.AssignCase(
        pb.AssignCaseRequest(case_id=case.record.id, helper_id=newcomer.helper.id),
        metadata=AS_OPERATOR,
    )

    assert waiting.stage == pb.CASE_STAGE_UNASSIGNED
    assert "no grid worker found" in waiting.record.timeline[-1].note
    assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert assigned.case.stage == pb.CASE_STAGE_VERIFYING
    assert assigned.case.record.assignee_id == newcomer.helper.person_id
    assert assigned.case.deadline_kind == pb.DEADLINE_KIND_VERIFICATION
