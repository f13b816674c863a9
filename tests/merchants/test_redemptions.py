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
from tests.helpers import bad_fields, call_error, rich_status
from tests.histories import record
from tests.merchants.support import (
    AS_OPERATOR,
    AS_SYSTEM,
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
from workflows.search_attributes import TOWN_ID, VILLAGE_ID


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
            kind: str = failure.violations[0].type
            return kind
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
    at_the_till = await api.merchants.FindRedemption(
        pb.FindRedemptionRequest(
            merchant_id=supermarket.id, code=started.redemption.code
        ),
        metadata=as_merchant(supermarket.id),
    )
    confirmed = await api.merchants.ConfirmRedemption(
        pb.ConfirmRedemptionRequest(id=at_the_till.redemption.id),
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
    described = await handle.describe()
    found = described.typed_search_attributes
    assert (found.get(TOWN_ID), found.get(VILLAGE_ID)) == (
        town.town.id,
        town.village.id,
    )
    assert started.redemption.state == pb.REDEMPTION_STATE_PENDING
    assert at_the_till.redemption.id == started.redemption.id
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


async def test_two_tills_redeem_the_last_item_one_wins_the_other_hold_is_released(
    api: Stubs, town: Place, residents_service: RunningService
) -> None:
    first = await resident_with_points(api.residents, town)
    second = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    last = await offer(api.merchants, supermarket.id, points=60, stock=1)

    async def till(who: rpb.Resident) -> pb.Redemption | grpc.aio.AioRpcError:
        try:
            reply = await api.merchants.RedeemOffer(
                pb.RedeemOfferRequest(offer_id=last.id, resident_id=who.id),
                metadata=as_resident(who.id),
            )
        except grpc.aio.AioRpcError as error:
            return error
        return reply.redemption

    outcomes = await asyncio.gather(till(first), till(second))

    won = [o for o in outcomes if isinstance(o, pb.Redemption)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert len(lost) == 1
    assert lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_kind(lost[0]) == "STOCK"
    loser = second if won[0].resident_id == first.id else first
    assert await holds_of(residents_service, loser.id) == [(60, 3)]
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, loser.id) == 60
    assert await holds_of(residents_service, won[0].resident_id) == [(60, 1)]
    sold_out = await api.merchants.GetOffer(
        pb.GetOfferRequest(id=last.id), metadata=AS_OPERATOR
    )
    assert sold_out.offer.stock == 0
    await assert_ledger_balanced(residents_service)


async def test_a_retried_redemption_with_its_request_id_holds_once(
    api: Stubs, town: Place, residents_service: RunningService
) -> None:
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    soap = await offer(api.merchants, supermarket.id, title="Soap", points=50)
    request = pb.RedeemOfferRequest(
        offer_id=soap.id, resident_id=buyer.id, request_id="till-7/42"
    )

    replies = [
        await api.merchants.RedeemOffer(request, metadata=as_resident(buyer.id))
        for _ in range(3)
    ]
    other = pb.RedeemOfferRequest(
        offer_id=str(uuid.uuid4()), resident_id=buyer.id, request_id="till-7/42"
    )
    reused = await call_error(
        api.merchants.RedeemOffer(other, metadata=as_resident(buyer.id))
    )

    assert len({r.redemption.id for r in replies}) == 1
    assert await holds_of(residents_service, buyer.id) == [(50, 1)]
    assert reused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(reused) == ["request_id"]


@pytest.mark.parametrize("decision", ["refuse", "cancel"])
async def test_a_refused_or_cancelled_redemption_gives_points_and_item_back(
    api: Stubs, town: Place, residents_service: RunningService, decision: str
) -> None:
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    rice = await offer(api.merchants, supermarket.id, title="Rice", points=60, stock=1)
    started = await api.merchants.RedeemOffer(
        pb.RedeemOfferRequest(offer_id=rice.id, resident_id=buyer.id),
        metadata=as_resident(buyer.id),
    )
    redemption_id = started.redemption.id

    reply: pb.RefuseRedemptionResponse | pb.CancelRedemptionResponse
    if decision == "refuse":
        reply = await api.merchants.RefuseRedemption(
            pb.RefuseRedemptionRequest(id=redemption_id),
            metadata=as_merchant(supermarket.id),
        )
        reason = pb.RELEASE_REASON_REFUSED
    else:
        reply = await api.merchants.CancelRedemption(
            pb.CancelRedemptionRequest(id=redemption_id),
            metadata=as_resident(buyer.id),
        )
        reason = pb.RELEASE_REASON_CANCELLED
    late = await call_error(
        api.merchants.ConfirmRedemption(
            pb.ConfirmRedemptionRequest(id=redemption_id),
            metadata=as_merchant(supermarket.id),
        )
    )
    seen_by_merchant = await api.merchants.ListRedemptions(
        pb.ListRedemptionsRequest(merchant_id=supermarket.id),
        metadata=as_merchant(supermarket.id),
    )

    assert reply.redemption.state == pb.REDEMPTION_STATE_RELEASED
    assert reply.redemption.release_reason == reason
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_kind(late) == "RELEASED"
    assert [r.release_reason for r in seen_by_merchant.redemptions] == [reason]
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, buyer.id) == 60
    assert await hold_postings(residents_service, started.redemption.hold_id) == [3, 5]
    back = await api.merchants.GetOffer(
        pb.GetOfferRequest(id=rice.id), metadata=AS_OPERATOR
    )
    assert back.offer.stock == 1


async def test_only_the_redemptions_merchant_confirms_it(
    api: Stubs, town: Place
) -> None:
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    pharmacy = await shop(api.merchants, town.village.id, name="Village Pharmacy")
    soap = await offer(api.merchants, supermarket.id, title="Soap", points=50)
    started = await api.merchants.RedeemOffer(
        pb.RedeemOfferRequest(offer_id=soap.id, resident_id=buyer.id),
        metadata=as_resident(buyer.id),
    )
    confirm = pb.ConfirmRedemptionRequest(id=started.redemption.id)

    by_other_shop = await call_error(
        api.merchants.ConfirmRedemption(confirm, metadata=as_merchant(pharmacy.id))
    )
    by_resident = await call_error(
        api.merchants.ConfirmRedemption(confirm, metadata=as_resident(buyer.id))
    )
    peeking = await call_error(
        api.merchants.GetRedemption(
            pb.GetRedemptionRequest(id=started.redemption.id),
            metadata=as_merchant(pharmacy.id),
        )
    )
    wrong_code = "000000" if started.redemption.code != "000000" else "000001"
    not_shown = await call_error(
        api.merchants.FindRedemption(
            pb.FindRedemptionRequest(merchant_id=supermarket.id, code=wrong_code),
            metadata=as_merchant(supermarket.id),
        )
    )
    other_till = await call_error(
        api.merchants.FindRedemption(
            pb.FindRedemptionRequest(
                merchant_id=supermarket.id, code=started.redemption.code
            ),
            metadata=as_merchant(pharmacy.id),
        )
    )
    still = await api.merchants.GetRedemption(
        pb.GetRedemptionRequest(id=started.redemption.id),
        metadata=as_resident(buyer.id),
    )

    assert by_other_shop.code() == grpc.StatusCode.PERMISSION_DENIED
    assert by_resident.code() == grpc.StatusCode.PERMISSION_DENIED
    assert peeking.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not_shown.code() == grpc.StatusCode.NOT_FOUND
    assert other_till.code() == grpc.StatusCode.PERMISSION_DENIED
    assert still.redemption.state == pb.REDEMPTION_STATE_PENDING
    await api.merchants.CancelRedemption(
        pb.CancelRedemptionRequest(id=started.redemption.id), metadata=AS_OPERATOR
    )


async def test_bad_redemptions_get_precise_errors_and_move_no_points(
    api: Stubs, town: Place, residents_service: RunningService
) -> None:
    poor = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    closed = await shop(api.merchants, town.village.id, name="Closed Shop")
    toothpaste = await offer(api.merchants, supermarket.id, points=120)
    blocked = await offer(api.merchants, closed.id, points=10)
    await api.merchants.SuspendMerchant(
        pb.SuspendMerchantRequest(id=closed.id), metadata=AS_OPERATOR
    )
    me = as_resident(poor.id)

    unknown = await call_error(
        api.merchants.RedeemOffer(
            pb.RedeemOfferRequest(offer_id=str(uuid.uuid4()), resident_id=poor.id),
            metadata=me,
        )
    )
    suspended = await call_error(
        api.merchants.RedeemOffer(
            pb.RedeemOfferRequest(offer_id=blocked.id, resident_id=poor.id),
            metadata=me,
        )
    )
    short = await call_error(
        api.merchants.RedeemOffer(
            pb.RedeemOfferRequest(offer_id=toothpaste.id, resident_id=poor.id),
            metadata=me,
        )
    )
    malformed = await call_error(
        api.merchants.RedeemOffer(
            pb.RedeemOfferRequest(offer_id="toothpaste", resident_id=""), metadata=me
        )
    )
    for_someone_else = await call_error(
        api.merchants.RedeemOffer(
            pb.RedeemOfferRequest(offer_id=toothpaste.id, resident_id=poor.id),
            metadata=as_resident(str(uuid.uuid4())),
        )
    )

    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert suspended.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_kind(suspended) == "SUSPENDED"
    assert short.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_kind(short) == "BALANCE"
    assert "points" in (short.details() or "")
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(malformed) == ["offer_id", "resident_id"]
    assert for_someone_else.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, poor.id) == 60
    assert await holds_of(residents_service, poor.id) == []
    nothing = await api.merchants.ListRedemptions(
        pb.ListRedemptionsRequest(resident_id=poor.id), metadata=me
    )
    assert list(nothing.redemptions) == []


