"""A squad member's app over the gateway: due list and a visit, HTTP/JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from cloudark.care.v1 import care_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from services.common.server import RunningService
from services.gateway.server import create_app
from tests.care.support import assign, recipient, squad
from tests.care.test_plans import fresh_village
from tests.gateway.test_gateway import CONFIG, TOKENS, bearer

MEMBER = TOKENS.issue(Caller(subject="squad-member-http", role=Role.VOLUNTEER))


@pytest.fixture
async def http(
    care_service: RunningService, grids_channel: grpc.aio.Channel
) -> AsyncIterator[httpx.AsyncClient]:
    address = f"127.0.0.1:{care_service.port}"
    async with grpc.aio.insecure_channel(address) as care:
        channels = {"care": care, "grids": grids_channel}
        app = create_app(CONFIG, lambda service: channels[service])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway"
        ) as client:
            yield client


async def test_a_squad_member_sees_the_due_list_and_records_a_visit_over_http(
    http: httpx.AsyncClient,
    care_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    place = await fresh_village(grids_channel)
    team = await squad(grids_channel, place.area.id)
    person = await recipient(residents_channel, place.micro_grid)
    address = f"127.0.0.1:{care_service.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        care = pb_grpc.CareServiceStub(channel)
        await assign(care, person, team, team.member_ids[0])

    due = await http.get(
        f"/v1/care/squads/{team.id}/due", headers=bearer(MEMBER.access_token)
    )
    visit = await http.post(
        f"/v1/care/plans/{person}/visits",
        json={"member_id": team.member_ids[0], "outcome": "VISIT_OUTCOME_DONE"},
        headers=bearer(MEMBER.access_token),
    )
    bad = await http.post(
        f"/v1/care/plans/{person}/visits",
        json={"member_id": team.member_ids[0]},
        headers=bearer(MEMBER.access_token),
    )

    assert due.status_code == 200
    assert [i["recipient_id"] for i in due.json()["items"]] == [person]
    assert visit.status_code == 200
    assert visit.json()["visit"]["outcome"] == "VISIT_OUTCOME_DONE"
    assert bad.status_code == 400
    assert [v["field"] for v in bad.json()["violations"]] == ["outcome"]
