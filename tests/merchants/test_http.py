"""A redemption as the mobile apps make it: HTTP/JSON through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from cloudark.residents.v1 import residents_pb2 as rpb

from services.common.identity import Caller, Role
from services.common.server import RunningService
from services.gateway.server import create_app
from tests.gateway.test_gateway import CONFIG, TOKENS, bearer
from tests.merchants.support import (
    Stubs,
    offer,
    place,
    points_of,
    resident_with_points,
    shop,
    stubs,
)


@pytest.fixture
async def api(
    merchants_service: RunningService, residents_channel: grpc.aio.Channel
) -> AsyncIterator[Stubs]:
    both = stubs(merchants_service, residents_channel)
    yield both
    await both.close()


@pytest.fixture
async def http(api: Stubs) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CONFIG, lambda service: api.channel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway"
    ) as client:
        yield client


async def test_a_resident_redeems_and_the_merchant_confirms_over_http(
    api: Stubs, http: httpx.AsyncClient, grids_channel: grpc.aio.Channel
) -> None:
    town = await place(grids_channel)
    buyer = await resident_with_points(api.residents, town)
    supermarket = await shop(api.merchants, town.village.id)
    soap = await offer(api.merchants, supermarket.id, title="Soap", points=50)
    resident = bearer(
        TOKENS.issue(Caller(subject=buyer.id, role=Role.RESIDENT)).access_token
    )
    merchant = bearer(
        TOKENS.issue(Caller(subject=supermarket.id, role=Role.MERCHANT)).access_token
    )

    browsed = await http.get(
        "/v1/offers", params={"area_id": town.village.id}, headers=resident
    )
    redeemed = await http.post(
        f"/v1/offers/{soap.id}:redeem",
        json={"resident_id": buyer.id, "request_id": "app-1"},
        headers=resident,
    )
    redemption_id = redeemed.json()["redemption"]["id"]
    confirmed = await http.post(
        f"/v1/redemptions/{redemption_id}:confirm", json={}, headers=merchant
    )
    too_late = await http.post(
        f"/v1/redemptions/{redemption_id}:cancel", json={}, headers=resident
    )

    assert [o["title"] for o in browsed.json()["offers"]] == ["Soap"]
    assert redeemed.status_code == 200, redeemed.text
    assert confirmed.json()["redemption"]["state"] == "REDEMPTION_STATE_COMMITTED"
    assert too_late.status_code == 400
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, buyer.id) == 10
