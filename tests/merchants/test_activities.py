"""Each saga step, run twice with its request_id as a retried activity would,
against the real services: it acts once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from temporalio.testing import ActivityEnvironment

from services.common.server import RunningService
from tests.merchants.support import (
    AS_OPERATOR,
    Stubs,
    hold_postings,
    offer,
    place,
    points_of,
    resident_with_points,
    shop,
    stubs,
)
from workflows.redemption.activities import (
    HoldPointsInput,
    RedemptionActivities,
    ReserveStockInput,
    SettleHoldInput,
    SettleRedemptionInput,
)


@pytest.fixture
async def api(
    merchants_service: RunningService, residents_channel: grpc.aio.Channel
) -> AsyncIterator[Stubs]:
    both = stubs(merchants_service, residents_channel)
    yield both
    await both.close()


async def test_every_step_repeated_with_its_request_id_acts_once(
    api: Stubs,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    residents_service: RunningService,
) -> None:
    town = await place(grids_channel)
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    soap = await offer(api.merchants, supermarket.id, title="Soap", points=50, stock=3)
    steps = RedemptionActivities(residents_channel, api.channel)
    env = ActivityEnvironment()
    key = f"redemption-{uuid.uuid4()}/run"
    redemption_id = str(uuid.uuid4())

    holds = [
        await env.run(
            steps.hold_points,
            HoldPointsInput(buyer.id, supermarket.id, 50, f"{key}/hold"),
        )
        for _ in range(2)
    ]
    reserve = ReserveStockInput(
        redemption_id,
        soap.id,
        buyer.id,
        holds[0].hold_id,
        50,
        datetime.now(UTC) + timedelta(minutes=15),
        f"{key}/reserve",
    )
    for _ in range(2):
        await env.run(steps.reserve_stock, reserve)
        await env.run(
            steps.commit_hold, SettleHoldInput(holds[0].hold_id, f"{key}/commit")
        )
        await env.run(
            steps.settle_redemption,
            SettleRedemptionInput(redemption_id, "committed", "", f"{key}/settle"),
        )

    stock = await api.merchants.GetOffer(
        pb.GetOfferRequest(id=soap.id), metadata=AS_OPERATOR
    )
    seen = await api.merchants.GetRedemption(
        pb.GetRedemptionRequest(id=redemption_id), metadata=AS_OPERATOR
    )
    assert holds[0] == holds[1]
    assert stock.offer.stock == 2
    assert seen.redemption.state == pb.REDEMPTION_STATE_COMMITTED
    assert await hold_postings(residents_service, holds[0].hold_id) == [3, 4]
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, buyer.id) == 10
    assert (
        await points_of(api.residents, rpb.ACCOUNT_KIND_MERCHANT, supermarket.id) == 50
    )
