"""Building blocks for the residents tests: areas, households, residents."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

import grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from services.residents.pii import national_id_check_char
from tests.conftest import OPERATOR

AS_OPERATOR = OPERATOR.metadata()
SYSTEM = Caller(subject="workflow-test", role=Role.SYSTEM)
_rng = random.Random()


def national_id() -> str:
    """A fresh valid resident ID number (Dinghai district, born 1940-2009)."""
    year = _rng.randrange(1940, 2010)
    body = f"330902{year}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}"
    body += f"{_rng.randrange(1000):03d}"
    return body + national_id_check_char(body)


def phone() -> str:
    # 19x numbers are left to the loader, so the two never share a phone.
    return f"1{_rng.choice('345678')}{_rng.randrange(10**9):09d}"


@dataclass
class Place:
    """A fresh city chain; its village and grid each hold two micro-grids."""

    city: gpb.Area
    town: gpb.Area
    village: gpb.Area
    grid: gpb.Area
    micro_grid: gpb.Area
    other_grid: gpb.Area
    other_micro_grid: gpb.Area


async def _area(
    stub: gpb_grpc.GridsServiceAsyncStub, kind: int, parent: gpb.Area | None
) -> gpb.Area:
    reply = await stub.CreateArea(
        gpb.CreateAreaRequest(
            kind=kind,  # type: ignore[arg-type]
            name=f"area {uuid.uuid4().hex[:8]}",
            parent_id=parent.id if parent else "",
        ),
        metadata=AS_OPERATOR,
    )
    return reply.area


async def place(grids: grpc.aio.Channel) -> Place:
    stub = gpb_grpc.GridsServiceStub(grids)
    city = await _area(stub, gpb.AREA_KIND_CITY, None)
    town = await _area(stub, gpb.AREA_KIND_TOWN, city)
    village = await _area(stub, gpb.AREA_KIND_VILLAGE, town)
    grid = await _area(stub, gpb.AREA_KIND_GRID, village)
    micro_grid = await _area(stub, gpb.AREA_KIND_MICRO_GRID, grid)
    other_grid = await _area(stub, gpb.AREA_KIND_GRID, village)
    other_micro_grid = await _area(stub, gpb.AREA_KIND_MICRO_GRID, other_grid)
    return Place(city, town, village, grid, micro_grid, other_grid, other_micro_grid)


async def household(
    stub: pb_grpc.ResidentsServiceAsyncStub, micro_grid: gpb.Area
) -> pb.Household:
    reply = await stub.RegisterHousehold(
        pb.RegisterHouseholdRequest(
            micro_grid_id=micro_grid.id, address=f"No. {_rng.randrange(1, 999)} Road"
        ),
        metadata=AS_OPERATOR,
    )
    return reply.household


async def resident(
    stub: pb_grpc.ResidentsServiceAsyncStub,
    household_id: str,
    *,
    id_number: str | None = None,
    phone_number: str | None = None,
    name: str = "王海",
) -> pb.Resident:
    reply = await stub.RegisterResident(
        pb.RegisterResidentRequest(
            household_id=household_id,
            name=name,
            national_id=id_number or national_id(),
            phone=phone_number or phone(),
        ),
        metadata=AS_OPERATOR,
    )
    return reply.resident


def as_resident(resident_id: str) -> tuple[tuple[str, str], ...]:
    return Caller(subject=resident_id, role=Role.RESIDENT).metadata()


def as_staff(role: Role, *areas: gpb.Area) -> tuple[tuple[str, str], ...]:
    return Caller(
        subject=f"{role.value}-{uuid.uuid4().hex[:6]}",
        role=role,
        area_ids=tuple(a.id for a in areas),
    ).metadata()


async def open_merchant(stub: pb_grpc.ResidentsServiceAsyncStub) -> str:
    merchant_id = str(uuid.uuid4())
    await stub.OpenMerchantAccount(
        pb.OpenMerchantAccountRequest(merchant_id=merchant_id), metadata=AS_OPERATOR
    )
    return merchant_id
