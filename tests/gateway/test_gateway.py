"""The gateway as a mobile app sees it: HTTP/JSON over the gRPC services."""

import dataclasses
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from openapi_spec_validator import validate

from services.common.identity import Caller, Role
from services.gateway.config import GatewayConfig
from services.gateway.server import create_app
from services.gateway.tokens import Tokens, from_config

CONFIG = dataclasses.replace(
    GatewayConfig.from_env(),
    token_secret="test-secret-of-at-least-thirty-two-bytes",
    rate_per_second=1000,
    rate_burst=1000,
)
TOKENS: Tokens = from_config(CONFIG)
OPERATOR = TOKENS.issue(Caller(subject="op-http", role=Role.OPERATOR))
RESIDENT = TOKENS.issue(Caller(subject="resident-http", role=Role.RESIDENT))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def http(grids_channel: grpc.aio.Channel) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CONFIG, lambda service: grids_channel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway"
    ) as client:
        yield client


async def create_city(http: httpx.AsyncClient) -> dict[str, object]:
    reply = await http.post(
        "/v1/areas",
        json={"kind": "AREA_KIND_CITY", "name": f"City {uuid.uuid4().hex[:6]}"},
        headers=bearer(OPERATOR.access_token),
    )
    assert reply.status_code == 200, reply.text
    area = reply.json()["area"]
    assert isinstance(area, dict)
    return area


async def test_areas_are_created_read_and_listed_over_http(
    http: httpx.AsyncClient,
) -> None:
    city = await create_city(http)
    town = await http.post(
        "/v1/areas",
        json={"kind": "AREA_KIND_TOWN", "name": "Dinghai", "parent_id": city["id"]},
        headers=bearer(OPERATOR.access_token),
    )

    got = await http.get(
        f"/v1/areas/{city['id']}", headers=bearer(RESIDENT.access_token)
    )
    listed = await http.get(
        "/v1/areas",
        params={"parent_id": str(city["id"]), "page_size": "10"},
        headers=bearer(RESIDENT.access_token),
    )
    renamed = await http.post(
        f"/v1/areas/{town.json()['area']['id']}:rename",
        json={"name": "Dinghai Street"},
        headers=bearer(OPERATOR.access_token),
    )

    assert got.json()["area"]["kind"] == "AREA_KIND_CITY"
    assert [a["name"] for a in listed.json()["areas"]] == ["Dinghai"]
    assert listed.json()["next_page_token"] == ""
    assert renamed.json()["area"]["name"] == "Dinghai Street"


async def test_bad_fields_come_back_as_problem_json_naming_them(
    http: httpx.AsyncClient,
) -> None:
    reply = await http.post(
        "/v1/areas",
        json={"kind": "AREA_KIND_TOWN", "name": ""},
        headers=bearer(OPERATOR.access_token),
    )

    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/problem+json"
    fields = sorted(v["field"] for v in reply.json()["violations"])
    assert fields == ["name", "parent_id"]


@pytest.mark.parametrize(
    ("path", "params", "body", "field"),
    [
        ("/v1/areas", {"page_size": "many"}, None, "page_size"),
        ("/v1/areas", {"colour": "red"}, None, "colour"),
        ("/v1/areas", {}, "[1, 2]", "body"),
        ("/v1/areas", {}, "{not json", "body"),
        ("/v1/areas", {}, '{"kind": "AREA_KIND_MOON"}', "kind"),
    ],
)
async def test_malformed_http_input_is_400_never_500(
    http: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    body: str | None,
    field: str,
) -> None:
    headers = bearer(OPERATOR.access_token) | {"Content-Type": "application/json"}
    if body is None:
        reply = await http.get(path, params=params, headers=headers)
    else:
        reply = await http.post(path, params=params, content=body, headers=headers)

    assert reply.status_code == 400, reply.text
    assert field in [v["field"] for v in reply.json()["violations"]]


async def test_status_codes_follow_the_grpc_status(http: httpx.AsyncClient) -> None:
    city = await create_city(http)

    missing = await http.get(
        f"/v1/areas/{uuid.uuid4()}", headers=bearer(RESIDENT.access_token)
    )
    denied = await http.post(
        "/v1/areas",
        json={"kind": "AREA_KIND_TOWN", "name": "Mine", "parent_id": city["id"]},
        headers=bearer(RESIDENT.access_token),
    )
    anonymous = await http.get(f"/v1/areas/{city['id']}")
    forged = await http.get(f"/v1/areas/{city['id']}", headers=bearer("not.a.token"))

    assert missing.status_code == 404
    assert denied.status_code == 403
    assert anonymous.status_code == 401
    assert forged.status_code == 401


async def test_refresh_token_buys_a_new_access_token_but_is_no_access_token(
    http: httpx.AsyncClient,
) -> None:
    refreshed = await http.post(
        "/v1/auth:refresh", json={"refresh_token": OPERATOR.refresh_token}
    )
    misused = await http.get("/v1/areas", headers=bearer(OPERATOR.refresh_token))

    assert refreshed.status_code == 200
    token = refreshed.json()["access_token"]
    assert (await http.get("/v1/areas", headers=bearer(token))).status_code == 200
    assert misused.status_code == 401


async def test_each_token_is_rate_limited(grids_channel: grpc.aio.Channel) -> None:
    config = dataclasses.replace(CONFIG, rate_per_second=0.01, rate_burst=2)
    app = create_app(config, lambda service: grids_channel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway"
    ) as http:
        codes = [
            (
                await http.get("/v1/areas", headers=bearer(RESIDENT.access_token))
            ).status_code
            for _ in range(3)
        ]
        other = await http.get("/v1/areas", headers=bearer(OPERATOR.access_token))

    assert codes[:2] == [200, 200]
    assert codes[2] == 429
    assert other.status_code == 200


async def test_oversized_body_is_refused(grids_channel: grpc.aio.Channel) -> None:
    config = dataclasses.replace(CONFIG, max_body_bytes=100)
    app = create_app(config, lambda service: grids_channel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway"
    ) as http:
        reply = await http.post(
            "/v1/areas",
            json={"kind": "AREA_KIND_CITY", "name": "x" * 500},
            headers=bearer(OPERATOR.access_token),
        )

    assert reply.status_code == 400
    assert reply.json()["violations"][0]["field"] == "body"


async def test_openapi_document_is_valid_and_covers_every_http_binding(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    docs = await http.get("/docs")

    validate(spec)
    operations = {
        op["operationId"] for path in spec["paths"].values() for op in path.values()
    }
    assert {
        "GridsService_CreateArea",
        "GridsService_GetArea",
        "GridsService_ListAreas",
        "GridsService_RenameArea",
        "GridsService_MoveArea",
        "CaseworkService_RecordVisit",
        "CareService_RecordVisit",
    } <= operations
    assert docs.status_code == 200
    assert "swagger-ui-bundle.js" in docs.text
