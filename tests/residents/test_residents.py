"""Households, residents and the roster through the gRPC API of a real server."""

from __future__ import annotations

import uuid

import grpc
import pytest
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc
from google.protobuf.field_mask_pb2 import FieldMask

from services.common.identity import Role
from tests.helpers import bad_fields, call_error
from tests.residents.support import (
    AS_OPERATOR,
    Place,
    as_resident,
    as_staff,
    household,
    national_id,
    phone,
    place,
    resident,
)


@pytest.fixture
def stub(residents_channel: grpc.aio.Channel) -> pb_grpc.ResidentsServiceAsyncStub:
    return pb_grpc.ResidentsServiceStub(residents_channel)


@pytest.fixture
async def town(grids_channel: grpc.aio.Channel) -> Place:
    return await place(grids_channel)


async def listed(
    stub: pb_grpc.ResidentsServiceAsyncStub, area_id: str, page_size: int = 2
) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await stub.ListResidents(
            pb.ListResidentsRequest(
                area_id=area_id, page_size=page_size, page_token=token
            ),
            metadata=AS_OPERATOR,
        )
        ids += [r.id for r in page.residents]
        token = page.next_page_token
        if not token:
            return ids


async def test_registered_resident_reads_back_with_masked_numbers(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    number, mobile = national_id(), phone()
    created = await resident(stub, home.id, id_number=number, phone_number=mobile)

    as_cadre = await stub.GetResident(
        pb.GetResidentRequest(id=created.id),
        metadata=as_staff(Role.CADRE, town.village),
    )
    as_worker = await stub.GetResident(
        pb.GetResidentRequest(id=created.id),
        metadata=as_staff(Role.GRID_WORKER, town.grid),
    )
    as_self = await stub.GetResident(
        pb.GetResidentRequest(id=created.id), metadata=as_resident(created.id)
    )

    assert list(home.area_ids) == [
        town.city.id,
        town.town.id,
        town.village.id,
        town.grid.id,
    ]
    assert created.national_id == number
    assert created.micro_grid_id == town.micro_grid.id
    assert as_cadre.resident.national_id == number[:3] + "*" * 11 + number[-4:]
    assert as_cadre.resident.phone == mobile[:3] + "****" + mobile[-4:]
    assert as_worker.resident.phone == mobile
    assert as_worker.resident.national_id != number
    assert (as_self.resident.national_id, as_self.resident.phone) == (number, mobile)
    assert as_self.resident.verification_state == pb.VERIFICATION_STATE_UNVERIFIED
    assert as_self.resident.contact.language == pb.LANGUAGE_ZH


async def test_residents_are_listed_by_micro_grid_grid_and_village_across_pages(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    here = await household(stub, town.micro_grid)
    there = await household(stub, town.other_micro_grid)
    near = [(await resident(stub, here.id)).id for _ in range(3)]
    far = [(await resident(stub, there.id)).id for _ in range(2)]

    assert await listed(stub, town.micro_grid.id) == sorted(near)
    assert await listed(stub, town.grid.id) == sorted(near)
    assert await listed(stub, town.village.id) == sorted(near + far)


async def test_moving_house_moves_the_residents_to_the_new_micro_grid(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    member = await resident(stub, home.id)

    moved = await stub.MoveHousehold(
        pb.MoveHouseholdRequest(
            id=home.id, micro_grid_id=town.other_micro_grid.id, address="No. 8 Quay"
        ),
        metadata=AS_OPERATOR,
    )

    assert moved.household.micro_grid_id == town.other_micro_grid.id
    assert moved.household.area_ids[-1] == town.other_grid.id
    assert await listed(stub, town.grid.id) == []
    assert await listed(stub, town.other_micro_grid.id) == [member.id]


async def test_verification_records_its_state_and_time(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await resident(stub, (await household(stub, town.micro_grid)).id)

    reply = await stub.VerifyResident(
        pb.VerifyResidentRequest(id=member.id, state=pb.VERIFICATION_STATE_VERIFIED),
        metadata=as_staff(Role.GRID_WORKER, town.grid),
    )

    assert reply.resident.verification_state == pb.VERIFICATION_STATE_VERIFIED
    assert reply.resident.verify_time.seconds > 0


async def test_deactivated_resident_leaves_lists_and_frees_the_id_number(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    number = national_id()
    member = await resident(stub, home.id, id_number=number)

    reply = await stub.DeactivateResident(
        pb.DeactivateResidentRequest(id=member.id), metadata=AS_OPERATOR
    )
    again = await resident(stub, home.id, id_number=number)

    assert not reply.resident.active
    assert await listed(stub, town.micro_grid.id) == [again.id]


async def test_a_second_active_resident_with_the_same_id_number_already_exists(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    number = national_id()
    await resident(stub, home.id, id_number=number)

    error = await call_error(
        stub.RegisterResident(
            pb.RegisterResidentRequest(
                household_id=home.id, name="李", national_id=number, phone=phone()
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert number not in (error.details() or "")
    assert len(await listed(stub, town.micro_grid.id)) == 1


async def test_search_finds_by_phone_or_id_number_within_the_callers_areas(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    shared_phone = phone()
    here = await resident(
        stub, (await household(stub, town.micro_grid)).id, phone_number=shared_phone
    )
    there = await resident(
        stub,
        (await household(stub, town.other_micro_grid)).id,
        phone_number=shared_phone,
    )
    number = national_id()
    by_id = await resident(
        stub, (await household(stub, town.micro_grid)).id, id_number=number
    )

    mine = await stub.SearchResidents(
        pb.SearchResidentsRequest(phone="+86 " + shared_phone),
        metadata=as_staff(Role.GRID_WORKER, town.grid),
    )
    everyone = await stub.SearchResidents(
        pb.SearchResidentsRequest(phone=shared_phone), metadata=AS_OPERATOR
    )
    found = await stub.SearchResidents(
        pb.SearchResidentsRequest(national_id=number.lower()), metadata=AS_OPERATOR
    )

    assert [r.id for r in mine.residents] == [here.id]
    assert sorted(r.id for r in everyone.residents) == sorted([here.id, there.id])
    assert [r.id for r in found.residents] == [by_id.id]


async def test_update_changes_phone_and_contact_and_search_follows(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    old, new = phone(), phone()
    member = await resident(
        stub, (await household(stub, town.micro_grid)).id, phone_number=old
    )
    change = pb.Resident(
        id=member.id,
        phone=new,
        contact=pb.ContactPreferences(
            channels=[pb.CHANNEL_TEXT_MESSAGE, pb.CHANNEL_GROUP_CHAT],
            language=pb.LANGUAGE_EN,
        ),
    )

    reply = await stub.UpdateResident(
        pb.UpdateResidentRequest(
            resident=change, update_mask=FieldMask(paths=["phone", "contact"])
        ),
        metadata=as_resident(member.id),
    )
    by_old = await stub.SearchResidents(
        pb.SearchResidentsRequest(phone=old), metadata=AS_OPERATOR
    )
    by_new = await stub.SearchResidents(
        pb.SearchResidentsRequest(phone=new), metadata=AS_OPERATOR
    )

    assert reply.resident.phone == new
    assert reply.resident.name == member.name
    assert list(reply.resident.contact.channels) == [
        pb.CHANNEL_TEXT_MESSAGE,
        pb.CHANNEL_GROUP_CHAT,
    ]
    assert reply.resident.contact.language == pb.LANGUAGE_EN
    assert [r.id for r in by_old.residents] == []
    assert [r.id for r in by_new.residents] == [member.id]


async def test_care_profile_puts_a_resident_on_the_roster_and_off_again(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    elder, _ = await resident(stub, home.id), await resident(stub, home.id)
    squad_id = str(uuid.uuid4())
    profile = pb.CareProfile(
        reasons=[pb.CARE_REASON_ELDERLY_ALONE, pb.CARE_REASON_CHRONIC_ILLNESS],
        needs=[pb.CARE_NEED_REGULAR_MEDICINE],
        squad_id=squad_id,
    )

    reply = await stub.SetCareProfile(
        pb.SetCareProfileRequest(resident_id=elder.id, care_profile=profile),
        metadata=as_staff(Role.CADRE, town.village),
    )
    roster = await stub.ListKeyServiceRecipients(
        pb.ListKeyServiceRecipientsRequest(area_id=town.village.id),
        metadata=as_staff(Role.CADRE, town.village),
    )
    await stub.RemoveCareProfile(
        pb.RemoveCareProfileRequest(resident_id=elder.id), metadata=AS_OPERATOR
    )
    after = await stub.ListKeyServiceRecipients(
        pb.ListKeyServiceRecipientsRequest(area_id=town.village.id),
        metadata=AS_OPERATOR,
    )

    assert reply.resident.care_profile.squad_id == squad_id
    assert list(reply.resident.care_profile.needs) == [pb.CARE_NEED_REGULAR_MEDICINE]
    assert [r.id for r in roster.residents] == [elder.id]
    assert list(after.residents) == []


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"national_id": "110105194912310021"}, ["national_id"]),
        ({"national_id": "12345"}, ["national_id"]),
        ({"phone": "12812345678"}, ["phone"]),
        ({"phone": "0571-88888888"}, ["phone"]),
        ({"name": ""}, ["name"]),
        ({"national_id": "", "phone": "1"}, ["national_id", "phone"]),
        ({"household_id": "nope"}, ["household_id"]),
        (
            {"contact": pb.ContactPreferences(channels=[9])},  # type: ignore[list-item]
            ["contact.channels"],
        ),
    ],
)
async def test_malformed_registration_names_every_bad_field_and_changes_nothing(
    stub: pb_grpc.ResidentsServiceAsyncStub,
    town: Place,
    fields: dict[str, object],
    bad: list[str],
) -> None:
    home = await household(stub, town.micro_grid)
    request = pb.RegisterResidentRequest(
        household_id=home.id, name="王海", national_id=national_id(), phone=phone()
    )
    for key, value in fields.items():
        if isinstance(value, pb.ContactPreferences):
            request.contact.CopyFrom(value)
        else:
            setattr(request, key, value)

    error = await call_error(stub.RegisterResident(request, metadata=AS_OPERATOR))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(error)) == sorted(bad)
    assert await listed(stub, town.micro_grid.id) == []


async def test_household_in_an_unknown_micro_grid_is_not_found(
    stub: pb_grpc.ResidentsServiceAsyncStub,
) -> None:
    error = await call_error(
        stub.RegisterHousehold(
            pb.RegisterHouseholdRequest(micro_grid_id=str(uuid.uuid4()), address="x"),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "micro_grid_id" in (error.details() or "")


async def test_household_directly_in_a_grid_is_refused(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    error = await call_error(
        stub.RegisterHousehold(
            pb.RegisterHouseholdRequest(micro_grid_id=town.grid.id, address="x"),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "micro_grid_id" in (error.details() or "")
    assert await listed(stub, town.grid.id) == []


async def test_retried_registration_registers_once(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    request = pb.RegisterResidentRequest(
        household_id=home.id,
        name="王海",
        national_id=national_id(),
        phone=phone(),
        request_id=str(uuid.uuid4()),
    )

    first = await stub.RegisterResident(request, metadata=AS_OPERATOR)
    second = await stub.RegisterResident(request, metadata=AS_OPERATOR)

    assert first.resident.id == second.resident.id
    assert await listed(stub, town.micro_grid.id) == [first.resident.id]
