"""Building blocks for the errands tests: a place with a resident and helpers,
a notifications stand-in, and the errands front door plus a worker on a
test's own task queue."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from cloudark.errands.v1 import errands_pb2 as pb
from cloudark.errands.v1 import errands_pb2_grpc as pb_grpc
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from cloudark.notifications.v1 import notifications_pb2 as npb
from cloudark.notifications.v1 import notifications_pb2_grpc as npb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from temporalio.client import Client
from temporalio.service import RPCError

from services.common.config import Settings
from services.common.identity import Caller, Role
from services.common.server import RunningService, start_service
from services.errands.config import Promise
from services.errands.server import definition
from tests.conftest import OPERATOR
from tests.residents.support import Place, household, place, resident
from workflows.worker import build_worker

AS_OPERATOR = OPERATOR.metadata()
ON, OFF = staff_pb.AVAILABILITY_ON_DUTY, staff_pb.AVAILABILITY_OFF_DUTY
MEDICINE = pb.ERRAND_KIND_MEDICINE


def promise(**changes: Any) -> Promise:
    """The default timings (15 minutes, 90 s windows), with changes."""
    base = Promise(
        due_seconds={k: 15 * 60 for k in (1, 2, 3)},
        offer_window_seconds=90,
        offer_batch=1,
        report_timeout_seconds=600,
        redispatch_seconds=300,
    )
    return dataclasses.replace(base, **changes)


# ---- a notifications stand-in ----


@dataclass
class Sent:
    request_id: str
    reference: str
    resident_ids: list[str]
    staff_ids: list[str]
    title: str
    body: str


class FakeNotifications(npb_grpc.NotificationsServiceServicer):
    """Answers SendNotification per its proto and remembers every call, so
    tests can tell a retried message (same request_id) from a repeated one."""

    def __init__(self) -> None:
        self.calls: list[Sent] = []
        # Set by a test to play a notifications outage.
        self.down = False

    async def SendNotification(
        self, request: npb.SendNotificationRequest, context: Any
    ) -> npb.SendNotificationResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down for the test")
        self.calls.append(
            Sent(
                request.request_id,
                request.reference,
                list(request.audience.resident_ids),
                list(request.audience.staff_ids),
                request.title,
                request.body,
            )
        )
        digest = hashlib.sha256(request.request_id.encode()).hexdigest()[:16]
        return npb.SendNotificationResponse(
            notification=npb.Notification(id=digest, reference=request.reference)
        )

    def about(self, errand_id: str) -> list[Sent]:
        return [c for c in self.calls if c.reference.startswith(f"errand-{errand_id}/")]


# ---- the people of a test ----


@dataclass
class Town:
    """A fresh place: a resident asking, helpers of every tier, a supervisor."""

    place: Place
    resident_id: str
    # A grid worker of the resident's grid, with a supervisor (a cadre).
    worker: staff_pb.Helper
    supervisor: staff_pb.Helper
    # A volunteer of the micro-grid; its person_id is a resident id.
    volunteer: staff_pb.Helper
    # A grid worker of the village's other grid.
    neighbour: staff_pb.Helper
    extra: list[staff_pb.Helper] = field(default_factory=list)


async def helper(
    staff: staff_grpc.StaffServiceAsyncStub,
    kind: int,
    area_ids: list[str],
    *,
    person_id: str = "",
    supervisor_id: str = "",
    availability: int = ON,
) -> staff_pb.Helper:
    reply = await staff.RegisterHelper(
        staff_pb.RegisterHelperRequest(
            kind=kind,  # type: ignore[arg-type]
            person_id=person_id or f"staff-{uuid.uuid4().hex[:8]}",
            area_ids=area_ids,
            supervisor_id=supervisor_id,
            availability=availability,  # type: ignore[arg-type]
        ),
        metadata=AS_OPERATOR,
    )
    return reply.helper


async def town(
    grids: grpc.aio.Channel,
    residents: grpc.aio.Channel,
    *,
    worker_on_duty: bool = True,
    volunteer_on_duty: bool = True,
) -> Town:
    where = await place(grids)
    people = rpb_grpc.ResidentsServiceStub(residents)
    home = await household(people, where.micro_grid)
    asking = await resident(people, home.id)
    neighbour_home = await household(people, where.micro_grid)
    helping = await resident(people, neighbour_home.id)
    staff = staff_grpc.StaffServiceStub(grids)
    supervisor = await helper(
        staff, staff_pb.HELPER_KIND_CADRE, [where.village.id], availability=OFF
    )
    worker = await helper(
        staff,
        staff_pb.HELPER_KIND_GRID_WORKER,
        [where.grid.id],
        supervisor_id=supervisor.id,
        availability=ON if worker_on_duty else OFF,
    )
    volunteer = await helper(
        staff,
        staff_pb.HELPER_KIND_VOLUNTEER,
        [where.micro_grid.id],
        person_id=helping.id,
        availability=ON if volunteer_on_duty else OFF,
    )
    neighbour = await helper(
        staff, staff_pb.HELPER_KIND_GRID_WORKER, [where.other_grid.id]
    )
    return Town(where, asking.id, worker, supervisor, volunteer, neighbour)


def as_resident(resident_id: str) -> tuple[tuple[str, str], ...]:
    return Caller(subject=resident_id, role=Role.RESIDENT).metadata()


def as_helper(h: staff_pb.Helper) -> tuple[tuple[str, str], ...]:
    role = (
        Role.VOLUNTEER if h.kind == staff_pb.HELPER_KIND_VOLUNTEER else Role.GRID_WORKER
    )
    return Caller(subject=h.id, role=role, area_ids=tuple(h.area_ids)).metadata()


async def balance(residents: grpc.aio.Channel, resident_id: str) -> int:
    stub = rpb_grpc.ResidentsServiceStub(residents)
    reply = await stub.GetBalance(
        rpb.GetBalanceRequest(
            account=rpb.AccountRef(kind=rpb.ACCOUNT_KIND_RESIDENT, owner_id=resident_id)
        ),
        metadata=AS_OPERATOR,
    )
    return reply.points


async def load_of(grids: grpc.aio.Channel, helper_id: str) -> int:
    stub = staff_grpc.StaffServiceStub(grids)
    reply = await stub.GetHelper(
        staff_pb.GetHelperRequest(id=helper_id), metadata=AS_OPERATOR
    )
    return reply.helper.load


# ---- the front door and a worker ----


@asynccontextmanager
async def errands_front_door(
    settings: Settings,
    client: Client,
    task_queue: str,
    residents_port: int,
    timings: Promise | None = None,
) -> AsyncIterator[RunningService]:
    """An errands service starting workflows on task_queue; at the end it
    terminates the workflows still running, so no later test meets them."""
    import os

    saved = os.environ.get("CLOUDARK_RESIDENTS_ADDRESS")
    os.environ["CLOUDARK_RESIDENTS_ADDRESS"] = f"127.0.0.1:{residents_port}"
    try:
        service = await start_service(
            definition(timings or promise()),
            dataclasses.replace(settings, temporal_task_queue=task_queue),
            port=0,
            temporal=client,
        )
    finally:
        if saved is None:
            del os.environ["CLOUDARK_RESIDENTS_ADDRESS"]
        else:
            os.environ["CLOUDARK_RESIDENTS_ADDRESS"] = saved
    try:
        yield service
    finally:
        rows = await service.pool.fetch("SELECT id FROM errands")
        for row in rows:
            handle = client.get_workflow_handle(f"errand-{row['id']}")
            try:
                await handle.terminate("test finished")
            except RPCError:  # closed already, or never on this server
                continue
        await service.stop(grace=1)


@dataclass
class Stack:
    errands: pb_grpc.ErrandsServiceAsyncStub
    channels: dict[str, grpc.aio.Channel]
    service: RunningService


@asynccontextmanager
async def stack(
    settings: Settings,
    client: Client,
    task_queue: str,
    *,
    grids: grpc.aio.Channel,
    residents: grpc.aio.Channel,
    residents_port: int,
    notifications_port: int,
    timings: Promise | None = None,
    worker: bool = True,
) -> AsyncIterator[Stack]:
    """The front door and (unless worker=False) a worker for its workflows."""
    async with (
        errands_front_door(
            settings, client, task_queue, residents_port, timings
        ) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as errands,
        grpc.aio.insecure_channel(f"127.0.0.1:{notifications_port}") as notes,
    ):
        channels = {
            "grids": grids,
            "residents": residents,
            "notifications": notes,
            "errands": errands,
        }
        found = Stack(pb_grpc.ErrandsServiceStub(errands), channels, service)
        if not worker:
            yield found
            return
        async with build_worker(client, task_queue, channels):
            yield found


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0
) -> None:
    """Polls check until it holds; fails after timeout seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.1)


async def steps(stub: pb_grpc.ErrandsServiceAsyncStub, errand_id: str) -> list[int]:
    reply = await stub.GetErrand(
        pb.GetErrandRequest(id=errand_id), metadata=AS_OPERATOR
    )
    return [s.kind for s in reply.steps]


async def errand(stub: pb_grpc.ErrandsServiceAsyncStub, errand_id: str) -> pb.Errand:
    reply = await stub.GetErrand(
        pb.GetErrandRequest(id=errand_id), metadata=AS_OPERATOR
    )
    return reply.errand


async def offered_to(
    stub: pb_grpc.ErrandsServiceAsyncStub,
    errand_id: str,
    helper_id: str,
    timeout: float = 20.0,
) -> None:
    """Waits until the errand is offered to the helper."""

    async def check() -> bool:
        return helper_id in (await errand(stub, errand_id)).offered_helper_ids

    await eventually(check, timeout)
