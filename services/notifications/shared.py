"""Helpers both servicers of the notifications process use: ids, page
sizes, cursors and timestamps."""

import uuid
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument
from services.common.pagination import page_size as clamppage_size
from services.common.validation import Violations


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def required_id(field: str, value: str) -> uuid.UUID:
    v = Violations()
    parsed = v.id(field, value)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def page_size(v: Violations, requested: int) -> int:
    if requested < 0:
        v.add("page_size", "must not be negative")
        return 1
    return clamppage_size(requested)


def bad_token() -> InvalidArgument:
    return InvalidArgument.field(
        "page_token", "is not a page token this service issued"
    )


def int_cursor(cursor: list[Any] | None) -> int:
    if cursor is None:
        return 0
    try:
        (value,) = cursor
        return int(value)
    except (ValueError, TypeError):
        raise bad_token() from None


def uuid_cursor(cursor: list[Any] | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        (value,) = cursor
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise bad_token() from None


def time_cursor(cursor: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        moment, raw_id = cursor
        return datetime.fromisoformat(str(moment)), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise bad_token() from None
