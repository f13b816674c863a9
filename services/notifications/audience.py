"""Resolving an audience to recipients, once, through the residents and grids
services over gRPC.

Named people are looked up one by one (a missing one is NOT_FOUND, naming
the field); areas are listed page by page, narrowed by tags. Only ids,
micro-grids, channel preferences and languages are kept: no names or numbers.
"""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from cloudark.grids.v1 import grids_pb2, grids_pb2_grpc, staff_pb2, staff_pb2_grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.residents.v1 import residents_pb2, residents_pb2_grpc

from services.common.config import Settings
from services.common.errors import FailedPrecondition, NotFound, Unavailable
from services.common.identity import Caller, Role
from services.notifications import config

RESIDENT = pb.RECIPIENT_KIND_RESIDENT
STAFF = pb.RECIPIENT_KIND_STAFF
APP, TEXT, GROUP_CHAT, TV = (
    pb.CHANNEL_APP,
    pb.CHANNEL_TEXT_MESSAGE,
    pb.CHANNEL_GROUP_CHAT,
    pb.CHANNEL_TV,
)
# The residents service numbers its channels as we do (app, text, group chat).
_RESIDENT_CHANNELS = {1: APP, 2: TEXT, 3: GROUP_CHAT}
_LANGUAGES = {1: "zh", 2: "en"}
_HELPER_TAGS = {
    pb.AUDIENCE_TAG_SQUAD_MEMBERS: staff_pb2.HELPER_KIND_SQUAD_MEMBER,
    pb.AUDIENCE_TAG_GRID_WORKERS: staff_pb2.HELPER_KIND_GRID_WORKER,
    pb.AUDIENCE_TAG_VOLUNTEERS: staff_pb2.HELPER_KIND_VOLUNTEER,
}
# Named people looked up at once.
_PARALLEL = 16
_METADATA = Caller(subject="cloudark-notifications", role=Role.SYSTEM).metadata()


@dataclass(frozen=True)
class Recipient:
    """A person the notification is for, as resolved at send time."""

    kind: int
    id: str
    # Whose inbox: the resident id, or the helper's person id.
    person_id: str
    micro_grid_id: str
    # Preferred channels, best first; empty: no preference.
    channels: tuple[int, ...] = ()
    language: str = config.DEFAULT_LANGUAGE
    # Named in the audience (not found through an area): a message meant
    # for one person never goes to their micro-grid's group chat unasked.
    named: bool = False


@dataclass
class Resolved:
    recipients: list[Recipient] = field(default_factory=list)
    # The areas named, for TV displays.
    area_ids: list[str] = field(default_factory=list)


