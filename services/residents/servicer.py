"""ResidentsService: households, residents and the key service recipient roster.

The points RPCs live in points.py; this class puts both together. Every RPC
checks the caller's role first, validates, loads, checks the caller's reach
over what it loaded, then acts.
"""

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.db import Connection
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.pagination import page_size as clamp_page_size
from services.common.validation import Violations
from services.residents import access, config, pii
from services.residents import repository as repo
from services.residents.grids_client import MICRO_GRID, AreaInfo, GridsClient
from services.residents.points import PointsRpcs, once, timestamp
from services.residents.repository import ResidentRow

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

CHANNELS = frozenset(pb.Channel.values()) - {pb.CHANNEL_UNSPECIFIED}
LANGUAGES = frozenset(pb.Language.values()) - {pb.LANGUAGE_UNSPECIFIED}
REASONS = frozenset(pb.CareReason.values()) - {pb.CARE_REASON_UNSPECIFIED}
NEEDS = frozenset(pb.CareNeed.values()) - {pb.CARE_NEED_UNSPECIFIED}
UPDATABLE = ("name", "phone", "contact")
SEARCH_LIMIT = 50


class ResidentsServicer(PointsRpcs, pb_grpc.ResidentsServiceServicer):
    def __init__(
        self, pool: asyncpg.Pool, keyring: pii.Keyring, grids: GridsClient
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._grids = grids

    # ---- households ----

    async def RegisterHousehold(
        self, request: pb.RegisterHouseholdRequest, context: Context
    ) -> pb.RegisterHouseholdResponse:
        caller = _caller(context, "RegisterHousehold")
        v = Violations()
        micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
        address = v.text("address", request.address, max_length=config.ADDRESS_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert micro_grid_id is not None
        area = await self._micro_grid(micro_grid_id, "micro_grid_id")
        access.require_area(caller, [*area.ancestor_ids, area.id])

        async def register(conn: Connection) -> pb.RegisterHouseholdResponse:
            row = await repo.insert_household(conn, area.id, area.ancestor_ids, address)
            return pb.RegisterHouseholdResponse(household=household_proto(row))

        return await once(self._pool, caller, "RegisterHousehold", request, register)

    async def GetHousehold(
        self, request: pb.GetHouseholdRequest, context: Context
    ) -> pb.GetHouseholdResponse:
        caller = _caller(context, "GetHousehold")
        household_id = _required_id("id", request.id)
        async with self._pool.acquire() as conn:
            household = await _household(conn, household_id, "id")
            await self._require_household(conn, caller, household)
            members = await repo.household_members(conn, household_id)
        return pb.GetHouseholdResponse(
            household=household_proto(household),
            residents=[self.render(r, caller) for r in members],
        )

    async def MoveHousehold(
        self, request: pb.MoveHouseholdRequest, context: Context
    ) -> pb.MoveHouseholdResponse:
        caller = _caller(context, "MoveHousehold")
        v = Violations()
        household_id = v.id("id", request.id)
        micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
        address = v.text("address", request.address, max_length=config.ADDRESS_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert household_id is not None
        assert micro_grid_id is not None
        area = await self._micro_grid(micro_grid_id, "micro_grid_id")
        if caller.role in access.STAFF:
            access.require_area(caller, [*area.ancestor_ids, area.id])

        async def move(conn: Connection) -> pb.MoveHouseholdResponse:
            household = await _household(conn, household_id, "id", for_update=True)
            await self._require_household(conn, caller, household)
            row = await repo.move_household(
                conn, household_id, area.id, area.ancestor_ids, address
            )
            return pb.MoveHouseholdResponse(household=household_proto(row))

        return await once(self._pool, caller, "MoveHousehold", request, move)

    # ---- residents ----

    async def RegisterResident(
        self, request: pb.RegisterResidentRequest, context: Context
    ) -> pb.RegisterResidentResponse:
        caller = _caller(context, "RegisterResident")
        v = Violations()
        household_id = v.id("household_id", request.household_id)
        name = v.text("name", request.name, max_length=config.NAME_MAX)
        national_id = _national_id(v, "national_id", request.national_id)
        phone = _phone(v, "phone", request.phone)
        channels, language = _contact(v, "contact", request.contact)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert household_id is not None
        resident_id = uuid.uuid4()
        id_hash = self._keyring.lookup_hash("national_id", national_id)

        async def register(conn: Connection) -> pb.RegisterResidentResponse:
            household = await _household(conn, household_id, "household_id")
            access.require_area(
                caller, [*household.ancestor_ids, household.micro_grid_id]
            )
            if await repo.national_id_in_use(conn, id_hash):
                raise AlreadyExists(
                    "national_id: an active resident already has this ID number"
                )
            await repo.insert_resident(
                conn,
                id=resident_id,
                household_id=household_id,
                area_ids=[*household.ancestor_ids, household.micro_grid_id],
                name=name,
                channels=channels,
                language=language,
                national_id_hash=id_hash,
                phone_hash=self._keyring.lookup_hash("phone", phone),
                **self._sealed(resident_id, national_id, phone),
            )
            return pb.RegisterResidentResponse(
                resident=pb.Resident(id=str(resident_id))
            )

        first = await once(self._pool, caller, "RegisterResident", request, register)
        return pb.RegisterResidentResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def GetResident(
        self, request: pb.GetResidentRequest, context: Context
    ) -> pb.GetResidentResponse:
        caller = _caller(context, "GetResident")
        resident_id = _required_id("id", request.id)
        async with self._pool.acquire() as conn:
            row = await self.reachable(conn, caller, resident_id, "id")
        return pb.GetResidentResponse(resident=self.render(row, caller))

    async def UpdateResident(
        self, request: pb.UpdateResidentRequest, context: Context
    ) -> pb.UpdateResidentResponse:
        caller = _caller(context, "UpdateResident")
        v = Violations()
        resident_id = v.id("resident.id", request.resident.id)
        paths = list(request.update_mask.paths)
        if not paths:
            v.add("update_mask", "must name at least one of name, phone, contact")
        for path in paths:
            if path not in UPDATABLE:
                v.add("update_mask", f"cannot update {path!r}")
        values = self._updates(v, request.resident, paths)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None
        phone = values.pop("phone", None)

        async def update(conn: Connection) -> pb.UpdateResidentResponse:
            row = await self.reachable(conn, caller, resident_id, "resident.id", True)
            _require_active(row, "resident.id")
            if phone is not None:
                values.update(self._new_phone(row, phone))
            await repo.update_resident(conn, resident_id, **values)
            return pb.UpdateResidentResponse(resident=pb.Resident(id=str(row.id)))

        first = await once(self._pool, caller, "UpdateResident", request, update)
        return pb.UpdateResidentResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def VerifyResident(
        self, request: pb.VerifyResidentRequest, context: Context
    ) -> pb.VerifyResidentResponse:
        caller = _caller(context, "VerifyResident")
        v = Violations()
        resident_id = v.id("id", request.id)
        if request.state not in (
            pb.VERIFICATION_STATE_VERIFIED,
            pb.VERIFICATION_STATE_REJECTED,
        ):
            v.add("state", "must be VERIFIED or REJECTED")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None

        async def verify(conn: Connection) -> pb.VerifyResidentResponse:
            row = await self.reachable(conn, caller, resident_id, "id", True)
            _require_active(row, "id")
            await repo.update_resident(
                conn,
                resident_id,
                verification_state=request.state,
                verify_time=await conn.fetchval("SELECT now()"),
            )
            return pb.VerifyResidentResponse(resident=pb.Resident(id=str(row.id)))

        first = await once(self._pool, caller, "VerifyResident", request, verify)
        return pb.VerifyResidentResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def DeactivateResident(
        self, request: pb.DeactivateResidentRequest, context: Context
    ) -> pb.DeactivateResidentResponse:
        caller = _caller(context, "DeactivateResident")
        v = Violations()
        resident_id = v.id("id", request.id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None

        async def deactivate(conn: Connection) -> pb.DeactivateResidentResponse:
            row = await self.reachable(conn, caller, resident_id, "id", True)
            if row.active:
                await repo.update_resident(conn, resident_id, active=False)
            return pb.DeactivateResidentResponse(resident=pb.Resident(id=str(row.id)))

        first = await once(
            self._pool, caller, "DeactivateResident", request, deactivate
        )
        return pb.DeactivateResidentResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def ListResidents(
        self, request: pb.ListResidentsRequest, context: Context
    ) -> pb.ListResidentsResponse:
        caller = _caller(context, "ListResidents")
        rows, token = await self._list(caller, request, roster_only=False)
        return pb.ListResidentsResponse(
            residents=[self.render(r, caller) for r in rows], next_page_token=token
        )

    async def SearchResidents(
        self, request: pb.SearchResidentsRequest, context: Context
    ) -> pb.SearchResidentsResponse:
        caller = _caller(context, "SearchResidents")
        v = Violations()
        if bool(request.phone) == bool(request.national_id):
            v.add("phone", "give exactly one of phone and national_id")
        elif request.phone:
            phone = _phone(v, "phone", request.phone)
            column, digest = "phone_hash", self._keyring.lookup_hash("phone", phone)
        else:
            number = _national_id(v, "national_id", request.national_id)
            column = "national_id_hash"
            digest = self._keyring.lookup_hash("national_id", number)
        v.raise_if_any()
        async with self._pool.acquire() as conn:
            rows = await repo.find_by_hash(conn, column, digest, SEARCH_LIMIT)
        if caller.role != Role.OPERATOR:
            rows = [r for r in rows if access.covers(caller, r.area_ids)]
        return pb.SearchResidentsResponse(
            residents=[self.render(r, caller) for r in rows]
        )

    # ---- the key service recipient roster ----

    async def SetCareProfile(
        self, request: pb.SetCareProfileRequest, context: Context
    ) -> pb.SetCareProfileResponse:
        caller = _caller(context, "SetCareProfile")
        v = Violations()
        resident_id = v.id("resident_id", request.resident_id)
        values = _care_profile(v, "care_profile", request.care_profile)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None

        async def set_profile(conn: Connection) -> pb.SetCareProfileResponse:
            row = await self.reachable(conn, caller, resident_id, "resident_id", True)
            _require_active(row, "resident_id")
            now = await conn.fetchval("SELECT now()")
            await repo.update_resident(conn, row.id, care_update_time=now, **values)
            return pb.SetCareProfileResponse(resident=pb.Resident(id=str(row.id)))

        first = await once(self._pool, caller, "SetCareProfile", request, set_profile)
        return pb.SetCareProfileResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def RemoveCareProfile(
        self, request: pb.RemoveCareProfileRequest, context: Context
    ) -> pb.RemoveCareProfileResponse:
        caller = _caller(context, "RemoveCareProfile")
        v = Violations()
        resident_id = v.id("resident_id", request.resident_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None

        async def remove(conn: Connection) -> pb.RemoveCareProfileResponse:
            row = await self.reachable(conn, caller, resident_id, "resident_id", True)
            await repo.update_resident(
                conn,
                row.id,
                care_reasons=[],
                care_needs=[],
                care_note="",
                squad_id=None,
                care_update_time=None,
            )
            return pb.RemoveCareProfileResponse(resident=pb.Resident(id=str(row.id)))

        first = await once(self._pool, caller, "RemoveCareProfile", request, remove)
        return pb.RemoveCareProfileResponse(
            resident=await self._reload(first.resident.id, caller)
        )

    async def ListKeyServiceRecipients(
        self, request: pb.ListKeyServiceRecipientsRequest, context: Context
    ) -> pb.ListKeyServiceRecipientsResponse:
        caller = _caller(context, "ListKeyServiceRecipients")
        rows, token = await self._list(caller, request, roster_only=True)
        return pb.ListKeyServiceRecipientsResponse(
            residents=[self.render(r, caller) for r in rows], next_page_token=token
        )

    # ---- shared steps ----

    async def reachable(
        self,
        conn: Connection,
        caller: Caller,
        resident_id: uuid.UUID,
        field: str,
        for_update: bool = False,
    ) -> ResidentRow:
        """The resident, if it exists and the caller may reach it."""
        row = await repo.get_resident(conn, resident_id, for_update=for_update)
        if row is None:
            raise NotFound("resident", field)
        same = await self._same_household(conn, caller, row.household_id)
        access.require_resident(caller, row.id, row.area_ids, same_household=same)
        return row

    def render(self, row: ResidentRow, caller: Caller) -> pb.Resident:
        """The resident as this caller may see it: numbers masked unless allowed."""
        national_id = self._keyring.decrypt(
            row.pii_key_id, row.national_id_cipher, f"{row.id}:national_id"
        )
        phone = self._keyring.decrypt(
            row.pii_key_id, row.phone_cipher, f"{row.id}:phone"
        )
        if not access.sees_full_national_id(caller, row.id):
            national_id = pii.mask_national_id(national_id)
        if not access.sees_full_phone(caller, row.id):
            phone = pii.mask_phone(phone)
        message = pb.Resident(
            id=str(row.id),
            household_id=str(row.household_id),
            micro_grid_id=str(row.micro_grid_id),
            name=row.name,
            national_id=national_id,
            phone=phone,
            contact=pb.ContactPreferences(
                channels=row.channels,  # type: ignore[arg-type]
                language=row.language,  # type: ignore[arg-type]
            ),
            verification_state=row.verification_state,  # type: ignore[arg-type]
            active=row.active,
            create_time=timestamp(row.create_time),
            update_time=timestamp(row.update_time),
        )
        if row.verify_time is not None:
            message.verify_time.CopyFrom(timestamp(row.verify_time))
        if row.care_update_time is not None:
            message.care_profile.CopyFrom(_care_proto(row))
        return message

    async def _reload(self, resident_id: str, caller: Caller) -> pb.Resident:
        # Mutations store only the resident's id as their answer, so that no
        # personal number is kept in the request_id store; the answer is
        # rendered afresh for the caller.
        async with self._pool.acquire() as conn:
            row = await repo.get_resident(conn, uuid.UUID(resident_id))
        assert row is not None
        return self.render(row, caller)

    async def _same_household(
        self, conn: Connection, caller: Caller, household_id: uuid.UUID
    ) -> bool:
        if caller.role != Role.RESIDENT:
            return False
        try:
            own_id = uuid.UUID(caller.subject)
        except ValueError:
            return False
        own = await repo.get_resident(conn, own_id)
        return own is not None and own.active and own.household_id == household_id

    async def _require_household(
        self, conn: Connection, caller: Caller, household: repo.HouseholdRow
    ) -> None:
        if caller.role == Role.RESIDENT:
            if not await self._same_household(conn, caller, household.id):
                raise PermissionDenied("a resident reaches only their own household")
            return
        access.require_area(caller, [*household.ancestor_ids, household.micro_grid_id])

    async def require_area_reach(self, caller: Caller, area_id: uuid.UUID) -> None:
        """Staff may name one of their areas or any area beneath one."""
        if caller.role in (Role.OPERATOR, Role.SYSTEM):
            return
        if caller.role in access.STAFF and str(area_id) in caller.area_ids:
            return
        area = await self.area(area_id, "area_id")
        access.require_area(caller, [*area.ancestor_ids, area.id])

    async def area(self, area_id: uuid.UUID, field: str) -> AreaInfo:
        area = await self._grids.get_area(area_id)
        if area is None:
            raise NotFound("area", field)
        return area

    async def _micro_grid(self, area_id: uuid.UUID, field: str) -> AreaInfo:
        area = await self.area(area_id, field)
        if area.kind != MICRO_GRID:
            raise FailedPrecondition(
                f"{field}: households belong to a micro-grid, not a larger area",
                subject=field,
            )
        return area

    async def _list(
        self,
        caller: Caller,
        request: pb.ListResidentsRequest | pb.ListKeyServiceRecipientsRequest,
        *,
        roster_only: bool,
    ) -> tuple[list[ResidentRow], str]:
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert area_id is not None
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListResidents", area_id, roster_only)
        cursor = decode_token(request.page_token, query)
        after = _uuid_cursor(cursor)
        await self.require_area_reach(caller, area_id)
        async with self._pool.acquire() as conn:
            rows = await repo.list_residents(
                conn, area_id, roster_only=roster_only, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [str(page[-1].id)]) if more else ""
        return page, token

    def _sealed(
        self, resident_id: uuid.UUID, national_id: str, phone: str
    ) -> dict[str, Any]:
        keyring = self._keyring
        return {
            "pii_key_id": keyring.active,
            "national_id_cipher": keyring.encrypt(
                national_id, f"{resident_id}:national_id"
            ),
            "phone_cipher": keyring.encrypt(phone, f"{resident_id}:phone"),
        }

    def _new_phone(self, row: ResidentRow, phone: str) -> dict[str, Any]:
        # Both numbers share the row's key id, so both are sealed again.
        national_id = self._keyring.decrypt(
            row.pii_key_id, row.national_id_cipher, f"{row.id}:national_id"
        )
        return {
            **self._sealed(row.id, national_id, phone),
            "phone_hash": self._keyring.lookup_hash("phone", phone),
        }

    def _updates(
        self, v: Violations, resident: pb.Resident, paths: Sequence[str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in paths:
            values["name"] = v.text(
                "resident.name", resident.name, max_length=config.NAME_MAX
            )
        if "phone" in paths:
            values["phone"] = _phone(v, "resident.phone", resident.phone)
        if "contact" in paths:
            channels, language = _contact(v, "resident.contact", resident.contact)
            values.update(channels=channels, language=language)
        return values


def _caller(context: Context, method: str) -> Caller:
    caller = caller_of(context)
    access.require_role(caller, method)
    return caller


def _required_id(field: str, value: str) -> uuid.UUID:
    v = Violations()
    parsed = v.id(field, value)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _national_id(v: Violations, field: str, value: str) -> str:
    if not value.strip():
        v.add(field, "is required")
        return ""
    normalised = pii.normalise_national_id(value)
    if normalised is None:
        v.add(field, "must be an 18-character resident ID number with a valid check")
        return ""
    return normalised


def _phone(v: Violations, field: str, value: str) -> str:
    if not value.strip():
        v.add(field, "is required")
        return ""
    normalised = pii.normalise_phone(value)
    if normalised is None:
        v.add(field, "must be an 11-digit mainland mobile number")
        return ""
    return normalised


def _contact(
    v: Violations, field: str, contact: pb.ContactPreferences
) -> tuple[list[int], int]:
    channels = list(contact.channels)
    if any(c not in CHANNELS for c in channels):
        v.add(f"{field}.channels", "must be app, text message or group chat")
    elif len(set(channels)) != len(channels):
        v.add(f"{field}.channels", "must not repeat a channel")
    language = contact.language or pb.LANGUAGE_ZH
    if language not in LANGUAGES:
        v.add(f"{field}.language", "must be zh or en")
    return [int(c) for c in channels], int(language)


def _care_profile(v: Violations, field: str, profile: pb.CareProfile) -> dict[str, Any]:
    reasons, needs = list(profile.reasons), list(profile.needs)
    if not reasons:
        v.add(f"{field}.reasons", "needs at least one reason")
    elif any(r not in REASONS for r in reasons) or len(set(reasons)) != len(reasons):
        v.add(f"{field}.reasons", "must be known reasons, each once")
    if any(n not in NEEDS for n in needs) or len(set(needs)) != len(needs):
        v.add(f"{field}.needs", "must be known needs, each once")
    note = v.text(
        f"{field}.note", profile.note, max_length=config.CARE_NOTE_MAX, required=False
    )
    squad_id = v.id(f"{field}.squad_id", profile.squad_id, required=False)
    return {
        "care_reasons": reasons,
        "care_needs": needs,
        "care_note": note,
        "squad_id": squad_id,
    }


def _care_proto(row: ResidentRow) -> pb.CareProfile:
    profile = pb.CareProfile(
        reasons=row.care_reasons,  # type: ignore[arg-type]
        needs=row.care_needs,  # type: ignore[arg-type]
        note=row.care_note,
        squad_id=str(row.squad_id) if row.squad_id else "",
    )
    if row.care_update_time is not None:
        profile.update_time.CopyFrom(timestamp(row.care_update_time))
    return profile


def _require_active(row: ResidentRow, field: str) -> None:
    if not row.active:
        raise FailedPrecondition(f"{field}: the resident is deactivated", subject=field)


async def _household(
    conn: Connection, household_id: uuid.UUID, field: str, *, for_update: bool = False
) -> repo.HouseholdRow:
    row = await repo.get_household(conn, household_id, for_update=for_update)
    if row is None:
        raise NotFound("household", field)
    return row


def household_proto(row: repo.HouseholdRow) -> pb.Household:
    return pb.Household(
        id=str(row.id),
        micro_grid_id=str(row.micro_grid_id),
        address=row.address,
        area_ids=[str(a) for a in row.ancestor_ids],
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def _uuid_cursor(cursor: list[Any] | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        (raw,) = cursor
        return uuid.UUID(str(raw))
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
