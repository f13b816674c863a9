"""Activities every workflow shares: telling people, and thanking them in points.

One implementation for the errand, case and other workflows, registered once
on the worker under these names. Both are idempotent by their request_id, so
a retried activity or a replayed workflow sends or credits nothing twice.
"""

from dataclasses import dataclass, field

import grpc
from cloudark.notifications.v1 import notifications_pb2 as notifications_pb
from cloudark.notifications.v1 import notifications_pb2_grpc as notifications_grpc
from cloudark.residents.v1 import residents_pb2 as residents_pb
from cloudark.residents.v1 import residents_pb2_grpc as residents_grpc
from temporalio import activity

from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

# How long an in-app message may stay unread before a text message follows.
TEXT_FALLBACK_SECONDS = 120
# The earning rules (residents' table) a workflow credits.
ERRAND_HELPED = residents_pb.ACTIVITY_ERRAND_HELPED
CONFIRMED_TIP_OFF = residents_pb.ACTIVITY_CONFIRMED_TIP_OFF


@dataclass
class SendNotificationInput:
    title: str
    body: str
    # Where it came from, e.g. "case-<id>/004-assigned".
    reference: str
    request_id: str
    resident_ids: list[str] = field(default_factory=list)
    staff_ids: list[str] = field(default_factory=list)
    urgent: bool = False
    # Residents get a text message when the in-app one stays unread.
    text_fallback: bool = False


@dataclass
class SendNotificationResult:
    notification_id: str


@dataclass
class EarnPointsInput:
    resident_id: str
    request_id: str
    # The earning rule: ERRAND_HELPED or CONFIRMED_TIP_OFF.
    activity: int = ERRAND_HELPED


@dataclass
class EarnPointsResult:
    # False when the person is not a resident with a points account.
    earned: bool = False
    points: int = 0


class MessagingActivities:
    def __init__(
        self, notifications: grpc.aio.Channel, residents: grpc.aio.Channel
    ) -> None:
        self._notifications = notifications_grpc.NotificationsServiceStub(notifications)
        self._residents = residents_grpc.ResidentsServiceStub(residents)

    @activity.defn
    async def send_notification(
        self, data: SendNotificationInput
    ) -> SendNotificationResult:
        """Sends one message through the notifications service, once per request_id."""
        fallback = notifications_pb.Fallback(
            text_message_after_seconds=TEXT_FALLBACK_SECONDS
            if data.text_fallback
            else 0
        )
        urgency = (
            notifications_pb.URGENCY_URGENT
            if data.urgent
            else notifications_pb.URGENCY_NORMAL
        )
        request = notifications_pb.SendNotificationRequest(
            title=data.title,
            body=data.body,
            audience=notifications_pb.Audience(
                resident_ids=data.resident_ids, staff_ids=data.staff_ids
            ),
            urgency=urgency,
            fallback=fallback,
            reference=data.reference,
            request_id=data.request_id,
        )
        try:
            reply = await self._notifications.SendNotification(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return SendNotificationResult(notification_id=reply.notification.id)

    @activity.defn
    async def earn_points(self, data: EarnPointsInput) -> EarnPointsResult:
        """Credits a resident once per request_id; someone who is no resident
        (NOT_FOUND) earns nothing."""
        try:
            reply = await self._residents.EarnPoints(
                residents_pb.EarnPointsRequest(
                    resident_id=data.resident_id,
                    activity=data.activity,  # type: ignore[arg-type]
                    request_id=data.request_id,
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                return EarnPointsResult(earned=False)
            raise activity_error(error) from error
        return EarnPointsResult(earned=True, points=reply.entry.points)
