"""Activities of the case follow-up: the grids record and staff, points,
and notifications, each called with an idempotency key from the workflow."""

from dataclasses import dataclass

import grpc
from cloudark.grids.v1 import cases_pb2 as cases_pb
from cloudark.grids.v1 import cases_pb2_grpc as cases_grpc
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from temporalio import activity

from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error


@dataclass
class AppendStepInput:
    case_id: str
    step_key: str
    # 0 keeps the record's status.
    status: int
    actor_id: str
    note: str
    assignee_id: str = ""


@dataclass
class AppendStepResult:
    status: int


@dataclass
class FindWorkerInput:
    micro_grid_id: str
    grid_id: str


@dataclass
class FindWorkerResult:
    # Empty when the grid has no active grid worker.
    person_id: str
    supervisor_person_id: str
    helper_id: str = ""
    supervisor_helper_id: str = ""


class CaseworkActivities:
    def __init__(self, grids: grpc.aio.Channel) -> None:
        self._cases = cases_grpc.CasesServiceStub(grids)
        self._staff = staff_grpc.StaffServiceStub(grids)

    @activity.defn
    async def append_case_step(self, data: AppendStepInput) -> AppendStepResult:
        """Writes one timeline step; its step_key makes a replay change nothing."""
        request = cases_pb.AppendCaseStepRequest(
            case_id=data.case_id,
            step_key=data.step_key,
            status=data.status,  # type: ignore[arg-type]
            actor_id=data.actor_id,
            note=data.note,
            assignee_id=data.assignee_id,
        )
        try:
            reply = await self._cases.AppendCaseStep(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return AppendStepResult(status=reply.case.status)

    @activity.defn
    async def find_grid_worker(self, data: FindWorkerInput) -> FindWorkerResult:
        """The grid worker to follow the case: the best ranked one on duty,
        else any active grid worker of the grid."""
        try:
            helper = await self._ranked_worker(data.micro_grid_id)
            if helper is None:
                helper = await self._any_worker(data.grid_id)
            if helper is None:
                return FindWorkerResult(person_id="", supervisor_person_id="")
            supervisor = await self._person_of(helper.supervisor_id)
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return FindWorkerResult(
            person_id=helper.person_id,
            supervisor_person_id=supervisor,
            helper_id=helper.id,
            supervisor_helper_id=helper.supervisor_id,
        )

    async def _ranked_worker(self, micro_grid_id: str) -> staff_pb.Helper | None:
        ranked = await self._staff.RankHelpers(
            staff_pb.RankHelpersRequest(
                micro_grid_id=micro_grid_id,
                need=staff_pb.NEED_KIND_CASE_FOLLOW_UP,
                limit=5,
            ),
            metadata=METADATA,
            timeout=CALL_TIMEOUT,
        )
        for candidate in ranked.candidates:
            if candidate.tier == staff_pb.RANK_TIER_GRID_WORKER:
                return candidate.helper
        return None

    async def _any_worker(self, grid_id: str) -> staff_pb.Helper | None:
        listed = await self._staff.ListHelpers(
            staff_pb.ListHelpersRequest(
                area_id=grid_id, kind=staff_pb.HELPER_KIND_GRID_WORKER, page_size=1
            ),
            metadata=METADATA,
            timeout=CALL_TIMEOUT,
        )
        return listed.helpers[0] if listed.helpers else None

    async def _person_of(self, helper_id: str) -> str:
        if not helper_id:
            return ""
        reply = await self._staff.GetHelper(
            staff_pb.GetHelperRequest(id=helper_id),
            metadata=METADATA,
            timeout=CALL_TIMEOUT,
        )
        return reply.helper.person_id
