"""The stories of DOMAIN.md against the whole stack as `make run` starts it:
HTTP/JSON through the gateway as the mobile apps drive it, gRPC where no
route exists yet (registering residents, staff and merchants)."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import httpx
import pytest
from cloudark.grids.v1 import staff_pb2 as staff_pb
from cloudark.merchants.v1 import merchants_pb2 as mpb
from cloudark.merchants.v1 import merchants_pb2_grpc as mpb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc

from services.common.identity import Caller, Role
from tests.e2e.conftest import Stack
from tests.e2e.support import (
    OPERATOR,
    SYSTEM,
    TINY_JPEG,
    bearer,
    create_area,
    eventually,
    first_child,
    helper,
    inbox,
    ok,
    points,
    resident,
    statement,
)

CITY_TIME = ZoneInfo("Asia/Shanghai")
# Delivery statuses of a message that reached its recipient.
REACHED = ("SENT", "DELIVERED", "READ")


class Parts:
    """The stack as a mobile app and the registry desks reach it."""

    def __init__(self, http: httpx.AsyncClient, channels: dict[str, Any]) -> None:
        self.http = http
        self.grids: grpc.aio.Channel = channels["grids"]
        self.residents: grpc.aio.Channel = channels["residents"]
        self.merchants: grpc.aio.Channel = channels["merchants"]

    async def demo_village(self) -> str:
        """A village of the demo city `ready` loaded."""
        city = await first_child(self.http)
        town = await first_child(self.http, city["id"])
        village = await first_child(self.http, town["id"])
        village_id: str = village["id"]
        return village_id

    async def new_micro_grid(self, village_id: str) -> tuple[str, str]:
        """A new grid with one micro-grid in the village: (grid, micro-grid).
        Fresh, so no helper of the demo city outranks the test's own."""
        grid = await create_area(self.http, "AREA_KIND_GRID", village_id)
        return grid, await create_area(self.http, "AREA_KIND_MICRO_GRID", grid)

    async def photo(self, owner: Caller) -> str:
        uploaded = ok(
            await self.http.post(
                "/v1/photos",
                content=TINY_JPEG,
                headers={**bearer(owner), "Content-Type": "image/jpeg"},
            )
        )
        ref: str = uploaded["ref"]
        return ref


@pytest.fixture(scope="module")
async def parts(stack: Stack) -> AsyncIterator[Parts]:
    channels = {
        name: grpc.aio.insecure_channel(stack.address(name))
        for name in ("grids", "residents", "merchants")
    }
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30) as http:
        yield Parts(http, channels)
    for channel in channels.values():
        await channel.close()


def about(messages: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("reference", "").startswith(prefix)]


# ---- story 1: medicine at the door within fifteen minutes ----


