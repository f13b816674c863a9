"""Every role against every RPC: who may, and who gets PERMISSION_DENIED.

The target is always the same resident ("me", in micro-grid M of grid G of
village V) or their household, account or hold. Allowed calls must succeed;
every other caller must be refused before anything changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc
from google.protobuf.field_mask_pb2 import FieldMask

from services.common.identity import Caller, Role
from services.residents.access import ROLES
from tests.residents.support import (
    AS_OPERATOR,
    SYSTEM,
    Place,
    as_resident,
    as_staff,
    household,
    national_id,
    open_merchant,
    phone,
    place,
    resident,
)

Metadata = tuple[tuple[str, str], ...]


@dataclass
class World:
    stub: pb_grpc.ResidentsServiceAsyncStub
    here: Place
    there: Place
    home: pb.Household
    me: pb.Resident
    housemate: pb.Resident
    stranger: pb.Resident
    merchant_id: str

    def callers(self) -> dict[str, Metadata]:
        merchant = Caller(subject=self.merchant_id, role=Role.MERCHANT)
        return {
            "resident_self": as_resident(self.me.id),
            "resident_housemate": as_resident(self.housemate.id),
            "resident_other": as_resident(self.stranger.id),
            "volunteer": as_staff(Role.VOLUNTEER, self.here.micro_grid),
            "grid_worker_in": as_staff(Role.GRID_WORKER, self.here.grid),
            "grid_worker_out": as_staff(Role.GRID_WORKER, self.there.grid),
            "cadre_in": as_staff(Role.CADRE, self.here.village),
            "cadre_out": as_staff(Role.CADRE, self.there.village),
            "department": as_staff(Role.DEPARTMENT, self.here.village),
            "merchant": merchant.metadata(),
            "operator": AS_OPERATOR,
            "system": SYSTEM.metadata(),
        }

    async def hold(self) -> str:
        reply = await self.stub.HoldPoints(
            pb.HoldPointsRequest(
                resident_id=self.me.id, merchant_id=self.merchant_id, points=1
            ),
            metadata=AS_OPERATOR,
        )
        return reply.hold.id


@pytest.fixture(scope="module")
async def world(
    residents_channel: grpc.aio.Channel, grids_channel: grpc.aio.Channel
) -> World:
    stub = pb_grpc.ResidentsServiceStub(residents_channel)
    here, there = await place(grids_channel), await place(grids_channel)
    home = await household(stub, here.micro_grid)
    me, housemate = await resident(stub, home.id), await resident(stub, home.id)
    stranger = await resident(stub, (await household(stub, here.other_micro_grid)).id)
    for _ in range(10):
        await stub.EarnPoints(
            pb.EarnPointsRequest(
                resident_id=me.id, activity=pb.ACTIVITY_CONFIRMED_TIP_OFF
            ),
            metadata=AS_OPERATOR,
        )
    merchant_id = await open_merchant(stub)
    return World(stub, here, there, home, me, housemate, stranger, merchant_id)


Call = Callable[[World, Metadata], Awaitable[Any]]


def _my_account(w: World) -> pb.AccountRef:
    return pb.AccountRef(kind=pb.ACCOUNT_KIND_RESIDENT, owner_id=w.me.id)


async def _deactivate(w: World, md: Metadata) -> Any:
    target = await resident(w.stub, w.home.id)
    return await w.stub.DeactivateResident(
        pb.DeactivateResidentRequest(id=target.id), metadata=md
    )


async def _commit(w: World, md: Metadata) -> Any:
    hold_id = await w.hold()
    return await w.stub.CommitHold(pb.CommitHoldRequest(hold_id=hold_id), metadata=md)


async def _release(w: World, md: Metadata) -> Any:
    hold_id = await w.hold()
    return await w.stub.ReleaseHold(pb.ReleaseHoldRequest(hold_id=hold_id), metadata=md)


async def _search(w: World, md: Metadata) -> Any:
    reply = await w.stub.GetResident(
        pb.GetResidentRequest(id=w.me.id), metadata=AS_OPERATOR
    )
    return await w.stub.SearchResidents(
        pb.SearchResidentsRequest(phone=reply.resident.phone), metadata=md
    )


CALLS: dict[str, Call] = {
    "RegisterHousehold": lambda w, md: w.stub.RegisterHousehold(
        pb.RegisterHouseholdRequest(micro_grid_id=w.here.micro_grid.id, address="A"),
        metadata=md,
    ),
    "GetHousehold": lambda w, md: w.stub.GetHousehold(
        pb.GetHouseholdRequest(id=w.home.id), metadata=md
    ),
    "MoveHousehold": lambda w, md: w.stub.MoveHousehold(
        pb.MoveHouseholdRequest(
            id=w.home.id, micro_grid_id=w.here.micro_grid.id, address="B"
        ),
        metadata=md,
    ),
    "RegisterResident": lambda w, md: w.stub.RegisterResident(
        pb.RegisterResidentRequest(
            household_id=w.home.id, name="周", national_id=national_id(), phone=phone()
        ),
        metadata=md,
    ),
    "GetResident": lambda w, md: w.stub.GetResident(
        pb.GetResidentRequest(id=w.me.id), metadata=md
    ),
    "UpdateResident": lambda w, md: w.stub.UpdateResident(
        pb.UpdateResidentRequest(
            resident=pb.Resident(id=w.me.id, name="王海"),
            update_mask=FieldMask(paths=["name"]),
        ),
        metadata=md,
    ),
    "VerifyResident": lambda w, md: w.stub.VerifyResident(
        pb.VerifyResidentRequest(id=w.me.id, state=pb.VERIFICATION_STATE_VERIFIED),
        metadata=md,
    ),
    "DeactivateResident": _deactivate,
    "ListResidents": lambda w, md: w.stub.ListResidents(
        pb.ListResidentsRequest(area_id=w.here.micro_grid.id), metadata=md
    ),
    "SearchResidents": _search,
    "SetCareProfile": lambda w, md: w.stub.SetCareProfile(
        pb.SetCareProfileRequest(
            resident_id=w.me.id,
            care_profile=pb.CareProfile(reasons=[pb.CARE_REASON_DISABLED]),
        ),
        metadata=md,
    ),
    "RemoveCareProfile": lambda w, md: w.stub.RemoveCareProfile(
        pb.RemoveCareProfileRequest(resident_id=w.me.id), metadata=md
    ),
    "ListKeyServiceRecipients": lambda w, md: w.stub.ListKeyServiceRecipients(
        pb.ListKeyServiceRecipientsRequest(area_id=w.here.micro_grid.id), metadata=md
    ),
    "EarnPoints": lambda w, md: w.stub.EarnPoints(
        pb.EarnPointsRequest(resident_id=w.me.id, activity=pb.ACTIVITY_ERRAND_HELPED),
        metadata=md,
    ),
    "SpendPoints": lambda w, md: w.stub.SpendPoints(
        pb.SpendPointsRequest(resident_id=w.me.id, merchant_id=w.merchant_id, points=1),
        metadata=md,
    ),
    "HoldPoints": lambda w, md: w.stub.HoldPoints(
        pb.HoldPointsRequest(resident_id=w.me.id, merchant_id=w.merchant_id, points=1),
        metadata=md,
    ),
    "CommitHold": _commit,
    "ReleaseHold": _release,
    "GetBalance": lambda w, md: w.stub.GetBalance(
        pb.GetBalanceRequest(account=_my_account(w)), metadata=md
    ),
    "ListStatement": lambda w, md: w.stub.ListStatement(
        pb.ListStatementRequest(account=_my_account(w)), metadata=md
    ),
    "ListLeaderboard": lambda w, md: w.stub.ListLeaderboard(
        pb.ListLeaderboardRequest(area_id=w.here.village.id), metadata=md
    ),
    "ListEarningRules": lambda w, md: w.stub.ListEarningRules(
        pb.ListEarningRulesRequest(), metadata=md
    ),
    "SetEarningRule": lambda w, md: w.stub.SetEarningRule(
        pb.SetEarningRuleRequest(activity=pb.ACTIVITY_VOLUNTEER_PATROL, points=20),
        metadata=md,
    ),
    "OpenMerchantAccount": lambda w, md: w.stub.OpenMerchantAccount(
        pb.OpenMerchantAccountRequest(merchant_id=str(uuid.uuid4())), metadata=md
    ),
}

SELF = {"resident_self"}
HOUSEHOLD = {"resident_self", "resident_housemate"}
RESIDENTS = {"resident_self", "resident_housemate", "resident_other"}
STAFF_IN = {"grid_worker_in", "cadre_in"}
STAFF_OUT = {"grid_worker_out", "cadre_out"}
OP = {"operator"}
SYS = {"system"}

# Who may call each RPC against "me" and what is theirs.
ALLOWED: dict[str, set[str]] = {
    "RegisterHousehold": STAFF_IN | OP | SYS,
    "GetHousehold": HOUSEHOLD | STAFF_IN | OP | SYS,
    "MoveHousehold": HOUSEHOLD | STAFF_IN | OP | SYS,
    "RegisterResident": STAFF_IN | OP | SYS,
    "GetResident": HOUSEHOLD | STAFF_IN | OP | SYS,
    "UpdateResident": HOUSEHOLD | STAFF_IN | OP,
    "VerifyResident": STAFF_IN | OP | SYS,
    "DeactivateResident": STAFF_IN | OP,
    "ListResidents": STAFF_IN | OP | SYS,
    # Staff outside the area may search, but find nothing of it.
    "SearchResidents": STAFF_IN | STAFF_OUT | OP,
    "SetCareProfile": STAFF_IN | OP,
    "RemoveCareProfile": STAFF_IN | OP,
    "ListKeyServiceRecipients": STAFF_IN | OP | SYS,
    "EarnPoints": STAFF_IN | OP | SYS,
    "SpendPoints": SELF | OP | SYS,
    "HoldPoints": SELF | OP | SYS,
    "CommitHold": {"merchant"} | OP | SYS,
    "ReleaseHold": SELF | {"merchant"} | OP | SYS,
    "GetBalance": HOUSEHOLD | STAFF_IN | OP | SYS,
    "ListStatement": HOUSEHOLD | STAFF_IN | OP | SYS,
    "ListLeaderboard": RESIDENTS | {"volunteer"} | STAFF_IN | STAFF_OUT | OP | SYS,
    "SetEarningRule": OP,
    "OpenMerchantAccount": OP | SYS,
}
CALLERS = [
    "resident_self",
    "resident_housemate",
    "resident_other",
    "volunteer",
    "grid_worker_in",
    "grid_worker_out",
    "cadre_in",
    "cadre_out",
    "department",
    "merchant",
    "operator",
    "system",
]
ALLOWED["ListEarningRules"] = set(CALLERS)  # public, like the leaderboard


def test_the_matrix_covers_every_rpc() -> None:
    methods = pb.DESCRIPTOR.services_by_name["ResidentsService"].methods_by_name
    assert set(CALLS) == set(ALLOWED) == set(ROLES) == set(methods)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", sorted(CALLS))
async def test_role_matrix(world: World, rpc: str, caller: str) -> None:
    metadata = world.callers()[caller]

    if caller in ALLOWED[rpc]:
        await CALLS[rpc](world, metadata)
        return
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await CALLS[rpc](world, metadata)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_calls_without_identity_are_unauthenticated(world: World) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.stub.GetResident(pb.GetResidentRequest(id=world.me.id))

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_staff_outside_the_area_find_nothing_by_search(world: World) -> None:
    found = await _search(world, world.callers()["grid_worker_out"])

    assert list(found.residents) == []
