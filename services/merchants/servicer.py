"""MerchantsService: the registry, offers, life services and bookings.

The redemption RPCs live in redemptions.py; this class puts both together.
Every RPC checks the caller's role first, validates, loads, checks the
caller's reach over what it loaded, then acts.
"""

import re
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.merchants.v1 import merchants_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from temporalio.client import Client

from services.common.db import Connection
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.pagination import page_size as clamp_page_size
from services.common.validation import Violations
from services.merchants import access, config
from services.merchants import repository as repo
from services.merchants.clients import VILLAGE, Neighbours
from services.merchants.redemptions import RedemptionRpcs
from services.merchants.shared import (
    merchant_of,
    offer_of,
    owner_filter,
    page_size_violation,
    require_trading,
    required_id,
    time_cursor,
    time_key,
    timestamp,
)
from services.residents.pii import Keyring, mask_phone, normalise_phone

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

CATEGORIES = frozenset(pb.Category.values()) - {pb.CATEGORY_UNSPECIFIED}
LEGAL_FORMS = frozenset(pb.LegalForm.values()) - {pb.LEGAL_FORM_UNSPECIFIED}
KINDS = frozenset(pb.ServiceKind.values()) - {pb.SERVICE_KIND_UNSPECIFIED}
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")

# Who may move a booking to a state, and from which states.
BOOKING_MOVES: dict[int, tuple[frozenset[Role], frozenset[int]]] = {
    repo.ACCEPTED: (
        frozenset({Role.MERCHANT, Role.OPERATOR}),
        frozenset({repo.REQUESTED}),
    ),
    repo.DECLINED: (
        frozenset({Role.MERCHANT, Role.OPERATOR}),
        frozenset({repo.REQUESTED}),
    ),
    repo.COMPLETED: (
        frozenset({Role.MERCHANT, Role.OPERATOR}),
        frozenset({repo.ACCEPTED}),
    ),
    repo.CANCELLED: (
        frozenset({Role.RESIDENT, Role.OPERATOR}),
        frozenset({repo.REQUESTED, repo.ACCEPTED}),
    ),
}