async def test_story_1_a_volunteer_brings_medicine_and_earns_points_once(
    parts: Parts,
) -> None:
    http = parts.http
    _, micro_grid = await parts.new_micro_grid(await parts.demo_village())
    asking = Caller(await resident(parts.residents, micro_grid), Role.RESIDENT)
    neighbour_id = await resident(parts.residents, micro_grid)
    volunteer = await helper(
        parts.grids, staff_pb.HELPER_KIND_VOLUNTEER, [micro_grid], neighbour_id
    )
    # One person, two hats: the helper's app (helper id) and the resident's
    # own (resident id), whose inbox the volunteer's offers land in.
    as_helper = Caller(volunteer.id, Role.VOLUNTEER, (micro_grid,))
    as_neighbour = Caller(neighbour_id, Role.RESIDENT)
    before = await points(parts.residents, neighbour_id)

    asked = ok(
        await http.post(
            "/v1/errands",
            json={
                "resident_id": asking.subject,
                "kind": "ERRAND_KIND_MEDICINE",
                "details": "fever medicine from the pharmacy",
                "request_id": "e2e-story-1",
            },
            headers=bearer(asking),
        )
    )["errand"]
    errand_id = asked["id"]
    path = f"/v1/errands/{errand_id}"
    offers = await eventually(
        lambda: _about_inbox(http, as_neighbour, f"errand-{errand_id}/")
    )
    accepted = ok(
        await http.post(
            f"{path}:accept",
            json={"helper_id": volunteer.id, "request_id": "e2e-accept"},
            headers=bearer(as_helper),
        )
    )["errand"]
    seen_accepted = ok(await http.get(path, headers=bearer(asking)))["errand"]
    picked = ok(
        await http.post(
            f"{path}:reportPickedUp",
            json={"helper_id": volunteer.id, "request_id": "e2e-pickup"},
            headers=bearer(as_helper),
        )
    )["errand"]
    seen_picked = ok(await http.get(path, headers=bearer(asking)))["errand"]
    photo_ref = await parts.photo(as_helper)
    delivery = {
        "helper_id": volunteer.id,
        "note": "Medicine is at your door.",
        "photo_ref": photo_ref,
        "request_id": "e2e-deliver",
    }
    delivered = ok(
        await http.post(
            f"{path}:reportDelivered", json=delivery, headers=bearer(as_helper)
        )
    )["errand"]
    again = await http.post(
        f"{path}:reportDelivered", json=delivery, headers=bearer(as_helper)
    )

    async def rewarded() -> dict[str, Any] | None:
        seen = ok(await http.get(path, headers=bearer(asking)))
        kinds = [step["kind"] for step in seen["steps"]]
        return seen if "STEP_KIND_POINTS_EARNED" in kinds else None

    seen = await eventually(rewarded)
    told = await eventually(
        lambda: _about_inbox(http, asking, f"errand-{errand_id}/", at_least=3)
    )
    photo = await http.get(f"/v1/{photo_ref}", headers=bearer(asking))

    assert asked["status"] == "ERRAND_STATUS_WAITING_FOR_HELPER"
    assert asked["due_time"]
    assert offers
    assert all(m["title"] for m in offers)
    assert accepted["status"] == seen_accepted["status"] == "ERRAND_STATUS_ACCEPTED"
    assert picked["status"] == seen_picked["status"] == "ERRAND_STATUS_PICKED_UP"
    assert delivered["status"] == "ERRAND_STATUS_DELIVERED"
    assert again.status_code == 200
    assert again.json()["errand"]["id"] == errand_id
    errand = seen["errand"]
    assert errand["helper_id"] == volunteer.id
    assert errand["delivery_note"] == "Medicine is at your door."
    assert errand["photo_ref"] == photo_ref
    kinds = [step["kind"] for step in seen["steps"]]
    for kind in ("REQUESTED", "OFFERED", "ACCEPTED", "PICKED_UP", "DELIVERED"):
        assert kinds.count(f"STEP_KIND_{kind}") == 1, kinds
    assert kinds.count("STEP_KIND_POINTS_EARNED") == 1
    assert {m["body"] for m in told} >= {"Medicine is at your door."}
    assert photo.status_code == 200
    assert photo.content == TINY_JPEG
    # Exactly once: the errand-helped rule (20 points), one entry.
    assert await points(parts.residents, neighbour_id) == before + 20
    assert await statement(parts.residents, neighbour_id) == [20]


async def test_story_1_a_grid_worker_on_duty_gets_the_offer_in_their_inbox(
    parts: Parts,
) -> None:
    http = parts.http
    grid, micro_grid = await parts.new_micro_grid(await parts.demo_village())
    asking = Caller(await resident(parts.residents, micro_grid), Role.RESIDENT)
    worker = await helper(parts.grids, staff_pb.HELPER_KIND_GRID_WORKER, [grid])
    # The inbox belongs to the helper's person (notifications' owner rule).
    as_person = Caller(worker.person_id, Role.GRID_WORKER, (grid,))

    asked = ok(
        await http.post(
            "/v1/errands",
            json={
                "resident_id": asking.subject,
                "kind": "ERRAND_KIND_SHOPPING",
                "details": "rice and eggs",
            },
            headers=bearer(asking),
        )
    )["errand"]
    errand_id = asked["id"]
    offers = await eventually(
        lambda: _about_inbox(http, as_person, f"errand-{errand_id}/")
    )
    seen = ok(await http.get(f"/v1/errands/{errand_id}", headers=bearer(asking)))
    cancelled = ok(
        await http.post(
            f"/v1/errands/{errand_id}:cancel",
            json={"reason": "a neighbour went instead"},
            headers=bearer(asking),
        )
    )["errand"]

    assert len(offers) == 1
    assert seen["errand"]["offered_helper_ids"] == [worker.id]
    assert cancelled["status"] == "ERRAND_STATUS_CANCELLED"


async def _about_inbox(
    http: httpx.AsyncClient, owner: Caller, prefix: str, at_least: int = 1
) -> list[dict[str, Any]] | None:
    found = about(await inbox(http, owner), prefix)
    return found if len(found) >= at_least else None


# ---- story 8: a notification to the key service recipients of one village ----


