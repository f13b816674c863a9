"""Checks and conversions the merchants servicers share."""

import uuid
from datetime import datetime
from typing import Any

from cloudark.merchants.v1 import merchants_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.db import Connection
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.identity import Caller
from services.common.validation import Violations
from services.merchants import access
from services.merchants import repository as repo


def page_size_violation(v: Violations, value: int) -> None:
    if value < 0:
        v.add("page_size", "must not be negative")


def required_id(field: str, value: str) -> uuid.UUID:
    v = Violations()
    parsed = v.id(field, value)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def owner_filter(
    caller: Caller, request: pb.ListBookingsRequest | pb.ListRedemptionsRequest
) -> tuple[str, uuid.UUID]:
    """("resident_id" or "merchant_id", the owner) of a list request, checked
    against the caller: residents and merchants list only their own."""
    v = Violations()
    resident_id = v.id("resident_id", request.resident_id, required=False)
    merchant_id = v.id("merchant_id", request.merchant_id, required=False)
    if bool(request.resident_id) == bool(request.merchant_id):
        v.add("resident_id", "give exactly one of resident_id and merchant_id")
    page_size_violation(v, request.page_size)
    v.raise_if_any()
    if resident_id is not None:
        access.require_resident(caller, resident_id)
        return "resident_id", resident_id
    assert merchant_id is not None
    access.require_merchant(caller, merchant_id)
    return "merchant_id", merchant_id


async def merchant_of(
    conn: Connection, merchant_id: uuid.UUID, field: str, *, for_update: bool = False
) -> repo.MerchantRow:
    row = await repo.get_merchant(conn, merchant_id, for_update=for_update)
    if row is None:
        raise NotFound("merchant", field)
    return row


async def offer_of(
    conn: Connection, offer_id: uuid.UUID, field: str, *, for_update: bool = False
) -> repo.OfferRow:
    row = await repo.get_offer(conn, offer_id, for_update=for_update)
    if row is None:
        raise NotFound("offer", field)
    return row


def require_trading(merchant: repo.MerchantRow, field: str) -> None:
    """Only a verified merchant takes redemptions and bookings."""
    if merchant.state == repo.SUSPENDED:
        raise FailedPrecondition(
            f"{field}: the merchant is suspended", subject=field, kind="SUSPENDED"
        )
    if merchant.state != repo.VERIFIED:
        raise FailedPrecondition(
            f"{field}: the merchant is not verified yet",
            subject=field,
            kind="UNVERIFIED",
        )


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def time_key(row: Any) -> list[Any]:
    """The keyset cursor (create_time, id) of a row."""
    return [row.create_time.isoformat(), str(row.id)]


def time_cursor(cursor: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        when, raw_id = cursor
        return datetime.fromisoformat(str(when)), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
