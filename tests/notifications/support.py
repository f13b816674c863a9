"""Building blocks for the notifications tests: people with preferences."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import staff_pb2 as spb
from cloudark.grids.v1 import staff_pb2_grpc as spb_grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc

from services.common.identity import Caller, Role
from tests.residents.support import AS_OPERATOR, household, national_id, phone
from workflows.notifications.shared import notification_workflow_id
from workflows.notifications.workflows import NotificationResult

SENDER = Caller(subject="cadre-story-8", role=Role.CADRE)
SYSTEM = Caller(subject="errand-workflow", role=Role.SYSTEM)


async def person(
    residents: grpc.aio.Channel,
    micro_grid: gpb.Area,
    channels: Sequence[int],
    *,
    language: int = rpb.LANGUAGE_ZH,
    key_service: bool = False,
) -> rpb.Resident:
    """A resident of the micro-grid with the given channel preference."""
    stub = rpb_grpc.ResidentsServiceStub(residents)
    home = await household(stub, micro_grid)
    reply = await stub.RegisterResident(
        rpb.RegisterResidentRequest(
            household_id=home.id,
            name="李秀英",
            national_id=national_id(),
            phone=phone(),
            contact=rpb.ContactPreferences(
                channels=channels,  # type: ignore[arg-type]
                language=language,  # type: ignore[arg-type]
            ),
        ),
        metadata=AS_OPERATOR,
    )
    if key_service:
        await stub.SetCareProfile(
            rpb.SetCareProfileRequest(
                resident_id=reply.resident.id,
                care_profile=rpb.CareProfile(reasons=[rpb.CARE_REASON_ELDERLY_ALONE]),
            ),
            metadata=AS_OPERATOR,
        )
    return reply.resident


async def grid_worker(grids: grpc.aio.Channel, grid: gpb.Area) -> spb.Helper:
    stub = spb_grpc.StaffServiceStub(grids)
    reply = await stub.RegisterHelper(
        spb.RegisterHelperRequest(
            kind=spb.HELPER_KIND_GRID_WORKER,
            person_id=f"staff-{time.monotonic_ns()}",
            area_ids=[grid.id],
        ),
        metadata=AS_OPERATOR,
    )
    return reply.helper


async def finished(env: Any, notification_id: str, purpose: int = 1) -> Any:
    """Waits for a notification workflow and returns its result."""
    handle = env.client.get_workflow_handle(
        notification_workflow_id(notification_id, purpose),
        result_type=NotificationResult,
    )
    return await asyncio.wait_for(handle.result(), timeout=60)


async def all_deliveries(
    stub: Any, notification_id: str, caller: Caller = SENDER
) -> list[pb.Delivery]:
    found: list[pb.Delivery] = []
    token = ""
    while True:
        reply = await stub.ListDeliveries(
            pb.ListDeliveriesRequest(
                notification_id=notification_id, page_size=1000, page_token=token
            ),
            metadata=caller.metadata(),
        )
        found += reply.deliveries
        token = reply.next_page_token
        if not token:
            return found
