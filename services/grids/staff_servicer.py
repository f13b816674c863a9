"""StaffService: helpers, squads, availability, load and dispatch ranking."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from cloudark.grids.v1 import grids_pb2 as grids_pb
from cloudark.grids.v1 import staff_pb2 as pb
from cloudark.grids.v1 import staff_pb2_grpc as pb_grpc

from services.common.db import Connection
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.idempotency import ResponseT, run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import (
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)
from services.common.validation import Violations
from services.grids import config, shared
from services.grids import staff_repository as repo
from services.grids.staff_repository import HelperPlace, HelperRow, SquadRow
from services.grids.taxonomy import CATEGORY_CODES

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

EDITORS = (Role.OPERATOR, Role.SYSTEM, Role.CADRE)
DISPATCHERS = (Role.OPERATOR, Role.SYSTEM, Role.GRID_WORKER, Role.CADRE)
AVAILABILITY = {pb.AVAILABILITY_ON_DUTY, pb.AVAILABILITY_OFF_DUTY, pb.AVAILABILITY_BUSY}
MEMBER_KINDS = set(pb.MemberKind.values()) - {pb.MEMBER_KIND_UNSPECIFIED}
DEPARTMENT_KINDS = set(pb.DepartmentKind.values()) - {pb.DEPARTMENT_KIND_UNSPECIFIED}
HELPER_KINDS = set(pb.HelperKind.values()) - {pb.HELPER_KIND_UNSPECIFIED}
NEEDS = set(pb.NeedKind.values()) - {pb.NEED_KIND_UNSPECIFIED}

# The area kinds each kind of helper serves, and whether it serves several.
# Squad members serve their squad's village and name no areas themselves.
PLACE_KINDS: dict[int, tuple[tuple[int, ...], bool]] = {
    pb.HELPER_KIND_GRID_WORKER: ((grids_pb.AREA_KIND_GRID,), True),
    pb.HELPER_KIND_VOLUNTEER: ((grids_pb.AREA_KIND_MICRO_GRID,), False),
    pb.HELPER_KIND_CADRE: ((grids_pb.AREA_KIND_VILLAGE,), False),
    pb.HELPER_KIND_DEPARTMENT_CONTACT: (
        (
            grids_pb.AREA_KIND_CITY,
            grids_pb.AREA_KIND_TOWN,
            grids_pb.AREA_KIND_VILLAGE,
        ),
        False,
    ),
}


class StaffServicer(pb_grpc.StaffServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _once(
        self,
        caller: Caller,
        method: str,
        request: Any,
        response_type: type[ResponseT],
        action: Callable[[Connection], Awaitable[ResponseT]],
    ) -> ResponseT:
        return await run_once(
            self._pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
            action=action,
        )

    async def RegisterHelper(
        self, request: pb.RegisterHelperRequest, context: Context
    ) -> pb.RegisterHelperResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        kind = request.kind
        if kind not in HELPER_KINDS:
            v.add("kind", "must be a helper kind")
        person_id = v.text(
            "person_id", request.person_id, max_length=config.PERSON_ID_MAX
        )
        area_ids = _area_ids(v, kind, request.area_ids)
        supervisor_id = v.id("supervisor_id", request.supervisor_id, required=False)
        _check_department(v, kind, request.department_kind, request.handled_categories)
        squad_id = _check_squad(v, kind, request.squad_id, request.member_kind)
        availability = request.availability or pb.AVAILABILITY_OFF_DUTY
        if availability not in AVAILABILITY:
            v.add("availability", "must be on duty, off duty or busy")
        v.request_id(request.request_id)
        v.raise_if_any()

        async def register(conn: Connection) -> pb.RegisterHelperResponse:
            places = await _places(conn, kind, area_ids, squad_id)
            if supervisor_id is not None:
                await _active_helper(conn, supervisor_id, "supervisor_id")
            helper = await repo.insert_helper(
                conn,
                kind=kind,
                person_id=person_id,
                places=places,
                supervisor_id=supervisor_id,
                department_kind=request.department_kind,
                handled_categories=list(request.handled_categories),
                squad_id=squad_id,
                member_kind=request.member_kind,
                availability=availability,
            )
            return pb.RegisterHelperResponse(helper=helper_proto(helper))

        return await self._once(
            caller, "RegisterHelper", request, pb.RegisterHelperResponse, register
        )

    async def GetHelper(
        self, request: pb.GetHelperRequest, context: Context
    ) -> pb.GetHelperResponse:
        caller_of(context).require(*shared.STAFF)
        v = Violations()
        helper_id = v.id("id", request.id)
        v.raise_if_any()
        assert helper_id is not None
        async with self._pool.acquire() as conn:
            helper = await _existing_helper(conn, helper_id, "id")
        return pb.GetHelperResponse(helper=helper_proto(helper))

    async def UpdateHelper(
        self, request: pb.UpdateHelperRequest, context: Context
    ) -> pb.UpdateHelperResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        helper_id = v.id("id", request.id)
        area_ids = [
            v.id(f"area_ids[{i}]", raw) for i, raw in enumerate(request.area_ids)
        ]
        supervisor_id = v.id("supervisor_id", request.supervisor_id, required=False)
        if helper_id is not None and supervisor_id == helper_id:
            v.add("supervisor_id", "must not be the helper itself")
        for i, category in enumerate(request.handled_categories):
            if category not in CATEGORY_CODES:
                v.add(f"handled_categories[{i}]", "is not a case category")
        if request.member_kind and request.member_kind not in MEMBER_KINDS:
            v.add("member_kind", "is not a member kind")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert helper_id is not None

        async def update(conn: Connection) -> pb.UpdateHelperResponse:
            helper = await _existing_helper(conn, helper_id, "id", for_update=True)
            _check_update_fits(helper, request)
            checked = [a for a in area_ids if a is not None]
            places = await _places(conn, helper.kind, checked, helper.squad_id)
            if supervisor_id is not None:
                await _active_helper(conn, supervisor_id, "supervisor_id")
            helper = await repo.update_helper(
                conn,
                helper,
                places=places,
                supervisor_id=supervisor_id,
                handled_categories=list(request.handled_categories),
                member_kind=request.member_kind,
            )
            return pb.UpdateHelperResponse(helper=helper_proto(helper))

        return await self._once(
            caller, "UpdateHelper", request, pb.UpdateHelperResponse, update
        )

    async def DeactivateHelper(
        self, request: pb.DeactivateHelperRequest, context: Context
    ) -> pb.DeactivateHelperResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        helper_id = v.id("id", request.id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert helper_id is not None

        async def deactivate(conn: Connection) -> pb.DeactivateHelperResponse:
            helper = await _existing_helper(conn, helper_id, "id", for_update=True)
            if helper.active:
                helper = await repo.set_helper_fields(
                    conn, helper_id, active=False, availability=pb.AVAILABILITY_OFF_DUTY
                )
            return pb.DeactivateHelperResponse(helper=helper_proto(helper))

        return await self._once(
            caller, "DeactivateHelper", request, pb.DeactivateHelperResponse, deactivate
        )

    async def ListHelpers(
        self, request: pb.ListHelpersRequest, context: Context
    ) -> pb.ListHelpersResponse:
        caller_of(context).require(*shared.STAFF)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.kind and request.kind not in HELPER_KINDS:
            v.add("kind", "must be a helper kind")
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert area_id is not None
        limit = page_size(request.page_size)
        query = fingerprint("ListHelpers", area_id, request.kind)
        after = shared.id_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            await shared.existing_area(conn, area_id, "area_id")
            rows = await repo.list_helpers(
                conn, area_id, request.kind, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [str(page[-1].id)]) if more else ""
        return pb.ListHelpersResponse(
            helpers=[helper_proto(h) for h in page], next_page_token=token
        )

    async def SetHelperAvailability(
        self, request: pb.SetHelperAvailabilityRequest, context: Context
    ) -> pb.SetHelperAvailabilityResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF)
        v = Violations()
        helper_id = v.id("id", request.id)
        if request.availability not in AVAILABILITY:
            v.add("availability", "must be on duty, off duty or busy")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert helper_id is not None

        async def set_availability(
            conn: Connection,
        ) -> pb.SetHelperAvailabilityResponse:
            helper = await _existing_helper(conn, helper_id, "id", for_update=True)
            _require_self_or_manager(caller, helper)
            if not helper.active:
                raise FailedPrecondition("id: the helper is deactivated", subject="id")
            if helper.availability != request.availability:
                helper = await repo.set_helper_fields(
                    conn, helper_id, availability=request.availability
                )
            return pb.SetHelperAvailabilityResponse(helper=helper_proto(helper))

        return await self._once(
            caller,
            "SetHelperAvailability",
            request,
            pb.SetHelperAvailabilityResponse,
            set_availability,
        )

    async def AdjustHelperLoad(
        self, request: pb.AdjustHelperLoadRequest, context: Context
    ) -> pb.AdjustHelperLoadResponse:
        caller = caller_of(context)
        caller.require(Role.OPERATOR, Role.SYSTEM)
        v = Violations()
        helper_id = v.id("id", request.id)
        if request.delta == 0:
            v.add("delta", "must not be zero")
        if not request.request_id:
            v.add("request_id", "is required: a replayed adjustment must count once")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert helper_id is not None

        async def adjust(conn: Connection) -> pb.AdjustHelperLoadResponse:
            helper = await repo.adjust_load(conn, helper_id, request.delta)
            if helper is None:
                await _existing_helper(conn, helper_id, "id")
                raise FailedPrecondition(
                    "delta: would make the helper's load negative", subject="delta"
                )
            return pb.AdjustHelperLoadResponse(helper=helper_proto(helper))

        return await self._once(
            caller, "AdjustHelperLoad", request, pb.AdjustHelperLoadResponse, adjust
        )

    async def RankHelpers(
        self, request: pb.RankHelpersRequest, context: Context
    ) -> pb.RankHelpersResponse:
        caller_of(context).require(*DISPATCHERS)
        v = Violations()
        micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
        if request.need not in NEEDS:
            v.add("need", "must be a kind of need")
        if not 0 <= request.limit <= config.RANK_LIMIT_MAX:
            v.add("limit", f"must be between 0 and {config.RANK_LIMIT_MAX}")
        v.raise_if_any()
        assert micro_grid_id is not None
        everyone = request.need != pb.NEED_KIND_CASE_FOLLOW_UP
        limit = request.limit or config.RANK_LIMIT_DEFAULT

        async with self._pool.acquire() as conn:
            ranked = await repo.rank_helpers(
                conn, micro_grid_id, everyone=everyone, limit=limit
            )
            if not ranked:
                # Nobody on duty, or no such micro-grid: only then look closer.
                area = await shared.existing_area(conn, micro_grid_id, "micro_grid_id")
                shared.require_kind(
                    area, "micro_grid_id", grids_pb.AREA_KIND_MICRO_GRID
                )
        return pb.RankHelpersResponse(
            candidates=[
                pb.RankedHelper(helper=helper_proto(h), tier=tier)  # type: ignore[arg-type]
                for h, tier in ranked
            ]
        )

    async def CreateSquad(
        self, request: pb.CreateSquadRequest, context: Context
    ) -> pb.CreateSquadResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        village_id = v.id("village_id", request.village_id)
        name = v.text("name", request.name, max_length=config.SQUAD_NAME_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert village_id is not None

        async def create(conn: Connection) -> pb.CreateSquadResponse:
            village = await shared.existing_area(conn, village_id, "village_id")
            shared.require_kind(village, "village_id", grids_pb.AREA_KIND_VILLAGE)
            squad = await repo.insert_squad(conn, village_id, name)
            return pb.CreateSquadResponse(squad=squad_proto(squad))

        return await self._once(
            caller, "CreateSquad", request, pb.CreateSquadResponse, create
        )

    async def ListSquads(
        self, request: pb.ListSquadsRequest, context: Context
    ) -> pb.ListSquadsResponse:
        caller_of(context).require(*shared.STAFF)
        v = Violations()
        village_id = v.id("village_id", request.village_id)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert village_id is not None
        limit = page_size(request.page_size)
        query = fingerprint("ListSquads", village_id)
        after = _name_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            village = await shared.existing_area(conn, village_id, "village_id")
            shared.require_kind(village, "village_id", grids_pb.AREA_KIND_VILLAGE)
            rows = await repo.list_squads(
                conn, village_id, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].name, str(page[-1].id)]) if more else ""
        return pb.ListSquadsResponse(
            squads=[squad_proto(s) for s in page], next_page_token=token
        )


def helper_proto(helper: HelperRow) -> pb.Helper:
    return pb.Helper(
        id=str(helper.id),
        kind=helper.kind,  # type: ignore[arg-type]
        person_id=helper.person_id,
        area_ids=[str(a) for a in helper.area_ids],
        supervisor_id=str(helper.supervisor_id) if helper.supervisor_id else "",
        department_kind=helper.department_kind,  # type: ignore[arg-type]
        handled_categories=helper.handled_categories,  # type: ignore[arg-type]
        squad_id=str(helper.squad_id) if helper.squad_id else "",
        member_kind=helper.member_kind,  # type: ignore[arg-type]
        availability=helper.availability,  # type: ignore[arg-type]
        load=helper.load,
        active=helper.active,
        create_time=shared.timestamp(helper.create_time),
        update_time=shared.timestamp(helper.update_time),
    )


def squad_proto(squad: SquadRow) -> pb.Squad:
    return pb.Squad(
        id=str(squad.id),
        village_id=str(squad.village_id),
        name=squad.name,
        create_time=shared.timestamp(squad.create_time),
    )


def _area_ids(v: Violations, kind: int, raw_ids: Any) -> list[uuid.UUID]:
    """Parses area_ids and checks their number against the helper's kind."""
    ids = [v.id(f"area_ids[{i}]", raw) for i, raw in enumerate(raw_ids)]
    if kind == pb.HELPER_KIND_SQUAD_MEMBER:
        if raw_ids:
            v.add("area_ids", "must be empty for a squad member (its squad's village)")
    elif kind in PLACE_KINDS:
        _, several = PLACE_KINDS[kind]
        if not raw_ids:
            v.add("area_ids", "is required")
        elif not several and len(raw_ids) > 1:
            v.add("area_ids", "must hold exactly one area for this kind of helper")
        elif len(set(raw_ids)) != len(raw_ids):
            v.add("area_ids", "must not repeat an area")
    return [i for i in ids if i is not None]


