"""Redemptions through the gRPC API of real servers: the merchants service
starts RedemptionWorkflow on a real Temporal dev server, whose activities
hold and pay points through the real residents service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from google.rpc import error_details_pb2
from temporalio.testing import WorkflowEnvironment

from services.common.server import RunningService
from tests.helpers import call_error, rich_status
from tests.histories import record
from tests.merchants.support import (
    AS_OPERATOR,
    Place,
    Stubs,
    as_merchant,
    as_resident,
    assert_ledger_balanced,
    hold_postings,
    holds_of,
    offer,
    place,
    points_of,
    resident_with_points,
    shop,
    stubs,
)


@pytest.fixture
async def api(
    merchants_service: RunningService, residents_channel: grpc.aio.Channel
) -> AsyncIterator[Stubs]:
    both = stubs(merchants_service, residents_channel)
    yield both
    await both.close()


@pytest.fixture
async def town(grids_channel: grpc.aio.Channel) -> Place:
    return await place(grids_channel)


def precondition_kind(error: grpc.aio.AioRpcError) -> str:
    for detail in rich_status(error).details:
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            return failure.violations[0].type
    raise AssertionError("no PreconditionFailure detail")


async def test_story_6_120_points_become_a_toothpaste_at_the_village_supermarket(
    api: Stubs,
    town: Place,
    temporal_env: WorkflowEnvironment,
    residents_service: RunningService,
) -> None:
    old_man = await resident_with_points(api.residents, town, patrols=3)
    supermarket = await shop(api.merchants, town.village.id)
    toothpaste = await offer(api.merchants, supermarket.id, points=120, stock=5)

    started = await api.merchants.RedeemOffer(
        pb.RedeemOfferRequest(
            offer_id=toothpaste.id, resident_id=old_man.id, request_id="till-1"
        ),
        metadata=as_resident(old_man.id),
    )
    held = await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, old_man.id)
    confirmed = await api.merchants.ConfirmRedemption(
        pb.ConfirmRedemptionRequest(id=started.redemption.id),
        metadata=as_merchant(supermarket.id),
    )
    statement = await api.merchants.GetStatement(
        pb.GetStatementRequest(merchant_id=supermarket.id, month=_city_month()),
        metadata=as_merchant(supermarket.id),
    )
    seen_by_resident = await api.merchants.ListRedemptions(
        pb.ListRedemptionsRequest(resident_id=old_man.id),
        metadata=as_resident(old_man.id),
    )
    stock = await api.merchants.GetOffer(
        pb.GetOfferRequest(id=toothpaste.id), metadata=as_resident(old_man.id)
    )

    handle = temporal_env.client.get_workflow_handle(
        f"redemption-{started.redemption.id}"
    )
    await record(handle, "RedemptionWorkflow", "story-6-confirmed")
    assert started.redemption.state == pb.REDEMPTION_STATE_PENDING
    assert held == 0
    assert confirmed.redemption.state == pb.REDEMPTION_STATE_COMMITTED
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, old_man.id) == 0
    assert (
        await points_of(api.residents, rpb.ACCOUNT_KIND_MERCHANT, supermarket.id) == 120
    )
    assert (statement.redemptions, statement.points, statement.value_fen) == (
        1,
        120,
        1200,
    )
    assert [(line.title, line.points) for line in statement.lines] == [
        ("Toothpaste", 120)
    ]
    assert [r.state for r in seen_by_resident.redemptions] == [
        pb.REDEMPTION_STATE_COMMITTED
    ]
    assert stock.offer.stock == 4
    assert await hold_postings(residents_service, started.redemption.hold_id) == [3, 4]
    await assert_ledger_balanced(residents_service)


def _city_month() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
