"""The merchant registry, offers, life services and bookings through the gRPC
API of a real server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.identity import Role
from services.common.server import RunningService
from tests.helpers import bad_fields, call_error
from tests.merchants.support import (
    AS_OPERATOR,
    Place,
    Stubs,
    as_merchant,
    as_resident,
    offer,
    place,
    points_of,
    shop,
    stubs,
)
from tests.residents.support import as_staff


@pytest.fixture
async def api(
    merchants_service: RunningService, residents_channel: grpc.aio.Channel
) -> AsyncIterator[Stubs]:
    both = stubs(merchants_service, residents_channel)
    yield both
    await both.close()


@pytest.fixture
async def town(grids_channel: grpc.aio.Channel) -> Place:
    return await place(grids_channel)


def _in(hours: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(hours=hours))
    return stamp


async def test_registering_a_merchant_opens_its_points_account_once(
    api: Stubs, town: Place
) -> None:
    request = pb.RegisterMerchantRequest(
        village_id=town.village.id,
        name="Village Supermarket",
        category=pb.CATEGORY_SUPERMARKET,
        legal_form=pb.LEGAL_FORM_COMPANY,
        accepts_points=True,
        opening_hours=pb.OpeningHours(opens="07:30", closes="21:00"),
        contact_phone="0580-2021234",
        request_id="register-1",
    )

    first = await api.merchants.RegisterMerchant(request, metadata=AS_OPERATOR)
    again = await api.merchants.RegisterMerchant(request, metadata=AS_OPERATOR)

    merchant = first.merchant
    assert again.merchant.id == merchant.id
    assert merchant.state == pb.MERCHANT_STATE_PENDING
    assert list(merchant.area_ids) == [town.city.id, town.town.id]
    assert merchant.contact_phone == "0580-2021234"
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_MERCHANT, merchant.id) == 0


async def test_a_sole_traders_phone_is_masked_for_everyone_but_itself_and_operators(
    api: Stubs, town: Place
) -> None:
    barber = await shop(
        api.merchants,
        town.village.id,
        name="Lin's Barber",
        legal_form=pb.LEGAL_FORM_SOLE_TRADER,
        phone="13912345678",
    )
    get = pb.GetMerchantRequest(id=barber.id)

    own = await api.merchants.GetMerchant(get, metadata=as_merchant(barber.id))
    operator = await api.merchants.GetMerchant(get, metadata=AS_OPERATOR)
    resident = await api.merchants.GetMerchant(
        get, metadata=as_resident(str(uuid.uuid4()))
    )
    listed = await api.merchants.ListMerchants(
        pb.ListMerchantsRequest(area_id=town.village.id),
        metadata=as_merchant(str(uuid.uuid4())),
    )

    assert own.merchant.contact_phone == "13912345678"
    assert operator.merchant.contact_phone == "13912345678"
    assert resident.merchant.contact_phone == "139****5678"
    assert [m.contact_phone for m in listed.merchants] == ["139****5678"]


async def test_merchants_are_listed_by_area_and_category_and_found_by_name(
    api: Stubs, town: Place, grids_channel: grpc.aio.Channel
) -> None:
    for name in ["Dock Supermarket", "Anchor Supermarket"]:
        await shop(api.merchants, town.village.id, name=name)
    await shop(
        api.merchants,
        town.village.id,
        name="Harbour Pharmacy",
        category=pb.CATEGORY_PHARMACY,
    )
    reply = await api.merchants.RegisterMerchant(
        pb.RegisterMerchantRequest(
            village_id=town.village.id,
            name="East Pharmacy",
            category=pb.CATEGORY_PHARMACY,
            legal_form=pb.LEGAL_FORM_COMPANY,
            opening_hours=pb.OpeningHours(opens="08:00", closes="18:00"),
            contact_phone="13800000001",
        ),
        metadata=AS_OPERATOR,
    )
    elsewhere = await place(grids_channel)
    await shop(api.merchants, elsewhere.village.id, name="Far Supermarket")
    anyone = as_resident(str(uuid.uuid4()))

    pages, token = [], ""
    while True:
        page = await api.merchants.ListMerchants(
            pb.ListMerchantsRequest(
                area_id=town.town.id,
                category=pb.CATEGORY_SUPERMARKET,
                page_size=1,
                page_token=token,
            ),
            metadata=anyone,
        )
        pages.append([m.name for m in page.merchants])
        token = page.next_page_token
        if not token:
            break
    found = await api.merchants.SearchMerchants(
        pb.SearchMerchantsRequest(query="pharm", area_id=town.village.id),
        metadata=anyone,
    )

    assert pages[:2] == [["Anchor Supermarket"], ["Dock Supermarket"]]
    assert [n for p in pages for n in p] == ["Anchor Supermarket", "Dock Supermarket"]
    assert [m.name for m in found.merchants] == ["East Pharmacy", "Harbour Pharmacy"]
    assert reply.merchant.accepts_points is False


async def test_cadres_verify_and_suspend_the_merchants_of_their_village_only(
    api: Stubs, town: Place, grids_channel: grpc.aio.Channel
) -> None:
    merchant = await shop(api.merchants, town.village.id, verify=False)
    elsewhere = await place(grids_channel)
    own_cadre = as_staff(Role.CADRE, town.village)
    other_cadre = as_staff(Role.CADRE, elsewhere.village)

    refused = await call_error(
        api.merchants.VerifyMerchant(
            pb.VerifyMerchantRequest(id=merchant.id), metadata=other_cadre
        )
    )
    verified = await api.merchants.VerifyMerchant(
        pb.VerifyMerchantRequest(id=merchant.id), metadata=own_cadre
    )
    suspended = await api.merchants.SuspendMerchant(
        pb.SuspendMerchantRequest(id=merchant.id), metadata=own_cadre
    )
    by_itself = await call_error(
        api.merchants.VerifyMerchant(
            pb.VerifyMerchantRequest(id=merchant.id),
            metadata=as_merchant(merchant.id),
        )
    )

    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert verified.merchant.state == pb.MERCHANT_STATE_VERIFIED
    assert suspended.merchant.state == pb.MERCHANT_STATE_SUSPENDED
    assert by_itself.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_registrations_name_every_bad_field(
    api: Stubs, town: Place, grids_channel: grpc.aio.Channel
) -> None:
    bad = await call_error(
        api.merchants.RegisterMerchant(
            pb.RegisterMerchantRequest(
                village_id="village",
                name=" ",
                category=99,  # type: ignore[arg-type]
                opening_hours=pb.OpeningHours(opens="7am", closes="25:00"),
                contact_phone="call me",
            ),
            metadata=AS_OPERATOR,
        )
    )
    not_a_village = await call_error(
        api.merchants.RegisterMerchant(
            pb.RegisterMerchantRequest(
                village_id=town.grid.id,
                name="Grid Shop",
                category=pb.CATEGORY_OTHER,
                legal_form=pb.LEGAL_FORM_COMPANY,
                opening_hours=pb.OpeningHours(opens="08:00", closes="18:00"),
                contact_phone="13800000002",
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(bad) == [
        "village_id",
        "name",
        "category",
        "legal_form",
        "opening_hours.opens",
        "opening_hours.closes",
        "contact_phone",
    ]
    assert not_a_village.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_offers_belong_to_their_merchant_and_only_redeemable_ones_are_listed(
    api: Stubs, town: Place
) -> None:
    supermarket = await shop(api.merchants, town.village.id)
    rival = await shop(api.merchants, town.village.id, name="Rival")
    toothpaste = await offer(api.merchants, supermarket.id, stock=0)
    await offer(api.merchants, rival.id, title="Soap", points=50)
    await api.merchants.SuspendMerchant(
        pb.SuspendMerchantRequest(id=rival.id), metadata=AS_OPERATOR
    )

    foreign = await call_error(
        api.merchants.CreateOffer(
            pb.CreateOfferRequest(
                merchant_id=supermarket.id, title="Fake", points=1, stock=1
            ),
            metadata=as_merchant(rival.id),
        )
    )
    restocked = await api.merchants.RestockOffer(
        pb.RestockOfferRequest(id=toothpaste.id, quantity=3),
        metadata=as_merchant(supermarket.id),
    )
    in_village = await api.merchants.ListOffers(
        pb.ListOffersRequest(area_id=town.village.id),
        metadata=as_resident(str(uuid.uuid4())),
    )
    withdrawn = await api.merchants.WithdrawOffer(
        pb.WithdrawOfferRequest(id=toothpaste.id), metadata=as_merchant(supermarket.id)
    )
    after = await api.merchants.ListOffers(
        pb.ListOffersRequest(merchant_id=supermarket.id), metadata=AS_OPERATOR
    )

    assert foreign.code() == grpc.StatusCode.PERMISSION_DENIED
    assert restocked.offer.stock == 3
    assert [o.id for o in in_village.offers] == [toothpaste.id]
    assert withdrawn.offer.state == pb.OFFER_STATE_WITHDRAWN
    assert list(after.offers) == []


async def test_a_booked_life_service_is_accepted_and_completed_by_its_merchant(
    api: Stubs, town: Place
) -> None:
    repairer = await shop(api.merchants, town.village.id, name="Zhou Repairs")
    service = await api.merchants.CreateLifeService(
        pb.CreateLifeServiceRequest(
            merchant_id=repairer.id,
            title="Fix a leaking tap",
            kind=pb.SERVICE_KIND_HOME_REPAIR,
        ),
        metadata=as_merchant(repairer.id),
    )
    resident_id = str(uuid.uuid4())
    me = as_resident(resident_id)
    listed = await api.merchants.ListLifeServices(
        pb.ListLifeServicesRequest(
            area_id=town.village.id, kind=pb.SERVICE_KIND_HOME_REPAIR
        ),
        metadata=me,
    )
    booked = await api.merchants.BookLifeService(
        pb.BookLifeServiceRequest(
            life_service_id=service.life_service.id,
            resident_id=resident_id,
            slot_time=_in(24),
        ),
        metadata=me,
    )
    booking_id = booked.booking.id

    def move(state: int) -> pb.UpdateBookingStateRequest:
        return pb.UpdateBookingStateRequest(id=booking_id, state=state)  # type: ignore[arg-type]

    accepted = await api.merchants.UpdateBookingState(
        move(pb.BOOKING_STATE_ACCEPTED), metadata=as_merchant(repairer.id)
    )
    done = await api.merchants.UpdateBookingState(
        move(pb.BOOKING_STATE_COMPLETED), metadata=as_merchant(repairer.id)
    )
    too_late = await call_error(
        api.merchants.UpdateBookingState(move(pb.BOOKING_STATE_CANCELLED), metadata=me)
    )
    not_hers = await call_error(
        api.merchants.GetBooking(
            pb.GetBookingRequest(id=booking_id),
            metadata=as_resident(str(uuid.uuid4())),
        )
    )
    mine = await api.merchants.ListBookings(
        pb.ListBookingsRequest(resident_id=resident_id), metadata=me
    )
    past = await call_error(
        api.merchants.BookLifeService(
            pb.BookLifeServiceRequest(
                life_service_id=service.life_service.id,
                resident_id=resident_id,
                slot_time=_in(-1),
            ),
            metadata=me,
        )
    )

    assert [s.id for s in listed.life_services] == [service.life_service.id]
    assert booked.booking.state == pb.BOOKING_STATE_REQUESTED
    assert accepted.booking.state == pb.BOOKING_STATE_ACCEPTED
    assert done.booking.state == pb.BOOKING_STATE_COMPLETED
    assert too_late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not_hers.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [b.state for b in mine.bookings] == [pb.BOOKING_STATE_COMPLETED]
    assert past.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(past) == ["slot_time"]


async def test_a_statement_month_must_be_a_month(api: Stubs, town: Place) -> None:
    supermarket = await shop(api.merchants, town.village.id)

    bad = await call_error(
        api.merchants.GetStatement(
            pb.GetStatementRequest(merchant_id=supermarket.id, month="2026-13"),
            metadata=as_merchant(supermarket.id),
        )
    )
    other = await call_error(
        api.merchants.GetStatement(
            pb.GetStatementRequest(merchant_id=supermarket.id, month="2026-12"),
            metadata=as_merchant(str(uuid.uuid4())),
        )
    )
    empty = await api.merchants.GetStatement(
        pb.GetStatementRequest(merchant_id=supermarket.id, month="2022-12"),
        metadata=AS_OPERATOR,
    )

    assert bad_fields(bad) == ["month"]
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (empty.redemptions, empty.points, empty.value_fen) == (0, 0, 0)