def _check_department(
    v: Violations, kind: int, department_kind: int, categories: Any
) -> None:
    if kind == pb.HELPER_KIND_DEPARTMENT_CONTACT:
        if department_kind not in DEPARTMENT_KINDS:
            v.add("department_kind", "is required for a department contact")
    elif department_kind:
        v.add("department_kind", "is for department contacts only")
    elif categories:
        v.add("handled_categories", "is for department contacts only")
    for i, category in enumerate(categories):
        if category not in CATEGORY_CODES:
            v.add(f"handled_categories[{i}]", "is not a case category")


def _check_squad(
    v: Violations, kind: int, raw_squad_id: str, member_kind: int
) -> uuid.UUID | None:
    is_member = kind == pb.HELPER_KIND_SQUAD_MEMBER
    squad_id = v.id("squad_id", raw_squad_id, required=is_member)
    if is_member and member_kind not in MEMBER_KINDS:
        v.add("member_kind", "is required for a squad member")
    if not is_member and raw_squad_id:
        v.add("squad_id", "is for squad members only")
    if not is_member and member_kind:
        v.add("member_kind", "is for squad members only")
    return squad_id


def _check_update_fits(helper: HelperRow, request: pb.UpdateHelperRequest) -> None:
    """The kind-dependent rules of an update, once the helper's kind is known."""
    v = Violations()
    _area_ids(v, helper.kind, request.area_ids)
    is_contact = helper.kind == pb.HELPER_KIND_DEPARTMENT_CONTACT
    if request.handled_categories and not is_contact:
        v.add("handled_categories", "is for department contacts only")
    is_member = helper.kind == pb.HELPER_KIND_SQUAD_MEMBER
    if is_member and not request.member_kind:
        v.add("member_kind", "is required for a squad member")
    if request.member_kind and not is_member:
        v.add("member_kind", "is for squad members only")
    v.raise_if_any()


