"""Activities of the care workflows: they read plans and progress from the
care service, squads and areas from the grids service, send notifications,
and signal squad workflows. Every write carries a request_id derived from
the workflow id and the step, so a retried activity repeats nothing."""

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc
from cloudark.care.v1 import care_pb2, care_pb2_grpc
from cloudark.grids.v1 import grids_pb2, grids_pb2_grpc, staff_pb2, staff_pb2_grpc
from cloudark.notifications.v1 import notifications_pb2 as notify_pb
from cloudark.notifications.v1 import notifications_pb2_grpc as notify_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import activity
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

from workflows import search_attributes as sa
from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

VISIT, DELIVERY = care_pb2.DUE_KIND_VISIT, care_pb2.DUE_KIND_DELIVERY
AUDIENCE_GRID_WORKERS = notify_pb.AUDIENCE_TAG_GRID_WORKERS
AUDIENCE_SQUAD_MEMBERS = notify_pb.AUDIENCE_TAG_SQUAD_MEMBERS
ON_DUTY = staff_pb2.AVAILABILITY_ON_DUTY


@dataclass
class DueEntry:
    """One visit or delivery due; ids and times only."""

    recipient_id: str
    member_id: str
    grid_id: str
    kind: int
    need: int
    due_time: datetime
    priority: int
    lives_alone: bool

    @property
    def key(self) -> str:
        """Names this due date: a new due date (after a visit) is a new key."""
        return (
            f"{self.recipient_id}/{self.kind}/{self.need}/"
            f"{int(self.due_time.timestamp())}"
        )

    def with_member(self, member_id: str | None) -> "DueEntry":
        return replace(self, member_id=member_id) if member_id else self


@dataclass
class LoadScheduleInput:
    squad_id: str
    until: datetime


@dataclass
class LoadScheduleResult:
    mode: str
    items: list[DueEntry]


@dataclass
class ReassignInput:
    squad_id: str
    village_id: str
    # The workflow id: the AssignRecipient request ids start with it.
    key_prefix: str
    items: list[DueEntry]


@dataclass
class ReassignResult:
    # recipient id → the member now serving them, for those who moved.
    members: dict[str, str]


@dataclass
class NotificationInput:
    request_id: str
    title: str
    body: str
    staff_ids: list[str] | None = None
    area_ids: list[str] | None = None
    tags: list[int] | None = None
    # The resident a grid worker is asked about (id only).
    about_resident_id: str = ""
    urgent: bool = False
    reference: str = ""


@dataclass
class NotificationResult:
    notification_id: str


@dataclass
class VillagesInput:
    area_id: str


@dataclass
class VillagesResult:
    village_ids: list[str]


@dataclass
class SignalSquadsInput:
    village_ids: list[str]
    mode: str
    switch_id: str


@dataclass
class SignalSquadsResult:
    squads: int


@dataclass
class EnrollVillageInput:
    campaign_id: str
    village_id: str
    key_prefix: str


@dataclass
class EnrollVillageResult:
    enrolled: int
    pages: int


@dataclass
class ProgressInput:
    campaign_id: str


