"""CaseWorkflow resumed from a snapshot, as after continue-as-new: it keeps
its deadlines and its step numbering."""

import dataclasses
from datetime import UTC, timedelta

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as cases_pb
from cloudark.grids.v1 import cases_pb2_grpc as cases_grpc
from temporalio.testing import WorkflowEnvironment

from tests.casework.support import AS_OPERATOR, Stack, scene
from workflows.casework.steps import CaseRules, CaseState
from workflows.casework.workflows import CaseInput, CaseWorkflow
from workflows.worker import CHANNELS, WORKFLOWS, activities


async def test_resumed_case_keeps_its_deadline_and_step_numbers(
    skipping_stack: Stack,
    time_skipping_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    created = await cases_grpc.CasesServiceStub(grids_channel).CreateCase(
        cases_pb.CreateCaseRequest(
            category=cases_pb.CASE_CATEGORY_SAFETY_FIRE,
            source=cases_pb.CASE_SOURCE_PATROL,
            micro_grid_id=city.place.micro_grid.id,
            description="resumed case",
            reporter_id=city.worker_person,
        ),
        metadata=AS_OPERATOR,
    )
    case_id = created.case.id
    now = await time_skipping_env.get_current_time()
    snapshot = CaseState(
        stage=pb.CASE_STAGE_RECTIFYING,
        status=cases_pb.CASE_STATUS_IN_PROGRESS,
        assignee_id=city.worker_person,
        deadline=now.astimezone(UTC) + timedelta(hours=5),
        deadline_kind=pb.DEADLINE_KIND_RECTIFICATION,
        visited=True,
        rectification_round=1,
        steps=7,
    )
    data = CaseInput(
        case_id=case_id,
        category=cases_pb.CASE_CATEGORY_SAFETY_FIRE,
        source=cases_pb.CASE_SOURCE_PATROL,
        micro_grid_id=city.place.micro_grid.id,
        grid_id=city.place.grid.id,
        village_id=city.place.village.id,
        town_id=city.place.town.id,
        reporter_id=city.worker_person,
        rules=CaseRules(24, 7, 24, 48, 7),
    )

    handle = await skipping_stack.client.start_workflow(
        CaseWorkflow.run,
        dataclasses.replace(data, resume=snapshot),
        id=f"case-{case_id}",
        task_queue=skipping_stack.queue,
    )
    await time_skipping_env.sleep(timedelta(hours=6))
    state = await handle.query(CaseWorkflow.state)

    assert state.stage == pb.CASE_STAGE_REINSPECTING
    record = await cases_grpc.CasesServiceStub(grids_channel).GetCase(
        cases_pb.GetCaseRequest(id=case_id), metadata=AS_OPERATOR
    )
    last = record.case.timeline[-1]
    assert last.step_key == f"case-{case_id}/008"
    assert "deadline passed" in last.note
    assert state.deadline is None


async def test_worker_runs_the_case_workflow_and_its_activities() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        channels = {name: channel for name in CHANNELS}
        names = {getattr(a, "__name__", "") for a in activities(channels)}

    assert CaseWorkflow in WORKFLOWS
    assert {
        "append_case_step",
        "find_grid_worker",
        "send_notification",
        "earn_points",
    } <= names