class AudienceResolver:
    """Asks the residents and grids services who an audience is."""

    def __init__(self, residents_address: str, grids_address: str) -> None:
        self._channels = [
            grpc.aio.insecure_channel(residents_address),
            grpc.aio.insecure_channel(grids_address),
        ]
        self._residents = residents_pb2_grpc.ResidentsServiceStub(self._channels[0])
        self._areas = grids_pb2_grpc.GridsServiceStub(self._channels[1])
        self._staff = staff_pb2_grpc.StaffServiceStub(self._channels[1])

    @classmethod
    def from_settings(cls, settings: Settings) -> "AudienceResolver":
        return cls(
            settings.service_address("residents"), settings.service_address("grids")
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def resolve(self, audience: pb.Audience) -> Resolved:
        """Every recipient of the audience, each once, exclusions removed."""
        found: dict[tuple[int, str], Recipient] = {}
        named = await self._named(audience)
        for recipient in named:
            found.setdefault((recipient.kind, recipient.id), recipient)
        for index, area_id in enumerate(audience.area_ids):
            await self._require_area(area_id, f"audience.area_ids[{index}]")
            async for recipient in self._in_area(area_id, audience.tags):
                found.setdefault((recipient.kind, recipient.id), recipient)
        excluded = {(RESIDENT, i) for i in audience.exclude_resident_ids}
        excluded |= {(STAFF, i) for i in audience.exclude_staff_ids}
        recipients = [r for key, r in found.items() if key not in excluded]
        return Resolved(recipients, list(dict.fromkeys(audience.area_ids)))

    async def _named(self, audience: pb.Audience) -> list[Recipient]:
        calls: list[Callable[[], Awaitable[Recipient]]] = []
        for i, resident_id in enumerate(audience.resident_ids):
            calls.append(
                _bind(self._resident, resident_id, f"audience.resident_ids[{i}]")
            )
        for i, helper_id in enumerate(audience.staff_ids):
            calls.append(_bind(self._helper, helper_id, f"audience.staff_ids[{i}]"))
        gate = asyncio.Semaphore(_PARALLEL)

        async def limited(call: Callable[[], Awaitable[Recipient]]) -> Recipient:
            async with gate:
                return await call()

        return list(await asyncio.gather(*(limited(c) for c in calls)))

    async def _resident(self, resident_id: str, field_path: str) -> Recipient:
        reply = await _call(
            self._residents.GetResident(
                residents_pb2.GetResidentRequest(id=resident_id),
                metadata=_METADATA,
                timeout=config.PEER_TIMEOUT,
            ),
            "resident",
            field_path,
        )
        if not reply.resident.active:
            raise FailedPrecondition(
                f"{field_path}: the resident is no longer active", subject=field_path
            )
        return dataclasses.replace(resident_recipient(reply.resident), named=True)

    async def _helper(self, helper_id: str, field_path: str) -> Recipient:
        reply = await _call(
            self._staff.GetHelper(
                staff_pb2.GetHelperRequest(id=helper_id),
                metadata=_METADATA,
                timeout=config.PEER_TIMEOUT,
            ),
            "helper",
            field_path,
        )
        if not reply.helper.active:
            raise FailedPrecondition(
                f"{field_path}: the helper is no longer active", subject=field_path
            )
        return dataclasses.replace(helper_recipient(reply.helper), named=True)

    async def _require_area(self, area_id: str, field_path: str) -> None:
        await _call(
            self._areas.GetArea(
                grids_pb2.GetAreaRequest(id=area_id),
                metadata=_METADATA,
                timeout=config.PEER_TIMEOUT,
            ),
            "area",
            field_path,
        )

    async def _in_area(
        self, area_id: str, tags: Sequence[int]
    ) -> AsyncIterator[Recipient]:
        wanted = set(tags) or {pb.AUDIENCE_TAG_RESIDENTS}
        if pb.AUDIENCE_TAG_RESIDENTS in wanted:
            async for resident in self._residents_of(area_id, roster_only=False):
                yield resident_recipient(resident)
        elif pb.AUDIENCE_TAG_KEY_SERVICE_RECIPIENTS in wanted:
            async for resident in self._residents_of(area_id, roster_only=True):
                yield resident_recipient(resident)
        for tag, kind in _HELPER_TAGS.items():
            if tag in wanted:
                async for helper in self._helpers_of(area_id, kind):
                    yield helper_recipient(helper)

    async def _residents_of(
        self, area_id: str, *, roster_only: bool
    ) -> AsyncIterator[residents_pb2.Resident]:
        token = ""
        while True:
            if roster_only:
                reply: Any = await _call(
                    self._residents.ListKeyServiceRecipients(
                        residents_pb2.ListKeyServiceRecipientsRequest(
                            area_id=area_id,
                            page_size=config.RESOLVE_PAGE,
                            page_token=token,
                        ),
                        metadata=_METADATA,
                        timeout=config.PEER_TIMEOUT,
                    ),
                    "area",
                    "audience.area_ids",
                )
            else:
                reply = await _call(
                    self._residents.ListResidents(
                        residents_pb2.ListResidentsRequest(
                            area_id=area_id,
                            page_size=config.RESOLVE_PAGE,
                            page_token=token,
                        ),
                        metadata=_METADATA,
                        timeout=config.PEER_TIMEOUT,
                    ),
                    "area",
                    "audience.area_ids",
                )
            for resident in reply.residents:
                yield resident
            token = reply.next_page_token
            if not token:
                return

    async def _helpers_of(
        self, area_id: str, kind: int
    ) -> AsyncIterator[staff_pb2.Helper]:
        token = ""
        while True:
            reply = await _call(
                self._staff.ListHelpers(
                    staff_pb2.ListHelpersRequest(
                        area_id=area_id,
                        kind=kind,  # type: ignore[arg-type]
                        page_size=config.RESOLVE_PAGE,
                        page_token=token,
                    ),
                    metadata=_METADATA,
                    timeout=config.PEER_TIMEOUT,
                ),
                "area",
                "audience.area_ids",
            )
            for helper in reply.helpers:
                if helper.active:
                    yield helper
            token = reply.next_page_token
            if not token:
                return

    async def area_kind(self, area_id: str, field_path: str) -> int:
        """The kind of an area; NOT_FOUND naming field_path when there is none."""
        reply = await _call(
            self._areas.GetArea(
                grids_pb2.GetAreaRequest(id=area_id),
                metadata=_METADATA,
                timeout=config.PEER_TIMEOUT,
            ),
            "area",
            field_path,
        )
        return int(reply.area.kind)

    async def grid_workers_of(self, micro_grid_id: str) -> list[Recipient]:
        """The active grid workers of the grid a micro-grid belongs to."""
        area = await _call(
            self._areas.GetArea(
                grids_pb2.GetAreaRequest(id=micro_grid_id),
                metadata=_METADATA,
                timeout=config.PEER_TIMEOUT,
            ),
            "area",
            "micro_grid_id",
        )
        if not area.area.ancestor_ids:
            return []
        grid_id = area.area.ancestor_ids[-1]
        return [
            helper_recipient(h)
            async for h in self._helpers_of(grid_id, staff_pb2.HELPER_KIND_GRID_WORKER)
        ]


def resident_recipient(resident: residents_pb2.Resident) -> Recipient:
    channels = tuple(
        _RESIDENT_CHANNELS[c]
        for c in resident.contact.channels
        if c in _RESIDENT_CHANNELS
    )
    return Recipient(
        kind=RESIDENT,
        id=resident.id,
        person_id=resident.id,
        micro_grid_id=resident.micro_grid_id,
        channels=channels,
        language=_LANGUAGES.get(resident.contact.language, config.DEFAULT_LANGUAGE),
    )


def helper_recipient(helper: staff_pb2.Helper) -> Recipient:
    # A volunteer serves one micro-grid; other helpers have no group chat.
    micro_grid = (
        helper.area_ids[0]
        if helper.kind == staff_pb2.HELPER_KIND_VOLUNTEER and helper.area_ids
        else ""
    )
    return Recipient(
        kind=STAFF, id=helper.id, person_id=helper.person_id, micro_grid_id=micro_grid
    )


def _bind(
    lookup: Callable[[str, str], Awaitable[Recipient]], value: str, field_path: str
) -> Callable[[], Awaitable[Recipient]]:
    return lambda: lookup(value, field_path)


async def _call(call: Awaitable[Any], resource: str, field_path: str) -> Any:
    """Awaits a peer call: NOT_FOUND names the field; other failures are
    UNAVAILABLE, so the sender retries with the same request_id."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound(resource, field_path) from None
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise NotFound(resource, field_path) from None
        raise Unavailable(
            f"the {resource} lookup failed ({error.code().name}); retry"
        ) from None


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
