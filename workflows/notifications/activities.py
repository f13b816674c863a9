"""Activities of the notification workflows: thin gRPC calls to the
notifications service, which owns the deliveries and the providers. Both are
safe to repeat: a page sends only deliveries still pending, and fallback
deliveries are queued under unique keys."""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc
from temporalio import activity

from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

# A page of slow channels (group chats at 20/s) may take a while.
DISPATCH_TIMEOUT = 120.0
HEARTBEAT_EVERY = 2.0
T = TypeVar("T")


@dataclass
class DispatchInput:
    notification_id: str
    purpose: int
    after_seq: int
    limit: int


@dataclass
class DispatchResult:
    last_seq: int
    done: bool
    sent: int
    failed: int
    retrying: int
    remaining: int
    retry_after_seconds: int
    # Quiet hours: epoch seconds to wait until; 0 when sending went ahead.
    wait_until: float


@dataclass
class QueueFallbackInput:
    notification_id: str
    purpose: int


@dataclass
class QueueFallbackResult:
    queued: int


async def _heartbeating(call: Awaitable[T]) -> T:
    """Awaits call, heartbeating meanwhile, so a dead worker is noticed soon."""
    task = asyncio.ensure_future(call)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
        if done:
            return task.result()
        activity.heartbeat()


class NotificationActivities:
    def __init__(self, notifications: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.NotificationsServiceStub(notifications)

    @activity.defn
    async def dispatch_deliveries(self, data: DispatchInput) -> DispatchResult:
        call = self._stub.DispatchDeliveries(
            pb.DispatchDeliveriesRequest(
                notification_id=data.notification_id,
                purpose=data.purpose,  # type: ignore[arg-type]
                after_seq=data.after_seq,
                limit=data.limit,
            ),
            metadata=METADATA,
            timeout=DISPATCH_TIMEOUT,
        )
        try:
            reply = await _heartbeating(call)
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from None
        wait_until = 0.0
        if reply.HasField("wait_until"):
            wait_until = float(reply.wait_until.ToSeconds())
        return DispatchResult(
            last_seq=reply.last_seq,
            done=reply.done,
            sent=reply.sent,
            failed=reply.failed,
            retrying=reply.retrying,
            remaining=reply.remaining,
            retry_after_seconds=reply.retry_after_seconds,
            wait_until=wait_until,
        )

    @activity.defn
    async def queue_fallback_deliveries(
        self, data: QueueFallbackInput
    ) -> QueueFallbackResult:
        try:
            reply = await self._stub.QueueFallbackDeliveries(
                pb.QueueFallbackDeliveriesRequest(
                    notification_id=data.notification_id,
                    purpose=data.purpose,  # type: ignore[arg-type]
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT * 6,
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from None
        return QueueFallbackResult(queued=reply.queued)