class MerchantsServicer(RedemptionRpcs, pb_grpc.MerchantsServiceServicer):
    """Every RPC of MerchantsService; the redemptions come from RedemptionRpcs."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        keyring: Keyring,
        neighbours: Neighbours,
        *,
        temporal: Client | None,
        task_queue: str,
    ) -> None:
        super().__init__(pool=pool, temporal=temporal, task_queue=task_queue)
        self._keyring = keyring
        self._neighbours = neighbours

    # ---- the registry ----

    async def RegisterMerchant(
        self, request: pb.RegisterMerchantRequest, context: Context
    ) -> pb.RegisterMerchantResponse:
        caller = _caller(context, "RegisterMerchant")
        v = Violations()
        village_id = v.id("village_id", request.village_id)
        name = v.text("name", request.name, max_length=config.NAME_MAX)
        if request.category not in CATEGORIES:
            v.add("category", "must be a known category")
        if request.legal_form not in LEGAL_FORMS:
            v.add("legal_form", "must be sole trader or company")
        _hours(v, request.opening_hours)
        phone = _phone(v, "contact_phone", request.contact_phone)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert village_id is not None
        village = await self._neighbours.get_area(village_id)
        if village is None:
            raise NotFound("area", "village_id")
        if village.kind != VILLAGE:
            raise FailedPrecondition(
                "village_id: merchants are registered in a village",
                subject="village_id",
            )
        area_ids = [*village.ancestor_ids, village.id]
        access.require_area(caller, area_ids)
        merchant_id = uuid.uuid4()

        async def register(conn: Connection) -> pb.RegisterMerchantResponse:
            row = await repo.insert_merchant(
                conn,
                id=merchant_id,
                name=name,
                village_id=village.id,
                area_ids=area_ids,
                category=request.category,
                legal_form=request.legal_form,
                accepts_points=request.accepts_points,
                opens=request.opening_hours.opens,
                closes=request.opening_hours.closes,
                pii_key_id=self._keyring.active,
                phone_cipher=self._keyring.encrypt(phone, f"{merchant_id}:phone"),
            )
            # Inside the transaction: a merchant is never registered without
            # the account its points go to; opening it twice is harmless.
            await self._neighbours.open_points_account(merchant_id)
            return pb.RegisterMerchantResponse(merchant=pb.Merchant(id=str(row.id)))

        first = await self.once(caller, "RegisterMerchant", request, register)
        return pb.RegisterMerchantResponse(
            merchant=await self._reload(first.merchant.id, caller)
        )

    async def GetMerchant(
        self, request: pb.GetMerchantRequest, context: Context
    ) -> pb.GetMerchantResponse:
        caller = _caller(context, "GetMerchant")
        merchant_id = required_id("id", request.id)
        async with self.pool.acquire() as conn:
            row = await merchant_of(conn, merchant_id, "id")
        return pb.GetMerchantResponse(merchant=self.render(row, caller))

    async def VerifyMerchant(
        self, request: pb.VerifyMerchantRequest, context: Context
    ) -> pb.VerifyMerchantResponse:
        merchant = await self._set_state(
            context, "VerifyMerchant", request, repo.VERIFIED
        )
        return pb.VerifyMerchantResponse(merchant=merchant)

    async def SuspendMerchant(
        self, request: pb.SuspendMerchantRequest, context: Context
    ) -> pb.SuspendMerchantResponse:
        merchant = await self._set_state(
            context, "SuspendMerchant", request, repo.SUSPENDED
        )
        return pb.SuspendMerchantResponse(merchant=merchant)

    async def ListMerchants(
        self, request: pb.ListMerchantsRequest, context: Context
    ) -> pb.ListMerchantsResponse:
        caller = _caller(context, "ListMerchants")
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.category and request.category not in CATEGORIES:
            v.add("category", "must be a known category or unspecified")
        page_size_violation(v, request.page_size)
        v.raise_if_any()
        rows, token = await self._merchants(
            caller, area_id, request, category=request.category
        )
        return pb.ListMerchantsResponse(merchants=rows, next_page_token=token)

    async def SearchMerchants(
        self, request: pb.SearchMerchantsRequest, context: Context
    ) -> pb.SearchMerchantsResponse:
        caller = _caller(context, "SearchMerchants")
        v = Violations()
        query = v.text("query", request.query, max_length=config.SEARCH_MAX)
        area_id = v.id("area_id", request.area_id, required=False)
        page_size_violation(v, request.page_size)
        v.raise_if_any()
        rows, token = await self._merchants(caller, area_id, request, name=query)
        return pb.SearchMerchantsResponse(merchants=rows, next_page_token=token)

    # ---- offers ----

    async def CreateOffer(
        self, request: pb.CreateOfferRequest, context: Context
    ) -> pb.CreateOfferResponse:
        caller = _caller(context, "CreateOffer")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id)
        title = v.text("title", request.title, max_length=config.TITLE_MAX)
        if not 0 < request.points <= config.POINTS_MAX:
            v.add("points", f"must be between 1 and {config.POINTS_MAX}")
        if not 0 <= request.stock <= config.STOCK_MAX:
            v.add("stock", f"must be between 0 and {config.STOCK_MAX}")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert merchant_id is not None

        async def create(conn: Connection) -> pb.CreateOfferResponse:
            merchant = await merchant_of(conn, merchant_id, "merchant_id")
            access.require_merchant(caller, merchant.id)
            if not merchant.accepts_points:
                raise FailedPrecondition(
                    "merchant_id: the merchant does not accept points",
                    subject="merchant_id",
                )
            row = await repo.insert_offer(
                conn, merchant.id, title, request.points, request.stock
            )
            return pb.CreateOfferResponse(offer=offer_proto(row))

        return await self.once(caller, "CreateOffer", request, create)

    async def GetOffer(
        self, request: pb.GetOfferRequest, context: Context
    ) -> pb.GetOfferResponse:
        _caller(context, "GetOffer")
        offer_id = required_id("id", request.id)
        async with self.pool.acquire() as conn:
            row = await offer_of(conn, offer_id, "id")
        return pb.GetOfferResponse(offer=offer_proto(row))

    async def ListOffers(
        self, request: pb.ListOffersRequest, context: Context
    ) -> pb.ListOffersResponse:
        _caller(context, "ListOffers")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id, required=False)
        area_id = v.id("area_id", request.area_id, required=False)
        if bool(request.merchant_id) == bool(request.area_id):
            v.add("merchant_id", "give exactly one of merchant_id and area_id")
        page_size_violation(v, request.page_size)
        v.raise_if_any()
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListOffers", merchant_id, area_id)
        after = time_cursor(decode_token(request.page_token, query))
        async with self.pool.acquire() as conn:
            rows = await repo.list_offers(
                conn,
                merchant_id=merchant_id,
                area_id=area_id,
                after=after,
                limit=limit + 1,
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, time_key(page[-1])) if more else ""
        return pb.ListOffersResponse(
            offers=[offer_proto(r) for r in page], next_page_token=token
        )

    async def RestockOffer(
        self, request: pb.RestockOfferRequest, context: Context
    ) -> pb.RestockOfferResponse:
        caller = _caller(context, "RestockOffer")
        v = Violations()
        offer_id = v.id("id", request.id)
        if not 0 < request.quantity <= config.STOCK_MAX:
            v.add("quantity", f"must be between 1 and {config.STOCK_MAX}")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert offer_id is not None

        async def restock(conn: Connection) -> pb.RestockOfferResponse:
            offer = await offer_of(conn, offer_id, "id", for_update=True)
            access.require_merchant(caller, offer.merchant_id)
            if offer.state != repo.OPEN:
                raise FailedPrecondition(
                    "id: the offer was withdrawn", subject="id", kind="WITHDRAWN"
                )
            if offer.stock + request.quantity > config.STOCK_MAX:
                raise FailedPrecondition(
                    f"quantity: stock would pass {config.STOCK_MAX}", subject="quantity"
                )
            row = await repo.update_offer(conn, offer_id, stock_change=request.quantity)
            return pb.RestockOfferResponse(offer=offer_proto(row))

        return await self.once(caller, "RestockOffer", request, restock)

    async def WithdrawOffer(
        self, request: pb.WithdrawOfferRequest, context: Context
    ) -> pb.WithdrawOfferResponse:
        caller = _caller(context, "WithdrawOffer")
        offer_id = _id_and_request_id("id", request.id, request.request_id)

        async def withdraw(conn: Connection) -> pb.WithdrawOfferResponse:
            offer = await offer_of(conn, offer_id, "id", for_update=True)
            access.require_merchant(caller, offer.merchant_id)
            row = await repo.update_offer(conn, offer_id, state=repo.WITHDRAWN)
            return pb.WithdrawOfferResponse(offer=offer_proto(row))

        return await self.once(caller, "WithdrawOffer", request, withdraw)

    # ---- life services and bookings ----

    async def CreateLifeService(
        self, request: pb.CreateLifeServiceRequest, context: Context
    ) -> pb.CreateLifeServiceResponse:
        caller = _caller(context, "CreateLifeService")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id)
        title = v.text("title", request.title, max_length=config.TITLE_MAX)
        if request.kind not in KINDS:
            v.add("kind", "must be a known kind of service")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert merchant_id is not None

        async def create(conn: Connection) -> pb.CreateLifeServiceResponse:
            merchant = await merchant_of(conn, merchant_id, "merchant_id")
            access.require_merchant(caller, merchant.id)
            row = await repo.insert_life_service(conn, merchant.id, title, request.kind)
            return pb.CreateLifeServiceResponse(life_service=life_service_proto(row))

        return await self.once(caller, "CreateLifeService", request, create)

    async def ListLifeServices(
        self, request: pb.ListLifeServicesRequest, context: Context
    ) -> pb.ListLifeServicesResponse:
        _caller(context, "ListLifeServices")
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.kind and request.kind not in KINDS:
            v.add("kind", "must be a known kind of service or unspecified")
        page_size_violation(v, request.page_size)
        v.raise_if_any()
        assert area_id is not None
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListLifeServices", area_id, request.kind)
        after = time_cursor(decode_token(request.page_token, query))
        async with self.pool.acquire() as conn:
            rows = await repo.list_life_services(
                conn, area_id, request.kind, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, time_key(page[-1])) if more else ""
        return pb.ListLifeServicesResponse(
            life_services=[life_service_proto(r) for r in page], next_page_token=token
        )

    async def BookLifeService(
        self, request: pb.BookLifeServiceRequest, context: Context
    ) -> pb.BookLifeServiceResponse:
        caller = _caller(context, "BookLifeService")
        v = Violations()
        service_id = v.id("life_service_id", request.life_service_id)
        resident_id = v.id("resident_id", request.resident_id)
        slot = _slot(v, request)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert service_id is not None
        assert resident_id is not None
        assert slot is not None
        access.require_self(caller, resident_id)

        async def book(conn: Connection) -> pb.BookLifeServiceResponse:
            service = await repo.get_life_service(conn, service_id)
            if service is None:
                raise NotFound("life service", "life_service_id")
            merchant = await merchant_of(conn, service.merchant_id, "life_service_id")
            require_trading(merchant, "life_service_id")
            row = await repo.insert_booking(conn, service, resident_id, slot)
            return pb.BookLifeServiceResponse(booking=booking_proto(row))

        return await self.once(caller, "BookLifeService", request, book)

    async def GetBooking(
        self, request: pb.GetBookingRequest, context: Context
    ) -> pb.GetBookingResponse:
        caller = _caller(context, "GetBooking")
        booking_id = required_id("id", request.id)
        async with self.pool.acquire() as conn:
            row = await _booking_of(conn, booking_id)
        access.require_party(caller, row.merchant_id, row.resident_id)
        return pb.GetBookingResponse(booking=booking_proto(row))

    async def ListBookings(
        self, request: pb.ListBookingsRequest, context: Context
    ) -> pb.ListBookingsResponse:
        caller = _caller(context, "ListBookings")
        column, owner = owner_filter(caller, request)
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListBookings", column, owner)
        before = time_cursor(decode_token(request.page_token, query))
        async with self.pool.acquire() as conn:
            rows = await repo.list_bookings(
                conn, column, owner, before=before, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, time_key(page[-1])) if more else ""
        return pb.ListBookingsResponse(
            bookings=[booking_proto(r) for r in page], next_page_token=token
        )

    async def UpdateBookingState(
        self, request: pb.UpdateBookingStateRequest, context: Context
    ) -> pb.UpdateBookingStateResponse:
        caller = _caller(context, "UpdateBookingState")
        v = Violations()
        booking_id = v.id("id", request.id)
        if request.state not in BOOKING_MOVES:
            v.add("state", "must be ACCEPTED, DECLINED, COMPLETED or CANCELLED")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert booking_id is not None
        roles, sources = BOOKING_MOVES[request.state]

        async def move(conn: Connection) -> pb.UpdateBookingStateResponse:
            row = await _booking_of(conn, booking_id, for_update=True)
            access.require_party(caller, row.merchant_id, row.resident_id)
            access.require_one_of(caller, roles, "move the booking to that state")
            if row.state != request.state:
                if row.state not in sources:
                    raise FailedPrecondition(
                        f"state: the booking is {pb.BookingState.Name(row.state)}",  # type: ignore[arg-type]
                        subject="state",
                    )
                row = await repo.set_booking_state(conn, booking_id, request.state)
            return pb.UpdateBookingStateResponse(booking=booking_proto(row))

        return await self.once(caller, "UpdateBookingState", request, move)

    # ---- shared steps ----

    def render(self, row: repo.MerchantRow, caller: Caller) -> pb.Merchant:
        phone = self._keyring.decrypt(
            row.pii_key_id, row.phone_cipher, f"{row.id}:phone"
        )
        sole_trader = row.legal_form == repo.SOLE_TRADER
        if not access.sees_full_phone(caller, row.id, sole_trader):
            phone = mask_phone(phone)
        return pb.Merchant(
            id=str(row.id),
            name=row.name,
            village_id=str(row.village_id),
            area_ids=[str(a) for a in row.area_ids[:-1]],
            category=row.category,  # type: ignore[arg-type]
            legal_form=row.legal_form,  # type: ignore[arg-type]
            state=row.state,  # type: ignore[arg-type]
            accepts_points=row.accepts_points,
            opening_hours=pb.OpeningHours(opens=row.opens, closes=row.closes),
            contact_phone=phone,
            create_time=timestamp(row.create_time),
            update_time=timestamp(row.update_time),
        )

    async def _reload(self, merchant_id: str, caller: Caller) -> pb.Merchant:
        # Mutations store only the merchant's id as their answer, so that no
        # phone number is kept in the request_id store.
        async with self.pool.acquire() as conn:
            row = await repo.get_merchant(conn, uuid.UUID(merchant_id))
        assert row is not None
        return self.render(row, caller)

    async def _set_state(
        self,
        context: Context,
        method: str,
        request: pb.VerifyMerchantRequest | pb.SuspendMerchantRequest,
        state: int,
    ) -> pb.Merchant:
        caller = _caller(context, method)
        merchant_id = _id_and_request_id("id", request.id, request.request_id)
        response_type = cast(type[Message], getattr(pb, f"{method}Response"))

        async def change(conn: Connection) -> Message:
            row = await merchant_of(conn, merchant_id, "id", for_update=True)
            access.require_area(caller, row.area_ids)
            if row.state != state:
                await repo.set_merchant_state(conn, merchant_id, state)
            return response_type(merchant=pb.Merchant(id=str(row.id)))  # type: ignore[call-arg]

        first = await run_once(
            self.pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
            action=change,
        )
        merchant: pb.Merchant = first.merchant  # type: ignore[attr-defined]
        return await self._reload(merchant.id, caller)

    async def _merchants(
        self,
        caller: Caller,
        area_id: uuid.UUID | None,
        request: pb.ListMerchantsRequest | pb.SearchMerchantsRequest,
        *,
        category: int = 0,
        name: str = "",
    ) -> tuple[list[pb.Merchant], str]:
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListMerchants", area_id, category, name)
        after = _name_cursor(decode_token(request.page_token, query))
        async with self.pool.acquire() as conn:
            rows = await repo.list_merchants(
                conn,
                area_id,
                category=category,
                name_contains=name,
                after=after,
                limit=limit + 1,
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].name, str(page[-1].id)]) if more else ""
        return [self.render(r, caller) for r in page], token


def _caller(context: Context, method: str) -> Caller:
    caller = caller_of(context)
    access.require_role(caller, method)
    return caller


def _id_and_request_id(field: str, value: str, request_id: str) -> uuid.UUID:
    v = Violations()
    parsed = v.id(field, value)
    v.request_id(request_id)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _hours(v: Violations, hours: pb.OpeningHours) -> None:
    for field, value in (("opens", hours.opens), ("closes", hours.closes)):
        if not _CLOCK.fullmatch(value):
            v.add(f"opening_hours.{field}", "must be a time of day, HH:MM")


def _phone(v: Violations, field: str, value: str) -> str:
    if not value.strip():
        v.add(field, "is required")
        return ""
    mobile = normalise_phone(value)
    if mobile is not None:
        return mobile
    landline = value.strip()
    if landline.isascii() and _LANDLINE.fullmatch(landline):
        return landline
    v.add(field, "must be a mainland mobile or landline number")
    return ""


def _slot(v: Violations, request: pb.BookLifeServiceRequest) -> datetime | None:
    if not request.HasField("slot_time"):
        v.add("slot_time", "is required")
        return None
    try:
        slot = request.slot_time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        v.add("slot_time", "is not a valid time")
        return None
    if slot <= datetime.now(UTC) or slot.year > 2100:
        v.add("slot_time", "must be in the future")
        return None
    return slot


async def _booking_of(
    conn: Connection, booking_id: uuid.UUID, *, for_update: bool = False
) -> repo.BookingRow:
    row = await repo.get_booking(conn, booking_id, for_update=for_update)
    if row is None:
        raise NotFound("booking", "id")
    return row


def offer_proto(row: repo.OfferRow) -> pb.Offer:
    return pb.Offer(
        id=str(row.id),
        merchant_id=str(row.merchant_id),
        title=row.title,
        points=row.points,
        stock=row.stock,
        state=row.state,  # type: ignore[arg-type]
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def life_service_proto(row: repo.LifeServiceRow) -> pb.LifeService:
    return pb.LifeService(
        id=str(row.id),
        merchant_id=str(row.merchant_id),
        title=row.title,
        kind=row.kind,  # type: ignore[arg-type]
        create_time=timestamp(row.create_time),
    )


def booking_proto(row: repo.BookingRow) -> pb.Booking:
    return pb.Booking(
        id=str(row.id),
        life_service_id=str(row.life_service_id),
        merchant_id=str(row.merchant_id),
        resident_id=str(row.resident_id),
        slot_time=timestamp(row.slot_time),
        state=row.state,  # type: ignore[arg-type]
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def _name_cursor(cursor: list[Any] | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        name, raw_id = cursor
        return str(name), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
