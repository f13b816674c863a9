"""The saga steps of a redemption, each one gRPC call with a request_id.

The workflow derives every request_id from its workflow id and the step, so
a retried activity, or a worker that crashed and came back, asks the same
question again and gets the first answer: points are held, paid or returned
once, and an item is taken from the stock once.
"""

from dataclasses import dataclass
from datetime import datetime

import grpc
from cloudark.merchants.v1 import merchants_pb2 as mpb
from cloudark.merchants.v1 import merchants_pb2_grpc as mpb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import activity

from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

# Outcomes as the merchants proto numbers them.
STATES = {
    "committed": mpb.REDEMPTION_STATE_COMMITTED,
    "released": mpb.REDEMPTION_STATE_RELEASED,
}
REASONS = {
    "": mpb.RELEASE_REASON_UNSPECIFIED,
    "expired": mpb.RELEASE_REASON_EXPIRED,
    "refused": mpb.RELEASE_REASON_REFUSED,
    "cancelled": mpb.RELEASE_REASON_CANCELLED,
}


@dataclass
class HoldPointsInput:
    resident_id: str
    merchant_id: str
    points: int
    request_id: str


@dataclass
class HoldPointsResult:
    hold_id: str


@dataclass
class ReserveStockInput:
    redemption_id: str
    offer_id: str
    resident_id: str
    hold_id: str
    points: int
    confirm_deadline: datetime
    request_id: str


@dataclass
class ReserveStockResult:
    redemption_id: str


@dataclass
class SettleHoldInput:
    hold_id: str
    request_id: str


@dataclass
class SettleHoldResult:
    # "committed" or "released": what the hold ended as.
    state: str


@dataclass
class SettleRedemptionInput:
    redemption_id: str
    # "committed" or "released".
    state: str
    # "", "expired", "refused" or "cancelled".
    release_reason: str
    request_id: str


@dataclass
class SettleRedemptionResult:
    state: str


class RedemptionActivities:
    def __init__(
        self, residents: grpc.aio.Channel, merchants: grpc.aio.Channel
    ) -> None:
        self._residents = rpb_grpc.ResidentsServiceStub(residents)
        self._merchants = mpb_grpc.MerchantsServiceStub(merchants)

    @activity.defn
    async def hold_points(self, data: HoldPointsInput) -> HoldPointsResult:
        """Holds the offer's price on the resident's points account."""
        request = rpb.HoldPointsRequest(
            resident_id=data.resident_id,
            merchant_id=data.merchant_id,
            points=data.points,
            request_id=data.request_id,
        )
        try:
            reply = await self._residents.HoldPoints(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return HoldPointsResult(hold_id=reply.hold.id)

    @activity.defn
    async def reserve_stock(self, data: ReserveStockInput) -> ReserveStockResult:
        """Takes one item off the offer and records the pending redemption."""
        deadline = Timestamp()
        deadline.FromDatetime(data.confirm_deadline)
        request = mpb.ReserveStockRequest(
            redemption_id=data.redemption_id,
            offer_id=data.offer_id,
            resident_id=data.resident_id,
            hold_id=data.hold_id,
            points=data.points,
            confirm_deadline=deadline,
            request_id=data.request_id,
        )
        try:
            reply = await self._merchants.ReserveStock(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return ReserveStockResult(redemption_id=reply.redemption.id)

    @activity.defn
    async def commit_hold(self, data: SettleHoldInput) -> SettleHoldResult:
        """Pays the held points to the merchant."""
        request = rpb.CommitHoldRequest(
            hold_id=data.hold_id, request_id=data.request_id
        )
        try:
            await self._residents.CommitHold(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return SettleHoldResult(state="committed")

    @activity.defn
    async def release_hold(self, data: SettleHoldInput) -> SettleHoldResult:
        """Gives the held points back to the resident."""
        request = rpb.ReleaseHoldRequest(
            hold_id=data.hold_id, request_id=data.request_id
        )
        try:
            await self._residents.ReleaseHold(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return SettleHoldResult(state="released")

    @activity.defn
    async def settle_redemption(
        self, data: SettleRedemptionInput
    ) -> SettleRedemptionResult:
        """Records the outcome residents and merchants read; returns the item
        to the stock when released."""
        request = mpb.SettleRedemptionRequest(
            id=data.redemption_id,
            state=STATES[data.state],
            release_reason=REASONS[data.release_reason],
            request_id=data.request_id,
        )
        try:
            await self._merchants.SettleRedemption(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return SettleRedemptionResult(state=data.state)
