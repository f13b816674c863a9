"""The casework stack for tests: the front door, a worker with the real

grids and residents activities, and a stand-in outbox for notifications
(the notifications service is built separately; its activity name is the
real one)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.casework.v1 import casework_pb2_grpc as pb_grpc
from cloudark.grids.v1 import cases_pb2 as cases_pb
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from cloudark.residents.v1 import residents_pb2_grpc as residents_grpc
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from services.casework.server import DEFINITION as CASEWORK
from services.common.config import Settings
from services.common.identity import Caller, Role
from services.common.server import RunningService, start_service
from tests.conftest import OPERATOR
from tests.residents import support as people
from workflows.casework.activities import CaseworkActivities
from workflows.casework.workflows import CaseWorkflow
from workflows.messaging import (
    MessagingActivities,
    SendNotificationInput,
    SendNotificationResult,
)

AS_OPERATOR = OPERATOR.metadata()


@dataclass
class Outbox:
    """Stands in for NotificationsService.SendNotification: keeps one message
    per request_id, as the service does, and counts every attempt."""

    messages: dict[str, SendNotificationInput] = field(default_factory=dict)
    attempts: int = 0

    @activity.defn(name="send_notification")
    async def send_notification(
        self, data: SendNotificationInput
    ) -> SendNotificationResult:
        self.attempts += 1
        self.messages.setdefault(data.request_id, data)
        return SendNotificationResult(notification_id=data.request_id)

    def about(self, case_id: str) -> list[SendNotificationInput]:
        return [m for m in self.messages.values() if case_id in m.reference]


@dataclass
class Stack:
    service: RunningService
    client: Client
    queue: str
    outbox: Outbox
    grids: grpc.aio.Channel
    residents: grpc.aio.Channel
    channel: grpc.aio.Channel
    # Which Temporal it runs on: "time-skipping" or "dev-server".
    server: str = "dev-server"

    @property
    def stub(self) -> pb_grpc.CaseworkServiceAsyncStub:
        return pb_grpc.CaseworkServiceStub(self.channel)

    def worker(self, *, cached: bool = True) -> Worker:
        """A worker; uncached, it leaves no sticky queue behind when it stops,
        so a successor takes over at once."""
        real = CaseworkActivities(self.grids)
        return Worker(
            self.client,
            task_queue=self.queue,
            max_cached_workflows=100 if cached else 0,
            workflows=[CaseWorkflow],
            activities=[
                real.append_case_step,
                real.find_grid_worker,
                MessagingActivities(self.grids, self.residents).earn_points,
                self.outbox.send_notification,
            ],
        )


@contextlib.asynccontextmanager
async def casework_stack(
    settings: Settings,
    grids_port: int,
    client: Client,
    grids: grpc.aio.Channel,
    residents: grpc.aio.Channel,
    *,
    with_worker: bool = True,
    server: str = "dev-server",
) -> AsyncIterator[Stack]:
    """The front door on port 0 against the given Temporal, with a worker."""
    queue = f"casework-{uuid.uuid4()}"
    saved = os.environ.get("CLOUDARK_GRIDS_ADDRESS")
    os.environ["CLOUDARK_GRIDS_ADDRESS"] = f"127.0.0.1:{grids_port}"
    try:
        service = await start_service(
            CASEWORK,
            dataclasses.replace(settings, temporal_task_queue=queue),
            port=0,
            temporal=client,
        )
    finally:
        if saved is None:
            del os.environ["CLOUDARK_GRIDS_ADDRESS"]
        else:
            os.environ["CLOUDARK_GRIDS_ADDRESS"] = saved
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stack = Stack(
                service, client, queue, Outbox(), grids, residents, channel, server
            )
            if not with_worker:
                yield stack
                return
            async with stack.worker():
                yield stack
    finally:
        await service.stop(grace=1)


@dataclass
class Scene:
    """A fresh city chain with a grid worker (and supervisor), department
    contacts and a resident."""

    place: people.Place
    worker_person: str
    supervisor_person: str
    worker_helper: str
    market: staff_pb.Helper
    fire: staff_pb.Helper
    resident_id: str
    # Staff are told through their helper ids.
    supervisor_helper: str = ""

    @property
    def as_worker(self) -> tuple[tuple[str, str], ...]:
        caller = Caller(self.worker_person, Role.GRID_WORKER, (self.place.grid.id,))
        return caller.metadata()

    @property
    def as_resident(self) -> tuple[tuple[str, str], ...]:
        return Caller(self.resident_id, Role.RESIDENT).metadata()

    def as_department(self, contact: staff_pb.Helper) -> tuple[tuple[str, str], ...]:
        return Caller(contact.person_id, Role.DEPARTMENT).metadata()


async def _helper(
    staff: staff_grpc.StaffServiceAsyncStub, **fields: object
) -> staff_pb.Helper:
    reply = await staff.RegisterHelper(
        staff_pb.RegisterHelperRequest(
            person_id=f"staff-{uuid.uuid4().hex[:10]}",
            availability=staff_pb.AVAILABILITY_ON_DUTY,
            **fields,  # type: ignore[arg-type]
        ),
        metadata=AS_OPERATOR,
    )
    return reply.helper


async def scene(grids: grpc.aio.Channel, residents: grpc.aio.Channel) -> Scene:
    place = await people.place(grids)
    staff = staff_grpc.StaffServiceStub(grids)
    boss = await _helper(
        staff, kind=staff_pb.HELPER_KIND_GRID_WORKER, area_ids=[place.other_grid.id]
    )
    worker = await _helper(
        staff,
        kind=staff_pb.HELPER_KIND_GRID_WORKER,
        area_ids=[place.grid.id],
        supervisor_id=boss.id,
    )
    market = await _helper(
        staff,
        kind=staff_pb.HELPER_KIND_DEPARTMENT_CONTACT,
        area_ids=[place.town.id],
        department_kind=staff_pb.DEPARTMENT_KIND_MARKET_REGULATION,
        handled_categories=[cases_pb.CASE_CATEGORY_SAFETY_FOOD_AND_DRUG],
    )
    fire = await _helper(
        staff,
        kind=staff_pb.HELPER_KIND_DEPARTMENT_CONTACT,
        area_ids=[place.city.id],
        department_kind=staff_pb.DEPARTMENT_KIND_FIRE,
        handled_categories=[cases_pb.CASE_CATEGORY_SAFETY_FIRE],
    )
    stub = residents_grpc.ResidentsServiceStub(residents)
    home = await people.household(stub, place.micro_grid)
    resident = await people.resident(stub, home.id)
    return Scene(
        place,
        worker.person_id,
        boss.person_id,
        worker.id,
        market,
        fire,
        resident.id,
        supervisor_helper=boss.id,
    )


async def tip_off(
    stack: Stack,
    scene: Scene,
    category: int = cases_pb.CASE_CATEGORY_SAFETY_FIRE,
    micro_grid: gpb.Area | None = None,
) -> pb.CaseView:
    """A resident's tip-off with a photo."""
    reply = await stack.stub.ReportCase(
        pb.ReportCaseRequest(
            category=category,  # type: ignore[arg-type]
            source=cases_pb.CASE_SOURCE_RESIDENT_TIP_OFF,
            micro_grid_id=(micro_grid or scene.place.micro_grid).id,
            description="reported by a resident",
            attachment_refs=["photos/tip-off-1.jpg"],
            reporter_id=scene.resident_id,
            request_id=str(uuid.uuid4()),
        ),
        metadata=scene.as_resident,
    )
    return reply.case


async def patrol_report(
    stack: Stack, scene: Scene, category: int = cases_pb.CASE_CATEGORY_SAFETY_FIRE
) -> pb.CaseView:
    reply = await stack.stub.ReportCase(
        pb.ReportCaseRequest(
            category=category,  # type: ignore[arg-type]
            source=cases_pb.CASE_SOURCE_PATROL,
            micro_grid_id=scene.place.micro_grid.id,
            description="found on patrol",
            reporter_id=scene.worker_person,
        ),
        metadata=scene.as_worker,
    )
    return reply.case


async def view(stack: Stack, case_id: str) -> pb.CaseView:
    reply = await stack.stub.GetCase(
        pb.GetCaseRequest(id=case_id), metadata=AS_OPERATOR
    )
    return reply.case


async def settled(stack: Stack, case_id: str, stage: int) -> pb.CaseView:
    """The case once its workflow has reached stage (triage runs after the
    report returns)."""
    handle = stack.client.get_workflow_handle(f"case-{case_id}")
    for _ in range(600):
        state = await handle.query(CaseWorkflow.state)
        if state.stage == stage:
            return await view(stack, case_id)
        await _pause()
    raise AssertionError(f"case {case_id} never reached stage {stage}")


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.05)
