"""A resident's tip-off through the gateway's HTTP/JSON routes, which are
generated from the casework proto."""

import dataclasses
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from services.common.identity import Caller, Role
from services.gateway.config import GatewayConfig
from services.gateway.server import create_app
from services.gateway.tokens import from_config
from tests.casework.support import Stack, scene

CONFIG = dataclasses.replace(
    GatewayConfig.from_env(),
    token_secret="test-secret-of-at-least-thirty-two-bytes",
    rate_per_second=1000,
    rate_burst=1000,
)


@pytest.fixture
async def http(
    dev_stack: Stack, grids_channel: grpc.aio.Channel
) -> AsyncIterator[httpx.AsyncClient]:
    channels = {"grids": grids_channel, "casework": dev_stack.channel}
    app = create_app(CONFIG, lambda service: channels[service])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


async def test_resident_reports_and_reads_a_tip_off_over_http(
    http: httpx.AsyncClient,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    token = from_config(CONFIG).issue(Caller(city.resident_id, Role.RESIDENT))
    headers = {"Authorization": f"Bearer {token.access_token}"}

    reported = await http.post(
        "/v1/casework/cases",
        json={
            "category": "CASE_CATEGORY_SAFETY_DISPUTE",
            "source": "CASE_SOURCE_RESIDENT_TIP_OFF",
            "micro_grid_id": city.place.micro_grid.id,
            "description": "neighbours quarrelling over waste water",
            "attachment_refs": ["photos/quarrel.jpg"],
            "reporter_id": city.resident_id,
        },
        headers=headers,
    )
    assert reported.status_code == 200, reported.text
    case_id = reported.json()["case"]["record"]["id"]
    read = await http.get(f"/v1/casework/cases/{case_id}", headers=headers)
    refused = await http.post(
        "/v1/casework/cases",
        json={"category": "CASE_CATEGORY_SAFETY_DISPUTE", "reporter_id": "other"},
        headers=headers,
    )

    assert read.status_code == 200, read.text
    assert read.json()["case"]["record"]["attachment_refs"] == ["photos/quarrel.jpg"]
    assert refused.status_code == 400
    fields = {v["field"] for v in refused.json()["violations"]}
    assert {"source", "micro_grid_id", "description"} <= fields
