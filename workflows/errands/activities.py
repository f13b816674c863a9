"""Activities of the ErrandWorkflow: each calls one service over gRPC.

Every mutating call carries the request_id the workflow derived from its id
and the step, so a retried activity or a restarted worker repeats nothing.
"""

from dataclasses import dataclass, field
from typing import Any

import grpc
from cloudark.errands.v1 import errands_pb2 as errands_pb
from cloudark.errands.v1 import errands_pb2_grpc as errands_grpc
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from temporalio import activity

from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

# Helpers whose person_id is a resident id, so they can earn points.
RESIDENT_HELPERS = frozenset(
    {staff_pb.HELPER_KIND_VOLUNTEER, staff_pb.HELPER_KIND_SQUAD_MEMBER}
)
# How many candidates dispatch asks the grids service for.
RANK_LIMIT = 50
# An unread in-app message to a resident becomes a text message after this.


@dataclass
class Candidate:
    """A helper dispatch may offer the errand to; ids only."""

    helper_id: str
    person_id: str
    kind: int
    tier: int
    supervisor_id: str = ""


@dataclass
class RankHelpersInput:
    micro_grid_id: str


@dataclass
class RankHelpersResult:
    candidates: list[Candidate]


@dataclass
class FindSupervisorsInput:
    grid_id: str


@dataclass
class FindSupervisorsResult:
    supervisors: list[Candidate]


@dataclass
class RecordStepInput:
    errand_id: str
    step_key: str
    kind: int
    status: int
    offered_helper_ids: list[str] = field(default_factory=list)
    helper_id: str = ""
    # The helper the step concerns, when not the errand's helper.
    step_helper_id: str = ""
    note: str = ""
    breached: bool = False
    delivery_note: str = ""
    photo_ref: str = ""


@dataclass
class RecordStepResult:
    recorded: bool


@dataclass
class AdjustHelperLoadInput:
    helper_id: str
    delta: int
    request_id: str


@dataclass
class AdjustHelperLoadResult:
    load: int


# The services ErrandActivities call, by channel name.
ERRAND_SERVICES = frozenset({"errands", "grids", "residents", "notifications"})


class ErrandActivities:
    def __init__(self, channels: dict[str, grpc.aio.Channel]) -> None:
        self._errands = errands_grpc.ErrandsServiceStub(channels["errands"])
        self._staff = staff_grpc.StaffServiceStub(channels["grids"])

    def all(self) -> list[Any]:
        return [
            self.rank_helpers,
            self.find_supervisors,
            self.record_step,
            self.adjust_helper_load,
        ]

    @activity.defn
    async def rank_helpers(self, data: RankHelpersInput) -> RankHelpersResult:
        """The micro-grid's on-duty helpers in dispatch order, then the
        village's other grids' workers."""
        try:
            reply = await self._staff.RankHelpers(
                staff_pb.RankHelpersRequest(
                    micro_grid_id=data.micro_grid_id,
                    need=staff_pb.NEED_KIND_ERRAND,
                    limit=RANK_LIMIT,
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return RankHelpersResult(
            [_candidate(c.helper, c.tier) for c in reply.candidates]
        )

    @activity.defn
    async def find_supervisors(
        self, data: FindSupervisorsInput
    ) -> FindSupervisorsResult:
        """The supervisors of the grid's workers, on duty or not."""
        try:
            supervisor_ids: list[str] = []
            token = ""
            while True:
                page = await self._staff.ListHelpers(
                    staff_pb.ListHelpersRequest(
                        area_id=data.grid_id,
                        kind=staff_pb.HELPER_KIND_GRID_WORKER,
                        page_token=token,
                    ),
                    metadata=METADATA,
                    timeout=CALL_TIMEOUT,
                )
                for worker in page.helpers:
                    if (
                        worker.supervisor_id
                        and worker.supervisor_id not in supervisor_ids
                    ):
                        supervisor_ids.append(worker.supervisor_id)
                token = page.next_page_token
                if not token:
                    break
            found = []
            for supervisor_id in supervisor_ids:
                reply = await self._staff.GetHelper(
                    staff_pb.GetHelperRequest(id=supervisor_id),
                    metadata=METADATA,
                    timeout=CALL_TIMEOUT,
                )
                found.append(_candidate(reply.helper, staff_pb.RANK_TIER_UNSPECIFIED))
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return FindSupervisorsResult(found)

    @activity.defn
    async def record_step(self, data: RecordStepInput) -> RecordStepResult:
        """Writes the step and the errand's new state to the errands store."""
        request = errands_pb.RecordErrandStepRequest(
            errand_id=data.errand_id,
            step_key=data.step_key,
            step=errands_pb.ErrandStep(
                kind=data.kind,  # type: ignore[arg-type]
                helper_id=data.step_helper_id or data.helper_id,
                note=data.note,
            ),
            status=data.status,  # type: ignore[arg-type]
            offered_helper_ids=data.offered_helper_ids,
            helper_id=data.helper_id,
            breached=data.breached,
            delivery_note=data.delivery_note,
            photo_ref=data.photo_ref,
        )
        try:
            reply = await self._errands.RecordErrandStep(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return RecordStepResult(recorded=reply.recorded)

    @activity.defn
    async def adjust_helper_load(
        self, data: AdjustHelperLoadInput
    ) -> AdjustHelperLoadResult:
        try:
            reply = await self._staff.AdjustHelperLoad(
                staff_pb.AdjustHelperLoadRequest(
                    id=data.helper_id, delta=data.delta, request_id=data.request_id
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return AdjustHelperLoadResult(load=reply.helper.load)


def _candidate(helper: staff_pb.Helper, tier: int) -> Candidate:
    return Candidate(
        helper_id=helper.id,
        person_id=helper.person_id,
        kind=helper.kind,
        tier=tier,
        supervisor_id=helper.supervisor_id,
    )
