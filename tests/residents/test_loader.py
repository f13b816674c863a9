"""The COPY loader on a small city: the same code as the full-size load."""

from __future__ import annotations

import uuid

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.server import RunningService
from services.residents import pii
from services.residents.loader import (
    STREET_EARNED,
    STREET_SPENT,
    Population,
    load,
    micro_grids_of_city,
    street_totals,
)
from services.residents.pii import Keyring
from tests.residents.support import AS_OPERATOR
from tests.residents.test_points import assert_ledger_balanced

SMALL = Population(
    residents=800, key_service_recipients=130, street_participations=2_000
)


async def small_city(grids: grpc.aio.Channel) -> uuid.UUID:
    """A city of two towns, each with one village of two grids of two micro-grids."""
    stub = gpb_grpc.GridsServiceStub(grids)

    async def create(kind: int, parent: str, name: str) -> str:
        reply = await stub.CreateArea(
            gpb.CreateAreaRequest(kind=kind, name=name, parent_id=parent),  # type: ignore[arg-type]
            metadata=AS_OPERATOR,
        )
        return reply.area.id

    city = await create(gpb.AREA_KIND_CITY, "", f"city {uuid.uuid4().hex[:8]}")
    for t in range(2):
        town = await create(gpb.AREA_KIND_TOWN, city, f"Town {t}")
        village = await create(gpb.AREA_KIND_VILLAGE, town, "Village")
        for g in range(2):
            grid = await create(gpb.AREA_KIND_GRID, village, f"Grid {g}")
            for m in range(2):
                await create(gpb.AREA_KIND_MICRO_GRID, grid, f"Micro-grid {m}")
    return uuid.UUID(city)


async def test_small_city_loads_with_the_seed_street_totals_exactly(
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    residents_service: RunningService,
) -> None:
    city_id = await small_city(grids_channel)
    pool = residents_service.pool
    async with pool.acquire() as conn:
        micro_grids = await micro_grids_of_city(conn, city_id)

    result = await load(pool, Keyring.from_env({}), micro_grids, SMALL, seed=7)

    assert result.street_id is not None
    async with pool.acquire() as conn:
        per_micro_grid = await conn.fetch(
            "SELECT count(*) AS n FROM households WHERE micro_grid_id = ANY($1::uuid[])"
            " GROUP BY micro_grid_id",
            [m.id for m in micro_grids],
        )
        residents = await conn.fetchval(
            "SELECT count(*) FROM residents WHERE area_ids[1] = $1", city_id
        )
        recipients_by_village = await conn.fetch(
            "SELECT area_ids[3] AS village, count(*) AS n FROM residents"
            " WHERE area_ids[1] = $1 AND care_update_time IS NOT NULL"
            " GROUP BY area_ids[3]",
            city_id,
        )
        totals = await street_totals(conn, result.street_id)
        sample = await conn.fetchval(
            "SELECT id FROM residents WHERE area_ids[1] = $1 LIMIT 1", city_id
        )
    assert len(per_micro_grid) == len(micro_grids) == 8
    assert all(50 <= r["n"] <= 80 for r in per_micro_grid)
    assert residents == SMALL.residents
    assert sum(r["n"] for r in recipients_by_village) == SMALL.key_service_recipients
    assert len(recipients_by_village) == 2
    assert totals == (STREET_EARNED, STREET_SPENT)
    await assert_ledger_balanced(residents_service)

    stub = pb_grpc.ResidentsServiceStub(residents_channel)
    reply = await stub.GetResident(
        pb.GetResidentRequest(id=str(sample)), metadata=AS_OPERATOR
    )
    assert pii.normalise_national_id(reply.resident.national_id) is not None
    assert pii.normalise_phone(reply.resident.phone) is not None

    with pytest.raises(RuntimeError, match="already have households"):
        await load(pool, Keyring.from_env({}), micro_grids, SMALL, seed=7)
