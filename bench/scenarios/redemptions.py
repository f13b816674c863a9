"""The redemption saga under load, beside a bare workflow of as many activities.

Each call is one whole redemption through the gRPC API: RedeemOffer (the
workflow starts, holds the points, reserves the item) then
ConfirmRedemption (commit and settle), IN_FLIGHT at once, each caller with a
resident of its own. The baseline runs bare workflows of the saga's four
no-op activities on the same dev server, in the same run. The ratio says
what the saga's real steps (gRPC calls, PostgreSQL transactions, updates)
cost over Temporal alone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator

from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.merchants.v1 import merchants_pb2_grpc as pb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc

from bench.baselines import bare_workflows, closed_loop, tuned_worker
from bench.collect import Collected
from bench.harness import BenchContext, Figure
from bench.scenarios.residents import _fresh_national_id
from services.common.identity import Caller, Role
from services.common.server import RunningService, ServiceDefinition
from services.grids.server import DEFINITION as GRIDS
from services.merchants.server import DEFINITION as MERCHANTS
from services.residents.server import DEFINITION as RESIDENTS
from workflows.redemption.activities import RedemptionActivities
from workflows.redemption.workflows import RedemptionWorkflow

IN_FLIGHT = 20
# hold_points, reserve_stock, commit_hold, settle_redemption.
SAGA_ACTIVITIES = 4
# Anti-fraud talks (30 points each) per resident; a redemption costs 1 point.
TALKS = 40
OPERATOR = Caller(subject="bench-operator", role=Role.OPERATOR).metadata()
SYSTEM = Caller(subject="bench-system", role=Role.SYSTEM).metadata()


class Tills:
    """Residents redeeming one offer, each call a whole confirmed redemption."""

    def __init__(
        self,
        stub: pb_grpc.MerchantsServiceAsyncStub,
        offer: pb.Offer,
        residents: list[str],
    ) -> None:
        self._stub = stub
        self._offer = offer
        self._free = list(residents)
        self._merchant = Caller(subject=offer.merchant_id, role=Role.MERCHANT)

    async def redeem_and_confirm(self) -> None:
        resident_id = self._free.pop()
        try:
            me = Caller(subject=resident_id, role=Role.RESIDENT).metadata()
            started = await self._stub.RedeemOffer(
                pb.RedeemOfferRequest(offer_id=self._offer.id, resident_id=resident_id),
                metadata=me,
            )
            await self._stub.ConfirmRedemption(
                pb.ConfirmRedemptionRequest(id=started.redemption.id),
                metadata=self._merchant.metadata(),
            )
        finally:
            self._free.append(resident_id)


async def run(ctx: BenchContext) -> list[Figure]:
    collected = Collected("redemptions")
    seconds = ctx.seconds * 2
    name = f"redemption saga (redeem + confirm), {IN_FLIGHT} in flight: throughput"
    baseline = f"bare workflow, {SAGA_ACTIVITIES} no-op activities"
    async with _tills(ctx) as tills, bare_workflows(ctx.temporal) as bare:
        await tills.redeem_and_confirm()
        for _ in range(ctx.repeats):
            saga = await closed_loop(tills.redeem_and_confirm, IN_FLIGHT, seconds)
            plain = await bare.measure(SAGA_ACTIVITIES, IN_FLIGHT, seconds)
            collected.add(
                name,
                "redemptions/s",
                saga.rate,
                target="≥ 0.5× baseline",
                baseline_name=baseline,
                baseline=plain.rate,
            )
            collected.add(
                f"redemption saga, {IN_FLIGHT} in flight: p99",
                "ms",
                saga.ms(99),
                higher_is_better=False,
                baseline_name=baseline,
                baseline=plain.ms(99),
            )
    return collected.figures()


@contextlib.asynccontextmanager
async def _tills(ctx: BenchContext) -> AsyncIterator[Tills]:
    """The three services, a worker of redemptions, a shop and its customers."""
    grids = await ctx.start_service(GRIDS)
    residents = await _with_addresses(ctx, RESIDENTS, grids=grids)
    merchants = await _with_addresses(ctx, MERCHANTS, grids=grids, residents=residents)
    village = await _village(gpb_grpc.GridsServiceStub(ctx.channel(grids)))
    stub = pb_grpc.MerchantsServiceStub(ctx.channel(merchants))
    offer = await _offer(stub, village)
    people = rpb_grpc.ResidentsServiceStub(ctx.channel(residents))
    customers = [await _customer(people, village) for _ in range(IN_FLIGHT)]
    saga = RedemptionActivities(ctx.channel(residents), ctx.channel(merchants))
    worker = tuned_worker(
        ctx.temporal,
        ctx.settings.temporal_task_queue,
        [RedemptionWorkflow],
        [
            saga.hold_points,
            saga.reserve_stock,
            saga.commit_hold,
            saga.release_hold,
            saga.settle_redemption,
        ],
    )
    async with worker:
        yield Tills(stub, offer, customers)


async def _with_addresses(
    ctx: BenchContext, definition: ServiceDefinition, **neighbours: RunningService
) -> RunningService:
    """Starts a service that finds its neighbours through CLOUDARK_*_ADDRESS."""
    keys = {f"CLOUDARK_{n.upper()}_ADDRESS": s for n, s in neighbours.items()}
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update({key: f"127.0.0.1:{s.port}" for key, s in keys.items()})
    try:
        return await ctx.start_service(definition)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _village(stub: gpb_grpc.GridsServiceAsyncStub) -> list[str]:
    """A fresh city down to a micro-grid: [city, town, village, grid, micro-grid]."""
    chain: list[str] = []
    for kind in range(gpb.AREA_KIND_CITY, gpb.AREA_KIND_MICRO_GRID + 1):
        reply = await stub.CreateArea(
            gpb.CreateAreaRequest(
                kind=kind,  # type: ignore[arg-type]
                name=f"bench {uuid.uuid4().hex[:8]}",
                parent_id=chain[-1] if chain else "",
            ),
            metadata=OPERATOR,
        )
        chain.append(reply.area.id)
    return chain


async def _offer(stub: pb_grpc.MerchantsServiceAsyncStub, chain: list[str]) -> pb.Offer:
    shop = await stub.RegisterMerchant(
        pb.RegisterMerchantRequest(
            village_id=chain[2],
            name="Bench Supermarket",
            category=pb.CATEGORY_SUPERMARKET,
            legal_form=pb.LEGAL_FORM_COMPANY,
            accepts_points=True,
            opening_hours=pb.OpeningHours(opens="00:00", closes="23:59"),
            contact_phone="0580-2020000",
        ),
        metadata=OPERATOR,
    )
    await stub.VerifyMerchant(
        pb.VerifyMerchantRequest(id=shop.merchant.id), metadata=OPERATOR
    )
    owner = Caller(subject=shop.merchant.id, role=Role.MERCHANT).metadata()
    reply = await stub.CreateOffer(
        pb.CreateOfferRequest(
            merchant_id=shop.merchant.id, title="Matches", points=1, stock=1_000_000
        ),
        metadata=owner,
    )
    return reply.offer


async def _customer(stub: rpb_grpc.ResidentsServiceAsyncStub, chain: list[str]) -> str:
    home = await stub.RegisterHousehold(
        rpb.RegisterHouseholdRequest(micro_grid_id=chain[4], address="No. 2 Quay"),
        metadata=OPERATOR,
    )
    member = await stub.RegisterResident(
        rpb.RegisterResidentRequest(
            household_id=home.household.id,
            name="李海",
            national_id=_fresh_national_id(),
            phone=f"137{uuid.uuid4().int % 10**8:08d}",
        ),
        metadata=OPERATOR,
    )
    for _ in itertools.repeat(None, TALKS):
        await stub.EarnPoints(
            rpb.EarnPointsRequest(
                resident_id=member.resident.id, activity=rpb.ACTIVITY_ANTI_FRAUD_TALK
            ),
            metadata=SYSTEM,
        )
    return member.resident.id
