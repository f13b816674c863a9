"""The e2e tests' hands: a gateway client with tokens, and gRPC stubs for
what has no HTTP route yet (registering people, staff and merchants)."""

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.grids.v1 import staff_pb2_grpc as staff_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc

from services.common.identity import Caller, Role
from services.gateway.tokens import Tokens
from services.residents.pii import national_id_check_char
from tests.e2e.conftest import SECRET

TOKENS = Tokens(SECRET, 900, 3600)
OPERATOR = Caller(subject="e2e-operator", role=Role.OPERATOR)
SYSTEM = Caller(subject="e2e-system", role=Role.SYSTEM)
# The smallest JPEG the gateway takes: its signature, a little body, its end.
TINY_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
)
_rng = random.Random()


def bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(caller).access_token}"}


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, pause: float = 0.25
) -> Any:
    """Polls check until it answers something true; fails after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"the condition never held; last answer {found!r}")
        await asyncio.sleep(pause)


async def first_child(http: httpx.AsyncClient, parent_id: str = "") -> dict[str, Any]:
    """The first area under parent_id (the cities when empty), over HTTP."""
    params = {"parent_id": parent_id} if parent_id else {}
    areas = ok(await http.get("/v1/areas", params=params, headers=bearer(OPERATOR)))
    assert areas["areas"], f"no area under {parent_id!r}"
    found: dict[str, Any] = areas["areas"][0]
    return found


async def create_area(http: httpx.AsyncClient, kind: str, parent_id: str) -> str:
    created = ok(
        await http.post(
            "/v1/areas",
            json={
                "kind": kind,
                "name": f"e2e {uuid.uuid4().hex[:6]}",
                "parent_id": parent_id,
            },
            headers=bearer(OPERATOR),
        )
    )
    area_id: str = created["area"]["id"]
    return area_id


def national_id() -> str:
    year = _rng.randrange(1940, 2005)
    body = f"330902{year}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}"
    body += f"{_rng.randrange(1000):03d}"
    return body + national_id_check_char(body)


async def resident(
    channel: grpc.aio.Channel,
    micro_grid_id: str,
    *,
    key_service: bool = False,
    channels: tuple[int, ...] = (),
) -> str:
    """A household in the micro-grid with one resident; the resident's id."""
    stub = rpb_grpc.ResidentsServiceStub(channel)
    home = await stub.RegisterHousehold(
        rpb.RegisterHouseholdRequest(
            micro_grid_id=micro_grid_id, address=f"No. {_rng.randrange(1, 999)} Road"
        ),
        metadata=OPERATOR.metadata(),
    )
    person = await stub.RegisterResident(
        rpb.RegisterResidentRequest(
            household_id=home.household.id,
            name="王海",
            national_id=national_id(),
            phone=f"13{_rng.randrange(10**9):09d}",
            contact=rpb.ContactPreferences(channels=channels),  # type: ignore[arg-type]
        ),
        metadata=OPERATOR.metadata(),
    )
    if key_service:
        await stub.SetCareProfile(
            rpb.SetCareProfileRequest(
                resident_id=person.resident.id,
                care_profile=rpb.CareProfile(reasons=[rpb.CARE_REASON_ELDERLY_ALONE]),
            ),
            metadata=OPERATOR.metadata(),
        )
    resident_id: str = person.resident.id
    return resident_id


async def helper(
    channel: grpc.aio.Channel,
    kind: int,
    area_ids: list[str],
    person_id: str = "",
) -> staff_pb.Helper:
    """A helper on duty, registered through the staff API."""
    reply = await staff_grpc.StaffServiceStub(
        channel
    ).RegisterHelper(
        staff_pb.RegisterHelperRequest(
            kind=kind,  # type: ignore[arg-type]
            person_id=person_id or f"staff-{uuid.uuid4().hex[:8]}",
            area_ids=area_ids,
            availability=staff_pb.AVAILABILITY_ON_DUTY,
        ),
        metadata=OPERATOR.metadata(),
    )
    return reply.helper


async def points(channel: grpc.aio.Channel, resident_id: str) -> int:
    reply = await rpb_grpc.ResidentsServiceStub(channel).GetBalance(
        rpb.GetBalanceRequest(
            account=rpb.AccountRef(kind=rpb.ACCOUNT_KIND_RESIDENT, owner_id=resident_id)
        ),
        metadata=OPERATOR.metadata(),
    )
    value: int = reply.points
    return value


async def statement(channel: grpc.aio.Channel, resident_id: str) -> list[int]:
    """The points of each entry of a resident's statement."""
    reply = await rpb_grpc.ResidentsServiceStub(channel).ListStatement(
        rpb.ListStatementRequest(
            account=rpb.AccountRef(
                kind=rpb.ACCOUNT_KIND_RESIDENT, owner_id=resident_id
            ),
            page_size=100,
        ),
        metadata=OPERATOR.metadata(),
    )
    return [entry.points for entry in reply.entries]


async def inbox(http: httpx.AsyncClient, owner: Caller) -> list[dict[str, Any]]:
    reply = ok(await http.get(f"/v1/inbox/{owner.subject}", headers=bearer(owner)))
    messages: list[dict[str, Any]] = reply.get("messages", [])
    return messages