async def test_story_8_key_service_recipients_of_one_village_get_it_once(
    parts: Parts,
) -> None:
    http = parts.http
    town = await first_child(http, (await first_child(http))["id"])
    village = await create_area(http, "AREA_KIND_VILLAGE", town["id"])
    other_village = await create_area(http, "AREA_KIND_VILLAGE", town["id"])
    _, first = await parts.new_micro_grid(village)
    _, second = await parts.new_micro_grid(village)
    _, elsewhere = await parts.new_micro_grid(other_village)
    recipients = {
        await resident(parts.residents, first, key_service=True),
        await resident(parts.residents, first, key_service=True),
        await resident(parts.residents, second, key_service=True),
    }
    not_on_roster = await resident(parts.residents, first)
    other_village_recipient = await resident(
        parts.residents, elsewhere, key_service=True
    )
    cadre = Caller(f"cadre-{uuid.uuid4().hex[:6]}", Role.CADRE, (village,))
    request = {
        "title": "Cold wave",
        "body": "A cold wave arrives tonight; your grid worker will visit.",
        "audience": {
            "area_ids": [village],
            "tags": ["AUDIENCE_TAG_KEY_SERVICE_RECIPIENTS"],
        },
        "reference": "e2e-story-8",
        "request_id": "e2e-story-8",
    }

    sent = ok(await http.post("/v1/notifications", json=request, headers=bearer(cadre)))
    repeated = ok(
        await http.post("/v1/notifications", json=request, headers=bearer(cadre))
    )
    notification_id = sent["notification"]["id"]

    async def all_sent() -> dict[str, Any] | None:
        got = ok(
            await http.get(
                f"/v1/notifications/{notification_id}", headers=bearer(cadre)
            )
        )["notification"]
        counts = got.get("status_counts", {})
        reached = sum(counts.get(f"DELIVERY_STATUS_{s}", 0) for s in REACHED)
        return got if reached >= 3 else None

    await eventually(all_sent)
    deliveries = ok(
        await http.get(
            f"/v1/notifications/{notification_id}/deliveries",
            params={"page_size": 100},
            headers=bearer(cadre),
        )
    )["deliveries"]
    inboxes = {
        person: about(await inbox(http, Caller(person, Role.RESIDENT)), "e2e-story-8")
        for person in [*recipients, not_on_roster, other_village_recipient]
    }

    assert repeated["notification"]["id"] == notification_id
    assert sent["notification"]["recipients"] == 3
    # The sender sees who got it: exactly the roster of the village, once each.
    assert sorted(d["recipient_id"] for d in deliveries) == sorted(recipients)
    assert {d["channel"] for d in deliveries} == {"CHANNEL_APP"}
    for person in recipients:
        assert [m["notification_id"] for m in inboxes[person]] == [notification_id]
    assert inboxes[not_on_roster] == []
    assert inboxes[other_village_recipient] == []


# ---- story 6: toothpaste for 120 points ----


async def test_story_6_a_resident_redeems_toothpaste_and_the_merchant_confirms(
    parts: Parts,
) -> None:
    http = parts.http
    village = await parts.demo_village()
    _, micro_grid = await parts.new_micro_grid(village)
    buyer = Caller(await resident(parts.residents, micro_grid), Role.RESIDENT)
    ledger = rpb_grpc.ResidentsServiceStub(parts.residents)
    for talk in range(4):  # four anti-fraud talks, 30 points each
        await ledger.EarnPoints(
            rpb.EarnPointsRequest(
                resident_id=buyer.subject,
                activity=rpb.ACTIVITY_ANTI_FRAUD_TALK,
                request_id=f"e2e-talk-{buyer.subject}-{talk}",
            ),
            metadata=SYSTEM.metadata(),
        )
    registry = mpb_grpc.MerchantsServiceStub(parts.merchants)
    shop = (
        await registry.RegisterMerchant(
            mpb.RegisterMerchantRequest(
                village_id=village,
                name="Village Supermarket",
                category=mpb.CATEGORY_SUPERMARKET,
                legal_form=mpb.LEGAL_FORM_COMPANY,
                accepts_points=True,
                opening_hours=mpb.OpeningHours(opens="07:30", closes="21:00"),
                contact_phone="13800138000",
            ),
            metadata=OPERATOR.metadata(),
        )
    ).merchant
    await registry.VerifyMerchant(
        mpb.VerifyMerchantRequest(id=shop.id), metadata=OPERATOR.metadata()
    )
    till = Caller(shop.id, Role.MERCHANT)
    toothpaste = (
        await registry.CreateOffer(
            mpb.CreateOfferRequest(
                merchant_id=shop.id, title="Toothpaste", points=120, stock=5
            ),
            metadata=till.metadata(),
        )
    ).offer
    assert await points(parts.residents, buyer.subject) == 120

    offers = ok(
        await http.get("/v1/offers", params={"area_id": village}, headers=bearer(buyer))
    )["offers"]
    redeemed = ok(
        await http.post(
            f"/v1/offers/{toothpaste.id}:redeem",
            json={"resident_id": buyer.subject, "request_id": "e2e-story-6"},
            headers=bearer(buyer),
        )
    )["redemption"]
    found = ok(
        await http.get(
            f"/v1/merchants/{shop.id}/redemptions:find",
            params={"code": redeemed["code"]},
            headers=bearer(till),
        )
    )["redemption"]
    confirmed = ok(
        await http.post(
            f"/v1/redemptions/{found['id']}:confirm", json={}, headers=bearer(till)
        )
    )["redemption"]
    month = datetime.now(CITY_TIME).strftime("%Y-%m")

    async def settled() -> dict[str, Any] | None:
        got = ok(
            await http.get(
                f"/v1/merchants/{shop.id}/statements/{month}", headers=bearer(till)
            )
        )
        return got if got.get("redemptions") == 1 else None

    merchant_statement = await eventually(settled)
    seen = ok(
        await http.get(f"/v1/redemptions/{redeemed['id']}", headers=bearer(buyer))
    )["redemption"]

    assert toothpaste.id in {o["id"] for o in offers}
    assert found["id"] == redeemed["id"]
    assert confirmed["state"] == seen["state"] == "REDEMPTION_STATE_COMMITTED"
    assert await points(parts.residents, buyer.subject) == 0
    assert sum(await statement(parts.residents, buyer.subject)) == 0
    assert -120 in await statement(parts.residents, buyer.subject)
    assert int(merchant_statement["points"]) == 120
    assert [line["title"] for line in merchant_statement["lines"]] == ["Toothpaste"]


