"""Building blocks for the merchants tests: a village, a shop, an offer, a
resident with points."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.merchants.v1 import merchants_pb2_grpc as pb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc

from services.common.identity import Caller, Role
from services.common.server import RunningService
from tests.residents.support import (
    AS_OPERATOR,
    SYSTEM,
    Place,
    as_resident,
    household,
    place,
    resident,
)

__all__ = ["AS_OPERATOR", "Place", "as_resident", "place"]

AS_SYSTEM = SYSTEM.metadata()


def as_merchant(merchant_id: str) -> tuple[tuple[str, str], ...]:
    return Caller(subject=merchant_id, role=Role.MERCHANT).metadata()


@dataclass
class Stubs:
    merchants: pb_grpc.MerchantsServiceAsyncStub
    residents: rpb_grpc.ResidentsServiceAsyncStub
    channel: grpc.aio.Channel

    async def close(self) -> None:
        await self.channel.close()


def stubs(service: RunningService, residents_channel: grpc.aio.Channel) -> Stubs:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    return Stubs(
        pb_grpc.MerchantsServiceStub(channel),
        rpb_grpc.ResidentsServiceStub(residents_channel),
        channel,
    )


async def shop(
    stub: pb_grpc.MerchantsServiceAsyncStub,
    village: str,
    *,
    name: str = "Village Supermarket",
    legal_form: int = pb.LEGAL_FORM_COMPANY,
    verify: bool = True,
    phone: str = "13800138000",
    category: int = pb.CATEGORY_SUPERMARKET,
) -> pb.Merchant:
    reply = await stub.RegisterMerchant(
        pb.RegisterMerchantRequest(
            village_id=village,
            name=name,
            category=category,  # type: ignore[arg-type]
            legal_form=legal_form,  # type: ignore[arg-type]
            accepts_points=True,
            opening_hours=pb.OpeningHours(opens="07:30", closes="21:00"),
            contact_phone=phone,
        ),
        metadata=AS_OPERATOR,
    )
    if verify:
        await stub.VerifyMerchant(
            pb.VerifyMerchantRequest(id=reply.merchant.id), metadata=AS_OPERATOR
        )
    return reply.merchant


async def offer(
    stub: pb_grpc.MerchantsServiceAsyncStub,
    merchant_id: str,
    *,
    title: str = "Toothpaste",
    points: int = 120,
    stock: int = 10,
) -> pb.Offer:
    reply = await stub.CreateOffer(
        pb.CreateOfferRequest(
            merchant_id=merchant_id, title=title, points=points, stock=stock
        ),
        metadata=as_merchant(merchant_id),
    )
    return reply.offer


async def resident_with_points(
    stub: rpb_grpc.ResidentsServiceAsyncStub, town: Place, *, patrols: int = 0
) -> rpb.Resident:
    """A resident who has joined two anti-fraud talks (30 each) and the given
    number of volunteer patrols (20 each)."""
    member = await resident(stub, (await household(stub, town.micro_grid)).id)
    activities = [rpb.ACTIVITY_ANTI_FRAUD_TALK] * 2
    activities += [rpb.ACTIVITY_VOLUNTEER_PATROL] * patrols
    for activity in activities:
        await stub.EarnPoints(
            rpb.EarnPointsRequest(resident_id=member.id, activity=activity),
            metadata=AS_SYSTEM,
        )
    return member


async def points_of(
    stub: rpb_grpc.ResidentsServiceAsyncStub, kind: int, owner: str
) -> int:
    reply = await stub.GetBalance(
        rpb.GetBalanceRequest(account=rpb.AccountRef(kind=kind, owner_id=owner)),  # type: ignore[arg-type]
        metadata=AS_OPERATOR,
    )
    return reply.points


async def hold_postings(residents: RunningService, hold_id: str) -> list[int]:
    """The posting kinds (3 hold, 4 commit, 5 release) of one hold, in order."""
    async with residents.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind FROM postings WHERE hold_id = $1 ORDER BY create_time, kind",
            uuid.UUID(hold_id),
        )
    return [r["kind"] for r in rows]


async def holds_of(
    residents: RunningService, resident_id: str
) -> list[tuple[int, int]]:
    """(points, state) of every hold on a resident's account."""
    async with residents.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT h.points, h.state FROM holds h"
            " JOIN accounts a ON a.id = h.resident_account"
            " WHERE a.owner_id = $1 ORDER BY h.create_time",
            uuid.UUID(resident_id),
        )
    return [(r["points"], r["state"]) for r in rows]


async def assert_ledger_balanced(residents: RunningService) -> None:
    """Every posting is two entries summing to zero, and so is the ledger."""
    async with residents.pool.acquire() as conn:
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT posting_id FROM entries GROUP BY posting_id"
            " HAVING count(*) <> 2 OR sum(points) <> 0) AS bad"
        )
        total = await conn.fetchval("SELECT coalesce(sum(points), 0) FROM entries")
    assert (unbalanced, total) == (0, 0)