async def _places(
    conn: Connection, kind: int, area_ids: list[uuid.UUID], squad_id: uuid.UUID | None
) -> list[HelperPlace]:
    """The areas a helper of kind serves, checked to be of the right kinds."""
    if kind == pb.HELPER_KIND_SQUAD_MEMBER:
        assert squad_id is not None
        squad = await repo.get_squad(conn, squad_id)
        if squad is None:
            raise NotFound("squad", "squad_id")
        return [HelperPlace(squad.village_id, squad.village_id)]
    kinds, _ = PLACE_KINDS[kind]
    places = []
    for i, area_id in enumerate(area_ids):
        field = f"area_ids[{i}]"
        area = await shared.existing_area(conn, area_id, field)
        shared.require_kind(area, field, *kinds)
        places.append(HelperPlace(area.id, shared.village_of(area)))
    return places


async def _existing_helper(
    conn: Connection, helper_id: uuid.UUID, field: str, *, for_update: bool = False
) -> HelperRow:
    helper = await repo.get_helper(conn, helper_id, for_update=for_update)
    if helper is None:
        raise NotFound("helper", field)
    return helper


async def _active_helper(conn: Connection, helper_id: uuid.UUID, field: str) -> None:
    helper = await _existing_helper(conn, helper_id, field)
    if not helper.active:
        raise FailedPrecondition(f"{field}: the helper is deactivated", subject=field)


def _require_self_or_manager(caller: Caller, helper: HelperRow) -> None:
    """Helpers set their own availability; operators and the system anyone's."""
    if caller.role in (Role.OPERATOR, Role.SYSTEM):
        return
    if caller.subject != helper.person_id:
        raise PermissionDenied("only the helper itself may set its availability")


def _name_cursor(cursor: list[Any] | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        name, raw_id = cursor
        return str(name), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise shared.bad_token() from None