# ---- story 3: a resident's tip-off, followed until it is fixed ----


async def test_story_3_a_tip_off_is_followed_and_the_reporter_is_told(
    parts: Parts,
) -> None:
    http = parts.http
    grid, micro_grid = await parts.new_micro_grid(await parts.demo_village())
    reporter = Caller(await resident(parts.residents, micro_grid), Role.RESIDENT)
    worker = await helper(parts.grids, staff_pb.HELPER_KIND_GRID_WORKER, [grid])
    as_worker = Caller(worker.id, Role.GRID_WORKER, (grid,))
    photo_ref = await parts.photo(reporter)

    reported = ok(
        await http.post(
            "/v1/casework/cases",
            json={
                "category": "CASE_CATEGORY_SAFETY_FIRE",
                "source": "CASE_SOURCE_RESIDENT_TIP_OFF",
                "micro_grid_id": micro_grid,
                "description": "corridor blocked by stacked cardboard",
                "attachment_refs": [photo_ref],
                "reporter_id": reporter.subject,
                "request_id": "e2e-story-3",
            },
            headers=bearer(reporter),
        )
    )["case"]
    case_id = reported["record"]["id"]
    path = f"/v1/casework/cases/{case_id}"

    async def assigned() -> dict[str, Any] | None:
        got = ok(await http.get(path, headers=bearer(reporter)))["case"]
        return got if got["record"].get("assignee_id") else None

    await eventually(assigned)
    visited = ok(
        await http.post(
            f"{path}:visit",
            json={
                "outcome": "VISIT_OUTCOME_RESOLVED_ON_SPOT",
                "note": "cardboard cleared with the shop owner",
                "request_id": "e2e-visit",
            },
            headers=bearer(as_worker),
        )
    )["case"]
    told = await eventually(
        lambda: _about_inbox(http, reporter, f"case-{case_id}/", at_least=2)
    )
    seen = ok(await http.get(path, headers=bearer(reporter)))["case"]

    assert reported["record"]["attachment_refs"] == [photo_ref]
    assert seen["record"]["status"] == visited["record"]["status"]
    assert seen["record"]["status"] != reported["record"]["status"]
    assert len(seen["record"].get("timeline", seen.get("timeline", []))) >= 3
    # Each message is about a step, once: no reference repeats.
    references = [m["reference"] for m in told]
    assert len(references) == len(set(references))


async def test_story_3_the_assigned_grid_worker_is_told_of_the_new_case(
    parts: Parts,
) -> None:
    http = parts.http
    grid, micro_grid = await parts.new_micro_grid(await parts.demo_village())
    reporter = Caller(await resident(parts.residents, micro_grid), Role.RESIDENT)
    worker = await helper(parts.grids, staff_pb.HELPER_KIND_GRID_WORKER, [grid])
    as_person = Caller(worker.person_id, Role.GRID_WORKER, (grid,))
    reported = ok(
        await http.post(
            "/v1/casework/cases",
            json={
                "category": "CASE_CATEGORY_SAFETY_FIRE",
                "source": "CASE_SOURCE_RESIDENT_TIP_OFF",
                "micro_grid_id": micro_grid,
                "description": "an extinguisher is missing on the third floor",
                "reporter_id": reporter.subject,
            },
            headers=bearer(reporter),
        )
    )["case"]
    case_id = reported["record"]["id"]
    # The reporter hears of the assignment, so the worker's message went too.
    await eventually(lambda: _about_inbox(http, reporter, f"case-{case_id}/"))

    told = await eventually(
        lambda: _about_inbox(http, as_person, f"case-{case_id}/"), timeout=5
    )

    assert told[0]["title"] == "New case"
