"""Small pieces the grids servicers share: roles, timestamps, areas, cursors."""

import uuid
from datetime import UTC, datetime
from typing import Any

from cloudark.grids.v1 import grids_pb2 as grids_pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.db import Connection
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller, Role
from services.grids import repository as repo
from services.grids.repository import AreaRow

# Everyone who works the grid, as opposed to residents and merchants.
STAFF = (
    Role.GRID_WORKER,
    Role.VOLUNTEER,
    Role.CADRE,
    Role.DEPARTMENT,
    Role.OPERATOR,
    Role.SYSTEM,
)
# Roles whose reach is the areas they answer for (x-cloudark-areas): a grid
# worker's grids, a cadre's villages, and everything beneath them.
SCOPED = (Role.GRID_WORKER, Role.CADRE)
KIND_NAMES: dict[int, str] = {
    grids_pb.AREA_KIND_CITY: "city",
    grids_pb.AREA_KIND_TOWN: "town",
    grids_pb.AREA_KIND_VILLAGE: "village",
    grids_pb.AREA_KIND_GRID: "grid",
    grids_pb.AREA_KIND_MICRO_GRID: "micro-grid",
}


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


async def existing_area(conn: Connection, area_id: uuid.UUID, field: str) -> AreaRow:
    area = await repo.get_area(conn, area_id)
    if area is None:
        raise NotFound("area", field)
    return area


def require_kind(area: AreaRow, field: str, *kinds: int) -> None:
    """FAILED_PRECONDITION unless the area is of one of kinds."""
    if area.kind not in kinds:
        wanted = " or ".join(KIND_NAMES[k] for k in kinds)
        raise FailedPrecondition(
            f"{field}: must be a {wanted}, not a {KIND_NAMES[area.kind]}",
            subject=field,
        )


def village_of(area: AreaRow) -> uuid.UUID | None:
    """The village an area lies in (itself for a village); None above villages."""
    if area.kind == grids_pb.AREA_KIND_VILLAGE:
        return area.id
    if area.kind > grids_pb.AREA_KIND_VILLAGE:
        return area.ancestor_ids[2]
    return None


def bad_token() -> InvalidArgument:
    return InvalidArgument.field(
        "page_token", "is not a page token this service issued"
    )


def id_cursor(cursor: list[Any] | None) -> uuid.UUID | None:
    """A keyset cursor holding one id."""
    if cursor is None:
        return None
    try:
        (raw,) = cursor
        return uuid.UUID(str(raw))
    except (ValueError, TypeError):
        raise bad_token() from None


def time_cursor(cursor: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    """A keyset cursor holding a time (ISO 8601) and an id."""
    if cursor is None:
        return None
    try:
        raw_time, raw_id = cursor
        return datetime.fromisoformat(str(raw_time)), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise bad_token() from None


def require_in_scope(caller: Caller, area: AreaRow, field: str) -> None:
    """Grid workers and cadres reach only their own areas and what lies beneath."""
    if caller.role not in SCOPED:
        return
    reach = {str(area.id), *(str(a) for a in area.ancestor_ids)}
    if reach.isdisjoint(caller.area_ids):
        raise PermissionDenied(f"{field}: outside the areas this caller answers for")


async def require_area_in_scope(
    conn: Connection, caller: Caller, area_id: uuid.UUID, field: str
) -> AreaRow:
    """The area (NOT_FOUND if unknown), if the caller may reach it."""
    area = await existing_area(conn, area_id, field)
    require_in_scope(caller, area, field)
    return area