async def test_a_refused_redemption_is_sent_again_with_its_request_id_once_put_right(
    api: Stubs, town: Place, residents_service: RunningService
) -> None:
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    toothpaste = await offer(api.merchants, supermarket.id, points=120)
    request = pb.RedeemOfferRequest(
        offer_id=toothpaste.id, resident_id=buyer.id, request_id="till-3/9"
    )

    short = await call_error(
        api.merchants.RedeemOffer(request, metadata=as_resident(buyer.id))
    )
    for _ in range(3):
        await api.residents.EarnPoints(
            rpb.EarnPointsRequest(
                resident_id=buyer.id, activity=rpb.ACTIVITY_VOLUNTEER_PATROL
            ),
            metadata=AS_SYSTEM,
        )
    again = await api.merchants.RedeemOffer(request, metadata=as_resident(buyer.id))

    assert short.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.redemption.state == pb.REDEMPTION_STATE_PENDING
    assert await holds_of(residents_service, buyer.id) == [(120, 1)]


async def test_a_hold_released_behind_the_sagas_back_ends_the_redemption_released(
    api: Stubs, town: Place, residents_service: RunningService
) -> None:
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    soap = await offer(api.merchants, supermarket.id, title="Soap", points=50)
    started = await api.merchants.RedeemOffer(
        pb.RedeemOfferRequest(offer_id=soap.id, resident_id=buyer.id),
        metadata=as_resident(buyer.id),
    )
    await api.residents.ReleaseHold(
        rpb.ReleaseHoldRequest(hold_id=started.redemption.hold_id),
        metadata=as_resident(buyer.id),
    )

    refused = await call_error(
        api.merchants.ConfirmRedemption(
            pb.ConfirmRedemptionRequest(id=started.redemption.id),
            metadata=as_merchant(supermarket.id),
        )
    )
    seen = await api.merchants.GetRedemption(
        pb.GetRedemptionRequest(id=started.redemption.id),
        metadata=as_merchant(supermarket.id),
    )

    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert seen.redemption.state == pb.REDEMPTION_STATE_RELEASED
    assert seen.redemption.release_reason == pb.RELEASE_REASON_CANCELLED
    assert await hold_postings(residents_service, started.redemption.hold_id) == [3, 5]
    assert (
        await points_of(api.residents, rpb.ACCOUNT_KIND_MERCHANT, supermarket.id) == 0
    )
