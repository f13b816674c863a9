"""Building blocks for the care tests: a town of squads and recipients, a
stand-in notifications server, and a care service with its own task queue."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from cloudark.care.v1 import care_pb2 as pb
from cloudark.care.v1 import care_pb2_grpc as pb_grpc
from cloudark.errands.v1 import errands_pb2 as epb
from cloudark.errands.v1 import errands_pb2_grpc as epb_grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.grids.v1 import staff_pb2 as spb
from cloudark.grids.v1 import staff_pb2_grpc as spb_grpc
from cloudark.notifications.v1 import notifications_pb2 as npb
from cloudark.notifications.v1 import notifications_pb2_grpc as npb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from temporalio.client import Client
from temporalio.worker import Worker

from services.care.server import DEFINITION as CARE
from services.common.config import Settings
from services.common.server import RunningService, start_service
from tests.conftest import OPERATOR
from tests.residents.support import household, resident
from workflows.worker import build_worker

AS_OPERATOR = OPERATOR.metadata()
ALONE = rpb.CARE_REASON_ELDERLY_ALONE
ILL = rpb.CARE_REASON_CHRONIC_ILLNESS


class FakeNotifications(npb_grpc.NotificationsServiceServicer):
    """Stands in for the notifications service (built in parallel, #5): it
    keeps each request once per request_id, as the real one promises."""

    def __init__(self) -> None:
        self.sent: dict[str, npb.SendNotificationRequest] = {}
        self.calls = 0

    async def SendNotification(
        self, request: npb.SendNotificationRequest, context: object
    ) -> npb.SendNotificationResponse:
        self.calls += 1
        self.sent.setdefault(request.request_id, request)
        notification_id = str(uuid.uuid5(uuid.NAMESPACE_URL, request.request_id))
        return npb.SendNotificationResponse(
            notification=npb.Notification(id=notification_id, title=request.title)
        )

    def titled(self, title: str) -> list[npb.SendNotificationRequest]:
        return [r for r in self.sent.values() if r.title == title]


class FakeErrands(epb_grpc.ErrandsServiceServicer):
    """Stands in for the errands front door (#7, on its own branch): one
    errand per request_id, as the real one promises."""

    def __init__(self) -> None:
        self.requested: dict[str, epb.RequestErrandRequest] = {}

    async def RequestErrand(
        self, request: epb.RequestErrandRequest, context: object
    ) -> epb.RequestErrandResponse:
        self.requested.setdefault(request.request_id, request)
        errand_id = str(uuid.uuid5(uuid.NAMESPACE_URL, request.request_id))
        return epb.RequestErrandResponse(
            errand=epb.Errand(
                id=errand_id, resident_id=request.resident_id, kind=request.kind
            )
        )


@asynccontextmanager
async def fake_notifications() -> AsyncIterator[tuple[FakeNotifications, int]]:
    servicer = FakeNotifications()  # type: ignore[abstract]
    server = grpc.aio.server()
    npb_grpc.add_NotificationsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(0)


@asynccontextmanager
async def fake_errands() -> AsyncIterator[tuple[FakeErrands, int]]:
    servicer = FakeErrands()  # type: ignore[abstract]
    server = grpc.aio.server()
    epb_grpc.add_ErrandsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(0)


@dataclass
class CareStack:
    """A care service on its own task queue and Temporal client, the channels
    a worker needs, and the stand-in notifications server."""

    service: RunningService
    client: Client
    task_queue: str
    channels: dict[str, grpc.aio.Channel]
    notifications: FakeNotifications
    notifications_port: int
    errands: FakeErrands

    @property
    def care(self) -> pb_grpc.CareServiceAsyncStub:
        return pb_grpc.CareServiceStub(self.channels["care"])

    def worker(self) -> Worker:
        return build_worker(self.client, self.task_queue, self.channels)


@asynccontextmanager
async def care_stack(
    settings: Settings,
    grids: RunningService,
    residents: RunningService,
    client: Client,
    task_queue: str,
) -> AsyncIterator[CareStack]:
    async with fake_errands() as (errands, errands_port):
        service = await _care_service(
            settings, grids, residents, client, task_queue, errands_port
        )
        async with fake_notifications() as (notifications, port):
            channels = {
                "care": grpc.aio.insecure_channel(f"127.0.0.1:{service.port}"),
                "grids": grpc.aio.insecure_channel(f"127.0.0.1:{grids.port}"),
                "notifications": grpc.aio.insecure_channel(f"127.0.0.1:{port}"),
            }
            try:
                yield CareStack(
                    service, client, task_queue, channels, notifications, port, errands
                )
            finally:
                for channel in channels.values():
                    await channel.close()
                await service.stop(grace=1)


async def _care_service(
    settings: Settings,
    grids: RunningService,
    residents: RunningService,
    client: Client,
    task_queue: str,
    errands_port: int,
) -> RunningService:
    addresses = {
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents.port}",
        "CLOUDARK_ERRANDS_ADDRESS": f"127.0.0.1:{errands_port}",
    }
    saved = {key: os.environ.get(key) for key in addresses}
    os.environ.update(addresses)
    try:
        own = dataclasses.replace(settings, temporal_task_queue=task_queue)
        return await start_service(CARE, own, port=0, temporal=client)
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


@dataclass
class Squad:
    id: str
    village_id: str
    member_ids: list[str]
    recipient_ids: list[str] = field(default_factory=list)


@dataclass
class Village:
    area: gpb.Area
    grid: gpb.Area
    micro_grid: gpb.Area
    squads: list[Squad] = field(default_factory=list)


@dataclass
class Town:
    city: gpb.Area
    town: gpb.Area
    villages: list[Village]

    @property
    def squads(self) -> list[Squad]:
        return [s for v in self.villages for s in v.squads]


async def new_area(grids: grpc.aio.Channel, kind: int, parent: str) -> gpb.Area:
    reply = await gpb_grpc.GridsServiceStub(
        grids
    ).CreateArea(
        gpb.CreateAreaRequest(
            kind=kind,  # type: ignore[arg-type]
            name=f"area {uuid.uuid4().hex[:8]}",
            parent_id=parent,
        ),
        metadata=AS_OPERATOR,
    )
    return reply.area


async def member(grids: grpc.aio.Channel, squad_id: str, on_duty: bool = True) -> str:
    availability = spb.AVAILABILITY_ON_DUTY if on_duty else spb.AVAILABILITY_OFF_DUTY
    reply = await spb_grpc.StaffServiceStub(grids).RegisterHelper(
        spb.RegisterHelperRequest(
            kind=spb.HELPER_KIND_SQUAD_MEMBER,
            person_id=f"person-{uuid.uuid4().hex[:8]}",
            squad_id=squad_id,
            member_kind=spb.MEMBER_KIND_PARTY_MEMBER,
            availability=availability,
        ),
        metadata=AS_OPERATOR,
    )
    return reply.helper.id


async def squad(grids: grpc.aio.Channel, village_id: str, members: int = 2) -> Squad:
    reply = await spb_grpc.StaffServiceStub(grids).CreateSquad(
        spb.CreateSquadRequest(village_id=village_id, name=f"Squad {uuid.uuid4().hex}"),
        metadata=AS_OPERATOR,
    )
    member_ids = [await member(grids, reply.squad.id) for _ in range(members)]
    return Squad(reply.squad.id, village_id, member_ids)


async def recipient(
    residents: grpc.aio.Channel, micro_grid: gpb.Area, reason: int = ALONE
) -> str:
    """A resident on the key service recipient roster."""
    stub = rpb_grpc.ResidentsServiceStub(residents)
    home = await household(stub, micro_grid)
    person = await resident(stub, home.id)
    await stub.SetCareProfile(
        rpb.SetCareProfileRequest(
            resident_id=person.id,
            care_profile=rpb.CareProfile(
                reasons=[reason],  # type: ignore[list-item]
                needs=[rpb.CARE_NEED_HOME_VISITS],
            ),
        ),
        metadata=AS_OPERATOR,
    )
    return person.id


async def village(grids: grpc.aio.Channel, town_id: str) -> Village:
    area = await new_area(grids, gpb.AREA_KIND_VILLAGE, town_id)
    grid = await new_area(grids, gpb.AREA_KIND_GRID, area.id)
    micro_grid = await new_area(grids, gpb.AREA_KIND_MICRO_GRID, grid.id)
    return Village(area, grid, micro_grid)


async def town(
    grids: grpc.aio.Channel,
    residents: grpc.aio.Channel,
    care: pb_grpc.CareServiceAsyncStub,
    *,
    villages: int = 2,
    squads: int = 1,
) -> Town:
    """A fresh town; each squad serves one recipient living alone and one not."""
    city = await new_area(grids, gpb.AREA_KIND_CITY, "")
    town_area = await new_area(grids, gpb.AREA_KIND_TOWN, city.id)
    made = Town(city, town_area, [])
    for _ in range(villages):
        place = await village(grids, town_area.id)
        for _ in range(squads):
            team = await squad(grids, place.area.id)
            for reason in (ALONE, ILL):
                person = await recipient(residents, place.micro_grid, reason)
                await assign(care, person, team, team.member_ids[0])
                team.recipient_ids.append(person)
            place.squads.append(team)
        made.villages.append(place)
    return made


async def assign(
    care: pb_grpc.CareServiceAsyncStub, recipient_id: str, team: Squad, member_id: str
) -> pb.CarePlan:
    reply = await care.AssignRecipient(
        pb.AssignRecipientRequest(
            recipient_id=recipient_id, squad_id=team.id, member_id=member_id
        ),
        metadata=AS_OPERATOR,
    )
    return reply.plan
