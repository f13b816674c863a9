"""GridsService: the administrative hierarchy over gRPC."""

import uuid
from typing import Any

import asyncpg
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.db import Connection
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.idempotency import run_once
from services.common.identity import Role, caller_of
from services.common.pagination import (
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)
from services.common.validation import Violations
from services.grids import config
from services.grids import repository as repo
from services.grids.repository import AreaRow, ModeRow

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

KIND_NAMES: dict[int, str] = {
    pb.AREA_KIND_CITY: "city",
    pb.AREA_KIND_TOWN: "town",
    pb.AREA_KIND_VILLAGE: "village",
    pb.AREA_KIND_GRID: "grid",
    pb.AREA_KIND_MICRO_GRID: "micro-grid",
}
EDITORS = (Role.OPERATOR, Role.SYSTEM)
MODES = {pb.MODE_PEACETIME, pb.MODE_WARTIME}
# Areas a mode is switched for: a whole city, town or village at once.
SWITCHABLE = (pb.AREA_KIND_CITY, pb.AREA_KIND_TOWN, pb.AREA_KIND_VILLAGE)
REASON_MAX = 500


class GridsServicer(pb_grpc.GridsServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def CreateArea(
        self, request: pb.CreateAreaRequest, context: Context
    ) -> pb.CreateAreaResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        kind = _kind(v, "kind", request.kind)
        name = v.text("name", request.name, max_length=config.AREA_NAME_MAX)
        code = v.text(
            "code", request.code, max_length=config.AREA_CODE_MAX, required=False
        )
        is_city = kind == pb.AREA_KIND_CITY
        parent_id = v.id("parent_id", request.parent_id, required=not is_city)
        if is_city and request.parent_id:
            v.add("parent_id", "must be empty for a city")
        v.request_id(request.request_id)
        v.raise_if_any()

        async def create(conn: Connection) -> pb.CreateAreaResponse:
            parent = None
            if parent_id is not None:
                parent = await _existing(conn, parent_id, "parent_id")
                _check_parent_kind(kind, parent, "parent_id")
            area = await repo.insert_area(
                conn, kind=kind, name=name, parent=parent, code=code or None
            )
            return pb.CreateAreaResponse(area=to_proto(area))

        return await run_once(
            self._pool,
            caller=caller,
            method="CreateArea",
            request=request,
            response_type=pb.CreateAreaResponse,
            action=create,
        )

    async def GetArea(
        self, request: pb.GetAreaRequest, context: Context
    ) -> pb.GetAreaResponse:
        caller_of(context)
        v = Violations()
        area_id = v.id("id", request.id)
        v.raise_if_any()
        assert area_id is not None
        async with self._pool.acquire() as conn:
            area = await _existing(conn, area_id, "id")
        return pb.GetAreaResponse(area=to_proto(area))

    async def ListAreas(
        self, request: pb.ListAreasRequest, context: Context
    ) -> pb.ListAreasResponse:
        caller_of(context)
        v = Violations()
        parent_id = v.id("parent_id", request.parent_id, required=False)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        limit = page_size(request.page_size)
        query = fingerprint("ListAreas", parent_id)
        cursor = decode_token(request.page_token, query)
        after = _area_cursor(cursor)

        async with self._pool.acquire() as conn:
            if parent_id is not None:
                await _existing(conn, parent_id, "parent_id")
            rows = await repo.list_children(
                conn, parent_id, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].name, str(page[-1].id)]) if more else ""
        return pb.ListAreasResponse(
            areas=[to_proto(a) for a in page], next_page_token=token
        )

    async def RenameArea(
        self, request: pb.RenameAreaRequest, context: Context
    ) -> pb.RenameAreaResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        area_id = v.id("id", request.id)
        name = v.text("name", request.name, max_length=config.AREA_NAME_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert area_id is not None

        async def rename(conn: Connection) -> pb.RenameAreaResponse:
            area = await _existing(conn, area_id, "id", for_update=True)
            if area.name != name:
                area = await repo.rename_area(conn, area_id, name)
            return pb.RenameAreaResponse(area=to_proto(area))

        return await run_once(
            self._pool,
            caller=caller,
            method="RenameArea",
            request=request,
            response_type=pb.RenameAreaResponse,
            action=rename,
        )

    async def MoveArea(
        self, request: pb.MoveAreaRequest, context: Context
    ) -> pb.MoveAreaResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        area_id = v.id("id", request.id)
        new_parent_id = v.id("new_parent_id", request.new_parent_id)
        if area_id is not None and area_id == new_parent_id:
            v.add("new_parent_id", "must not be the area itself")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert area_id is not None
        assert new_parent_id is not None

        async def move(conn: Connection) -> pb.MoveAreaResponse:
            area = await _existing(conn, area_id, "id", for_update=True)
            new_parent = await _existing(
                conn, new_parent_id, "new_parent_id", for_update=True
            )
            _check_parent_kind(area.kind, new_parent, "new_parent_id")
            if area.id in new_parent.ancestor_ids:
                raise FailedPrecondition(
                    "new_parent_id: lies inside the area; the move would make a cycle",
                    subject="new_parent_id",
                )
            if area.parent_id != new_parent.id:
                area = await repo.move_area(conn, area, new_parent)
            return pb.MoveAreaResponse(area=to_proto(area))

        return await run_once(
            self._pool,
            caller=caller,
            method="MoveArea",
            request=request,
            response_type=pb.MoveAreaResponse,
            action=move,
        )

    async def SetAreaMode(
        self, request: pb.SetAreaModeRequest, context: Context
    ) -> pb.SetAreaModeResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.mode not in MODES:
            v.add("mode", "must be peacetime or wartime")
        reason = v.text("reason", request.reason, max_length=REASON_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert area_id is not None

        async def switch(conn: Connection) -> pb.SetAreaModeResponse:
            area = await _existing(conn, area_id, "area_id", for_update=True)
            if area.kind not in SWITCHABLE:
                raise FailedPrecondition(
                    f"area_id: a mode is switched for a city, town or village,"
                    f" not a {KIND_NAMES[area.kind]}",
                    subject="area_id",
                )
            row = await repo.set_mode(
                conn, area, mode=request.mode, reason=reason, switched_by=caller.subject
            )
            return pb.SetAreaModeResponse(area_mode=mode_proto(area, row))

        return await run_once(
            self._pool,
            caller=caller,
            method="SetAreaMode",
            request=request,
            response_type=pb.SetAreaModeResponse,
            action=switch,
        )

    async def GetAreaMode(
        self, request: pb.GetAreaModeRequest, context: Context
    ) -> pb.GetAreaModeResponse:
        caller_of(context)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        v.raise_if_any()
        assert area_id is not None
        async with self._pool.acquire() as conn:
            area = await _existing(conn, area_id, "area_id")
            row = await repo.effective_mode(conn, area)
        return pb.GetAreaModeResponse(area_mode=mode_proto(area, row))


def mode_proto(area: AreaRow, row: ModeRow | None) -> pb.AreaMode:
    """The mode in force on area; peacetime when no switch covers it."""
    if row is None:
        return pb.AreaMode(area_id=str(area.id), mode=pb.MODE_PEACETIME)
    return pb.AreaMode(
        area_id=str(area.id),
        mode=row.mode,  # type: ignore[arg-type]
        switched_area_id=str(row.area_id),
        reason=row.reason,
        switched_by=row.switched_by,
        switch_time=_timestamp(row.switch_time),
    )


def to_proto(area: AreaRow) -> pb.Area:
    message = pb.Area(
        id=str(area.id),
        kind=area.kind,  # type: ignore[arg-type]
        name=area.name,
        parent_id=str(area.parent_id) if area.parent_id else "",
        code=area.code or "",
        ancestor_ids=[str(a) for a in area.ancestor_ids],
        create_time=_timestamp(area.create_time),
        update_time=_timestamp(area.update_time),
    )
    return message


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _kind(v: Violations, field: str, value: int) -> int:
    if value not in KIND_NAMES:
        v.add(field, "must be one of city, town, village, grid or micro-grid")
    return value


async def _existing(
    conn: Connection,
    area_id: uuid.UUID,
    field: str,
    *,
    for_update: bool = False,
) -> AreaRow:
    area = await repo.get_area(conn, area_id, for_update=for_update)
    if area is None:
        raise NotFound("area", field)
    return area


def _check_parent_kind(kind: int, parent: AreaRow, field: str) -> None:
    """Each kind sits directly under the kind one level above it."""
    if kind == pb.AREA_KIND_CITY:
        raise FailedPrecondition(f"{field}: a city has no parent", subject=field)
    if parent.kind != kind - 1:
        raise FailedPrecondition(
            f"{field}: a {KIND_NAMES[kind]} must sit under a {KIND_NAMES[kind - 1]},"
            f" not a {KIND_NAMES[parent.kind]}",
            subject=field,
        )


def _area_cursor(cursor: list[Any] | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        name, raw_id = cursor
        return str(name), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