@dataclass
class ProgressResult:
    enrolling: bool
    pending: int
    delivered: int
    refused: int


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class CareActivities:
    def __init__(
        self,
        care: grpc.aio.Channel,
        grids: grpc.aio.Channel,
        notifications: grpc.aio.Channel,
    ) -> None:
        self._care = care_pb2_grpc.CareServiceStub(care)
        self._areas = grids_pb2_grpc.GridsServiceStub(grids)
        self._staff = staff_pb2_grpc.StaffServiceStub(grids)
        self._notify = notify_grpc.NotificationsServiceStub(notifications)

    @activity.defn
    async def load_squad_schedule(self, data: LoadScheduleInput) -> LoadScheduleResult:
        """The squad's due list up to `until` and the mode of its village."""
        items: list[DueEntry] = []
        token, mode = "", grids_pb2.MODE_PEACETIME
        try:
            while True:
                page = await self._care.ListDueVisits(
                    care_pb2.ListDueVisitsRequest(
                        squad_id=data.squad_id,
                        until=_timestamp(data.until),
                        page_size=1000,
                        page_token=token,
                    ),
                    metadata=METADATA,
                    timeout=CALL_TIMEOUT,
                )
                mode = page.area_mode.mode
                items += [_entry(i) for i in page.items]
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise activity_error(error) from error
            # No plans (yet, or any more): nothing is due.
        return LoadScheduleResult(
            mode="wartime" if mode == 2 else "peacetime", items=items
        )

    @activity.defn
    async def reassign_unavailable(self, data: ReassignInput) -> ReassignResult:
        """Moves recipients whose member is not on duty to the least-loaded
        member of the squad who is; keeps them where they are when nobody is."""
        try:
            absent = await self._absent_members({i.member_id for i in data.items})
            if not absent:
                return ReassignResult(members={})
            candidates = await self._on_duty_members(data.village_id, data.squad_id)
            moved: dict[str, str] = {}
            for item in data.items:
                if item.member_id not in absent or item.recipient_id in moved:
                    continue
                if not candidates:
                    break
                choice = min(candidates, key=lambda h: (h.load, h.id))
                await self._care.AssignRecipient(
                    care_pb2.AssignRecipientRequest(
                        recipient_id=item.recipient_id,
                        squad_id=data.squad_id,
                        member_id=choice.id,
                        request_id=f"{data.key_prefix}/reassign/{item.key}"[:128],
                    ),
                    metadata=METADATA,
                    timeout=CALL_TIMEOUT,
                )
                moved[item.recipient_id] = choice.id
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        if moved:
            activity.logger.info(
                "squad %s: %s recipient(s) reassigned", data.squad_id, len(moved)
            )
        return ReassignResult(members=moved)

    async def _absent_members(self, member_ids: set[str]) -> set[str]:
        absent = set()
        for member_id in sorted(member_ids):
            reply = await self._staff.GetHelper(
                staff_pb2.GetHelperRequest(id=member_id),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            helper = reply.helper
            if not helper.active or helper.availability != ON_DUTY:
                absent.add(member_id)
        return absent

    async def _on_duty_members(
        self, village_id: str, squad_id: str
    ) -> list[staff_pb2.Helper]:
        found, token = [], ""
        while True:
            page = await self._staff.ListHelpers(
                staff_pb2.ListHelpersRequest(
                    area_id=village_id,
                    kind=staff_pb2.HELPER_KIND_SQUAD_MEMBER,
                    page_size=1000,
                    page_token=token,
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            found += [
                h
                for h in page.helpers
                if h.squad_id == squad_id and h.availability == ON_DUTY
            ]
            token = page.next_page_token
            if not token:
                return found

    @activity.defn
    async def send_care_notification(
        self, data: NotificationInput
    ) -> NotificationResult:
        """One notification through the notifications service, once per request_id."""
        urgency = notify_pb.URGENCY_URGENT if data.urgent else notify_pb.URGENCY_NORMAL
        request = notify_pb.SendNotificationRequest(
            title=data.title,
            body=data.body,
            audience=notify_pb.Audience(
                staff_ids=data.staff_ids or [],
                area_ids=data.area_ids or [],
                tags=data.tags or [],  # type: ignore[arg-type]
            ),
            urgency=urgency,
            reference=data.reference,
            request_id=data.request_id,
        )
        if data.about_resident_id:
            request.variables["about_resident_id"] = data.about_resident_id
        try:
            reply = await self._notify.SendNotification(
                request, metadata=METADATA, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return NotificationResult(notification_id=reply.notification.id)

    @activity.defn
    async def list_villages(self, data: VillagesInput) -> VillagesResult:
        """The villages of a city, town or village (the village itself)."""
        try:
            reply = await self._areas.GetArea(
                grids_pb2.GetAreaRequest(id=data.area_id),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            level = [reply.area.id]
            for _ in range(grids_pb2.AREA_KIND_VILLAGE - reply.area.kind):
                level = [c for parent in level for c in await self._children(parent)]
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        if reply.area.kind > grids_pb2.AREA_KIND_VILLAGE:
            raise ApplicationError("not a city, town or village", non_retryable=True)
        return VillagesResult(village_ids=level)

    async def _children(self, parent_id: str) -> list[str]:
        found, token = [], ""
        while True:
            page = await self._areas.ListAreas(
                grids_pb2.ListAreasRequest(
                    parent_id=parent_id, page_size=1000, page_token=token
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            found += [a.id for a in page.areas]
            token = page.next_page_token
            if not token:
                return found

    @activity.defn
    async def signal_squads(self, data: SignalSquadsInput) -> SignalSquadsResult:
        """Signals (starting when needed) the workflow of every squad of the
        villages. A signal repeated by a retry only makes a squad re-read its
        plans once more."""
        from workflows.care.workflows import SquadInput, SquadRefresh, squad_workflow_id

        client = activity.client()
        task_queue = activity.info().task_queue
        told = 0
        for village_id in data.village_ids:
            try:
                squads = await self._squads(village_id)
            except grpc.aio.AioRpcError as error:
                raise activity_error(error) from error
            for squad_id in squads:
                await client.start_workflow(
                    "SquadWorkflow",
                    SquadInput(squad_id=squad_id, village_id=village_id),
                    id=squad_workflow_id(squad_id),
                    task_queue=task_queue,
                    start_signal="refresh",
                    start_signal_args=[
                        SquadRefresh(reason=f"switch {data.switch_id}", mode=data.mode)
                    ],
                    search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(sa.VILLAGE_ID, village_id)]
                    ),
                )
                told += 1
            activity.heartbeat(village_id)
        return SignalSquadsResult(squads=told)

    async def _squads(self, village_id: str) -> list[str]:
        found, token = [], ""
        while True:
            page = await self._staff.ListSquads(
                staff_pb2.ListSquadsRequest(
                    village_id=village_id, page_size=1000, page_token=token
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            found += [s.id for s in page.squads]
            token = page.next_page_token
            if not token:
                return found

    @activity.defn
    async def enroll_village(self, data: EnrollVillageInput) -> EnrollVillageResult:
        """Enrolls a village's roster page by page; each page's request_id is
        derived from the workflow, the village and the page token."""
        token, enrolled, pages = "", 0, 0
        try:
            while True:
                digest = hashlib.sha256(token.encode()).hexdigest()[:16]
                reply = await self._care.EnrollCampaignRecipients(
                    care_pb2.EnrollCampaignRecipientsRequest(
                        campaign_id=data.campaign_id,
                        village_id=data.village_id,
                        roster_page_token=token,
                        request_id=f"{data.key_prefix}/enroll/{data.village_id}/{digest}",
                    ),
                    metadata=METADATA,
                    timeout=CALL_TIMEOUT * 3,
                )
                enrolled += reply.enrolled
                pages += 1
                activity.heartbeat(pages)
                token = reply.next_roster_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return EnrollVillageResult(enrolled=enrolled, pages=pages)

    @activity.defn
    async def get_campaign_progress(self, data: ProgressInput) -> ProgressResult:
        try:
            reply = await self._care.GetCampaign(
                care_pb2.GetCampaignRequest(id=data.campaign_id),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        campaign = reply.campaign
        return ProgressResult(
            enrolling=campaign.status == care_pb2.CAMPAIGN_STATUS_ENROLLING,
            pending=campaign.pending,
            delivered=campaign.delivered,
            refused=campaign.refused,
        )


def _entry(item: care_pb2.DueItem) -> DueEntry:
    return DueEntry(
        recipient_id=item.recipient_id,
        member_id=item.member_id,
        grid_id=item.grid_id,
        kind=item.kind,
        need=item.need,
        due_time=item.due_time.ToDatetime(tzinfo=UTC),
        priority=item.priority,
        lives_alone=item.lives_alone,
    )
